package segment

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/samsa-io/samsa/internal/tmpdir"
	"github.com/stretchr/testify/require"
)

// TestConcurrentReaders runs readers against a writer that appends, rolls
// and deletes old segments: every read must return whole, valid batches in
// offset order, and the race detector must stay quiet.
func TestConcurrentReaders(t *testing.T) {
	l := openLog(t, tmpdir.Mem(t), Config{SegmentBytes: 4000, IndexIntervalBytes: 256, RetentionMs: -1}, NoCheckpoint)
	defer l.Close()
	var done atomic.Bool
	var wg sync.WaitGroup
	for reader := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(reader), 1))
			for !done.Load() {
				start, end := l.StartOffset(), l.EndOffset()
				if end == start {
					continue
				}
				off := start + r.Int64N(end-start)
				secs, err := l.Read(off, 1+r.IntN(5000), nil)
				if err != nil {
					require.ErrorIs(t, err, ErrOffsetOutOfRange) // retention moved the start
					continue
				}
				var b []byte
				for i := range secs {
					b, err = secs[i].AppendTo(b)
					require.NoError(t, err)
				}
				Release(secs)
				hs := headers(t, b)
				require.NotEmpty(t, hs)
				require.LessOrEqual(t, hs[0].BaseOffset, off)
				require.GreaterOrEqual(t, hs[0].LastOffset(), off)
				for i := 1; i < len(hs); i++ {
					require.Equal(t, hs[i-1].NextOffset(), hs[i].BaseOffset)
				}
				_, _, _, err = l.OffsetForTime(int64(r.IntN(3000)))
				require.NoError(t, err)
			}
		}()
	}
	for i := 0; i < 3000; i++ {
		appendBatch(t, l, spec{records: 1 + i%5, ts: int64(i), value: 50 + i%200})
		if i%300 == 299 {
			_, err := l.DeleteBefore(l.EndOffset() - 500)
			require.NoError(t, err)
		}
	}
	done.Store(true)
	wg.Wait()
}
