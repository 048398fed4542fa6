package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/log/batch"
)

// File suffixes.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	cleanMarker     = ".clean"
)

// noTimestamp is Kafka's "no timestamp" (-1); anything at or below it
// counts as none.
const noTimestamp = -1

func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// FileName is the name of the .log file of the segment starting at base.
func FileName(base int64) string { return segmentName(base) + logSuffix }

// segment is one .log file and its two indexes.
type segment struct {
	base int64
	path string // .log path
	f    *os.File

	size  atomic.Int64 // bytes of whole batches visible to readers
	next  atomic.Int64 // offset after the last batch; base when empty
	maxTs atomic.Int64 // largest batch maxTimestamp, noTimestamp if none
	refs  atomic.Int32 // the Log's reference plus one per live Section

	mu      sync.RWMutex // guards offsets and times
	offsets *table
	times   *table

	// Writer-only state.
	maxTsOffset int64     // base offset of the batch that first reached maxTs
	firstTs     int64     // maxTimestamp of the first batch (segment.ms)
	created     time.Time // segment.ms fallback when batches carry no timestamp
	sinceIndex  int64     // bytes appended since the last indexed batch
	lastTimeTs  int64     // timestamp of the last time-index entry
	writeback   int64     // log bytes before this were handed to the kernel's writeback
	dirty       bool      // log bytes not yet fsynced
	unsynced    bool      // sealed since the last Sync: indexes need fsync too
	sealed      bool
	rebuilt     bool // indexes were rebuilt at open and are not yet durable
	scratch     [timeEntryLen]byte
}

func newSegment(dir string, base int64) *segment {
	name := filepath.Join(dir, segmentName(base))
	s := &segment{
		base:       base,
		path:       name + logSuffix,
		firstTs:    noTimestamp,
		lastTimeTs: noTimestamp,
		offsets:    &table{path: name + indexSuffix, width: offsetEntryLen},
		times:      &table{path: name + timeIndexSuffix, width: timeEntryLen},
	}
	s.next.Store(base)
	s.maxTs.Store(noTimestamp)
	s.refs.Store(1)
	return s
}

// createSegment makes a new, empty active segment, replacing any leftover
// files of the same name.
func createSegment(dir string, base int64, now time.Time) (*segment, error) {
	s := newSegment(dir, base)
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	s.f = f
	s.created = now
	for _, t := range []*table{s.offsets, s.times} {
		if err := os.Remove(t.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			f.Close()
			return nil, err
		}
	}
	return s, nil
}

