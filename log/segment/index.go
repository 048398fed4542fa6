package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// Entry widths in bytes (see the package doc).
const (
	offsetEntryLen = 8
	timeEntryLen   = 12
)

// table is one sparse index file: fixed-width big-endian entries sorted in
// both fields. While its segment is active the entries live on the heap and
// reach the file on flush; a sealed segment's table is memory-mapped read
// only, so a long log keeps its indexes in the page cache, not the heap.
//
// The owning segment's mu guards a table; flush and seal run on the writer.
type table struct {
	path    string
	width   int
	buf     []byte // entries: heap while active, a read-only mapping once sealed
	mapped  bool
	flushed int      // leading bytes of the file known to equal buf
	fileLen int      // bytes in the file
	f       *os.File // open while active; closed once mapped
	existed bool     // the file was there when loaded
}

// loadTable reads the entries of path into the heap. A missing file is an
// empty table; a size that is not a whole number of entries keeps the whole
// entries only (the caller validates the rest).
func loadTable(path string, width int) (*table, error) {
	t := &table{path: path, width: width}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	t.buf = b[:len(b)/width*width]
	t.flushed, t.fileLen = len(t.buf), len(b)
	t.existed = err == nil
	return t, nil
}

func (t *table) len() int { return len(t.buf) / t.width }

func (t *table) entry(i int) []byte { return t.buf[i*t.width : (i+1)*t.width] }

// truncate keeps the first n entries, in memory and, on the next flush, on disk.
func (t *table) truncate(n int) {
	t.buf = t.buf[:n*t.width]
	t.flushed = min(t.flushed, len(t.buf))
}

// reset drops every entry.
func (t *table) reset() { t.truncate(0) }

// add appends one entry on the heap; the file sees it on flush.
func (t *table) add(e []byte) { t.buf = append(t.buf, e...) }

// flush writes the entries not yet in the file, creating it if needed: a
// flushed table always has a file, so a missing one means it was lost.
func (t *table) flush() error {
	if t.mapped {
		return nil
	}
	if t.f == nil {
		f, err := os.OpenFile(t.path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		t.f = f
	}
	if t.fileLen > t.flushed {
		if err := t.f.Truncate(int64(t.flushed)); err != nil {
			return err
		}
		t.fileLen = t.flushed
	}
	if t.flushed == len(t.buf) {
		return nil
	}
	if _, err := t.f.WriteAt(t.buf[t.flushed:], int64(t.flushed)); err != nil {
		return err
	}
	t.flushed, t.fileLen = len(t.buf), len(t.buf)
	return nil
}

// sync flushes and makes the file durable.
func (t *table) sync() error {
	if err := t.flush(); err != nil {
		return err
	}
	if t.f == nil {
		return nil
	}
	return fdatasync(t.f)
}

// seal flushes the table and replaces the heap copy by a read-only mapping
// of the file.
func (t *table) seal() error {
	if t.mapped {
		return nil
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(t.buf) == 0 {
		return t.closeFile()
	}
	m, err := unix.Mmap(int(t.f.Fd()), 0, len(t.buf), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap %s: %w", t.path, err)
	}
	t.buf, t.mapped = m, true
	return t.closeFile()
}

// unseal brings a mapped table back to the heap so it can grow again (a
// sealed segment that becomes active after a truncation).
func (t *table) unseal() error {
	if !t.mapped {
		return nil
	}
	heap := append([]byte(nil), t.buf...)
	if err := unix.Munmap(t.buf); err != nil {
		return err
	}
	t.buf, t.mapped, t.flushed, t.fileLen = heap, false, len(heap), len(heap)
	return nil
}

func (t *table) closeFile() error {
	if t.f == nil {
		return nil
	}
	err := t.f.Close()
	t.f = nil
	return err
}

// close releases the mapping and the file.
func (t *table) close() error {
	var err error
	if t.mapped {
		err = unix.Munmap(t.buf)
		t.mapped = false
	}
	t.buf = nil
	return errors.Join(err, t.closeFile())
}

// Offset index entries: relative offset, position.

func putOffsetEntry(e []byte, rel, pos uint32) {
	binary.BigEndian.PutUint32(e[0:], rel)
	binary.BigEndian.PutUint32(e[4:], pos)
}

func offsetEntry(t *table, i int) (rel, pos uint32) {
	e := t.entry(i)
	return binary.BigEndian.Uint32(e[0:]), binary.BigEndian.Uint32(e[4:])
}

// lookupOffset returns the position of the last indexed batch whose relative
// offset is at most rel, or 0 (the segment start) when there is none.
func lookupOffset(t *table, rel uint32) int64 {
	i := sort.Search(t.len(), func(i int) bool {
		r, _ := offsetEntry(t, i)
		return r > rel
	})
	if i == 0 {
		return 0
	}
	_, pos := offsetEntry(t, i-1)
	return int64(pos)
}

// lookupPosition returns the last indexed position that is at most pos, or 0.
func lookupPosition(t *table, pos int64) int64 {
	i := sort.Search(t.len(), func(i int) bool {
		_, p := offsetEntry(t, i)
		return int64(p) > pos
	})
	if i == 0 {
		return 0
	}
	_, p := offsetEntry(t, i-1)
	return int64(p)
}

// Time index entries: timestamp, relative offset.

func putTimeEntry(e []byte, ts int64, rel uint32) {
	binary.BigEndian.PutUint64(e[0:], uint64(ts))
	binary.BigEndian.PutUint32(e[8:], rel)
}

func timeEntry(t *table, i int) (ts int64, rel uint32) {
	e := t.entry(i)
	return int64(binary.BigEndian.Uint64(e[0:])), binary.BigEndian.Uint32(e[8:])
}

// lookupTime returns the relative offset of the last entry whose timestamp
// is at most ts: no record before that batch can have a timestamp ≥ ts
// unless it equals the entry's. With no such entry it returns 0.
func lookupTime(t *table, ts int64) uint32 {
	i := sort.Search(t.len(), func(i int) bool {
		e, _ := timeEntry(t, i)
		return e > ts
	})
	if i == 0 {
		return 0
	}
	_, rel := timeEntry(t, i-1)
	return rel
}

// validOffsetPrefix returns how many leading entries are strictly increasing
// in both fields with positions below size: what survives a torn write.
func validOffsetPrefix(t *table, size int64) int {
	var lastRel, lastPos int64 = -1, 0
	for i := 0; i < t.len(); i++ {
		rel, pos := offsetEntry(t, i)
		if int64(rel) <= lastRel || (i > 0 && int64(pos) <= lastPos) || int64(pos) >= size || pos == 0 {
			return i
		}
		lastRel, lastPos = int64(rel), int64(pos)
	}
	return t.len()
}

// validTimePrefix returns how many leading entries have strictly increasing
// timestamps, non-decreasing relative offsets below limit.
func validTimePrefix(t *table, limit int64) int {
	var lastTs int64
	var lastRel int64 = -1
	for i := 0; i < t.len(); i++ {
		ts, rel := timeEntry(t, i)
		if (i > 0 && ts <= lastTs) || int64(rel) < lastRel || int64(rel) >= limit {
			return i
		}
		lastTs, lastRel = ts, int64(rel)
	}
	return t.len()
}
