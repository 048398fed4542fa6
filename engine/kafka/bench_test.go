package kafka_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/samsa-io/samsa/engine"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The benchmarks compare, in one run on one machine: Samsa through the
// Kafka protocol, franz-go's in-memory fake broker (kfake, nothing on disk),
// Samsa's log written directly (no protocol), and NATS JetStream publishing
// asynchronously. Run them with scripts/bench-kafka.sh, which interleaves
// rounds and reports medians and ratios.

var sizes = []int{100, 1024}

// benchNode starts a Samsa node for a benchmark, on SAMSA_BENCH_DIR's disk
// when it is set.
func benchNode(b *testing.B) *engine.Node {
	return startNode(b, func(c *engine.Config) {
		if d := os.Getenv("SAMSA_BENCH_DIR"); d != "" {
			dir, err := os.MkdirTemp(d, "kafka-")
			require.NoError(b, err)
			b.Cleanup(func() { os.RemoveAll(dir) })
			c.DataDir = dir
		}
	})
}

// produce sends b.N records of size bytes to topic with franz-go
// (idempotent, acks=all) and reports records/s and MB/s.
func produce(b *testing.B, seed string, topic string, size int, opts ...kgo.Opt) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seed), kgo.DefaultProduceTopic(topic),
		kgo.MaxBufferedRecords(1 << 16), kgo.ProducerLinger(0)}, opts...)...)
	require.NoError(b, err)
	defer cl.Close()
	ctx := context.Background()
	val := make([]byte, size)
	// Warm up: metadata, producer id, connections.
	require.NoError(b, cl.ProduceSync(ctx, &kgo.Record{Value: val}).FirstErr())
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var failed error
	var mu sync.Mutex
	for range b.N {
		cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
		})
	}
	require.NoError(b, cl.Flush(ctx))
	b.StopTimer()
	require.NoError(b, failed)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkProduce is a franz-go producer (idempotent, acks=all) against
// Samsa (every acknowledged batch fsynced by Raft) and against kfake.
func BenchmarkProduce(b *testing.B) {
	for _, size := range sizes {
		b.Run(fmt.Sprintf("samsa/%dB", size), func(b *testing.B) {
			n := benchNode(b)
			createTopic(b, n, "bench", 1, nil)
			produce(b, n.KafkaAddr(), "bench", size)
		})
		b.Run(fmt.Sprintf("kfake/%dB", size), func(b *testing.B) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bench"))
			require.NoError(b, err)
			defer c.Close()
			produce(b, c.ListenAddrs()[0], "bench", size)
		})
	}
}

// BenchmarkProtocolOverhead writes the same 16 KiB batches of 100-byte
// records, 64 in flight, through the Kafka protocol (franz-go, batches
// capped at 16 KiB) and through replog.Append in the same process.
func BenchmarkProtocolOverhead(b *testing.B) {
	const size, batchBytes, inFlight = 100, 16 << 10, 64
	b.Run("kafka", func(b *testing.B) {
		n := benchNode(b)
		createTopic(b, n, "bench", 1, nil)
		produce(b, n.KafkaAddr(), "bench", size, kgo.ProducerBatchMaxBytes(batchBytes),
			kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(inFlight)) // idempotence allows 5 in flight
	})
	b.Run("replog", func(b *testing.B) {
		n := benchNode(b)
		createTopic(b, n, "bench", 1, nil)
		var bl batch.Builder
		bl.SetProducer(-1, -1, -1)
		val := make([]byte, size)
		for bl.Size() < batchBytes-size-32 {
			bl.Add(batch.Record{Timestamp: time.Now().UnixMilli(), Value: val})
		}
		perBatch := bl.Len()
		bt, err := bl.Build(nil)
		require.NoError(b, err)
		tp := replog.TopicPartition{Topic: "bench", Partition: 0}
		batches := (b.N + perBatch - 1) / perBatch
		work := make(chan struct{}, batches)
		for range batches {
			work <- struct{}{}
		}
		close(work)
		b.SetBytes(size)
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					if _, err := n.Log().Append(context.Background(), tp, bt, replog.AppendOptions{Acks: replog.AcksAll}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(batches*perBatch)/time.Since(start).Seconds(), "records/s")
	})
}

// BenchmarkConsume reads 256 MiB of 1 KiB records from the start with
// franz-go, from the page cache.
func BenchmarkConsume(b *testing.B) {
	const size, total = 1024, 256 << 20
	n := benchNode(b)
	createTopic(b, n, "bench", 1, nil)
	pr := client(b, n, kgo.DefaultProduceTopic("bench"), kgo.MaxBufferedRecords(1<<16))
	val := make([]byte, size)
	ctx := context.Background()
	for range total / size {
		pr.Produce(ctx, &kgo.Record{Value: val}, nil)
	}
	require.NoError(b, pr.Flush(ctx))
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		cl := client(b, n, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
		got := 0
		for got < total/size {
			fs := cl.PollFetches(ctx)
			got += fs.NumRecords()
		}
		cl.Close()
	}
}