// openSegment opens an existing .log file and reads its indexes into the
// heap. The caller validates them (recover.go).
func openSegment(dir string, base int64) (*segment, error) {
	s := newSegment(dir, base)
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	s.f = f
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	s.size.Store(st.Size())
	s.created = st.ModTime()
	if s.offsets, err = loadTable(s.offsets.path, offsetEntryLen); err == nil {
		s.times, err = loadTable(s.times.path, timeEntryLen)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// noteBatch records a batch just written at pos: index entries at the
// configured interval, and the segment's timestamps.
func (s *segment) noteBatch(h *batch.Header, pos, size int64, interval int64) {
	if pos > 0 && s.sinceIndex >= interval {
		rel := uint32(h.BaseOffset - s.base)
		s.mu.Lock()
		// The time entry describes the batches before this one: the largest
		// timestamp among them and the batch that first reached it.
		s.addTimeEntryLocked()
		putOffsetEntry(s.scratch[:offsetEntryLen], rel, uint32(pos))
		s.offsets.add(s.scratch[:offsetEntryLen])
		s.mu.Unlock()
		s.sinceIndex = 0
	}
	s.sinceIndex += size
	if h.MaxTimestamp > s.maxTs.Load() {
		s.maxTs.Store(h.MaxTimestamp)
		s.maxTsOffset = h.BaseOffset
	}
	if pos == 0 {
		s.firstTs = h.MaxTimestamp
	}
}

// addTimeEntryLocked appends (maxTs, its offset) if maxTs grew since the
// last time entry.
func (s *segment) addTimeEntryLocked() {
	ts := s.maxTs.Load()
	if ts <= s.lastTimeTs {
		return
	}
	putTimeEntry(s.scratch[:], ts, uint32(s.maxTsOffset-s.base))
	s.times.add(s.scratch[:])
	s.lastTimeTs = ts
}

// findBatch returns the position of the batch holding offset and the
// position after it, or end twice when offset lies past the batches before
// end.
func (s *segment) findBatch(offset, end int64) (pos, next int64, err error) {
	s.mu.RLock()
	pos = lookupOffset(s.offsets, uint32(offset-s.base))
	s.mu.RUnlock()
	sc := newScanner(s.f, pos, end, false)
	defer sc.close()
	for sc.Next() {
		if sc.Header().LastOffset() >= offset {
			return sc.Pos(), sc.End(), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("%w: %s: looking for offset %d: %w", ErrCorrupt, s.path, offset, err)
	}
	return end, end, nil
}

// cut returns the end of the last whole batch that starts at or after from
// (a batch boundary) and ends at or before limit; from if there is none.
func (s *segment) cut(from, limit, end int64) (int64, error) {
	s.mu.RLock()
	p := lookupPosition(s.offsets, limit)
	s.mu.RUnlock()
	p = max(p, from)
	sc := newScanner(s.f, p, end, false)
	defer sc.close()
	for sc.Next() && sc.End() <= limit {
		p = sc.End()
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrCorrupt, s.path, err)
	}
	return p, nil
}

// largestTimestamp is what retention compares with retention.ms: the
// largest record timestamp, or the file's modification time when the
// batches carry none (as Kafka does).
func (s *segment) largestTimestamp() int64 {
	if ts := s.maxTs.Load(); ts > noTimestamp {
		return ts
	}
	st, err := s.f.Stat()
	if err != nil {
		return 0
	}
	return st.ModTime().UnixMilli()
}

// seal makes the segment read-only: a final time entry so the index ends
// with the segment's largest timestamp, and the indexes flushed and mapped.
// The next Sync makes them durable.
func (s *segment) seal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addTimeEntryLocked()
	// Write both files before mapping either, so a full disk leaves the
	// segment active and whole.
	for _, t := range []*table{s.offsets, s.times} {
		if err := t.flush(); err != nil {
			return fmt.Errorf("segment: seal %s: %w", t.path, err)
		}
	}
	if err := s.offsets.seal(); err != nil {
		return fmt.Errorf("segment: seal %s: %w", s.offsets.path, err)
	}
	if err := s.times.seal(); err != nil {
		return errors.Join(fmt.Errorf("segment: seal %s: %w", s.times.path, err), s.offsets.unseal())
	}
	s.sealed, s.unsynced = true, true
	return nil
}

// unseal makes a sealed segment active again (after a truncation).
func (s *segment) unseal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.offsets.unseal(); err != nil {
		return err
	}
	if err := s.times.unseal(); err != nil {
		return err
	}
	s.sealed = false
	return nil
}

// sync makes the segment's log bytes durable, and its indexes if it was
// sealed since the last sync (an active segment's indexes are rebuilt after
// a crash instead).
func (s *segment) sync() error {
	if s.dirty {
		if err := fdatasync(s.f); err != nil {
			return fmt.Errorf("segment: %w", err)
		}
		s.dirty = false
	}
	if s.unsynced {
		s.mu.Lock()
		err := errors.Join(s.offsets.sync(), s.times.sync())
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("segment: fsync indexes of %s: %w", s.path, err)
		}
		s.unsynced = false
	}
	return nil
}

// syncAll flushes and fsyncs the log and both indexes (clean close).
func (s *segment) syncAll() error {
	s.mu.Lock()
	if !s.sealed {
		s.addTimeEntryLocked()
	}
	err := errors.Join(s.offsets.sync(), s.times.sync())
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.dirty = true
	s.unsynced = false
	return s.sync()
}

func (s *segment) incRef() { s.refs.Add(1) }

// decRef drops a reference; the last one closes the files.
func (s *segment) decRef() {
	if s.refs.Add(-1) == 0 {
		s.mu.Lock()
		s.offsets.close()
		s.times.close()
		s.mu.Unlock()
		s.f.Close()
	}
}

// remove unlinks the segment's files. Open descriptors (live Sections)
// keep reading the data until they are released.
func (s *segment) remove() error {
	var errs []error
	for _, p := range []string{s.path, s.offsets.path, s.times.path} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
