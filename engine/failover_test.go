package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMain removes the samsa binary the process tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	testcluster.RemoveBinary()
	os.Exit(code)
}

// TestClusterFailover runs three `samsa serve` processes with a topic of
// three partitions replicated three times, and a franz-go producer
// (idempotent, acks=all) writing numbered records to every partition
// while the cluster is hurt: the leader of each partition is killed with
// SIGKILL in turn and restarted, a leader is paused with SIGSTOP for
// longer than the election timeout, and every node is killed at once and
// restarted; leadership then goes back to the preferred replicas by
// itself. Afterwards every acknowledged record is on every replica
// exactly once, in the order produced, the replicas' segment files are
// byte-identical, and the group offsets committed before the faults are
// still there.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three samsa processes")
	}
	const topic, partitions, group = "failover", 3, "failover-readers"
	c := testcluster.Start(t, 3)
	brokers := c.Brokers()
	adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(brokers...)))
	createTopic(t, adm, topic, partitions, 3)

	p := newFailoverProducer(t, brokers, topic, partitions)
	defer p.stop()
	defer watchLeaders(t, adm, topic, partitions)()

	// The group's offsets, committed through the coordinator before any
	// fault, must survive all of them.
	p.waitProgress(t, "before any fault", 200)
	committed := kadm.Offsets{}
	for part := range int32(partitions) {
		committed.Add(kadm.Offset{Topic: topic, Partition: part, At: int64(100 + part), LeaderEpoch: -1})
	}
	require.Eventually(t, func() bool {
		resp, err := adm.CommitOffsets(ctxT(t, 10*time.Second), group, committed)
		return err == nil && resp.Ok()
	}, 60*time.Second, 200*time.Millisecond, "committing the group's offsets")
	checkOffsets := func(when string) {
		var got kadm.OffsetResponses
		require.Eventually(t, func() bool {
			var err error
			got, err = adm.FetchOffsets(ctxT(t, 10*time.Second), group)
			return err == nil && got.Error() == nil
		}, 60*time.Second, 200*time.Millisecond, "fetching the group's offsets %s", when)
		for part := range int32(partitions) {
			o, ok := got.Lookup(topic, part)
			require.True(t, ok, "%s: partition %d has no committed offset", when, part)
			require.Equal(t, int64(100+part), o.At, "%s: partition %d's committed offset", when, part)
		}
	}

	// Kill the leader of each partition in turn.
	for part := range int32(partitions) {
		leader := leaderOf(t, adm, topic, part)
		nd := c.Node(leader)
		nd.Kill()
		t.Logf("killed node %d, leader of partition %d, at %d records acknowledged", leader, part, p.total())
		p.waitProgress(t, fmt.Sprintf("with node %d killed", leader), 300)
		require.Eventually(t, func() bool { return leaderOf(t, adm, topic, part) != leader }, 30*time.Second, 100*time.Millisecond)
		nd.Start()
		p.waitCaughtUp(t, nd, topic)
	}

	// Pause a leader for longer than the election timeout (1–2 s).
	leader := leaderOf(t, adm, topic, 0)
	nd := c.Node(leader)
	nd.Pause()
	t.Logf("paused node %d, leader of partition 0, at %d records acknowledged", leader, p.total())
	time.Sleep(5 * time.Second)
	p.waitProgress(t, fmt.Sprintf("with node %d paused", leader), 300)
	nd.Resume()
	p.waitCaughtUp(t, nd, topic)
	checkOffsets("after the leaders were killed and paused")

	// Kill every node at once, and start them all again.
	var wg sync.WaitGroup
	for _, nd := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nd.Kill() }()
	}
	wg.Wait()
	t.Logf("killed every node at %d records acknowledged", p.total())
	for _, nd := range c.Nodes {
		nd.Start()
	}
	p.waitProgress(t, "after every node restarted", 300)
	checkOffsets("after every node restarted")

	// Leadership goes back to the preferred replicas by itself, one
	// partition per node, while producing goes on.
	began := time.Now()
	require.Eventually(t, func() bool {
		md, err := adm.Metadata(ctxT(t, 5*time.Second), topic)
		if err != nil {
			return false
		}
		leaders := map[int32]bool{}
		for _, pd := range md.Topics[topic].Partitions {
			if len(pd.Replicas) == 0 || pd.Leader != pd.Replicas[0] {
				return false
			}
			leaders[pd.Leader] = true
		}
		return len(leaders) == partitions
	}, time.Minute, 200*time.Millisecond, "leaders back on their preferred replicas")
	t.Logf("leaders back on their preferred replicas %v after the restart's progress", time.Since(began).Round(time.Millisecond))
	p.waitProgress(t, "after the leaders moved back", 300)

	acked, stall := p.finish(t)
	for _, nd := range c.Nodes {
		p.waitCaughtUp(t, nd, topic)
	}
	c.Stop()

	total := checkReplicas(t, c, topic, acked)
	t.Logf("records acknowledged: %d; lost: 0; duplicated: 0; longest produce stall: %v", total, stall.Round(time.Millisecond))
}

