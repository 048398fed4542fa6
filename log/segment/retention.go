package segment

import (
	"errors"
	"fmt"
	"time"
)

// RetentionPoint returns the offset below which retention.ms and
// retention.bytes allow deleting data: the base of the first segment to
// keep, or EndOffset when even the active segment has expired by time.
// Whole segments only, oldest first, as Kafka does; the active segment is
// never deleted for size. A replicated caller proposes the result to every
// replica (DeleteBefore), so replicas delete the same records.
func (l *Log) RetentionPoint(now time.Time) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	point := l.start.Load()
	if len(l.segs) == 0 {
		return point
	}
	if ms := l.cfg.Load().RetentionMs; ms >= 0 {
		cutoff := now.UnixMilli() - ms
		for i, s := range l.segs {
			if s.size.Load() == 0 || s.largestTimestamp() >= cutoff {
				break
			}
			if i == len(l.segs)-1 {
				point = max(point, l.next.Load())
			} else {
				point = max(point, l.segs[i+1].base)
			}
		}
	}
	if limit := l.cfg.Load().RetentionBytes; limit >= 0 {
		var total int64
		for _, s := range l.segs {
			total += s.size.Load()
		}
		for i, s := range l.segs[:len(l.segs)-1] {
			if total-s.size.Load() < limit {
				break
			}
			total -= s.size.Load()
			point = max(point, l.segs[i+1].base)
		}
	}
	return point
}

// Retain applies retention now: DeleteBefore(RetentionPoint(now)). It
// returns the number of segments deleted.
func (l *Log) Retain(now time.Time) (int, error) {
	return l.DeleteBefore(l.RetentionPoint(now))
}

// DeleteBefore moves the log start offset to offset and deletes every
// segment that holds only records below it (Kafka's DeleteRecords when
// offset falls inside a segment; retention when it is a segment base). If
// the active segment is entirely below offset, a new empty segment is
// rolled first. Readers holding Sections of deleted segments keep reading
// them until they release them. It returns the number of segments deleted;
// an error means nothing changed.
func (l *Log) DeleteBefore(offset int64) (int, error) {
	if l.closed {
		return 0, ErrClosed
	}
	if offset <= l.start.Load() {
		return 0, nil
	}
	if end := l.next.Load(); offset > end {
		return 0, fmt.Errorf("%w: delete before %d, log ends at %d", ErrOffsetOutOfRange, offset, end)
	}
	if a := l.active(); a.size.Load() > 0 && a.next.Load() <= offset {
		// Start an empty segment without sealing this one: it is about to be
		// deleted, and sealing would write index files to a disk that may
		// be full — the very reason records are being deleted.
		s, err := createSegment(l.dir, l.next.Load(), l.cfg.Load().Now())
		if err != nil {
			return 0, fmt.Errorf("segment: delete before %d: %w", offset, err)
		}
		l.mu.Lock()
		l.segs = append(l.segs, s)
		l.mu.Unlock()
		l.dirDirty = true
	}
	l.start.Store(offset)
	n, err := l.dropBelowStart()
	if err != nil {
		// The start has moved and reads below it are refused; files left
		// behind are deleted again at the next Open.
		l.cfg.Load().Logger.Warn("old segment files not deleted", "dir", l.dir, "err", err)
	}
	if n > 0 {
		l.cfg.Load().Logger.Info("segments deleted", "dir", l.dir, "segments", n, "log_start_offset", offset)
	}
	return n, nil
}

// dropBelowStart deletes the leading segments that hold only offsets below
// the log start offset, always keeping the active one.
func (l *Log) dropBelowStart() (int, error) {
	start := l.start.Load()
	l.mu.Lock()
	n := 0
	for n < len(l.segs)-1 && l.segs[n+1].base <= start {
		n++
	}
	gone := append([]*segment(nil), l.segs[:n]...)
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.mu.Unlock()

	var errs []error
	for _, s := range gone {
		errs = append(errs, s.remove())
		s.decRef()
		l.dirDirty = true
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("segment: delete segments below %d: %w", start, err)
	}
	return n, nil
}

// Truncate removes every batch at or after offset, which must be a batch
// boundary: the start of a stored batch, or EndOffset. It exists for
// recovery (cutting back to a durable checkpoint) and for replacing a log
// from a snapshot; Raft never un-commits a batch. Offsets below the log
// start empty the log, which then starts at offset. Readers must not hold
// Sections of the truncated range.
func (l *Log) Truncate(offset int64) error {
	if l.closed {
		return ErrClosed
	}
	if offset >= l.next.Load() {
		return nil
	}
	if offset <= l.segs[0].base || offset <= l.start.Load() {
		return l.reset(offset)
	}
	l.mu.Lock()
	i := l.find(offset)
	gone := append([]*segment(nil), l.segs[i+1:]...)
	s := l.segs[i]
	l.segs = l.segs[:i+1]
	l.mu.Unlock()
	for _, g := range gone {
		g.remove()
		g.decRef()
		l.dirDirty = true
	}
	if err := s.unseal(); err != nil {
		return fmt.Errorf("segment: truncate %s: %w", s.path, err)
	}
	if err := s.truncateAt(offset, *l.cfg.Load()); err != nil {
		return fmt.Errorf("segment: truncate %s at offset %d: %w", s.path, offset, err)
	}
	l.next.Store(offset)
	return nil
}

// reset deletes every segment and starts an empty log at offset.
func (l *Log) reset(offset int64) error {
	s, err := createSegment(l.dir, offset, l.cfg.Load().Now())
	if err != nil {
		return fmt.Errorf("segment: reset at offset %d: %w", offset, err)
	}
	l.mu.Lock()
	gone := l.segs
	l.segs = []*segment{s}
	l.start.Store(offset)
	l.next.Store(offset)
	l.mu.Unlock()
	var errs []error
	for _, g := range gone {
		if g.base != offset { // createSegment already replaced that one's files
			errs = append(errs, g.remove())
		}
		g.decRef()
	}
	l.dirDirty = true
	return errors.Join(errs...)
}
