package kafka_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// samsaBinary builds bin/samsa once per test run.
func samsaBinary(t *testing.T) string { return testcluster.Binary(t) }

// TestMain removes the samsa binary the process tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	testcluster.RemoveBinary()
	os.Exit(code)
}

// serveProcess is `samsa serve` in a child process, restartable on the
// same data directory and ports.
type serveProcess struct {
	t                 *testing.T
	bin, dir          string
	kafka, raft, http string
	cmd               *exec.Cmd
	waited            chan struct{}
}

func (p *serveProcess) start() {
	p.cmd = exec.Command(p.bin, "serve", "--data-dir", p.dir, "--kafka-addr", p.kafka, "--raft-addr", p.raft, "--http-addr", p.http, "--log-level", "warn")
	p.cmd.Stderr = os.Stderr
	require.NoError(p.t, p.cmd.Start())
	p.waited = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.waited) }()
}

func (p *serveProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.waited
}

// TestCrash produces with acks=all (franz-go, idempotent) while the node is
// killed with SIGKILL and restarted three times. Every acknowledged record
// must be stored exactly once, in the order produced per partition.
func TestCrash(t *testing.T) {
	p := &serveProcess{t: t, bin: samsaBinary(t), dir: filepath.Join(t.TempDir(), "data"),
		kafka: freeAddr(t), raft: freeAddr(t), http: freeAddr(t)}
	p.start()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.waited
		}
	})
	adm := kadm.NewClient(mustClient(t, kgo.SeedBrokers(p.kafka)))
	require.Eventually(t, func() bool {
		resp, err := adm.CreateTopic(ctxT(t, 10*time.Second), 3, 1, nil, "crash")
		return err == nil && resp.Err == nil
	}, 60*time.Second, 100*time.Millisecond)

	pr := mustClient(t, kgo.SeedBrokers(p.kafka), kgo.DefaultProduceTopic("crash"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(2000))
	var mu sync.Mutex
	acked := map[int32][]int{} // per partition, the sequence numbers acknowledged
	var stop = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := ctxT(t, 5*time.Minute)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			part := int32(i % 3)
			seq := i / 3
			r := &kgo.Record{Partition: part, Value: []byte(fmt.Sprintf("%d-%d", part, seq))}
			pr.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[part] = append(acked[part], seq)
					mu.Unlock()
				}
			})
		}
	}()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked[0]) + len(acked[1]) + len(acked[2]) }
	for round := 0; round < 3; round++ {
		before := count()
		require.Eventually(t, func() bool { return count() > before+500 }, 90*time.Second, 20*time.Millisecond, "round %d: producing", round)
		time.Sleep(time.Duration(r.IntN(1000)) * time.Millisecond)
		p.kill()
		t.Logf("round %d: killed with %d records acknowledged", round, count())
		p.start()
	}
	before := count()
	require.Eventually(t, func() bool { return count() > before+500 }, 90*time.Second, 20*time.Millisecond, "producing after the last restart")
	close(stop)
	wg.Wait()
	require.NoError(t, pr.Flush(ctxT(t, 60*time.Second)))

	// Read everything back.
	mu.Lock()
	defer mu.Unlock()
	total := len(acked[0]) + len(acked[1]) + len(acked[2])
	cl := mustClient(t, kgo.SeedBrokers(p.kafka), kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	stored := map[int32][]int{}
	n := 0
	ctx := ctxT(t, 60*time.Second)
	for n < total {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d acknowledged records", n, total)
		fs.EachRecord(func(rec *kgo.Record) {
			var part, seq int
			fmt.Sscanf(strings.Replace(string(rec.Value), "-", " ", 1), "%d %d", &part, &seq)
			stored[rec.Partition] = append(stored[rec.Partition], seq)
			n++
		})
	}
	for part, seqs := range stored {
		for i := 1; i < len(seqs); i++ {
			require.Less(t, seqs[i-1], seqs[i], "partition %d: in order, no duplicates", part)
		}
		have := map[int]bool{}
		for _, s := range seqs {
			have[s] = true
		}
		for _, s := range acked[part] {
			require.True(t, have[s], "partition %d: acknowledged record %d is missing", part, s)
		}
	}
	t.Logf("%d records acknowledged across 3 kills, all present once, in order", total)
}

func mustClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// TestGracefulStop sends SIGTERM to a node under load: it exits 0 within
// its deadline, having answered what it accepted, and a restart finds
// every acknowledged record.
func TestGracefulStop(t *testing.T) {
	p := &serveProcess{t: t, bin: samsaBinary(t), dir: filepath.Join(t.TempDir(), "data"),
		kafka: freeAddr(t), raft: freeAddr(t), http: freeAddr(t)}
	p.start()
	pr := mustClient(t, kgo.SeedBrokers(p.kafka), kgo.DefaultProduceTopic("stop"), kgo.AllowAutoTopicCreation())
	adm := kadm.NewClient(mustClient(t, kgo.SeedBrokers(p.kafka)))
	require.Eventually(t, func() bool {
		resp, err := adm.CreateTopic(ctxT(t, 10*time.Second), 2, 1, nil, "stop")
		return err == nil && resp.Err == nil
	}, 60*time.Second, 100*time.Millisecond)
	var acked sync.Map
	for i := 0; i < 2000; i++ {
		v := fmt.Sprint(i)
		pr.Produce(ctxT(t, 30*time.Second), kgo.StringRecord(v), func(r *kgo.Record, err error) {
			if err == nil {
				acked.Store(v, true)
			}
		})
	}
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.waited:
	case <-time.After(40 * time.Second):
		t.Fatal("the node did not stop within 40 s of SIGTERM")
	}
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode(), "a graceful stop exits 0")
	t.Logf("stopped in %v", time.Since(start))
	pr.Close()

	p.start()
	defer func() { p.cmd.Process.Signal(syscall.SIGTERM); <-p.waited }()
	cl := mustClient(t, kgo.SeedBrokers(p.kafka), kgo.ConsumeTopics("stop"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	want := 0
	acked.Range(func(any, any) bool { want++; return true })
	got := map[string]bool{}
	ctx := ctxT(t, 60*time.Second)
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d", len(got), want)
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	acked.Range(func(k, _ any) bool {
		require.True(t, got[k.(string)], "acknowledged %s is there", k)
		return true
	})
}
