package batch

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeaderHelpers(t *testing.T) {
	h := Header{BaseOffset: 100, LastOffsetDelta: 4, BaseSequence: math.MaxInt32 - 1, ProducerID: 7, Length: 61}
	require.Equal(t, int64(104), h.LastOffset())
	require.Equal(t, int64(105), h.NextOffset())
	require.Equal(t, int32(2), h.LastSequence(), "sequences wrap from MaxInt32 to 0")
	require.True(t, h.Idempotent())
	require.Equal(t, 73, h.Size())

	tests := []struct {
		seq, n, want int32
	}{
		{0, 0, 0},
		{5, 3, 8},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32, math.MaxInt32, math.MaxInt32 - 1},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, AddSequence(tt.seq, tt.n), "AddSequence(%d, %d)", tt.seq, tt.n)
	}

	a := Attributes(0x3c) | Attributes(CodecZstd)
	require.Equal(t, CodecZstd, a.Codec())
	require.True(t, a.LogAppendTime())
	require.True(t, a.Transactional())
	require.True(t, a.Control())
	require.False(t, Attributes(0).Control())
	require.Equal(t, "codec(6)", Codec(6).String())
}

func TestPeekSize(t *testing.T) {
	b := buildBatch(t, CodecNone, sampleRecords()[:1])
	n, err := PeekSize(b[:lengthFieldEnd])
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	_, err = PeekSize(b[:lengthFieldEnd-1])
	require.ErrorIs(t, err, ErrCorrupt)
	binary.BigEndian.PutUint32(b[offLength:], HeaderLen-lengthFieldEnd-1)
	_, err = PeekSize(b)
	require.ErrorIs(t, err, ErrCorrupt)
}
