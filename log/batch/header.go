package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// HeaderLen is the size in bytes of a RecordBatch v2 header.
const HeaderLen = 61

// Magic is the only batch format version Samsa stores.
const Magic = 2

// Byte offsets of the header fields (see the package doc).
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// lengthFieldEnd is where batchLength starts counting: the total size
	// of a batch is batchLength + lengthFieldEnd.
	lengthFieldEnd = offLength + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec in attribute bits 0-2.
type Codec int8

// Codecs Kafka defines.
const (
	CodecNone Codec = iota
	CodecGzip
	CodecSnappy
	CodecLZ4
	CodecZstd
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Attributes is the batch attributes field.
type Attributes int16

// Attribute bits.
const (
	codecMask         Attributes = 0x07
	attrLogAppendTime Attributes = 0x08
	attrTransactional Attributes = 0x10
	attrControl       Attributes = 0x20
)

// Codec returns the compression codec of the batch's records.
func (a Attributes) Codec() Codec { return Codec(a & codecMask) }

// LogAppendTime reports whether record timestamps are the broker's append
// time (maxTimestamp) rather than the producer's create time.
func (a Attributes) LogAppendTime() bool { return a&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (a Attributes) Transactional() bool { return a&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction markers).
func (a Attributes) Control() bool { return a&attrControl != 0 }

// Header is the decoded fixed header of one batch.
type Header struct {
	BaseOffset      int64
	Length          int32 // batchLength: bytes after the length field
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      Attributes
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// Size is the total size of the batch in bytes, header included.
func (h *Header) Size() int { return int(h.Length) + lengthFieldEnd }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset just past the batch.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Idempotent reports whether the batch carries a producer id and sequence.
func (h *Header) Idempotent() bool { return h.ProducerID >= 0 }

// LastSequence is the sequence number of the batch's last record. Kafka's
// sequences wrap from MaxInt32 to 0.
func (h *Header) LastSequence() int32 { return AddSequence(h.BaseSequence, h.LastOffsetDelta) }

// AddSequence adds n to a producer sequence number with Kafka's wrap-around.
func AddSequence(seq, n int32) int32 {
	s := int64(seq) + int64(n)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

// PeekSize returns the total size of the batch starting at b, reading only
// the first 12 bytes. It reports ErrCorrupt if fewer than 12 bytes are given
// or the length field is smaller than a header.
func PeekSize(b []byte) (int, error) {
	if len(b) < lengthFieldEnd {
		return 0, fmt.Errorf("%w: %d bytes, need %d for the length", ErrCorrupt, len(b), lengthFieldEnd)
	}
	n := int32(binary.BigEndian.Uint32(b[offLength:]))
	if n < HeaderLen-lengthFieldEnd {
		return 0, fmt.Errorf("%w: batchLength %d below the header size", ErrCorrupt, n)
	}
	return int(n) + lengthFieldEnd, nil
}

// ParseHeader decodes the header at the start of b. It checks the length
// field and magic but not the CRC; b may hold more than one batch.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, fmt.Errorf("%w: %d bytes, need %d for a header", ErrCorrupt, len(b), HeaderLen)
	}
	be := binary.BigEndian
	h = Header{
		BaseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		Length:          int32(be.Uint32(b[offLength:])),
		LeaderEpoch:     int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             be.Uint32(b[offCRC:]),
		Attributes:      Attributes(be.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:   int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(be.Uint32(b[offBaseSequence:])),
		RecordCount:     int32(be.Uint32(b[offRecordCount:])),
	}
	if h.Magic != Magic {
		return h, fmt.Errorf("%w: magic %d", ErrMagic, h.Magic)
	}
	if h.Length < HeaderLen-lengthFieldEnd {
		return h, fmt.Errorf("%w: batchLength %d below the header size", ErrCorrupt, h.Length)
	}
	return h, nil
}

// Validate checks that b is exactly one well-formed batch: the length field
// matches len(b), magic 2, a known codec, a CRC-32C that matches, and a
// record count of lastOffsetDelta+1 (at least one record). It does not
// decode the records; see ValidateRecords for that.
func Validate(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, fmt.Errorf("%w: batchLength says %d bytes, have %d", ErrCorrupt, h.Size(), len(b))
	}
	if h.Attributes.Codec() > CodecZstd {
		return h, fmt.Errorf("%w: %d", ErrCodec, h.Attributes.Codec())
	}
	if got := Checksum(b); got != h.CRC {
		return h, fmt.Errorf("%w: computed %08x, header says %08x", ErrCRC, got, h.CRC)
	}
	// Compared in int64: lastOffsetDelta MaxInt32 would otherwise wrap to
	// accept recordCount MinInt32.
	if h.LastOffsetDelta < 0 || int64(h.RecordCount) != int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: recordCount %d with lastOffsetDelta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	}
	return h, nil
}

// Checksum computes the CRC-32C a batch's crc field must hold: over every
// byte from the attributes to the end.
func Checksum(b []byte) uint32 {
	return crc32.Checksum(b[offAttributes:], castagnoli)
}

// SetBaseOffset writes the broker-assigned base offset. It lies outside the
// CRC, so the batch stays valid.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetLeaderEpoch writes the partition leader epoch (outside the CRC).
func SetLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks a batch's timestamps as the broker's append time ts
// (ms) and recomputes the CRC, which covers both fields, as Kafka does.
// head is the batch's first HeaderLen bytes and body the rest; they may be
// separate buffers so that a caller can patch a copy of the header without
// copying or mutating the records.
func SetLogAppendTime(head, body []byte, ts int64) {
	a := Attributes(binary.BigEndian.Uint16(head[offAttributes:])) | attrLogAppendTime
	binary.BigEndian.PutUint16(head[offAttributes:], uint16(a))
	binary.BigEndian.PutUint64(head[offMaxTimestamp:], uint64(ts))
	crc := crc32.Update(0, castagnoli, head[offAttributes:HeaderLen])
	crc = crc32.Update(crc, castagnoli, body)
	binary.BigEndian.PutUint32(head[offCRC:], crc)
}