// BenchmarkProduceLatency sends 100-byte records one at a time (acks=all)
// at 2,000 records/s and reports the latency p50/p99 from send to ack.
func BenchmarkProduceLatency(b *testing.B) {
	n := benchNode(b)
	createTopic(b, n, "bench", 1, nil)
	// No linger: franz-go's default waits up to 10 ms for a batch to fill,
	// which would measure the client, not the broker.
	cl := client(b, n, kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(0))
	ctx := context.Background()
	val := make([]byte, 100)
	require.NoError(b, cl.ProduceSync(ctx, &kgo.Record{Value: val}).FirstErr())
	h := hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	var mu sync.Mutex
	tick := time.NewTicker(time.Second / 2000)
	defer tick.Stop()
	b.ResetTimer()
	for range b.N {
		<-tick.C
		t0 := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
			require.NoError(b, err)
			mu.Lock()
			h.RecordValue(time.Since(t0).Microseconds())
			mu.Unlock()
		})
	}
	require.NoError(b, cl.Flush(ctx))
	b.StopTimer()
	b.ReportMetric(float64(h.ValueAtQuantile(50))/1000, "p50-ms")
	b.ReportMetric(float64(h.ValueAtQuantile(99))/1000, "p99-ms")
}

// BenchmarkJetStream publishes to NATS JetStream asynchronously with 256
// publishes in flight, as `nats bench` does, on a nats-server started for
// the benchmark with JetStream's defaults (fsync every two minutes) or with
// sync_interval: always (fsync before every acknowledgement).
//
// SAMSA_NATS_SERVER names the nats-server binary (default: the one on
// PATH). sync_interval needs nats-server 2.10; scripts/bench-kafka.sh
// builds one.
func BenchmarkJetStream(b *testing.B) {
	server := os.Getenv("SAMSA_NATS_SERVER")
	if server == "" {
		var err error
		if server, err = exec.LookPath("nats-server"); err != nil {
			b.Skip("nats-server is not installed (apt-get install -y nats-server)")
		}
	}
	for _, mode := range []string{"default", "always"} {
		b.Run(fmt.Sprintf("%s/100B", mode), func(b *testing.B) {
			if out, _ := exec.Command(server, "--version").Output(); mode == "always" && strings.Contains(string(out), "v2.9.") {
				b.Skipf("%s is %s: sync_interval needs nats-server 2.10 (scripts/bench-kafka.sh builds one)", server, strings.TrimSpace(string(out)))
			}
			url := startNATS(b, server, mode == "always")
			nc, err := nats.Connect(url)
			require.NoError(b, err)
			defer nc.Close()
			js, err := nc.JetStream(nats.PublishAsyncMaxPending(256))
			require.NoError(b, err)
			_, err = js.AddStream(&nats.StreamConfig{Name: "BENCH", Subjects: []string{"bench"}, Storage: nats.FileStorage})
			require.NoError(b, err)
			val := make([]byte, 100)
			_, err = js.Publish("bench", val)
			require.NoError(b, err)
			b.SetBytes(100)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := js.PublishAsync("bench", val); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(5 * time.Minute):
				b.Fatal("JetStream did not acknowledge every publish")
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// startNATS runs a nats-server with JetStream on a free loopback port and
// its store on the benchmark's disk.
func startNATS(b *testing.B, server string, syncAlways bool) string {
	dir := b.TempDir()
	if d := os.Getenv("SAMSA_BENCH_DIR"); d != "" {
		var err error
		dir, err = os.MkdirTemp(d, "nats-")
		require.NoError(b, err)
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	addr := freeAddr(b)
	conf := fmt.Sprintf("listen: %q\njetstream { store_dir: %q }\n", addr, filepath.Join(dir, "js"))
	if syncAlways {
		conf = fmt.Sprintf("listen: %q\njetstream { store_dir: %q, sync_interval: always }\n", addr, filepath.Join(dir, "js"))
	}
	path := filepath.Join(dir, "nats.conf")
	require.NoError(b, os.WriteFile(path, []byte(conf), 0o644))
	cmd := exec.Command(server, "-c", path)
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "nats://" + addr
	require.Eventually(b, func() bool {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
		}
		return err == nil
	}, 20*time.Second, 50*time.Millisecond)
	return url
}

// BenchmarkProduceTransactional is a franz-go producer writing 100-byte
// records, idempotent and acks=all, beside the same producer committing
// a transaction every 1,000 records (begin, produce, flush, commit): the
// price of a transaction's round trips to the coordinator
// and of its markers.
func BenchmarkProduceTransactional(b *testing.B) {
	const size, perTxn = 100, 1000
	b.Run("plain", func(b *testing.B) {
		n := benchNode(b)
		createTopic(b, n, "bench", 1, nil)
		produce(b, n.KafkaAddr(), "bench", size)
	})
	b.Run("txn-1000", func(b *testing.B) {
		n := benchNode(b)
		createTopic(b, n, "bench", 1, nil)
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.DefaultProduceTopic("bench"),
			kgo.MaxBufferedRecords(1<<16), kgo.ProducerLinger(0), kgo.TransactionalID("bench-txn"))
		require.NoError(b, err)
		defer cl.Close()
		ctx := context.Background()
		val := make([]byte, size)
		txn := func(records int) {
			require.NoError(b, cl.BeginTransaction())
			for range records {
				cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			require.NoError(b, cl.Flush(ctx)) // franz-go's EndTransaction does not flush
			require.NoError(b, cl.EndTransaction(ctx, kgo.TryCommit))
		}
		txn(1) // warm up: producer id, coordinator, connections
		b.SetBytes(size)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for done := 0; done < b.N; done += perTxn {
			txn(min(perTxn, b.N-done))
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	})
}
