package batch

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// Iterator walks the records of zero or more concatenated batches, as the
// storage layer reads them from a segment file or a fetch response holds
// them. Each batch's CRC is checked before its records are decoded.
//
// A trailing partial batch, one with fewer bytes than its length field
// claims, ends the iteration without an error, because Kafka fetch
// responses cut the last batch at the size limit. A header that is
// garbage (a length below the header size, a magic other than 2) is an
// error even when partial.
//
// An Iterator reuses its decompression buffer and header slice, so after
// the first batches iteration does not allocate. It is not safe for
// concurrent use.
type Iterator struct {
	// MaxDecompressed bounds each batch's decompressed records; zero means
	// DefaultMaxDecompressed. Past it, iteration stops with ErrTooLarge.
	MaxDecompressed int

	rest    []byte // input after the current batch
	pos     int    // byte position of the current batch, for errors
	next    int    // byte position of rest
	records []byte // current batch's records not yet decoded
	left    int32  // records of the current batch not yet decoded
	done    int32  // records of the current batch decoded
	hdr     Header
	rec     Record
	dec     recordDecoder
	buf     []byte // decompression buffer, reused across batches
	err     error
}

// NewIterator returns an Iterator over the batches in b.
func NewIterator(b []byte) *Iterator {
	return &Iterator{rest: b}
}

// Reset makes the Iterator walk b from the start, keeping its buffers and
// MaxDecompressed, so one Iterator serves many reads without allocating.
func (it *Iterator) Reset(b []byte) {
	*it = Iterator{
		MaxDecompressed: it.MaxDecompressed,
		rest:            b,
		dec:             recordDecoder{hdrs: it.dec.hdrs[:0]},
		buf:             it.buf[:0],
	}
}

// Next advances to the next record, crossing batch boundaries, and
// reports whether there is one. It returns false at the end of the input
// and on the first error, which Err then returns.
func (it *Iterator) Next() bool {
	for it.err == nil {
		if it.left > 0 {
			n, err := it.dec.decode(it.records, &it.rec, &it.hdr)
			if err != nil {
				it.fail(it.hdr.BaseOffset, fmt.Errorf("record %d: %w", it.done, err))
				return false
			}
			it.records = it.records[n:]
			it.left--
			it.done++
			return true
		}
		if len(it.records) > 0 {
			it.fail(it.hdr.BaseOffset, fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorrupt, len(it.records), it.hdr.RecordCount))
			return false
		}
		if !it.load() {
			return false
		}
	}
	return false
}

// Record returns the current record. It and the slices it holds are valid
// until the next call to Next or Reset.
func (it *Iterator) Record() *Record { return &it.rec }

// Batch returns the header of the batch the current record is in.
func (it *Iterator) Batch() *Header { return &it.hdr }

// Err returns the error that stopped the iteration, or nil if the input
// was exhausted (or ended in a partial batch).
func (it *Iterator) Err() error { return it.err }

// fail records err, saying which batch, by base offset and byte
// position, it came from, and stops the iteration.
func (it *Iterator) fail(baseOffset int64, err error) {
	it.err = fmt.Errorf("batch at offset %d (byte %d): %w", baseOffset, it.pos, err)
	it.records, it.left, it.rest = nil, 0, nil
}

// load validates the next batch and makes its records current. It
// returns false at the end of the input, at a partial batch, or on error;
// the current header stays that of the last batch loaded.
func (it *Iterator) load() bool {
	b := it.rest
	it.pos = it.next
	if len(b) < lengthFieldEnd {
		it.rest = nil // nothing, or a batch cut before its length
		return false
	}
	base := int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	size, err := PeekSize(b)
	if err == nil && len(b) > offMagic && b[offMagic] != Magic {
		err = fmt.Errorf("%w: magic %d", ErrMagic, int8(b[offMagic]))
	}
	if err != nil {
		it.fail(base, err)
		return false
	}
	if size > len(b) {
		it.rest = nil
		return false
	}
	h, err := Validate(b[:size])
	if err != nil {
		it.fail(base, err)
		return false
	}
	records := b[HeaderLen:size]
	if c := h.Attributes.Codec(); c != CodecNone {
		it.buf, err = Decompress(it.buf[:0], records, c, it.MaxDecompressed)
		if err != nil {
			it.fail(base, err)
			return false
		}
		records = it.buf
	}
	it.hdr = h
	it.records = records
	it.rest = b[size:]
	it.next += size
	it.left, it.done = h.RecordCount, 0
	return true
}

// scratch is the state ValidateRecords borrows: a decompression buffer
// and a record decoder. Pooled so that validating every produced batch
// does not allocate.
type scratch struct {
	buf []byte
	dec recordDecoder
	rec Record
}

// scratchPool holds *scratch.
var scratchPool sync.Pool

// maxPooledScratch keeps a rare huge batch from pinning its buffer.
const maxPooledScratch = 8 << 20

// ValidateRecords checks that b is exactly one batch, as Validate does,
// then decompresses (to at most maxDecompressed bytes; <= 0 means
// DefaultMaxDecompressed) and parses every record: exactly recordCount
// records, offsetDeltas 0, 1, ..., n-1, each record's length matching its
// fields, and no bytes after the last. It is the check to run on
// untrusted producer input before storing it verbatim.
func ValidateRecords(b []byte, maxDecompressed int) (Header, error) {
	h, err := Validate(b)
	if err != nil {
		return h, err
	}
	s, _ := scratchPool.Get().(*scratch)
	if s == nil {
		s = new(scratch)
	}
	defer func() {
		if cap(s.buf) > maxPooledScratch {
			s.buf = nil
		}
		s.rec = Record{}
		clear(s.dec.hdrs[:cap(s.dec.hdrs)]) // drop references into b
		scratchPool.Put(s)
	}()
	records := b[HeaderLen:]
	if c := h.Attributes.Codec(); c != CodecNone {
		if s.buf, err = Decompress(s.buf[:0], records, c, maxDecompressed); err != nil {
			return h, err
		}
		records = s.buf
	}
	if int64(h.RecordCount) > int64(len(records)/minRecordLen) {
		return h, fmt.Errorf("%w: recordCount %d cannot fit in %d bytes of records", ErrCorrupt, h.RecordCount, len(records))
	}
	for i := range h.RecordCount {
		n, err := s.dec.decode(records, &s.rec, &h)
		if err != nil {
			return h, fmt.Errorf("record %d of %d: %w", i, h.RecordCount, err)
		}
		if s.dec.offsetDelta != i {
			return h, fmt.Errorf("%w: record %d has offsetDelta %d", ErrCorrupt, i, s.dec.offsetDelta)
		}
		records = records[n:]
	}
	if len(records) != 0 {
		return h, fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorrupt, len(records), h.RecordCount)
	}
	return h, nil
}
