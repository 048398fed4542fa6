package replog

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/replica"
	"github.com/stretchr/testify/require"
)

// benchDir is SAMSA_BENCH_DIR (to pick the disk) or a temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("SAMSA_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "replog-")
		require.NoError(b, err)
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// benchCluster opens n nodes with the given LogDB and a topic of one
// partition replicated n times, and returns the partition's leader.
func benchCluster(b *testing.B, n int, logdb replica.LogDB) *Log {
	root := benchDir(b)
	peers := map[uint64]string{}
	for i := 1; i <= n; i++ {
		peers[uint64(i)] = freeAddr(b)
	}
	logs := make([]*Log, n)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nd := newNode(b, filepath.Join(root, fmt.Sprint(i)), uint64(i), peers)
			nd.cfg.Raft.LogDB = logdb
			logs[i-1] = nd.open(b)
		}()
	}
	wg.Wait()
	b.Cleanup(func() {
		for _, l := range logs {
			l.Close(ctxT(b, time.Minute))
		}
	})
	ctx := ctxT(b, time.Minute)
	require.NoError(b, logs[0].CreateTopic(ctx, TopicSpec{Name: "bench", Partitions: 1, ReplicationFactor: int16(n),
		Configs: map[string]string{"retention.ms": "-1"}}, false))
	tp := TopicPartition{"bench", 0}
	for {
		for _, l := range logs {
			if _, _, err := l.leading(tp); err == nil {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkAppend appends 16 KiB producer batches (160 records of 100
// bytes) through Raft with acks=all and 64 in flight. Every acknowledged
// batch is fsynced by a majority's Raft log before the answer. It reports
// records/s and the commit latency p50/p99 beside ns/op and MB/s.
func BenchmarkAppend(b *testing.B) {
	for _, rf := range []int{1, 3} {
		for _, logdb := range []replica.LogDB{replica.LogDBPebble, replica.LogDBTan} {
			b.Run(fmt.Sprintf("rf%d/%s", rf, logdb), func(b *testing.B) {
				l := benchCluster(b, rf, logdb)
				var bl batch.Builder
				val := make([]byte, 100)
				for range 160 {
					bl.Add(batch.Record{Timestamp: time.Now().UnixMilli(), Value: val})
				}
				bt, err := bl.Build(nil)
				require.NoError(b, err)
				tp := TopicPartition{"bench", 0}
				const inFlight = 64
				lat := make([][]time.Duration, inFlight)
				work := make(chan struct{}, b.N)
				for range b.N {
					work <- struct{}{}
				}
				close(work)
				ctx := ctxT(b, time.Hour)
				b.SetBytes(int64(len(bt)))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for w := range inFlight {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range work {
							t0 := time.Now()
							if _, err := l.Append(ctx, tp, bt, AppendOptions{Acks: AcksAll}); err != nil {
								b.Error(err)
								return
							}
							lat[w] = append(lat[w], time.Since(t0))
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				slices.Sort(all)
				if len(all) > 0 {
					b.ReportMetric(float64(len(all)*160)/elapsed.Seconds(), "records/s")
					b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
				}
			})
		}
	}
}

// BenchmarkManyPartitions opens one node (RF 1) with a topic of 1,000
// partitions and reports: the time to create the topic until every
// partition has a leader, the time to restart the node until they all
// lead again, idle CPU over 10 s as a share of one core, the process's
// resident memory, and the disk the data directory takes (LogDB
// preallocation included). Run it with -benchtime=1x.
//
// tan preallocates 64 MiB per replica, so by default its run has 200
// partitions (13 GB); SAMSA_BENCH_TAN_PARTITIONS changes that.
func BenchmarkManyPartitions(b *testing.B) {
	tanParts := int32(200)
	if v, err := strconv.Atoi(os.Getenv("SAMSA_BENCH_TAN_PARTITIONS")); err == nil {
		tanParts = int32(v)
	}
	for _, logdb := range []replica.LogDB{replica.LogDBPebble, replica.LogDBTan} {
		partitions := int32(1000)
		if logdb == replica.LogDBTan {
			partitions = tanParts
		}
		b.Run(fmt.Sprintf("%s/%d", logdb, partitions), func(b *testing.B) {
			for range b.N {
				dir := filepath.Join(benchDir(b), "node")
				nd := newNode(b, dir, 1, map[uint64]string{1: freeAddr(b)})
				nd.cfg.Raft.LogDB = logdb
				l := nd.open(b)
				ctx := ctxT(b, 10*time.Minute)
				start := time.Now()
				require.NoError(b, l.CreateTopic(ctx, TopicSpec{Name: "many", Partitions: partitions, ReplicationFactor: 1}, false))
				create := time.Since(start)
				// A record in each, so every partition has a segment.
				for p := int32(0); p < partitions; p++ {
					_, err := l.Append(ctx, TopicPartition{"many", p}, recordBatch(b, -1, 0, "x", 1, 1), AppendOptions{Acks: AcksAll})
					require.NoError(b, err)
				}
				nd.close(b)
				start = time.Now()
				l = nd.open(b)
				waitLeaders(b, l, "many", partitions)
				restart := time.Since(start)

				time.Sleep(3 * time.Second) // let start-up work settle
				cpu0, t0 := cpuTime(), time.Now()
				time.Sleep(10 * time.Second)
				idle := float64(cpuTime()-cpu0) / float64(time.Since(t0).Nanoseconds())
				b.ReportMetric(create.Seconds(), "create-s")
				b.ReportMetric(restart.Seconds(), "restart-s")
				b.ReportMetric(100*idle, "idle-cpu-%")
				b.ReportMetric(float64(rssBytes())/(1<<20), "rss-MiB")
				b.ReportMetric(float64(diskBytes(dir))/(1<<20), "disk-MiB")
				nd.close(b)
			}
		})
	}
}

func waitLeaders(b *testing.B, l *Log, topic string, n int32) {
	deadline := time.Now().Add(5 * time.Minute)
	for p := int32(0); p < n; p++ {
		for {
			if _, _, err := l.leading(TopicPartition{topic, p}); err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("partition %d has no leader after 5 minutes", p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// rssBytes is the process's resident set, from /proc/self/status.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// diskBytes is the space a directory's files take on disk (allocated
// blocks, so preallocated files count in full).
func diskBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			var st syscall.Stat_t
			if syscall.Stat(path, &st) == nil {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
