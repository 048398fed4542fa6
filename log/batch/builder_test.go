package batch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBuilderZeroValue(t *testing.T) {
	var b Builder
	_, err := b.Build(nil)
	require.ErrorIs(t, err, ErrEmpty)
	require.Equal(t, 0, b.Len())
	require.Equal(t, HeaderLen, b.Size())

	b.Add(Record{Timestamp: 5, Value: []byte("v")})
	out, err := b.Build([]byte("prefix"))
	require.NoError(t, err)
	require.Equal(t, "prefix", string(out[:6]), "Build appends")
	h, err := Validate(out[6:])
	require.NoError(t, err)
	require.Equal(t, int64(-1), h.ProducerID)
	require.Equal(t, int16(-1), h.ProducerEpoch)
	require.Equal(t, int32(-1), h.BaseSequence)
	require.False(t, h.Idempotent())
	require.Equal(t, CodecNone, h.Attributes.Codec())
	require.Equal(t, b.Size(), len(out)-6, "uncompressed Size is the built size")
}

func TestBuilderSettingsSurviveReset(t *testing.T) {
	var b Builder
	b.SetCodec(CodecZstd)
	b.SetProducer(42, 3, 1000)
	b.Add(Record{Timestamp: 1, Value: []byte("first batch")})
	first, err := b.Build(nil)
	require.NoError(t, err)

	b.Reset()
	require.Equal(t, 0, b.Len())
	_, err = b.Build(nil)
	require.ErrorIs(t, err, ErrEmpty)

	recs := []Record{
		{Timestamp: 100, Value: []byte("a")},
		{Timestamp: 90, Value: []byte("b")},
		{Timestamp: 120, Value: []byte("c")},
	}
	for _, r := range recs {
		b.Add(r)
	}
	require.Equal(t, 3, b.Len())
	second, err := b.Build(nil)
	require.NoError(t, err)

	for _, raw := range [][]byte{first, second} {
		h, err := ValidateRecords(raw, 0)
		require.NoError(t, err)
		require.Equal(t, CodecZstd, h.Attributes.Codec())
		require.Equal(t, int64(42), h.ProducerID)
		require.Equal(t, int16(3), h.ProducerEpoch)
		require.Equal(t, int32(1000), h.BaseSequence)
	}
	h, err := Validate(second)
	require.NoError(t, err)
	require.Equal(t, int64(100), h.BaseTimestamp, "base is the first record's timestamp")
	require.Equal(t, int64(120), h.MaxTimestamp)
	require.Equal(t, int32(1002), h.LastSequence())
	got, err := collect(NewIterator(second))
	require.NoError(t, err)
	require.Equal(t, withOffsets(recs, 0), got)
}

func TestBuilderCopiesRecords(t *testing.T) {
	var b Builder
	key, val, hk := []byte("key"), []byte("value"), []byte("hk")
	b.Add(Record{Key: key, Value: val, Headers: []RecordHeader{{Key: hk, Value: val}}})
	key[0], val[0], hk[0] = 'X', 'X', 'X'
	out, err := b.Build(nil)
	require.NoError(t, err)
	it := NewIterator(out)
	require.True(t, it.Next())
	require.Equal(t, "key", string(it.Record().Key))
	require.Equal(t, "value", string(it.Record().Value))
	require.Equal(t, "hk", string(it.Record().Headers[0].Key))
}

func TestBuilderUnknownCodec(t *testing.T) {
	var b Builder
	b.SetCodec(6)
	b.Add(Record{Value: []byte("v")})
	out, err := b.Build([]byte("x"))
	require.ErrorIs(t, err, ErrCodec)
	require.Equal(t, "x", string(out), "dst is returned unchanged on error")
}

func TestBuilderTransactional(t *testing.T) {
	var b Builder
	b.SetProducer(7, 2, 10)
	b.SetTransactional(true)
	b.Add(Record{Value: []byte("v"), Timestamp: 1})
	out, err := b.Build(nil)
	require.NoError(t, err)
	h, err := Validate(out)
	require.NoError(t, err)
	require.True(t, h.Attributes.Transactional())
	require.False(t, h.Attributes.Control())
	require.Equal(t, int64(7), h.ProducerID)

	b.Reset()
	b.SetTransactional(false)
	b.Add(Record{Value: []byte("v"), Timestamp: 1})
	out, err = b.Build(nil)
	require.NoError(t, err)
	h, err = Validate(out)
	require.NoError(t, err)
	require.False(t, h.Attributes.Transactional())
}

func TestBuilderControl(t *testing.T) {
	var b Builder
	b.SetProducer(7, 2, -1)
	b.SetTransactional(true)
	b.SetControl(true)
	b.Add(Record{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 5}, Timestamp: 1})
	out, err := b.Build(nil)
	require.NoError(t, err)
	h, err := Validate(out)
	require.NoError(t, err)
	require.True(t, h.Attributes.Transactional())
	require.True(t, h.Attributes.Control())
	require.Equal(t, int32(-1), h.BaseSequence)
}
