package batch

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// Record is one decoded record. Key, Value and the header slices alias the
// decoder's buffer (the input batch, or the decompressed records): they
// are valid until the iterator moves on, and must be copied to be kept.
// A nil Key or Value is Kafka's null; an empty non-nil one is empty.
type Record struct {
	Offset    int64
	Timestamp int64 // ms
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
}

// RecordHeader is one record header. Key is a []byte rather than a string
// so that decoding a header aliases the buffer instead of allocating a
// string per header: iterating records with headers costs no allocation.
// Kafka header keys are never null; a nil Key is encoded as empty.
type RecordHeader struct {
	Key   []byte
	Value []byte // nil = null
}

// minRecordLen is the smallest encoded record: a one-byte length varint
// and six one-byte fields (attributes, timestampDelta, offsetDelta, key
// length, value length, header count). It lets a record count be checked
// against the bytes before any record is decoded.
const minRecordLen = 7

// recordDecoder decodes records one at a time, reusing its header slice
// so that steady-state decoding does not allocate.
type recordDecoder struct {
	hdrs []RecordHeader
	// offsetDelta is the last decoded record's offsetDelta, for callers
	// that check the deltas' order.
	offsetDelta int32
}

// decode parses the record at the start of b into r, taking the offset
// and timestamp bases from h, and returns how many bytes it used. Every
// length is checked against the bytes left before it is used.
func (d *recordDecoder) decode(b []byte, r *Record, h *Header) (int, error) {
	length, n := binary.Varint(b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: record length: bad varint in %d bytes", ErrCorrupt, len(b))
	}
	if length < minRecordLen-1 || length > int64(len(b)-n) {
		return 0, fmt.Errorf("%w: record length %d with %d bytes left", ErrCorrupt, length, len(b)-n)
	}
	// The attributes byte is unused in v2 and is skipped.
	c := cursor{b: b[n : n+int(length)], off: 1}
	tsDelta, err := c.varint("timestampDelta")
	if err != nil {
		return 0, err
	}
	od, err := c.varint("offsetDelta")
	if err != nil {
		return 0, err
	}
	if od < math.MinInt32 || od > math.MaxInt32 {
		return 0, fmt.Errorf("%w: offsetDelta %d out of int32 range", ErrCorrupt, od)
	}
	if r.Key, err = c.bytes("key", true); err != nil {
		return 0, err
	}
	if r.Value, err = c.bytes("value", true); err != nil {
		return 0, err
	}
	count, err := c.varint("header count")
	if err != nil {
		return 0, err
	}
	// A header takes at least two bytes (two length varints), so the
	// count is checked against the bytes left before the slice grows.
	if count < 0 || count > int64(len(c.b)-c.off)/2 {
		return 0, fmt.Errorf("%w: header count %d with %d bytes left", ErrCorrupt, count, len(c.b)-c.off)
	}
	hdrs := d.hdrs[:0]
	for range count {
		k, err := c.bytes("header key", false)
		if err != nil {
			return 0, err
		}
		v, err := c.bytes("header value", true)
		if err != nil {
			return 0, err
		}
		hdrs = append(hdrs, RecordHeader{Key: k, Value: v})
	}
	d.hdrs = hdrs
	r.Headers = nil
	if count > 0 {
		r.Headers = hdrs
	}
	if c.off != len(c.b) {
		return 0, fmt.Errorf("%w: record length %d, fields use %d", ErrCorrupt, length, c.off)
	}
	d.offsetDelta = int32(od)
	r.Offset = h.BaseOffset + od
	if h.Attributes.LogAppendTime() {
		r.Timestamp = h.MaxTimestamp
	} else {
		r.Timestamp = h.BaseTimestamp + tsDelta
	}
	return n + int(length), nil
}

// cursor reads zig-zag varints and length-prefixed bytes from one
// record's body.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) varint(field string) (int64, error) {
	if c.off >= len(c.b) {
		return 0, fmt.Errorf("%w: %s: record ends at byte %d", ErrCorrupt, field, c.off)
	}
	v, n := binary.Varint(c.b[c.off:])
	if n <= 0 {
		return 0, fmt.Errorf("%w: %s: bad varint at byte %d", ErrCorrupt, field, c.off)
	}
	c.off += n
	return v, nil
}

// bytes reads a varint length and that many bytes; -1 is null when
// nullable. The result's capacity is clipped so that appending to it
// cannot overwrite the next field.
func (c *cursor) bytes(field string, nullable bool) ([]byte, error) {
	l, err := c.varint(field)
	if err != nil {
		return nil, err
	}
	left := len(c.b) - c.off
	switch {
	case l == -1 && nullable:
		return nil, nil
	case l < 0:
		return nil, fmt.Errorf("%w: %s length %d", ErrCorrupt, field, l)
	case l > int64(left):
		return nil, fmt.Errorf("%w: %s length %d with %d bytes left", ErrCorrupt, field, l, left)
	}
	end := c.off + int(l)
	s := c.b[c.off:end:end]
	c.off = end
	return s, nil
}

// varintLen is the encoded size of v as a zig-zag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	return (bits.Len64(u|1) + 6) / 7
}

// bytesLen is the encoded size of a length-prefixed byte field.
func bytesLen(b []byte, nullable bool) int {
	if b == nil && nullable {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte, nullable bool) []byte {
	if b == nil && nullable {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// appendRecord encodes r with the given deltas, length prefix included.
func appendRecord(dst []byte, r *Record, tsDelta int64, offsetDelta int32) []byte {
	body := 1 + varintLen(tsDelta) + varintLen(int64(offsetDelta)) +
		bytesLen(r.Key, true) + bytesLen(r.Value, true) + varintLen(int64(len(r.Headers)))
	for i := range r.Headers {
		body += bytesLen(r.Headers[i].Key, false) + bytesLen(r.Headers[i].Value, true)
	}
	dst = binary.AppendVarint(dst, int64(body))
	dst = append(dst, 0) // attributes
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, int64(offsetDelta))
	dst = appendBytes(dst, r.Key, true)
	dst = appendBytes(dst, r.Value, true)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		dst = appendBytes(dst, r.Headers[i].Key, false)
		dst = appendBytes(dst, r.Headers[i].Value, true)
	}
	return dst
}