// checkReplicas reads every node's replica of each partition of topic
// (the nodes stopped) and requires that each holds every acknowledged
// sequence number once, in order, nothing else, and that the replicas'
// segment files are byte-identical. It returns how many were acknowledged.
func checkReplicas(t *testing.T, c *testcluster.Cluster, topic string, acked [][]int) int {
	t.Helper()
	return checkReplicasOn(t, c.Nodes, topic, acked)
}

// checkReplicasOn is checkReplicas on some of the nodes: those that hold
// the partitions.
func checkReplicasOn(t *testing.T, nodes []*testcluster.Node, topic string, acked [][]int) int {
	t.Helper()
	total := 0
	for part := range len(acked) {
		total += len(acked[part])
		var first map[string][]byte
		for _, nd := range nodes {
			dir := filepath.Join(nd.Dir, "partitions", fmt.Sprintf("%s-%d", topic, part))
			files := segmentFiles(t, dir)
			seqs := storedSequences(t, files)
			for i := 1; i < len(seqs); i++ {
				require.Less(t, seqs[i-1], seqs[i], "node %d, partition %d: records out of order or doubled", nd.ID, part)
			}
			have := map[int]bool{}
			for _, s := range seqs {
				have[s] = true
			}
			lost := 0
			for _, s := range acked[part] {
				if !have[s] {
					lost++
				}
			}
			require.Zero(t, lost, "node %d, partition %d: acknowledged records missing", nd.ID, part)
			if first == nil {
				first = files
				continue
			}
			require.Equal(t, slices.Sorted(maps.Keys(first)), slices.Sorted(maps.Keys(files)), "node %d, partition %d: segment files", nd.ID, part)
			for name, b := range files {
				require.True(t, bytes.Equal(first[name], b), "node %d, partition %d: %s differs from node %d's", nd.ID, part, name, nodes[0].ID)
			}
		}
	}
	return total
}

// failoverProducer produces numbered records ("partition-sequence") to
// every partition as fast as the cluster takes them, and keeps which were
// acknowledged and the longest time without any acknowledgement.
type failoverProducer struct {
	cl         *kgo.Client
	partitions int
	done       chan struct{}
	wg         sync.WaitGroup

	mu      sync.Mutex
	acked   [][]int
	last    time.Time
	stall   time.Duration
	stopped bool
}

func newFailoverProducer(t *testing.T, brokers []string, topic string, partitions int) *failoverProducer {
	p := &failoverProducer{partitions: partitions, done: make(chan struct{}), acked: make([][]int, partitions), last: time.Now()}
	p.cl = newClient(t, kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(3000),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// A paused broker answers nothing: give up on its requests after
		// 5 s (Kafka clients wait request.timeout.ms, 30 s by default), so
		// the stall measured is the cluster's failover, not the client's
		// patience.
		kgo.ProduceRequestTimeout(3*time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-p.done; cancel() }()
		for i := 0; ctx.Err() == nil; i++ {
			part, seq := i%partitions, i/partitions
			r := &kgo.Record{Partition: int32(part), Value: fmt.Appendf(nil, "%d-%d", part, seq)}
			p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					return
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				now := time.Now()
				p.stall = max(p.stall, now.Sub(p.last))
				p.last = now
				p.acked[part] = append(p.acked[part], seq)
			})
		}
	}()
	return p
}

func (p *failoverProducer) counts() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, p.partitions)
	for i, a := range p.acked {
		out[i] = len(a)
	}
	return out
}

func (p *failoverProducer) total() int {
	n := 0
	for _, c := range p.counts() {
		n += c
	}
	return n
}

