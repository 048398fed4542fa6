package segment

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/samsa-io/samsa/log/batch"
)

// Section is a run of whole batches in one segment file, to be sent with
// sendfile or read into memory. It keeps its file open until Release, even
// if retention deletes the segment meanwhile.
type Section struct {
	File *os.File // shared by concurrent readers: use ReadAt or WriteTo, never Seek or Read
	Pos  int64    // byte position in File
	Len  int64    // bytes

	seg *segment
}

// Release lets the file close once the log no longer needs it. Call it
// exactly once per Section returned by Read.
func (s *Section) Release() {
	if s.seg != nil {
		s.seg.decRef()
		s.seg = nil
	}
}

// ReadAt reads the section's bytes into p (at most Len bytes).
func (s *Section) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.Len {
		return 0, io.EOF
	}
	if rest := s.Len - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	return s.File.ReadAt(p, s.Pos+off)
}

// AppendTo appends the section's bytes to dst.
func (s *Section) AppendTo(dst []byte) ([]byte, error) {
	n := len(dst)
	dst = append(dst, make([]byte, s.Len)...)
	if _, err := s.File.ReadAt(dst[n:], s.Pos); err != nil {
		return dst[:n], fmt.Errorf("segment: read %d bytes at %d: %w", s.Len, s.Pos, err)
	}
	return dst, nil
}

// Base is the base offset of the segment the section is in.
func (s *Section) Base() int64 { return s.seg.base }

// Release releases every section in secs.
func Release(secs []Section) {
	for i := range secs {
		secs[i].Release()
	}
}

// Read returns, appended to dst, sections holding the whole batches from
// the one that contains offset onward, at most maxBytes in total except
// that the first batch is always returned whole (so a consumer can make
// progress past a batch larger than its limit). The first batch may begin
// before offset: as in Kafka, the client skips the records it did not ask
// for. Reading at EndOffset returns no sections; reading below StartOffset
// or past EndOffset returns ErrOffsetOutOfRange. The caller must Release
// every returned section.
func (l *Log) Read(offset int64, maxBytes int, dst []Section) ([]Section, error) {
	return l.ReadBelow(offset, math.MaxInt64, maxBytes, dst)
}

// ReadBelow is Read that stops at limit, which must be a batch boundary
// (or past the end): it returns no batch at or above it, and nothing if
// offset is at or above it. A read_committed fetch reads below the last
// stable offset with it.
func (l *Log) ReadBelow(offset, limit int64, maxBytes int, dst []Section) ([]Section, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return dst, ErrClosed
	}
	start, end := l.start.Load(), l.next.Load()
	if offset < start || offset > end {
		return dst, fmt.Errorf("%w: offset %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, start, end)
	}
	if offset >= min(end, limit) {
		return dst, nil
	}
	i := l.find(offset)
	last, lastSize := len(l.segs), int64(0) // the segment holding limit, and where limit is in it
	if limit < end {
		last = l.find(limit)
		s := l.segs[last]
		var err error
		if lastSize, _, err = s.findBatch(limit, s.size.Load()); err != nil {
			return dst, err
		}
	}
	budget := int64(max(maxBytes, 0))
	first := true
	for k, s := range l.segs[i:] {
		if i+k > last {
			break
		}
		size := s.size.Load()
		if i+k == last {
			size = lastSize
		}
		var pos, known int64 // start, and a batch boundary known to fit
		if first {
			var err error
			if pos, known, err = s.findBatch(offset, size); err != nil {
				return dst, err
			}
			if pos >= size {
				continue
			}
		}
		stop := size
		if size-pos > budget {
			if known-pos >= budget { // the first batch alone fills the budget
				stop = known
			} else {
				var err error
				if stop, err = s.cut(max(pos, known), pos+budget, size); err != nil {
					return dst, err
				}
			}
		}
		if stop > pos {
			s.incRef()
			dst = append(dst, Section{File: s.f, Pos: pos, Len: stop - pos, seg: s})
			budget -= stop - pos
			first = false
		}
		if stop < size || budget <= 0 {
			break
		}
	}
	return dst, nil
}

// Snapshot appends to dst one Section per segment, oldest first, each
// covering every batch the segment holds now: a point-in-time copy of the
// log for shipping elsewhere (a Raft snapshot). Later appends and
// retention do not change what the sections cover. The caller must
// Release them.
func (l *Log) Snapshot(dst []Section) ([]Section, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return dst, ErrClosed
	}
	for _, s := range l.segs {
		s.incRef()
		dst = append(dst, Section{File: s.f, Pos: 0, Len: s.size.Load(), seg: s})
	}
	return dst, nil
}

// NextSegmentBase returns the base offset of the first segment after the
// one holding offset, or the log's end if that is the last: every record
// of a read whose sections lie in that segment is below it. A
// read_committed fetch bounds the aborted transactions it lists by it, as
// Kafka does.
func (l *Log) NextSegmentBase(offset int64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	end := l.next.Load()
	if i := l.find(offset) + 1; i < len(l.segs) {
		return min(l.segs[i].base, end)
	}
	return end
}

// find returns the index of the segment that holds offset: the last one
// whose base is at most offset. l.mu must be held.
func (l *Log) find(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return max(i-1, 0)
}

// OffsetForTime returns the offset and timestamp of the first record, at or
// after the log start, whose timestamp is at least ts — what Kafka's
// ListOffsets answers for a timestamp. found is false when every record is
// older.
func (l *Log) OffsetForTime(ts int64) (offset, timestamp int64, found bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, 0, false, ErrClosed
	}
	start := l.start.Load()
	var it batch.Iterator
	for _, s := range l.segs {
		if s.maxTs.Load() < ts || s.next.Load() <= start {
			continue
		}
		offset, timestamp, found, err = s.offsetForTime(ts, start, &it)
		if err != nil || found {
			return offset, timestamp, found, err
		}
	}
	return 0, 0, false, nil
}

// offsetForTime searches one segment; see Log.OffsetForTime.
func (s *segment) offsetForTime(ts, minOffset int64, it *batch.Iterator) (int64, int64, bool, error) {
	s.mu.RLock()
	rel := lookupTime(s.times, ts)
	s.mu.RUnlock()
	size := s.size.Load()
	pos, _, err := s.findBatch(max(s.base+int64(rel), minOffset), size)
	if err != nil {
		return 0, 0, false, err
	}
	sc := newScanner(s.f, pos, size, false)
	defer sc.close()
	for sc.Next() {
		h := sc.Header()
		if h.MaxTimestamp < ts || h.LastOffset() < minOffset || h.Attributes.Control() {
			continue
		}
		b, err := sc.Batch()
		if err != nil {
			return 0, 0, false, fmt.Errorf("%w: %s: %w", ErrCorrupt, s.path, err)
		}
		it.Reset(b)
		for it.Next() {
			if r := it.Record(); r.Offset >= minOffset && r.Timestamp >= ts {
				return r.Offset, r.Timestamp, true, nil
			}
		}
		if err := it.Err(); err != nil {
			return 0, 0, false, fmt.Errorf("%w: %s: batch at %d: %w", ErrCorrupt, s.path, h.BaseOffset, err)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, false, fmt.Errorf("%w: %s: %w", ErrCorrupt, s.path, err)
	}
	return 0, 0, false, nil
}
