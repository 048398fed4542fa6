package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
)

func TestCompressRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty":        {},
		"short":        []byte("hello"),
		"compressible": bytes.Repeat([]byte("samsa "), 50_000),
		"several lz4 blocks": func() []byte {
			b := make([]byte, 300<<10)
			for i := range b {
				b[i] = byte(i * 7 % 251)
			}
			return b
		}(),
	}
	for _, c := range codecs {
		for name, in := range inputs {
			t.Run(fmt.Sprintf("%s/%s", c, name), func(t *testing.T) {
				prefix := []byte("prefix")
				comp, err := Compress(bytes.Clone(prefix), in, c)
				require.NoError(t, err)
				require.Equal(t, prefix, comp[:len(prefix)], "Compress appends")

				out, err := Decompress(bytes.Clone(prefix), comp[len(prefix):], c, len(in))
				require.NoError(t, err)
				require.Equal(t, prefix, out[:len(prefix)], "Decompress appends")
				require.Equal(t, in, out[len(prefix):])

				// With room after the prefix, output lands in place.
				roomy := append(make([]byte, 0, len(prefix)+len(in)+64), prefix...)
				out, err = Decompress(roomy, comp[len(prefix):], c, len(in))
				require.NoError(t, err)
				require.Equal(t, append(bytes.Clone(prefix), in...), out)

				if len(in) > 0 {
					out, err = Decompress(prefix, comp[len(prefix):], c, len(in)-1)
					require.ErrorIs(t, err, ErrTooLarge)
					require.Equal(t, prefix, out, "dst is returned unchanged on error")
				}
			})
		}
	}
}

func TestUnknownCodec(t *testing.T) {
	for _, c := range []Codec{5, 6, 7, -1} {
		_, err := Compress(nil, []byte("x"), c)
		require.ErrorIs(t, err, ErrCodec)
		_, err = Decompress(nil, []byte("x"), c, 0)
		require.ErrorIs(t, err, ErrCodec)
	}
}

// xerialFrame frames raw snappy blocks the way the Java client does.
func xerialFrame(blocks ...[]byte) []byte {
	b := []byte(xerialMagic)
	b = binary.BigEndian.AppendUint32(b, 1) // version
	b = binary.BigEndian.AppendUint32(b, 1) // compatible version
	for _, blk := range blocks {
		b = binary.BigEndian.AppendUint32(b, uint32(len(blk)))
		b = append(b, blk...)
	}
	return b
}

func TestXerialSnappy(t *testing.T) {
	part1 := bytes.Repeat([]byte("first block "), 3000)
	part2 := []byte("second block")
	framed := xerialFrame(s2.EncodeSnappy(nil, part1), s2.EncodeSnappy(nil, part2))

	out, err := Decompress(nil, framed, CodecSnappy, 0)
	require.NoError(t, err)
	require.Equal(t, append(bytes.Clone(part1), part2...), out)

	empty, err := Decompress(nil, xerialFrame(), CodecSnappy, 0)
	require.NoError(t, err)
	require.Empty(t, empty)

	// The bound covers all blocks together.
	_, err = Decompress(nil, framed, CodecSnappy, len(part1)+len(part2)-1)
	require.ErrorIs(t, err, ErrTooLarge)

	bad := map[string][]byte{
		"header cut":         framed[:12],
		"block length cut":   framed[:xerialHeaderLen+2],
		"block overruns":     framed[:len(framed)-1],
		"block not snappy":   xerialFrame([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"block length huge":  append(xerialFrame(), 0xff, 0xff, 0xff, 0xff, 1, 2),
		"raw snappy garbage": {0x05, 0xff},
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := Decompress(nil, in, CodecSnappy, 0)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

// TestDecompressionBombs checks that every codec stops at max rather than
// decoding what a small input claims.
func TestDecompressionBombs(t *testing.T) {
	const max = 1 << 20
	zeros := make([]byte, 16<<20)
	for _, c := range codecs[1:] {
		t.Run(c.String(), func(t *testing.T) {
			bomb, err := Compress(nil, zeros, c)
			require.NoError(t, err)
			require.Less(t, len(bomb), max, "a bomb is small")
			_, err = Decompress(nil, bomb, c, max)
			require.ErrorIs(t, err, ErrTooLarge)
		})
	}
	t.Run("zstd without content size", func(t *testing.T) {
		var buf bytes.Buffer
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		require.NoError(t, err)
		_, err = w.Write(zeros)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		_, err = Decompress(nil, buf.Bytes(), CodecZstd, max)
		require.ErrorIs(t, err, ErrTooLarge)
		out, err := Decompress(nil, buf.Bytes(), CodecZstd, len(zeros))
		require.NoError(t, err)
		require.Equal(t, len(zeros), len(out))
	})
	t.Run("snappy block claiming more than it can hold", func(t *testing.T) {
		claim := binary.AppendUvarint(nil, 1<<30)
		_, err := Decompress(nil, claim, CodecSnappy, 0)
		require.ErrorIs(t, err, ErrCorrupt)
		_, err = Decompress(nil, xerialFrame(claim), CodecSnappy, 0)
		require.ErrorIs(t, err, ErrCorrupt)
	})
}

func TestDecompressGarbage(t *testing.T) {
	garbage := [][]byte{nil, {0}, []byte("definitely not compressed data, of any kind")}
	for _, c := range codecs[1:] {
		for i, in := range garbage {
			t.Run(fmt.Sprintf("%s/%d", c, i), func(t *testing.T) {
				out, err := Decompress(nil, in, c, 1<<20)
				// Some codecs read an empty input as an empty stream.
				if err == nil {
					require.Empty(t, out)
					return
				}
				require.ErrorIs(t, err, ErrCorrupt)
			})
		}
	}
}

// TestDecompressorReconfigures checks that a pooled zstd decoder follows
// the max of each call.
func TestDecompressorReconfigures(t *testing.T) {
	in := make([]byte, 100_000)
	comp, err := Compress(nil, in, CodecZstd)
	require.NoError(t, err)
	for range 3 {
		_, err = Decompress(nil, comp, CodecZstd, 1000)
		require.ErrorIs(t, err, ErrTooLarge)
		out, err := Decompress(nil, comp, CodecZstd, len(in))
		require.NoError(t, err)
		require.Len(t, out, len(in))
	}
}
