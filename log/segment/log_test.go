package segment

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
)

func TestAppendRead(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{}, NoCheckpoint)
	defer l.Close()
	require.Equal(t, int64(0), l.EndOffset())
	var all []byte
	for i := 0; i < 10; i++ {
		all = append(all, appendBatch(t, l, spec{records: 5, ts: 1000, value: 50})...)
	}
	require.Equal(t, int64(50), l.EndOffset())
	require.Equal(t, all, readBytes(t, l, 0, 1<<20), "a read returns the stored bytes verbatim")
	require.Equal(t, seq(0, 50), offsetsOf(t, readBytes(t, l, 0, 1<<20)))
}

func TestReadStartsAtTheContainingBatch(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{IndexIntervalBytes: 1}, NoCheckpoint)
	defer l.Close()
	for i := 0; i < 20; i++ {
		appendBatch(t, l, spec{records: 10, ts: 1, value: 20})
	}
	for _, off := range []int64{0, 1, 9, 10, 55, 199} {
		hs := headers(t, readBytes(t, l, off, 1<<20))
		require.Equal(t, off/10*10, hs[0].BaseOffset, "read at %d", off)
		require.Equal(t, int64(199), hs[len(hs)-1].LastOffset())
	}
}

func TestReadLimits(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 10_000, IndexIntervalBytes: 500}, NoCheckpoint)
	defer l.Close()
	var sizes []int
	for i := 0; i < 60; i++ {
		sizes = append(sizes, len(appendBatch(t, l, spec{records: 3, ts: 1, value: 100 + i*7})))
	}
	require.Greater(t, l.Segments(), 3)

	t.Run("whole batches within the limit", func(t *testing.T) {
		for _, max := range []int{sizes[0], sizes[0] + 1, 1000, 4321, 9999, 25_000} {
			b := readBytes(t, l, 0, max)
			require.LessOrEqual(t, len(b), max)
			hs := headers(t, b)
			// The next batch would not have fitted.
			next := len(hs)
			require.Greater(t, len(b)+sizes[next], max, "limit %d", max)
		}
	})
	t.Run("at least one batch", func(t *testing.T) {
		hs := headers(t, readBytes(t, l, 3, 1))
		require.Len(t, hs, 1)
		require.Equal(t, int64(3), hs[0].BaseOffset)
		hs = headers(t, readBytes(t, l, 3, 0))
		require.Len(t, hs, 1)
	})
	t.Run("across segments", func(t *testing.T) {
		b := readBytes(t, l, 0, 1<<30)
		require.Equal(t, seq(0, 180), offsetsOf(t, b))
		secs, err := l.Read(0, 1<<30, nil)
		require.NoError(t, err)
		require.Equal(t, l.Segments(), len(secs))
		Release(secs)
	})
	t.Run("bounds", func(t *testing.T) {
		secs, err := l.Read(180, 100, nil)
		require.NoError(t, err)
		require.Empty(t, secs, "reading at the end is empty, not an error")
		_, err = l.Read(181, 100, nil)
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
		_, err = l.Read(-1, 100, nil)
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
	})
}

func TestRollBySize(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 4096}, NoCheckpoint)
	defer l.Close()
	for i := 0; i < 40; i++ {
		appendBatch(t, l, spec{records: 2, ts: 1, value: 400})
	}
	n := l.Segments()
	require.Greater(t, n, 5)
	ents, err := os.ReadDir(l.Dir())
	require.NoError(t, err)
	logs := 0
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".log" {
			logs++
			st, _ := e.Info()
			require.LessOrEqual(t, st.Size(), int64(4096))
		}
	}
	require.Equal(t, n, logs)
	require.FileExists(t, filepath.Join(l.Dir(), "00000000000000000000.log"))
	require.Equal(t, seq(0, 80), offsetsOf(t, readBytes(t, l, 0, 1<<30)))
}

func TestRollByTime(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentMs: 1000}, NoCheckpoint)
	defer l.Close()
	appendBatch(t, l, spec{records: 1, ts: 10_000, value: 10})
	appendBatch(t, l, spec{records: 1, ts: 10_900, value: 10})
	require.Equal(t, 1, l.Segments())
	appendBatch(t, l, spec{records: 1, ts: 11_001, value: 10})
	require.Equal(t, 2, l.Segments(), "a batch more than segment.ms after the first rolls")
	appendBatch(t, l, spec{records: 1, ts: 5, value: 10})
	require.Equal(t, 2, l.Segments(), "old timestamps do not roll")
}

func TestAppendRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{}, NoCheckpoint)
	defer l.Close()
	good := appendBatch(t, l, spec{records: 3, ts: 1, value: 10})
	next := makeBatch(t, 3, spec{records: 2, ts: 1, value: 10})

	cases := map[string]struct {
		b    []byte
		want error
	}{
		"truncated":         {next[:len(next)-1], batch.ErrCorrupt},
		"header only":       {next[:batch.HeaderLen-1], batch.ErrCorrupt},
		"wrong base offset": {makeBatch(t, 7, spec{records: 1, ts: 1, value: 1}), ErrNonMonotonic},
		"replayed batch":    {good, ErrNonMonotonic},
		"magic 1":           {func() []byte { b := append([]byte(nil), next...); b[16] = 1; return b }(), batch.ErrMagic},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, l.Append(c.b), c.want)
			require.Equal(t, int64(3), l.EndOffset())
			require.Equal(t, good, readBytes(t, l, 0, 1<<20))
		})
	}
	require.NoError(t, l.Append(next))
	require.Equal(t, seq(0, 5), offsetsOf(t, readBytes(t, l, 0, 1<<20)))
}

func TestOffsetForTime(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 2000, IndexIntervalBytes: 200}, NoCheckpoint)
	defer l.Close()
	// Timestamps rise by 10 per batch but batch 5 is late (CreateTime is the producer's).
	for i := int64(0); i < 30; i++ {
		ts := 1000 + i*10
		if i == 5 {
			ts = 500
		}
		appendBatch(t, l, spec{records: 2, ts: ts, value: 60})
	}
	require.Greater(t, l.Segments(), 2)
	cases := []struct {
		ts     int64
		offset int64
		found  bool
	}{
		{0, 0, true},
		{500, 0, true},
		{1000, 0, true},
		{1001, 1, true},
		{1002, 2, true},
		{1045, 12, true}, // batch 4's records are 1040,1041; batch 5 is at 500; batch 6 is 1060
		{1050, 12, true},
		{1291, 59, true},
		{1292, 0, false},
	}
	for _, c := range cases {
		off, ts, found, err := l.OffsetForTime(c.ts)
		require.NoError(t, err)
		require.Equal(t, c.found, found, "ts %d", c.ts)
		if c.found {
			require.Equal(t, c.offset, off, "ts %d", c.ts)
			require.GreaterOrEqual(t, ts, c.ts)
		}
	}
	// After the start moves, answers never fall below it.
	_, err := l.DeleteBefore(7)
	require.NoError(t, err)
	off, _, found, err := l.OffsetForTime(0)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, int64(7), off)
}

func TestOffsetForTimeLogAppendTime(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{}, NoCheckpoint)
	defer l.Close()
	for i := int64(0); i < 5; i++ {
		b := makeBatch(t, l.EndOffset(), spec{records: 3, ts: 1, value: 10})
		batch.SetLogAppendTime(b[:batch.HeaderLen], b[batch.HeaderLen:], 5000+i*100)
		require.NoError(t, l.Append(b))
	}
	off, ts, found, err := l.OffsetForTime(5150)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, int64(6), off)
	require.Equal(t, int64(5200), ts)
}

func TestRetention(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	newLog := func(t *testing.T, cfg Config) *Log {
		cfg.SegmentBytes = 1000
		l := openLog(t, t.TempDir(), cfg, NoCheckpoint)
		t.Cleanup(func() { l.Close() })
		for i := int64(0); i < 20; i++ {
			appendBatch(t, l, spec{records: 4, ts: 100_000 + i*10_000, value: 50})
		}
		return l
	}
	t.Run("by time", func(t *testing.T) {
		l := newLog(t, Config{RetentionMs: 800_000})
		segs := l.Segments()
		n, err := l.Retain(now)
		require.NoError(t, err)
		require.Greater(t, n, 0)
		require.Equal(t, segs-n, l.Segments())
		start := l.StartOffset()
		// Every record left is in a segment whose newest record is not expired.
		_, ts, _, err := l.OffsetForTime(0)
		require.NoError(t, err)
		require.Greater(t, ts, int64(100_000))
		_, err = l.Read(start-1, 100, nil)
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
		require.Equal(t, seq(start, 80), offsetsOf(t, readBytes(t, l, start, 1<<30)))
	})
	t.Run("everything expired", func(t *testing.T) {
		l := newLog(t, Config{RetentionMs: 1})
		_, err := l.Retain(now)
		require.NoError(t, err)
		require.Equal(t, int64(80), l.StartOffset())
		require.Equal(t, int64(80), l.EndOffset())
		require.Equal(t, 1, l.Segments())
		appendBatch(t, l, spec{records: 1, ts: now.UnixMilli(), value: 5})
		require.Equal(t, []int64{80}, offsetsOf(t, readBytes(t, l, 80, 100)))
	})
	t.Run("by size", func(t *testing.T) {
		l := newLog(t, Config{RetentionMs: -1, RetentionBytes: 3000})
		_, err := l.Retain(now)
		require.NoError(t, err)
		require.LessOrEqual(t, l.Size(), int64(3000+1000))
		require.GreaterOrEqual(t, l.Size(), int64(3000))
	})
	t.Run("forever", func(t *testing.T) {
		l := newLog(t, Config{RetentionMs: -1, RetentionBytes: -1})
		n, err := l.Retain(now.Add(100 * 365 * 24 * time.Hour))
		require.NoError(t, err)
		require.Zero(t, n)
		require.Equal(t, int64(0), l.StartOffset())
	})
	t.Run("delete records inside a segment", func(t *testing.T) {
		l := newLog(t, Config{RetentionMs: -1})
		_, err := l.DeleteBefore(10)
		require.NoError(t, err)
		require.Equal(t, int64(10), l.StartOffset())
		_, err = l.Read(9, 100, nil)
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
		hs := headers(t, readBytes(t, l, 10, 1))
		require.Equal(t, int64(8), hs[0].BaseOffset, "the batch holding the start offset is served whole")
		_, err = l.DeleteBefore(81)
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
	})
}

