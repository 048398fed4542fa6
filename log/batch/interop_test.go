package batch

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests check the format against franz-go, a Kafka client written
// independently of this package: its kmsg encoder and decoder for
// batches and records and its kgo codecs.

var kgoCodecs = map[Codec]kgo.CompressionCodec{
	CodecGzip:   kgo.GzipCompression(),
	CodecSnappy: kgo.SnappyCompression(),
	CodecLZ4:    kgo.Lz4Compression(),
	CodecZstd:   kgo.ZstdCompression(),
}

// kmsgRecords encodes recs with kmsg, deltas from base.
func kmsgRecords(recs []Record, base int64) []byte {
	var out []byte
	for i, r := range recs {
		kr := kmsg.Record{TimestampDelta64: r.Timestamp - base, OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: string(h.Key), Value: h.Value})
		}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1) // a zero Length is one byte
		out = kr.AppendTo(out)
	}
	return out
}

// kmsgBatch frames a records payload with kmsg and computes its CRC the
// way the protocol defines it, without this package's Checksum.
func kmsgBatch(rb kmsg.RecordBatch) []byte {
	rb.Magic = 2
	rb.Length = int32(HeaderLen - lengthFieldEnd + len(rb.Records))
	b := rb.AppendTo(nil)
	crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(b[17:], crc)
	return b
}

func TestDecodeKmsgBatch(t *testing.T) {
	recs := sampleRecords()
	base := recs[0].Timestamp
	raw := kmsgRecords(recs, base)
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			payload := raw
			if c != CodecNone {
				comp, err := kgo.DefaultCompressor(kgoCodecs[c])
				require.NoError(t, err)
				var buf bytes.Buffer
				out, used := comp.Compress(&buf, raw)
				require.Equal(t, int8(c), int8(used))
				payload = bytes.Clone(out)
			}
			b := kmsgBatch(kmsg.RecordBatch{
				FirstOffset: 500, PartitionLeaderEpoch: 3, Attributes: int16(c),
				LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: base, MaxTimestamp: recs[5].Timestamp,
				ProducerID: 9, ProducerEpoch: 1, FirstSequence: 77, NumRecords: int32(len(recs)), Records: payload,
			})
			h, err := ValidateRecords(b, 0)
			require.NoError(t, err)
			require.Equal(t, int64(500), h.BaseOffset)
			require.Equal(t, int32(3), h.LeaderEpoch)
			require.Equal(t, int64(9), h.ProducerID)
			require.Equal(t, int32(77), h.BaseSequence)

			got, err := collect(NewIterator(b))
			require.NoError(t, err)
			require.Equal(t, withOffsets(recs, 500), got)
		})
	}
}

func TestKmsgDecodesBuilder(t *testing.T) {
	recs := sampleRecords()
	base := recs[0].Timestamp
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			var bl Builder
			bl.SetCodec(c)
			bl.SetProducer(12, 4, 100)
			for _, r := range recs {
				bl.Add(r)
			}
			b, err := bl.Build(nil)
			require.NoError(t, err)

			var rb kmsg.RecordBatch
			require.NoError(t, rb.ReadFrom(b))
			require.Equal(t, int64(0), rb.FirstOffset)
			require.Equal(t, int32(len(b)-12), rb.Length)
			require.Equal(t, int32(-1), rb.PartitionLeaderEpoch)
			require.Equal(t, int8(2), rb.Magic)
			require.Equal(t, crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)), uint32(rb.CRC))
			require.Equal(t, int16(c), rb.Attributes)
			require.Equal(t, int32(len(recs)-1), rb.LastOffsetDelta)
			require.Equal(t, base, rb.FirstTimestamp)
			require.Equal(t, recs[5].Timestamp, rb.MaxTimestamp)
			require.Equal(t, int64(12), rb.ProducerID)
			require.Equal(t, int16(4), rb.ProducerEpoch)
			require.Equal(t, int32(100), rb.FirstSequence)
			require.Equal(t, int32(len(recs)), rb.NumRecords)

			raw, err := kgo.DefaultDecompressor().Decompress(rb.Records, kgo.CompressionCodecType(c))
			require.NoError(t, err)
			for i, want := range recs {
				length, n := binary.Varint(raw)
				require.Positive(t, n)
				require.LessOrEqual(t, int(length), len(raw)-n)
				var kr kmsg.Record
				require.NoError(t, kr.ReadFrom(raw[:n+int(length)]))
				raw = raw[n+int(length):]

				require.Equal(t, int32(i), kr.OffsetDelta)
				require.Equal(t, want.Timestamp-base, kr.TimestampDelta64)
				require.Equal(t, want.Key == nil, kr.Key == nil, "record %d key nullness", i)
				require.Equal(t, want.Value == nil, kr.Value == nil, "record %d value nullness", i)
				require.True(t, bytes.Equal(want.Key, kr.Key))
				require.True(t, bytes.Equal(want.Value, kr.Value))
				require.Len(t, kr.Headers, len(want.Headers))
				for j, h := range want.Headers {
					require.Equal(t, string(h.Key), kr.Headers[j].Key)
					require.Equal(t, h.Value == nil, kr.Headers[j].Value == nil)
					require.True(t, bytes.Equal(h.Value, kr.Headers[j].Value))
				}
			}
			require.Empty(t, raw, "no bytes after the last record")
		})
	}
}

// TestXerialBatch decodes a batch whose records are framed as the Java
// producer's SnappyOutputStream writes them, in two blocks encoded by
// golang/snappy.
func TestXerialBatch(t *testing.T) {
	recs := sampleRecords()
	base := recs[0].Timestamp
	raw := kmsgRecords(recs, base)
	half := len(raw) / 2
	framed := xerialFrame(snappy.Encode(nil, raw[:half]), snappy.Encode(nil, raw[half:]))
	b := rawBatch(CodecSnappy, int32(len(recs)), base, framed)

	_, err := ValidateRecords(b, 0)
	require.NoError(t, err)
	got, err := collect(NewIterator(b))
	require.NoError(t, err)
	require.Equal(t, withOffsets(recs, 0), got)
}
