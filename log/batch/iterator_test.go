package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	recs := sampleRecords()
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			b := buildBatch(t, c, recs)

			h, err := Validate(b)
			require.NoError(t, err)
			require.Equal(t, Header{
				BaseOffset:      0,
				Length:          int32(len(b) - lengthFieldEnd),
				LeaderEpoch:     -1,
				Magic:           Magic,
				CRC:             Checksum(b),
				Attributes:      Attributes(c),
				LastOffsetDelta: int32(len(recs) - 1),
				BaseTimestamp:   recs[0].Timestamp,
				MaxTimestamp:    recs[5].Timestamp,
				ProducerID:      -1,
				ProducerEpoch:   -1,
				BaseSequence:    -1,
				RecordCount:     int32(len(recs)),
			}, h)
			vh, err := ValidateRecords(b, 0)
			require.NoError(t, err)
			require.Equal(t, h, vh)

			// The broker assigns offsets outside the CRC.
			SetBaseOffset(b, 1000)
			SetLeaderEpoch(b, 7)
			_, err = ValidateRecords(b, 0)
			require.NoError(t, err)
			it := NewIterator(b)
			got, err := collect(it)
			require.NoError(t, err)
			require.Equal(t, withOffsets(recs, 1000), got)
			require.Equal(t, int64(1000), it.Batch().BaseOffset)
			require.Equal(t, int32(7), it.Batch().LeaderEpoch)
		})
	}
}

func TestLogAppendTime(t *testing.T) {
	recs := sampleRecords()
	const appendTime = 1_800_000_000_000
	for _, c := range codecs {
		t.Run(c.String(), func(t *testing.T) {
			b := buildBatch(t, c, recs)
			// The header is patched in a separate copy, as the broker
			// does without touching the records.
			head := bytes.Clone(b[:HeaderLen])
			SetLogAppendTime(head, b[HeaderLen:], appendTime)
			b = append(head, b[HeaderLen:]...)

			h, err := Validate(b)
			require.NoError(t, err)
			require.True(t, h.Attributes.LogAppendTime())
			require.Equal(t, c, h.Attributes.Codec())
			require.Equal(t, int64(appendTime), h.MaxTimestamp)
			_, err = ValidateRecords(b, 0)
			require.NoError(t, err)

			it := NewIterator(b)
			n := 0
			for it.Next() {
				require.Equal(t, int64(appendTime), it.Record().Timestamp)
				require.Equal(t, recs[n].Value, it.Record().Value)
				n++
			}
			require.NoError(t, it.Err())
			require.Equal(t, len(recs), n)
		})
	}
}

func TestIteratorCrossesBatches(t *testing.T) {
	recs := sampleRecords()
	var all []byte
	var want []Record
	var next int64
	for _, c := range codecs {
		b := buildBatch(t, c, recs)
		SetBaseOffset(b, next)
		all = append(all, b...)
		want = append(want, withOffsets(recs, next)...)
		next += int64(len(recs)) + 3 // gaps between batches are allowed
	}
	var it Iterator
	for range 2 { // a Reset iterator behaves like a new one
		it.Reset(all)
		var codecsSeen []Codec
		var got []Record
		for it.Next() {
			if c := it.Batch().Attributes.Codec(); len(codecsSeen) == 0 || codecsSeen[len(codecsSeen)-1] != c {
				codecsSeen = append(codecsSeen, c)
			}
			got = append(got, cloneRecord(it.Record()))
		}
		require.NoError(t, it.Err())
		require.Equal(t, want, got)
		require.Equal(t, codecs, codecsSeen)
	}
	require.False(t, NewIterator(nil).Next())
	require.NoError(t, NewIterator(nil).Err())
}

func TestIteratorPartialTrailingBatch(t *testing.T) {
	first := buildBatch(t, CodecNone, sampleRecords())
	second := buildBatch(t, CodecLZ4, sampleRecords())
	for _, cut := range []int{1, 8, 11, 12, 16, 17, 20, HeaderLen - 1, HeaderLen, HeaderLen + 1, len(second) / 2, len(second) - 1} {
		t.Run(fmt.Sprintf("cut at %d", cut), func(t *testing.T) {
			in := append(bytes.Clone(first), second[:cut]...)
			got, err := collect(NewIterator(in))
			require.NoError(t, err)
			require.Len(t, got, len(sampleRecords()))
		})
	}
}