func TestSectionOutlivesDeletion(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 500, RetentionMs: -1}, NoCheckpoint)
	defer l.Close()
	for i := 0; i < 10; i++ {
		appendBatch(t, l, spec{records: 2, ts: 1, value: 100})
	}
	secs, err := l.Read(0, 100, nil)
	require.NoError(t, err)
	want := readBytes(t, l, 0, 100)
	_, err = l.DeleteBefore(l.EndOffset())
	require.NoError(t, err)
	require.NoFileExists(t, filepath.Join(l.Dir(), "00000000000000000000.log"))
	got, err := secs[0].AppendTo(nil)
	require.NoError(t, err, "a live section keeps its deleted file readable")
	require.Equal(t, want, got)
	Release(secs)
}

func TestTruncate(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 800, IndexIntervalBytes: 100}, NoCheckpoint)
	defer l.Close()
	for i := 0; i < 30; i++ {
		appendBatch(t, l, spec{records: 2, ts: int64(i * 100), value: 60})
	}
	require.Error(t, l.Truncate(31), "not a batch boundary")
	require.NoError(t, l.Truncate(30))
	require.Equal(t, int64(30), l.EndOffset())
	require.Equal(t, seq(0, 30), offsetsOf(t, readBytes(t, l, 0, 1<<30)))
	_, ts, found, err := l.OffsetForTime(1402)
	require.NoError(t, err)
	require.False(t, found, "truncated timestamps are forgotten (found ts %d)", ts)
	appendBatch(t, l, spec{records: 2, ts: 5000, value: 60})
	require.Equal(t, seq(0, 32), offsetsOf(t, readBytes(t, l, 0, 1<<30)))
	require.NoError(t, l.Truncate(0))
	require.Equal(t, int64(0), l.EndOffset())
	require.Equal(t, 1, l.Segments())
}

// TestReadBelow reads below every batch boundary, from every batch, over
// several segments: the batches below the limit, as far as the budget
// allows, and nothing at or past it.
func TestReadBelow(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 3000, IndexIntervalBytes: 300}, NoCheckpoint)
	defer l.Close()
	for i := 0; i < 40; i++ {
		appendBatch(t, l, spec{records: 3, ts: 1, value: 100 + i*5})
	}
	require.Greater(t, l.Segments(), 3)
	read := func(offset, limit int64, maxBytes int) []byte {
		secs, err := l.ReadBelow(offset, limit, maxBytes, nil)
		require.NoError(t, err)
		defer Release(secs)
		var out []byte
		for i := range secs {
			out, err = secs[i].AppendTo(out)
			require.NoError(t, err)
		}
		return out
	}
	for from := int64(0); from < 120; from += 3 {
		for limit := int64(0); limit <= 123; limit += 3 {
			got := offsetsOf(t, read(from, limit, 1<<30))
			if from >= limit {
				require.Empty(t, got, "from %d below %d", from, limit)
				continue
			}
			require.Equal(t, seq(from, min(limit, 120)), got, "from %d below %d", from, limit)
		}
	}
	// The budget still applies, and the first batch still comes whole.
	require.Equal(t, seq(0, 3), offsetsOf(t, read(0, 60, 1)))
	b := read(0, 60, 2000)
	require.LessOrEqual(t, len(b), 2000)
	require.Equal(t, readBytes(t, l, 0, 2000), b, "the same cut as Read below the limit")
	_, err := l.ReadBelow(121, 60, 100, nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)

	// Each section's segment ends where the next one starts.
	secs, err := l.Read(0, 1<<30, nil)
	require.NoError(t, err)
	defer Release(secs)
	for i := range secs[:len(secs)-1] {
		require.Equal(t, secs[i+1].Base(), l.NextSegmentBase(secs[i].Base()))
		require.Equal(t, secs[i+1].Base(), l.NextSegmentBase(secs[i+1].Base()-1))
	}
	require.Equal(t, int64(120), l.NextSegmentBase(secs[len(secs)-1].Base()), "the last one ends at the log's end")
}
