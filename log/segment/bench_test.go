package segment

import (
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
)

// benchDir is where benchmarks put their logs: SAMSA_BENCH_DIR, or a
// temporary directory on the default disk. Append figures are only
// meaningful on a real disk, compared with dd on the same one.
func benchDir(b *testing.B) string {
	if d := os.Getenv("SAMSA_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench-")
		require.NoError(b, err)
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// batch16K is one producer batch of 16 KiB: 160 records of ~100 bytes.
func batch16K(b *testing.B) []byte {
	bt := makeBatch(b, 0, spec{records: 160, ts: time.Now().UnixMilli(), value: 80})
	require.InDelta(b, 16<<10, len(bt), 2<<10)
	return bt
}

// BenchmarkAppend16K appends 16 KiB batches as the partition does (a
// patched header copy plus the untouched batch). Sub-benchmarks differ only
// in how often the data is fsynced.
func BenchmarkAppend16K(b *testing.B) {
	for _, mode := range []struct {
		name  string
		every time.Duration // fsync interval; 0 = after every batch, -1 = never
	}{
		{"nosync", -1},
		{"fsync-every-batch", 0},
		{"fsync-10ms", 10 * time.Millisecond},
	} {
		b.Run(mode.name, func(b *testing.B) {
			l := openLog(b, benchDir(b), Config{}, NoCheckpoint)
			defer l.Close()
			bt := batch16K(b)
			var head [batch.HeaderLen]byte
			copy(head[:], bt)
			b.SetBytes(int64(len(bt)))
			b.ReportAllocs()
			b.ResetTimer()
			last := time.Now()
			for i := 0; i < b.N; i++ {
				batch.SetBaseOffset(head[:], l.EndOffset())
				if err := l.AppendPatched(head[:], bt); err != nil {
					b.Fatal(err)
				}
				if mode.every == 0 || (mode.every > 0 && time.Since(last) >= mode.every) {
					if err := l.Sync(); err != nil {
						b.Fatal(err)
					}
					last = time.Now()
				}
			}
			if mode.every >= 0 {
				require.NoError(b, l.Sync())
			}
		})
	}
}

// BenchmarkAppendGroupCommit is the engine alone under the durability
// acks=all asks for, fed as BenchmarkAppend in log/replog feeds the Raft
// layer: 64 producers each hand a 16 KiB batch to the log's one writer and
// wait until an fsync covers it. The writer appends whatever is queued,
// fsyncs once, and answers them all (group commit), so this is the most
// a single node can do for such producers without Raft.
func BenchmarkAppendGroupCommit(b *testing.B) {
	const producers = 64
	l := openLog(b, benchDir(b), Config{}, NoCheckpoint)
	defer l.Close()
	bt := batch16K(b)
	queue := make(chan chan error, producers)
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	b.SetBytes(int64(len(bt)))
	b.ReportAllocs()
	b.ResetTimer()
	writerDone := make(chan struct{})
	go func() { // the writer
		defer close(writerDone)
		var head [batch.HeaderLen]byte
		copy(head[:], bt)
		var waiting []chan error
		for first := range queue {
			waiting = append(waiting[:0], first)
		drain:
			for {
				select {
				case c, ok := <-queue:
					if !ok {
						break drain
					}
					waiting = append(waiting, c)
				default:
					break drain
				}
			}
			var err error
			for range waiting {
				batch.SetBaseOffset(head[:], l.EndOffset())
				if err = l.AppendPatched(head[:], bt); err != nil {
					break
				}
			}
			if err == nil {
				err = l.Sync()
			}
			for _, c := range waiting {
				c <- err
			}
		}
	}()
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			for range work {
				queue <- done
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(queue)
	<-writerDone
}

// filled returns a log holding about size bytes of 16 KiB batches, read
// once so that it is in the page cache.
func filled(b *testing.B, size int) *Log {
	l := openLog(b, benchDir(b), Config{}, NoCheckpoint)
	b.Cleanup(func() { l.Close() })
	bt := batch16K(b)
	for n := 0; n < size; n += len(bt) {
		batch.SetBaseOffset(bt, l.EndOffset())
		require.NoError(b, l.Append(bt))
	}
	// Settle the writes (a read racing their writeback measures the disk,
	// not the page cache), then read everything once so it is cached.
	require.NoError(b, l.Sync())
	readBytes(b, l, 0, 1<<31-1)
	return l
}

// BenchmarkRead sends 1 MiB fetches from the page cache to a loopback TCP
// socket drained by another goroutine: with sendfile, and with the copy
// through user space that sendfile avoids.
func BenchmarkRead(b *testing.B) {
	l := filled(b, 256<<20)
	batchLen := int64(len(batch16K(b)))
	const fetch = 1 << 20
	for _, mode := range []string{"sendfile", "copy"} {
		b.Run(mode, func(b *testing.B) {
			client, server := loopback(b)
			go io.Copy(io.Discard, client)
			buf := make([]byte, 2*fetch)
			secs := make([]Section, 0, 4)
			b.SetBytes(fetch)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
			var off int64
			for i := 0; i < b.N; i++ {
				var err error
				if secs, err = l.Read(off, fetch, secs[:0]); err != nil {
					b.Fatal(err)
				}
				for j := range secs {
					s := &secs[j]
					off += s.Len / batchLen * 160 // every batch holds 160 records
					if mode == "sendfile" {
						_, err = s.WriteTo(server)
					} else {
						n, _ := s.ReadAt(buf[:s.Len], 0)
						_, err = server.Write(buf[:n])
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				Release(secs)
				if off >= l.EndOffset() {
					off = 0
				}
			}
		})
	}
}

// BenchmarkIndexLookup finds the batch holding a random offset in a
// 256 MiB log: index binary search plus the short header scan after it.
func BenchmarkIndexLookup(b *testing.B) {
	l := filled(b, 256<<20)
	r := rand.New(rand.NewPCG(1, 2))
	secs := make([]Section, 0, 1)
	end := l.EndOffset()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		secs, err = l.Read(r.Int64N(end), 1, secs[:0])
		if err != nil {
			b.Fatal(err)
		}
		Release(secs)
	}
}

// cpuTime is the process's user plus system CPU time so far, in ns: both
// ends of the socket run in this process, so per-op differences between
// the read modes are the sender's.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
