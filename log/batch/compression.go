package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DefaultMaxDecompressed bounds the decompressed records of one batch when
// the caller gives no bound: large enough for Kafka's default 1 MiB batches
// at any realistic ratio, small enough that a decompression bomb cannot
// take the broker's memory.
const DefaultMaxDecompressed = 64 << 20

// xerialMagic starts snappy data framed the way the Java client's
// SnappyOutputStream writes it; a raw snappy block cannot start this way.
const xerialMagic = "\x82SNAPPY\x00"

// xerialHeaderLen is the magic plus the int32 version and compat version.
const xerialHeaderLen = len(xerialMagic) + 8

// Decompress appends the decompression of src, compressed with c, to dst.
// It fails with ErrTooLarge as soon as the output would pass max bytes
// (max <= 0 means DefaultMaxDecompressed), with ErrCorrupt if src does not
// decode and with ErrCodec for a codec it does not know. On error it
// returns dst unchanged in length.
func Decompress(dst, src []byte, c Codec, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxDecompressed
	}
	switch c {
	case CodecNone:
		if len(src) > max {
			return dst, fmt.Errorf("%w: %d bytes, max %d", ErrTooLarge, len(src), max)
		}
		return append(dst, src...), nil
	case CodecGzip:
		return decompressGzip(dst, src, max)
	case CodecSnappy:
		if len(src) >= len(xerialMagic) && string(src[:len(xerialMagic)]) == xerialMagic {
			return decompressXerial(dst, src, max)
		}
		return decompressSnappy(dst, src, max)
	case CodecLZ4:
		return decompressLZ4(dst, src, max)
	case CodecZstd:
		return decompressZstd(dst, src, max)
	}
	return dst, fmt.Errorf("%w: %d", ErrCodec, c)
}

// Compress appends src compressed with c to dst. Snappy is written as one
// raw block, which every Kafka client reads; LZ4 as a frame, as Kafka
// requires.
func Compress(dst, src []byte, c Codec) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		return compressGzip(dst, src)
	case CodecSnappy:
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, fmt.Errorf("%w: %d bytes for snappy", ErrTooLarge, len(src))
		}
		start := len(dst)
		dst = grow(dst, n)
		// Given enough capacity, EncodeSnappy writes in place.
		out := s2.EncodeSnappy(dst[start:start+n], src)
		return dst[:start+len(out)], nil
	case CodecLZ4:
		return compressLZ4(dst, src)
	case CodecZstd:
		z, _ := zstdEncoders.Get().(*zstd.Encoder)
		if z == nil {
			var err error
			z, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1),
				zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true))
			if err != nil {
				return dst, fmt.Errorf("%w: zstd: %v", ErrCodec, err)
			}
		}
		dst = z.EncodeAll(src, dst)
		zstdEncoders.Put(z)
		return dst, nil
	}
	return dst, fmt.Errorf("%w: %d", ErrCodec, c)
}

// grow returns dst with room for n more bytes, its length unchanged.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	nd := make([]byte, len(dst), len(dst)+n)
	copy(nd, dst)
	return nd
}

// corrupt wraps a codec's own error as ErrCorrupt.
func corrupt(codec string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrCorrupt, codec, err)
}

// readLimited appends everything r yields to dst, failing with
// ErrTooLarge once more than maxLen bytes arrive. It reads at most
// maxLen+1 bytes, so a bomb costs no more memory than a legitimate batch
// at the limit.
func readLimited(dst []byte, r io.Reader, maxLen int, codec string) ([]byte, error) {
	start := len(dst)
	limit := math.MaxInt
	if maxLen < math.MaxInt-start {
		limit = start + maxLen + 1
	}
	for empty := 0; ; {
		if len(dst) >= limit {
			return dst[:start], fmt.Errorf("%w: %s decompresses past %d bytes", ErrTooLarge, codec, maxLen)
		}
		if len(dst) == cap(dst) {
			n := min(max(cap(dst)-start, 4<<10), limit-len(dst))
			dst = grow(dst, n)
		}
		k, err := r.Read(dst[len(dst):min(cap(dst), limit)])
		dst = dst[:len(dst)+k]
		if k == 0 && err == nil {
			// A reader that never progresses would spin forever.
			if empty++; empty == 100 {
				err = io.ErrNoProgress
			}
		} else {
			empty = 0
		}
		if err == io.EOF {
			if len(dst) >= limit {
				continue // reported at the top of the loop
			}
			return dst, nil
		}
		if err != nil {
			return dst[:start], corrupt(codec, err)
		}
	}
}

