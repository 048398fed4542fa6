package segment

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
)

// quiet keeps recovery warnings out of test output; tests assert on state.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// spec describes a test batch: records with timestamps ts, ts+1, ...
type spec struct {
	records int
	ts      int64 // first record's timestamp
	value   int   // bytes per record value
}

// makeBatch builds a valid batch at base whose record values say which
// offset they hold, so reads can be checked byte for byte.
func makeBatch(t testing.TB, base int64, s spec) []byte {
	t.Helper()
	var b batch.Builder
	for i := range s.records {
		v := fmt.Appendf(nil, "offset-%d:", base+int64(i))
		for len(v) < s.value {
			v = append(v, byte('a'+i%26))
		}
		b.Add(batch.Record{Timestamp: s.ts + int64(i), Value: v})
	}
	out, err := b.Build(nil)
	require.NoError(t, err)
	batch.SetBaseOffset(out, base)
	return out
}

func testConfig(c Config) Config {
	c.Logger = quiet
	return c
}

func openLog(t testing.TB, dir string, cfg Config, opts OpenOptions) *Log {
	t.Helper()
	l, err := Open(dir, testConfig(cfg), opts)
	require.NoError(t, err)
	return l
}

// appendBatch appends a batch at the log's end and returns its bytes.
func appendBatch(t testing.TB, l *Log, s spec) []byte {
	t.Helper()
	b := makeBatch(t, l.EndOffset(), s)
	require.NoError(t, l.Append(b))
	return b
}

// readBytes reads from offset and returns the concatenated section bytes.
func readBytes(t testing.TB, l *Log, offset int64, maxBytes int) []byte {
	t.Helper()
	secs, err := l.Read(offset, maxBytes, nil)
	require.NoError(t, err)
	defer Release(secs)
	var out []byte
	for i := range secs {
		out, err = secs[i].AppendTo(out)
		require.NoError(t, err)
	}
	return out
}

// headers parses the batches in b, requiring each to be valid.
func headers(t testing.TB, b []byte) []batch.Header {
	t.Helper()
	var hs []batch.Header
	for len(b) > 0 {
		n, err := batch.PeekSize(b)
		require.NoError(t, err)
		require.LessOrEqual(t, n, len(b), "partial batch in a read")
		h, err := batch.Validate(b[:n])
		require.NoError(t, err)
		hs = append(hs, h)
		b = b[n:]
	}
	return hs
}

// offsetsOf lists every record offset in b, checking that each record's
// value names its offset.
func offsetsOf(t testing.TB, b []byte) []int64 {
	t.Helper()
	var out []int64
	it := batch.NewIterator(b)
	for it.Next() {
		r := it.Record()
		require.Equal(t, fmt.Sprintf("offset-%d:", r.Offset), string(r.Value[:len(fmt.Sprintf("offset-%d:", r.Offset))]))
		out = append(out, r.Offset)
	}
	require.NoError(t, it.Err())
	return out
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