func TestIteratorGarbageTrailingHeader(t *testing.T) {
	first := buildBatch(t, CodecNone, sampleRecords())
	tests := []struct {
		name  string
		trail []byte
		want  error
	}{
		{"length below header", binary.BigEndian.AppendUint32(make([]byte, 8), 10), ErrCorrupt},
		{"negative length", binary.BigEndian.AppendUint32(make([]byte, 8), 0xffffff00), ErrCorrupt},
		{"magic 1 in a partial batch", append(binary.BigEndian.AppendUint32(make([]byte, 8), 1000), 0, 0, 0, 0, 1), ErrMagic},
		{"zeros", make([]byte, 100), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(NewIterator(append(bytes.Clone(first), tt.trail...)))
			require.ErrorIs(t, err, tt.want)
			require.Len(t, got, len(sampleRecords()), "records before the garbage are still returned")
			require.Contains(t, err.Error(), fmt.Sprintf("byte %d", len(first)))
		})
	}
}

// TestBadInput runs every entry point on malformed batches. Each case
// names the sentinel Validate, ValidateRecords and the Iterator return
// (nil where that check cannot see the problem).
func TestBadInput(t *testing.T) {
	recs := sampleRecords()[:3]
	valid := buildBatch(t, CodecNone, recs)
	deltas := func(d ...int32) []int32 { return d }
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	gzipped := func(records []byte) []byte {
		c, err := Compress(nil, records, CodecGzip)
		require.NoError(t, err)
		return c
	}
	bomb := gzipped(make([]byte, 4<<20))
	tooShortLen := binary.AppendVarint(nil, 5) // a record claiming 5 bytes
	tooShortLen = append(tooShortLen, 0, 0, 0, 1, 1)

	tests := []struct {
		name                   string
		in                     []byte
		validate, records, itr error
		itrRecords             int // records the iterator yields before stopping
	}{
		{name: "valid", in: valid, itrRecords: 3},
		{name: "empty", in: nil, validate: ErrCorrupt, records: ErrCorrupt},
		{name: "truncated header", in: valid[:30], validate: ErrCorrupt, records: ErrCorrupt},
		{name: "truncated records", in: valid[:len(valid)-1], validate: ErrCorrupt, records: ErrCorrupt},
		{name: "length too big", in: edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)))
			return b
		}), validate: ErrCorrupt, records: ErrCorrupt},
		{name: "length too small", in: edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-lengthFieldEnd-5))
			return b
		}), validate: ErrCorrupt, records: ErrCorrupt, itr: ErrCRC},
		{name: "length below header", in: edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLength:], 20)
			return b
		}), validate: ErrCorrupt, records: ErrCorrupt, itr: ErrCorrupt},
		{name: "wrong magic", in: edit(func(b []byte) []byte { b[offMagic] = 1; return fixup(b) }),
			validate: ErrMagic, records: ErrMagic, itr: ErrMagic},
		{name: "crc flipped", in: edit(func(b []byte) []byte { b[offCRC] ^= 0x80; return b }),
			validate: ErrCRC, records: ErrCRC, itr: ErrCRC},
		{name: "record byte flipped", in: edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
			validate: ErrCRC, records: ErrCRC, itr: ErrCRC},
		{name: "unknown codec 5", in: edit(func(b []byte) []byte { b[offAttributes+1] |= 5; return fixup(b) }),
			validate: ErrCodec, records: ErrCodec, itr: ErrCodec},
		{name: "count disagrees with lastOffsetDelta", in: edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 4)
			return fixup(b)
		}), validate: ErrCorrupt, records: ErrCorrupt, itr: ErrCorrupt},
		{name: "negative count wrapping lastOffsetDelta+1", in: edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], math.MaxInt32)
			binary.BigEndian.PutUint32(b[offRecordCount:], 1<<31)
			return fixup(b)
		}), validate: ErrCorrupt, records: ErrCorrupt, itr: ErrCorrupt},
		{name: "more records claimed than encoded", in: rawBatch(CodecNone, 4, recs[0].Timestamp, valid[HeaderLen:]),
			records: ErrCorrupt, itr: ErrCorrupt, itrRecords: 3},
		{name: "fewer records claimed than encoded", in: rawBatch(CodecNone, 2, recs[0].Timestamp, valid[HeaderLen:]),
			records: ErrCorrupt, itr: ErrCorrupt, itrRecords: 2},
		{name: "record length overruns", in: rawBatch(CodecNone, 3, recs[0].Timestamp,
			append(binary.AppendVarint(nil, 1<<20), valid[HeaderLen+1:]...)),
			records: ErrCorrupt, itr: ErrCorrupt},
		{name: "record length varint unterminated", in: rawBatch(CodecNone, 1, 0, bytes.Repeat([]byte{0xff}, 12)),
			records: ErrCorrupt, itr: ErrCorrupt},
		{name: "record length shorter than its fields", in: rawBatch(CodecNone, 1, 0, tooShortLen),
			records: ErrCorrupt, itr: ErrCorrupt},
		{name: "offsetDeltas out of order", in: rawBatch(CodecNone, 3, recs[0].Timestamp,
			encodeRecords(recs, deltas(1, 0, 2), recs[0].Timestamp)),
			records: ErrCorrupt, itrRecords: 3},
		{name: "offsetDelta repeated", in: rawBatch(CodecNone, 3, recs[0].Timestamp,
			encodeRecords(recs, deltas(0, 1, 1), recs[0].Timestamp)),
			records: ErrCorrupt, itrRecords: 3},
		{name: "trailing garbage after the last record", in: rawBatch(CodecNone, 3, recs[0].Timestamp,
			append(bytes.Clone(valid[HeaderLen:]), 0, 1, 2)),
			records: ErrCorrupt, itr: ErrCorrupt, itrRecords: 3},
		{name: "trailing garbage inside compressed records", in: rawBatch(CodecGzip, 3, recs[0].Timestamp,
			gzipped(append(bytes.Clone(valid[HeaderLen:]), 9))),
			records: ErrCorrupt, itr: ErrCorrupt, itrRecords: 3},
		{name: "gzip garbage", in: rawBatch(CodecGzip, 1, 0, []byte("not gzip at all")),
			records: ErrCorrupt, itr: ErrCorrupt},
		{name: "gzip bomb beyond max", in: rawBatch(CodecGzip, 1, 0, bomb),
			records: ErrTooLarge, itr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Validate(tt.in)
			requireIs(t, tt.validate, err)
			_, err = ValidateRecords(tt.in, 1<<20)
			requireIs(t, tt.records, err)
			it := NewIterator(tt.in)
			it.MaxDecompressed = 1 << 20
			got, err := collect(it)
			requireIs(t, tt.itr, err)
			require.Len(t, got, tt.itrRecords)
			if err != nil {
				require.Contains(t, err.Error(), "batch at offset 0 (byte 0)")
			}
		})
	}
}