// gzipReader is a pooled gzip decoder with the reader it reads from, so
// that decoding a batch allocates neither.
type gzipReader struct {
	src bytes.Reader
	zr  gzip.Reader
}

// appendWriter lets a streaming compressor write straight into a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// gzipWriter is a pooled gzip encoder with its output.
type gzipWriter struct {
	out appendWriter
	zw  *gzip.Writer
}

// lz4Reader and lz4Writer are the pooled LZ4 frame codecs.
type lz4Reader struct {
	src bytes.Reader
	zr  *lz4.Reader
}

type lz4Writer struct {
	out appendWriter
	zw  *lz4.Writer
}

// zstdDecoder is a pooled zstd decoder and the output bound it was last
// configured with; reconfiguring allocates, so it is done only on change.
type zstdDecoder struct {
	d     *zstd.Decoder
	limit int
}

// Codec pools. Every entry is used by one goroutine at a time, so each
// codec runs single-threaded and a busy broker holds one per concurrent
// batch rather than one per batch.
var (
	gzipReaders  sync.Pool // *gzipReader
	gzipWriters  sync.Pool // *gzipWriter
	lz4Readers   sync.Pool // *lz4Reader
	lz4Writers   sync.Pool // *lz4Writer
	zstdDecoders sync.Pool // *zstdDecoder
	zstdEncoders sync.Pool // *zstd.Encoder
)

func decompressGzip(dst, src []byte, maxLen int) ([]byte, error) {
	g, _ := gzipReaders.Get().(*gzipReader)
	if g == nil {
		g = new(gzipReader)
	}
	defer func() {
		g.src.Reset(nil)
		gzipReaders.Put(g)
	}()
	g.src.Reset(src)
	if err := g.zr.Reset(&g.src); err != nil {
		return dst, corrupt("gzip", err)
	}
	return readLimited(dst, &g.zr, maxLen, "gzip")
}

func compressGzip(dst, src []byte) ([]byte, error) {
	g, _ := gzipWriters.Get().(*gzipWriter)
	if g == nil {
		g = new(gzipWriter)
		g.zw = gzip.NewWriter(&g.out)
	}
	defer func() {
		g.out.b = nil
		gzipWriters.Put(g)
	}()
	g.out.b = dst
	g.zw.Reset(&g.out)
	if _, err := g.zw.Write(src); err != nil {
		return dst, fmt.Errorf("%w: gzip: %v", ErrCodec, err)
	}
	if err := g.zw.Close(); err != nil {
		return dst, fmt.Errorf("%w: gzip: %v", ErrCodec, err)
	}
	return g.out.b, nil
}

func decompressLZ4(dst, src []byte, maxLen int) ([]byte, error) {
	l, _ := lz4Readers.Get().(*lz4Reader)
	if l == nil {
		l = &lz4Reader{zr: lz4.NewReader(nil)}
	}
	defer func() {
		l.src.Reset(nil)
		l.zr.Reset(nil)
		lz4Readers.Put(l)
	}()
	l.src.Reset(src)
	l.zr.Reset(&l.src)
	return readLimited(dst, l.zr, maxLen, "lz4")
}

func compressLZ4(dst, src []byte) ([]byte, error) {
	l, _ := lz4Writers.Get().(*lz4Writer)
	if l == nil {
		l = &lz4Writer{zw: lz4.NewWriter(nil)}
		// 64 KiB blocks, as the Java producer writes: a pooled writer
		// holds one block, and every reader accepts them.
		if err := l.zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			return dst, fmt.Errorf("%w: lz4: %v", ErrCodec, err)
		}
	}
	defer func() {
		l.out.b = nil
		l.zw.Reset(nil)
		lz4Writers.Put(l)
	}()
	l.out.b = dst
	l.zw.Reset(&l.out)
	if _, err := l.zw.Write(src); err != nil {
		return dst, fmt.Errorf("%w: lz4: %v", ErrCodec, err)
	}
	if err := l.zw.Close(); err != nil {
		return dst, fmt.Errorf("%w: lz4: %v", ErrCodec, err)
	}
	return l.out.b, nil
}

