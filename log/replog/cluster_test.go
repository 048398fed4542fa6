package replog

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

// testCluster is n nodes in one process, each with its own NodeHost on a
// loopback port and its own data directory.
type testCluster struct {
	nodes []*testNode
}

func newCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	root := t.TempDir()
	peers := map[uint64]string{}
	for i := 1; i <= n; i++ {
		peers[uint64(i)] = freeAddr(t)
	}
	c := &testCluster{}
	for i := 1; i <= n; i++ {
		c.nodes = append(c.nodes, newNode(t, filepath.Join(root, fmt.Sprint(i)), uint64(i), peers))
	}
	c.openAll(t)
	t.Cleanup(func() { c.closeAll(t) })
	return c
}

// openAll opens every closed node at once: each waits for the meta
// shard, which needs a majority.
func (c *testCluster) openAll(t *testing.T) {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n.log == nil {
			wg.Add(1)
			go func() { defer wg.Done(); n.open(t) }()
		}
	}
	wg.Wait()
}

func (c *testCluster) closeAll(t *testing.T) {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.close(t) }()
	}
	wg.Wait()
}

// leader returns the open node leading tp, waiting for one.
func (c *testCluster) leader(t *testing.T, tp TopicPartition) *testNode {
	t.Helper()
	var found *testNode
	require.Eventually(t, func() bool {
		for _, n := range c.nodes {
			if l := n.log; l != nil {
				if _, _, err := l.leading(tp); err == nil {
					found = n
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "a leader for %s", tp)
	return found
}

// replicaBytes reads a node's own replica of tp, leader or not.
func replicaBytes(t *testing.T, l *Log, tp TopicPartition) []byte {
	t.Helper()
	_, p, err := l.part(tp)
	require.NoError(t, err)
	require.NotNil(t, p.local)
	lg := p.local.Partition().Log()
	secs, err := lg.Read(lg.StartOffset(), 1<<30, nil)
	require.NoError(t, err)
	defer segment.Release(secs)
	var out []byte
	for i := range secs {
		out, err = secs[i].AppendTo(out)
		require.NoError(t, err)
	}
	return out
}

func TestClusterReplicates(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	require.NoError(t, c.nodes[0].log.CreateTopic(ctx, TopicSpec{Name: "rep", Partitions: 3, ReplicationFactor: 3}, false))
	// Every node learns of the topic and starts its replicas.
	for _, n := range c.nodes {
		require.Eventually(t, func() bool { _, ok := n.log.Topic("rep"); return ok }, 10*time.Second, 10*time.Millisecond)
	}
	for p := int32(0); p < 3; p++ {
		tp := TopicPartition{"rep", p}
		l := c.leader(t, tp).log
		for i := 0; i < 30; i++ {
			_, err := l.Append(ctx, tp, recordBatch(t, int64(p), int32(i*5), "r", 5, 1), AppendOptions{Acks: AcksAll})
			require.NoError(t, err)
		}
		want := replicaBytes(t, l, tp)
		for _, n := range c.nodes {
			require.Eventually(t, func() bool { return bytes.Equal(want, replicaBytes(t, n.log, tp)) }, 10*time.Second, 20*time.Millisecond,
				"node %d holds %s byte for byte", n.cfg.NodeID, tp)
		}
		// Only the leader takes writes.
		for _, n := range c.nodes {
			if n.log != l {
				_, err := n.log.Append(ctx, tp, recordBatch(t, -1, 0, "x", 1, 1), AppendOptions{Acks: AcksAll})
				require.ErrorIs(t, err, ErrNotLeader)
			}
		}
	}
}

// TestClusterFailover closes the leader's node while a writer appends to
// whichever node leads: a new leader is elected, no acknowledged append is
// lost or doubled, and appends resume.
func TestClusterFailover(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	tp := TopicPartition{"fo", 0}
	require.NoError(t, c.nodes[0].log.CreateTopic(ctx, TopicSpec{Name: "fo", Partitions: 1, ReplicationFactor: 3}, false))
	old := c.leader(t, tp)

	var mu sync.Mutex
	var acked []string
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var seq int32
		for !stop.Load() {
			var l *Log
			mu.Lock()
			for _, n := range c.nodes {
				if n.log != nil {
					if _, _, err := n.log.leading(tp); err == nil {
						l = n.log
					}
				}
			}
			mu.Unlock()
			if l == nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			// A retry reuses its sequence: the producer id makes it safe.
			_, err := l.Append(ctxT(t, 5*time.Second), tp, recordBatch(t, 7, seq, "f", 2, 1), AppendOptions{Acks: AcksAll})
			if err != nil {
				continue
			}
			mu.Lock()
			acked = append(acked, fmt.Sprintf("f-%d", seq), fmt.Sprintf("f-%d", seq+1))
			mu.Unlock()
			seq += 2
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	require.Eventually(t, func() bool { return count() > 100 }, 30*time.Second, 10*time.Millisecond)
	mu.Lock()
	oldLog := old.log
	old.log = nil // the writer stops using it
	mu.Unlock()
	require.NoError(t, oldLog.Close(ctxT(t, 30*time.Second)))
	before := count()
	require.Eventually(t, func() bool { return count() > before+100 }, 60*time.Second, 10*time.Millisecond, "appends resume under a new leader")
	stop.Store(true)
	<-done

	l := c.leader(t, tp).log
	got := readAll(t, l, tp, 0)
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range acked {
		require.Equal(t, 1, seen[v], "acknowledged record %s is stored exactly once", v)
	}
	// At most the last batch can be stored without an acknowledgement: it
	// committed, but its reply was lost as the writer stopped.
	require.LessOrEqual(t, len(got)-len(acked), 2, "nothing else is stored")
}

// TestClusterRestart stops every node and starts them again: topics,
// records and group offsets all come back.
func TestClusterRestart(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	require.NoError(t, c.nodes[1].log.CreateTopic(ctx, TopicSpec{Name: "keep", Partitions: 2, ReplicationFactor: 3}, false))
	want := map[int32][]string{}
	for p := int32(0); p < 2; p++ {
		tp := TopicPartition{"keep", p}
		l := c.leader(t, tp).log
		for i := 0; i < 20; i++ {
			_, err := l.Append(ctx, tp, recordBatch(t, -1, int32(i), fmt.Sprint("k", p), 1, 1), AppendOptions{Acks: AcksAll})
			require.NoError(t, err)
		}
		want[p] = readAll(t, l, tp, 0)
	}
	_, err := c.nodes[2].log.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "keep", Partition: 1, Offset: 17}})
	require.NoError(t, err)

	c.closeAll(t)
	c.openAll(t)
	for p := int32(0); p < 2; p++ {
		tp := TopicPartition{"keep", p}
		require.Equal(t, want[p], readAll(t, c.leader(t, tp).log, tp, 0))
	}
	for _, n := range c.nodes {
		got, ok := n.log.CommittedOffset("g", TopicPartition{"keep", 1})
		require.True(t, ok)
		require.Equal(t, int64(17), got.Offset)
	}
}

// TestClusterLeaderBalance moves the leadership of every partition away
// from its preferred (first) replica, then asks for a leader balance: each
// preferred replica takes its partition back.
func TestClusterLeaderBalance(t *testing.T) {
	c := &testCluster{}
	root := t.TempDir()
	peers := map[uint64]string{}
	for i := 1; i <= 3; i++ {
		peers[uint64(i)] = freeAddr(t)
	}
	for i := 1; i <= 3; i++ {
		n := newNode(t, filepath.Join(root, fmt.Sprint(i)), uint64(i), peers)
		n.cfg.LeaderBalanceInterval = -1 // only on request
		c.nodes = append(c.nodes, n)
	}
	c.openAll(t)
	t.Cleanup(func() { c.closeAll(t) })
	ctx := ctxT(t, 2*time.Minute)
	const parts = 3
	require.NoError(t, c.nodes[0].log.CreateTopic(ctx, TopicSpec{Name: "bal", Partitions: parts, ReplicationFactor: 3}, false))

	preferred := make([]uint64, parts)
	for i := range int32(parts) {
		tp := TopicPartition{"bal", i}
		var err error
		preferred[i], err = c.nodes[0].log.PreferredLeader(tp)
		require.NoError(t, err)
		// Hand the leadership to a replica that is not the preferred one.
		leader := c.leader(t, tp)
		if leader.cfg.NodeID == preferred[i] {
			other := c.nodes[preferred[i]%3] // the next node
			_, p, err := other.log.part(tp)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				_ = p.local.TakeLeadership()
				time.Sleep(100 * time.Millisecond)
				return c.leader(t, tp) == other
			}, 30*time.Second, 50*time.Millisecond, "moving %s's leadership to node %d", tp, other.cfg.NodeID)
		}
		require.NotEqual(t, preferred[i], c.leader(t, tp).cfg.NodeID)
	}
	require.ElementsMatch(t, []uint64{1, 2, 3}, preferred, "preferred leaders spread over the nodes")

	require.NoError(t, c.nodes[1].log.RequestLeaderBalance(ctx))
	for i := range int32(parts) {
		tp := TopicPartition{"bal", i}
		require.Eventually(t, func() bool { return c.leader(t, tp).cfg.NodeID == preferred[i] }, 30*time.Second, 50*time.Millisecond,
			"%s led by its preferred replica, node %d", tp, preferred[i])
	}
}