// waitProgress waits until every partition has n more acknowledged
// records than now.
func (p *failoverProducer) waitProgress(t *testing.T, when string, n int) {
	t.Helper()
	start, began := p.counts(), time.Now()
	require.Eventually(t, func() bool {
		for i, c := range p.counts() {
			if c < start[i]+n {
				return false
			}
		}
		return true
	}, 2*time.Minute, 20*time.Millisecond, "producing %s: acknowledged %v, was %v", when, p.counts(), start)
	t.Logf("producing %s: %d more records per partition in %v", when, n, time.Since(began).Round(time.Millisecond))
}

// waitCaughtUp waits until the node's replica of every partition holds
// at least the records acknowledged so far.
func (p *failoverProducer) waitCaughtUp(t *testing.T, nd *testcluster.Node, topic string) {
	t.Helper()
	want := p.counts()
	require.Eventually(t, func() bool {
		for part, n := range want {
			hw, ok, err := nd.Metric(ctxT(t, 5*time.Second), fmt.Sprintf(`samsa_partition_high_watermark{partition="%d",topic="%s"}`, part, topic))
			if err != nil || !ok || int(hw) < n {
				return false
			}
		}
		return true
	}, 2*time.Minute, 100*time.Millisecond, "node %d catching up to %v", nd.ID, want)
}

// finish stops producing, waits for every record to be answered, and
// returns the acknowledged sequences per partition and the longest stall.
func (p *failoverProducer) finish(t *testing.T) ([][]int, time.Duration) {
	p.stop()
	require.NoError(t, p.cl.Flush(ctxT(t, 2*time.Minute)))
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked, p.stall
}

func (p *failoverProducer) stop() {
	p.mu.Lock()
	stopped := p.stopped
	p.stopped = true
	p.mu.Unlock()
	if !stopped {
		close(p.done)
		p.wg.Wait()
	}
}

// watchLeaders logs every change of the partitions' leaders, as the
// cluster's metadata tells them, until the returned function is called.
func watchLeaders(t *testing.T, adm *kadm.Client, topic string, partitions int) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		var last []int32
		for {
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			md, err := adm.Metadata(ctx, topic)
			cancel()
			if err != nil {
				continue
			}
			leaders := make([]int32, partitions)
			for part := range int32(partitions) {
				leaders[part] = md.Topics[topic].Partitions[part].Leader
			}
			if !slices.Equal(leaders, last) {
				t.Logf("leaders of partitions 0..%d: %v", partitions-1, leaders)
				last = leaders
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// createTopic creates a topic once the cluster can (its nodes may still
// be starting).
func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, rf int16) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := adm.CreateTopic(ctxT(t, 10*time.Second), partitions, rf, nil, topic)
		return err == nil && resp.Err == nil
	}, 90*time.Second, 200*time.Millisecond, "creating topic %s", topic)
}

// leaderOf asks the cluster for a partition's leader, until it names one.
func leaderOf(t *testing.T, adm *kadm.Client, topic string, part int32) int32 {
	t.Helper()
	var leader int32 = -1
	require.Eventually(t, func() bool {
		md, err := adm.Metadata(ctxT(t, 10*time.Second), topic)
		if err != nil {
			return false
		}
		pd, ok := md.Topics[topic].Partitions[part]
		if !ok || pd.Err != nil || pd.Leader < 1 {
			return false
		}
		leader = pd.Leader
		return true
	}, time.Minute, 100*time.Millisecond, "partition %d has no leader", part)
	return leader
}

// segmentFiles reads a partition directory's segment files by name.
func segmentFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, names, "no segment in %s", dir)
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		require.NoError(t, err)
		out[filepath.Base(n)] = b
	}
	return out
}

// storedSequences decodes the sequence numbers of the records in segment
// files, in offset order.
func storedSequences(t *testing.T, files map[string][]byte) []int {
	t.Helper()
	var seqs []int
	for _, n := range slices.Sorted(maps.Keys(files)) { // named by zero-padded base offset
		it := batch.NewIterator(files[n])
		for it.Next() {
			_, s, ok := strings.Cut(string(it.Record().Value), "-")
			seq, err := strconv.Atoi(s)
			require.True(t, ok && err == nil, "a record that is not one of the producer's: %q", it.Record().Value)
			seqs = append(seqs, seq)
		}
		require.NoError(t, it.Err())
	}
	return seqs
}

func newClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