func requireIs(t *testing.T, want, err error) {
	t.Helper()
	if want == nil {
		require.NoError(t, err)
		return
	}
	require.ErrorIs(t, err, want)
}

func TestRecordFieldErrors(t *testing.T) {
	// Each body is a record after its length varint; the length is added
	// to match, so the field itself is what fails.
	v := func(vals ...int64) []byte {
		var b []byte
		for _, x := range vals {
			b = binary.AppendVarint(b, x)
		}
		return b
	}
	body := func(parts ...[]byte) []byte { return append([]byte{0}, bytes.Join(parts, nil)...) }
	tests := []struct {
		name string
		body []byte
	}{
		{"key length -2", body(v(0, 0, -2), v(-1, 0))},
		{"key overruns", body(v(0, 0, 50), []byte("short"), v(-1, 0))},
		{"value overruns", body(v(0, 0, -1, 10), []byte("abc"), v(0))},
		{"negative header count", body(v(0, 0, -1, -1, -1))},
		{"header count beyond bytes", body(v(0, 0, -1, -1, 1000), v(0, -1))},
		{"null header key", body(v(0, 0, -1, -1, 1, -1, -1))},
		{"header value overruns", body(v(0, 0, -1, -1, 1, 1), []byte("k"), v(5), []byte("v"))},
		{"offsetDelta beyond int32", body(v(0, math.MaxInt32+1, -1, -1, 0))},
		{"timestampDelta varint overflows", body(bytes.Repeat([]byte{0xff}, 11), v(0, -1, -1, 0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records := append(binary.AppendVarint(nil, int64(len(tt.body))), tt.body...)
			var d recordDecoder
			var r Record
			_, err := d.decode(records, &r, &Header{})
			require.ErrorIs(t, err, ErrCorrupt)
			_, err = ValidateRecords(rawBatch(CodecNone, 1, 0, records), 0)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

func TestNilHeaderKeyEncodesEmpty(t *testing.T) {
	b := buildBatch(t, CodecNone, []Record{{Headers: []RecordHeader{{Key: nil, Value: []byte("v")}}}})
	it := NewIterator(b)
	require.True(t, it.Next())
	require.Equal(t, []RecordHeader{{Key: []byte{}, Value: []byte("v")}}, it.Record().Headers)
}

func TestIteratorDoesNotAllocate(t *testing.T) {
	var bl Builder
	for i := range 100 {
		bl.Add(Record{Timestamp: int64(i), Key: []byte("key"), Value: make([]byte, 100),
			Headers: []RecordHeader{{Key: []byte("trace"), Value: []byte("abc")}, {Key: []byte("n")}}})
	}
	b, err := bl.Build(nil)
	require.NoError(t, err)
	b = append(b, b...) // two batches

	var it Iterator
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		it.Reset(b)
		for it.Next() {
			n += len(it.Record().Headers)
		}
	})
	require.NoError(t, it.Err())
	require.Zero(t, allocs, "uncompressed iteration, headers included, must not allocate")
	require.Positive(t, n)
}