// TestClusterLeaderKnownEverywhere: with replication factor 1 on three
// nodes each node hosts one partition, yet every node names every
// partition's leader (the leaders report themselves to the metadata), so
// a Kafka client may ask any node.
func TestClusterLeaderKnownEverywhere(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, time.Minute)
	require.NoError(t, c.nodes[0].log.CreateTopic(ctx, TopicSpec{Name: "rf1", Partitions: 3, ReplicationFactor: 1}, false))
	for i := range int32(3) {
		tp := TopicPartition{"rf1", i}
		leader := c.leader(t, tp).cfg.NodeID
		for _, n := range c.nodes {
			require.Eventually(t, func() bool {
				info, err := n.log.PartitionInfo(tp)
				return err == nil && info.Leader == leader
			}, 30*time.Second, 20*time.Millisecond, "node %d names %s's leader, node %d", n.cfg.NodeID, tp, leader)
		}
	}
}

// TestClusterInSyncReplicas: the leader leaves a follower it cannot reach
// out of the in-sync replicas, and takes it back when it returns.
func TestClusterInSyncReplicas(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	tp := TopicPartition{"isr", 0}
	require.NoError(t, c.nodes[0].log.CreateTopic(ctx, TopicSpec{Name: "isr", Partitions: 1, ReplicationFactor: 3}, false))
	leader := c.leader(t, tp)
	isr := func() []uint64 {
		info, err := leader.log.PartitionInfo(tp)
		require.NoError(t, err)
		return info.ISR
	}
	require.Eventually(t, func() bool { return len(isr()) == 3 }, 10*time.Second, 20*time.Millisecond)

	var follower *testNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	follower.close(t)
	require.Eventually(t, func() bool { return !slices.Contains(isr(), follower.cfg.NodeID) }, 10*time.Second, 20*time.Millisecond,
		"node %d, closed, leaves the in-sync replicas", follower.cfg.NodeID)
	require.Len(t, isr(), 2)
	_, err := leader.log.Append(ctx, tp, recordBatch(t, -1, 0, "i", 5, 1), AppendOptions{Acks: AcksAll})
	require.NoError(t, err, "a majority is still in sync")
	err = leader.log.CreateTopic(ctx, TopicSpec{Name: "rf3", Partitions: 1, ReplicationFactor: 3}, false)
	require.ErrorIs(t, err, ErrInvalidReplication, "two live nodes cannot hold three replicas")

	follower.open(t)
	require.Eventually(t, func() bool { return len(isr()) == 3 }, 20*time.Second, 20*time.Millisecond, "node %d comes back in sync", follower.cfg.NodeID)
}

