package batch

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// codecs is every codec Kafka defines.
var codecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// sampleRecords covers null and empty keys and values, headers with null
// and empty values, a negative timestamp delta and fields long enough to
// need multi-byte varints.
func sampleRecords() []Record {
	const t0 = 1_700_000_000_000
	return []Record{
		{Timestamp: t0, Key: []byte("k0"), Value: []byte("v0")},
		{Timestamp: t0 + 5, Key: nil, Value: []byte("null key")},
		{Timestamp: t0 - 10, Key: []byte("null value, earlier than the base"), Value: nil},
		{Timestamp: t0 + 1, Key: []byte{}, Value: []byte{}},
		{Timestamp: t0 + 2, Key: []byte("h"), Value: bytes.Repeat([]byte("x"), 300), Headers: []RecordHeader{
			{Key: []byte("a"), Value: []byte("1")},
			{Key: []byte("null"), Value: nil},
			{Key: []byte("empty"), Value: []byte{}},
		}},
		{Timestamp: t0 + 100_000, Key: bytes.Repeat([]byte("k"), 20_000), Value: bytes.Repeat([]byte("0123456789"), 3_000)},
	}
}

// buildBatch builds recs with codec c.
func buildBatch(t testing.TB, c Codec, recs []Record) []byte {
	t.Helper()
	var b Builder
	b.SetCodec(c)
	for _, r := range recs {
		b.Add(r)
	}
	out, err := b.Build(nil)
	require.NoError(t, err)
	return out
}

// withOffsets returns recs with offsets base, base+1, ...
func withOffsets(recs []Record, base int64) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Offset = base + int64(i)
		out[i] = r
	}
	return out
}

// cloneRecord deep-copies r, keeping nil apart from empty.
func cloneRecord(r *Record) Record {
	c := Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, RecordHeader{Key: bytes.Clone(h.Key), Value: bytes.Clone(h.Value)})
	}
	return c
}

// collect iterates to the end, returning copies of the records and Err.
func collect(it *Iterator) ([]Record, error) {
	var out []Record
	for it.Next() {
		out = append(out, cloneRecord(it.Record()))
	}
	return out, it.Err()
}

// encodeRecords encodes recs with explicit deltas, as a producer might.
func encodeRecords(recs []Record, deltas []int32, base int64) []byte {
	var out []byte
	for i := range recs {
		out = appendRecord(out, &recs[i], recs[i].Timestamp-base, deltas[i])
	}
	return out
}

// rawBatch frames a records region (already compressed if c says so) with
// a header claiming count records, then fixes the length and CRC.
func rawBatch(c Codec, count int32, baseTimestamp int64, records []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(records))
	be := binary.BigEndian
	be.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = Magic
	be.PutUint16(b[offAttributes:], uint16(c))
	be.PutUint32(b[offLastOffsetDelta:], uint32(count-1))
	be.PutUint64(b[offBaseTimestamp:], uint64(baseTimestamp))
	be.PutUint64(b[offMaxTimestamp:], uint64(baseTimestamp))
	be.PutUint64(b[offProducerID:], 0xffffffffffffffff)
	be.PutUint16(b[offProducerEpoch:], 0xffff)
	be.PutUint32(b[offBaseSequence:], 0xffffffff)
	be.PutUint32(b[offRecordCount:], uint32(count))
	return fixup(append(b, records...))
}

// fixup rewrites b's length field to match len(b) and its CRC to match
// its bytes, so that a test's corruption is the only thing wrong with it.
func fixup(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-lengthFieldEnd))
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b))
	return b
}