// decompressZstd uses DecodeAll, which checks a frame's declared content
// size against the decoder's bound before allocating and the running
// output after every block, so maxLen bounds the memory as well as the
// result. The decoder's bound is at least zstd's minimum window, below
// which it refuses every frame; the output is checked against maxLen
// here. A frame declaring a window larger than the bound is refused as too
// large, since a streaming decoder would need that much memory.
func decompressZstd(dst, src []byte, maxLen int) ([]byte, error) {
	limit := max(maxLen, zstd.MinWindowSize)
	z, _ := zstdDecoders.Get().(*zstdDecoder)
	if z == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return dst, fmt.Errorf("%w: zstd: %v", ErrCodec, err)
		}
		z = &zstdDecoder{d: d, limit: limit}
	} else if z.limit != limit {
		if err := z.d.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(uint64(limit))); err != nil {
			return dst, fmt.Errorf("%w: zstd: %v", ErrCodec, err)
		}
		z.limit = limit
	}
	defer zstdDecoders.Put(z)
	// The decoder counts dst's length against its bound, so it is given
	// only the free tail of dst; it decodes in place when that has room.
	start := len(dst)
	tail := dst[start:]
	out, err := z.d.DecodeAll(src, tail)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst, fmt.Errorf("%w: zstd decompresses past %d bytes: %v", ErrTooLarge, maxLen, err)
	case err != nil:
		return dst, corrupt("zstd", err)
	case len(out) > maxLen:
		return dst, fmt.Errorf("%w: zstd decompresses to %d bytes, max %d", ErrTooLarge, len(out), maxLen)
	case start == 0:
		return out, nil
	case cap(tail) > 0 && len(out) > 0 && &out[0] == &tail[:1][0]:
		return dst[:start+len(out)], nil
	}
	return append(dst, out...), nil
}

// snappyMaxRatio bounds how far a snappy block expands: its densest
// element is a 3-byte copy of 64 bytes.
const snappyMaxRatio = 22

// decompressSnappy decodes one raw snappy block, whose decoded length is
// its first varint: that claim is checked against the block's size and
// maxLen before the output is allocated.
func decompressSnappy(dst, src []byte, maxLen int) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return dst, corrupt("snappy", err)
	}
	if n > len(src)*snappyMaxRatio {
		return dst, fmt.Errorf("%w: snappy block of %d bytes claims %d", ErrCorrupt, len(src), n)
	}
	if n > maxLen {
		return dst, fmt.Errorf("%w: snappy block decodes to %d bytes, max %d", ErrTooLarge, n, maxLen)
	}
	start := len(dst)
	dst = grow(dst, n)
	// Given a slice with room for n bytes, Decode writes in place.
	if _, err := s2.Decode(dst[start:start+n], src); err != nil {
		return dst[:start], corrupt("snappy", err)
	}
	return dst[:start+n], nil
}

// decompressXerial decodes the Java client's framing: the magic, two
// int32 versions (ignored, as the Java reader does for compatible
// versions), then blocks of [int32 big-endian length][raw snappy block].
func decompressXerial(dst, src []byte, maxLen int) ([]byte, error) {
	if len(src) < xerialHeaderLen {
		return dst, fmt.Errorf("%w: xerial snappy: %d bytes, header needs %d", ErrCorrupt, len(src), xerialHeaderLen)
	}
	start := len(dst)
	for rest := src[xerialHeaderLen:]; len(rest) > 0; {
		if len(rest) < 4 {
			return dst[:start], fmt.Errorf("%w: xerial snappy: %d bytes left, need 4 for a block length", ErrCorrupt, len(rest))
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return dst[:start], fmt.Errorf("%w: xerial snappy: block of %d bytes, %d left", ErrCorrupt, n, len(rest))
		}
		var err error
		if dst, err = decompressSnappy(dst, rest[:n], maxLen-(len(dst)-start)); err != nil {
			return dst[:start], err
		}
		rest = rest[n:]
	}
	return dst, nil
}