// TestClusterLaggingReplicas: every node leaves a replica reported
// behind its leader out of the in-sync replicas, and a node's own checks
// correct its report: caught-up followers, under appends, are not
// reported.
func TestClusterLaggingReplicas(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	tp := TopicPartition{"lag", 0}
	require.NoError(t, c.nodes[0].log.CreateTopic(ctx, TopicSpec{Name: "lag", Partitions: 1, ReplicationFactor: 3}, false))
	leader := c.leader(t, tp)
	for i := range 50 {
		_, err := leader.log.Append(ctx, tp, recordBatch(t, -1, int32(i), "l", 10, 1), AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
	}
	time.Sleep(2*lagCheckInterval + lagCheckWait)
	var lagging map[uint64][]uint64
	leader.log.meta.Read(func(s *meta.State) { lagging = s.Lagging() })
	require.Empty(t, lagging, "caught-up followers are not reported")

	var follower *testNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	shard := info2shard(t, leader.log, tp)
	require.NoError(t, leader.log.proposeMeta(ctx, meta.ReportLagging{NodeID: follower.cfg.NodeID, Shards: []uint64{shard}}))
	for _, n := range c.nodes {
		require.Eventually(t, func() bool {
			info, err := n.log.PartitionInfo(tp)
			return err == nil && !slices.Contains(info.ISR, follower.cfg.NodeID) && len(info.ISR) == 2
		}, 10*time.Second, 10*time.Millisecond, "node %d leaves the lagging replica out", n.cfg.NodeID)
	}
	require.Eventually(t, func() bool {
		info, err := leader.log.PartitionInfo(tp)
		return err == nil && len(info.ISR) == 3
	}, 3*lagCheckInterval+lagCheckWait, 20*time.Millisecond, "node %d finds its replica caught up and says so", follower.cfg.NodeID)
}
