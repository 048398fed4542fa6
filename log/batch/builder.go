package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Builder encodes records into one batch, for producers inside the
// process and for tests; batches from clients are stored as they came.
// Records are encoded as they are added, so Add copies what it needs and
// Build only compresses and writes the header.
//
// The zero Builder is ready to use: no compression, producer id -1,
// epoch -1, base sequence -1 (not idempotent).
type Builder struct {
	codec Codec

	// producerSet distinguishes a SetProducer call from the zero value,
	// whose producer fields mean -1.
	producerSet   bool
	producerID    int64
	producerEpoch int16
	baseSequence  int32
	transactional bool
	control       bool

	count         int32
	baseTimestamp int64
	maxTimestamp  int64
	records       []byte // encoded, uncompressed
}

// Reset forgets the records added so far, keeping the codec, the
// producer and the buffer, so a Builder can build batch after batch.
func (b *Builder) Reset() {
	b.count = 0
	b.records = b.records[:0]
}

// SetCodec sets the compression of the records; an unknown codec makes
// Build fail with ErrCodec.
func (b *Builder) SetCodec(c Codec) { b.codec = c }

// SetProducer sets the idempotent producer's id, epoch and the sequence
// of the batch's first record.
func (b *Builder) SetProducer(id int64, epoch int16, baseSequence int32) {
	b.producerSet = true
	b.producerID, b.producerEpoch, b.baseSequence = id, epoch, baseSequence
}

// SetTransactional marks the batches built as part of the producer's
// transaction (the attributes' transactional bit).
func (b *Builder) SetTransactional(on bool) { b.transactional = on }

// SetControl marks the batches built as control batches (the attributes'
// control bit): transaction markers, which only the broker writes.
func (b *Builder) SetControl(on bool) { b.control = on }

// Add appends a record. r.Offset is ignored: the record's offsetDelta is
// its index. r.Timestamp is absolute milliseconds; the first record's
// becomes the batch's base timestamp. Key, Value and headers are copied.
func (b *Builder) Add(r Record) {
	if b.count == 0 {
		b.baseTimestamp, b.maxTimestamp = r.Timestamp, r.Timestamp
	}
	b.maxTimestamp = max(b.maxTimestamp, r.Timestamp)
	b.records = appendRecord(b.records, &r, r.Timestamp-b.baseTimestamp, b.count)
	b.count++
}

// Len returns the number of records added.
func (b *Builder) Len() int { return int(b.count) }

// Size returns the encoded size of the batch so far, header included,
// before compression: what a producer compares with its batch limit.
func (b *Builder) Size() int { return HeaderLen + len(b.records) }

// Build appends one batch holding the records added to dst: base offset
// 0 and partition leader epoch -1 (both the broker's to set), magic 2,
// CRC filled in. It fails with ErrEmpty if no record was added, ErrCodec
// for an unknown codec and ErrTooLarge if the batch passes 2 GiB. The
// Builder keeps its records; call Reset to start the next batch.
func (b *Builder) Build(dst []byte) ([]byte, error) {
	if b.count == 0 {
		return dst, fmt.Errorf("%w: build", ErrEmpty)
	}
	start := len(dst)
	dst = append(dst, make([]byte, HeaderLen)...)
	var err error
	if dst, err = Compress(dst, b.records, b.codec); err != nil {
		return dst[:start], err
	}
	length := len(dst) - start - lengthFieldEnd
	if length > math.MaxInt32 {
		return dst[:start], fmt.Errorf("%w: batch of %d bytes", ErrTooLarge, len(dst)-start)
	}
	id, epoch, seq := int64(-1), int16(-1), int32(-1)
	if b.producerSet {
		id, epoch, seq = b.producerID, b.producerEpoch, b.baseSequence
	}
	h := dst[start:]
	be := binary.BigEndian
	be.PutUint64(h[offBaseOffset:], 0)
	be.PutUint32(h[offLength:], uint32(length))
	be.PutUint32(h[offLeaderEpoch:], math.MaxUint32) // -1
	h[offMagic] = Magic
	attrs := Attributes(b.codec) & codecMask
	if b.transactional {
		attrs |= attrTransactional
	}
	if b.control {
		attrs |= attrControl
	}
	be.PutUint16(h[offAttributes:], uint16(attrs))
	be.PutUint32(h[offLastOffsetDelta:], uint32(b.count-1))
	be.PutUint64(h[offBaseTimestamp:], uint64(b.baseTimestamp))
	be.PutUint64(h[offMaxTimestamp:], uint64(b.maxTimestamp))
	be.PutUint64(h[offProducerID:], uint64(id))
	be.PutUint16(h[offProducerEpoch:], uint16(epoch))
	be.PutUint32(h[offBaseSequence:], uint32(seq))
	be.PutUint32(h[offRecordCount:], uint32(b.count))
	be.PutUint32(h[offCRC:], Checksum(h))
	return dst, nil
}
