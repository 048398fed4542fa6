package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/samsa-io/samsa/log/batch"
)

// How much of a segment file a scanner reads at a time. A header scan
// starts at an index entry and rarely goes further than the index interval
// (4 KiB by default), so it reads little: batch bodies larger than its
// chunk are skipped, not read. A CRC scan reads every byte, so it reads big.
const (
	headerChunk = 4 << 10
	crcChunk    = 256 << 10
)

var (
	headerBufs = sync.Pool{New: func() any { b := make([]byte, headerChunk); return &b }}
	crcBufs    = sync.Pool{New: func() any { b := make([]byte, crcChunk); return &b }}
)

// scanner walks the batches of one segment file from a position, reading
// the file in chunks. It trusts nothing: a header that does not parse, a
// batch that runs past end, or (with crc set) a CRC mismatch stops it with
// an error wrapping batch.ErrCorrupt or batch.ErrCRC.
type scanner struct {
	f   *os.File
	end int64 // bytes of the file that may be read
	crc bool  // verify each batch's CRC (reads whole batches)

	pos  int64 // position of the current batch
	hdr  batch.Header
	err  error
	next int64 // position of the batch after the current one

	bufp  *[]byte
	big   []byte // a batch larger than the chunk buffer, when crc is set
	chunk []byte // bytes of the file from chunkAt
	at    int64
}

func newScanner(f *os.File, from, end int64, crc bool) scanner {
	pool := &headerBufs
	if crc {
		pool = &crcBufs
	}
	return scanner{f: f, end: end, crc: crc, next: from, bufp: pool.Get().(*[]byte)}
}

// close returns the scanner's buffer to its pool.
func (s *scanner) close() {
	if s.bufp != nil {
		if s.crc {
			crcBufs.Put(s.bufp)
		} else {
			headerBufs.Put(s.bufp)
		}
		s.bufp = nil
	}
}

// Next moves to the next batch. It returns false at end or on error; Err
// tells which.
func (s *scanner) Next() bool {
	if s.err != nil || s.next >= s.end {
		return false
	}
	s.pos = s.next
	need := int64(batch.HeaderLen)
	if s.end-s.pos < need {
		s.err = fmt.Errorf("%w: %d bytes at position %d, less than a batch header", batch.ErrCorrupt, s.end-s.pos, s.pos)
		return false
	}
	head, err := s.bytes(s.pos, batch.HeaderLen)
	if err != nil {
		s.err = err
		return false
	}
	if s.hdr, err = batch.ParseHeader(head); err != nil {
		s.err = fmt.Errorf("at position %d: %w", s.pos, err)
		return false
	}
	size := int64(s.hdr.Size())
	if s.pos+size > s.end {
		s.err = fmt.Errorf("%w: batch at position %d is %d bytes, file ends after %d", batch.ErrCorrupt, s.pos, size, s.end-s.pos)
		return false
	}
	if s.crc {
		b, err := s.bytes(s.pos, int(size))
		if err != nil {
			s.err = err
			return false
		}
		if _, err := batch.Validate(b); err != nil {
			s.err = fmt.Errorf("at position %d: %w", s.pos, err)
			return false
		}
	}
	s.next = s.pos + size
	return true
}

// Header is the current batch's header.
func (s *scanner) Header() *batch.Header { return &s.hdr }

// Pos is the file position of the current batch; End the position after it.
func (s *scanner) Pos() int64 { return s.pos }
func (s *scanner) End() int64 { return s.next }

// Err is the error that stopped the scan, or nil at a clean end.
func (s *scanner) Err() error { return s.err }

// Batch returns the current batch's bytes. They are valid until Next.
func (s *scanner) Batch() ([]byte, error) { return s.bytes(s.pos, s.hdr.Size()) }

// bytes returns n bytes at pos from the chunk buffer, refilling it as
// needed; batches larger than the buffer get a buffer of their own.
func (s *scanner) bytes(pos int64, n int) ([]byte, error) {
	if pos >= s.at && pos+int64(n) <= s.at+int64(len(s.chunk)) {
		off := pos - s.at
		return s.chunk[off : off+int64(n)], nil
	}
	buf := *s.bufp
	if n > len(buf) {
		if cap(s.big) < n {
			s.big = make([]byte, n)
		}
		buf = s.big[:n]
	}
	m := min(int64(len(buf)), s.end-pos)
	got, err := s.f.ReadAt(buf[:m], pos)
	if int64(got) < int64(n) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: file ends at %d, expected %d bytes at %d", batch.ErrCorrupt, pos+int64(got), n, pos)
		}
		return nil, err
	}
	s.chunk, s.at = buf[:got], pos
	return s.chunk[:n], nil
}
