package replog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

// TestClusterMoveAndRemoveNode adds a fourth node to a running
// three-node cluster, moves a partition from nodes 1, 2, 3 to 4, 2, 1
// while a writer appends, then removes node 3: the new replica holds
// the partition byte for byte, every acknowledged append is there once,
// node 3's replica and data are gone, and node 4 took its meta vote.
func TestClusterMoveAndRemoveNode(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 120*time.Second)
	n1 := c.nodes[0].log
	require.NoError(t, n1.CreateTopic(ctx, TopicSpec{Name: "mv", Partitions: 1, ReplicationFactor: 3}, false))
	tp := TopicPartition{"mv", 0}

	// Node 4 starts with join and waits until a member adds it.
	n4 := newNode(t, filepath.Join(t.TempDir(), "4"), 4, map[uint64]string{4: freeAddr(t)})
	n4.cfg.Peers, n4.cfg.Join = nil, true
	opened := make(chan struct{})
	go func() { defer close(opened); n4.open(t) }()
	t.Cleanup(func() { <-opened; n4.close(t) })
	require.NoError(t, n1.AddNode(ctx, 4, n4.cfg.RaftAddr))
	require.NoError(t, n1.AddNode(ctx, 4, n4.cfg.RaftAddr), "adding again is a retry")
	require.NoError(t, n1.WaitRegistered(ctx, 4))
	<-opened
	c.nodes = append(c.nodes, n4)

	// A writer appends throughout, to whichever node leads.
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			for _, n := range c.nodes {
				if n.log == nil {
					continue
				}
				if _, err = n.log.Append(ctx, tp, recordBatch(t, -1, int32(i), "w", 1, 1), AppendOptions{Acks: AcksAll}); err == nil {
					mu.Lock()
					acked = append(acked, fmt.Sprintf("w-%d", i))
					mu.Unlock()
					break
				}
			}
			if err != nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)

	errs, err := n1.Reassign(ctx, []meta.Reassignment{{Topic: "mv", Partition: 0, Replicas: []uint64{4, 2, 1}}})
	require.NoError(t, err)
	require.Equal(t, []error{nil}, errs)
	require.Eventually(t, func() bool {
		for _, n := range c.nodes {
			info, err := n.log.PartitionInfo(tp)
			if err != nil || len(n.log.Reassignments()) > 0 || !slices.Equal(info.Replicas, []uint64{4, 2, 1}) {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "the move ends")
	info, err := n1.PartitionInfo(tp)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 2, 1}, info.ISR)
	time.Sleep(300 * time.Millisecond) // appends to the new membership
	close(stop)
	<-done

	// Node 3 stopped its replica and deleted it.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(c.nodes[2].cfg.DataDir, "partitions", "mv-0"))
		return os.IsNotExist(err) && c.nodes[2].log.host.Shard(info2shard(t, n1, tp)) == nil
	}, 30*time.Second, 50*time.Millisecond)

	leader := c.leader(t, tp).log
	want := replicaBytes(t, leader, tp)
	for _, id := range []int{4, 2, 1} {
		n := c.nodes[id-1]
		require.Eventually(t, func() bool { return bytes.Equal(want, replicaBytes(t, n.log, tp)) }, 20*time.Second, 20*time.Millisecond,
			"node %d holds the partition byte for byte", id)
	}
	mu.Lock()
	require.NotEmpty(t, acked)
	got := readAll(t, leader, tp, 0)
	require.Equal(t, acked, onlyIn(got, acked), "every acknowledged append once, in order")
	mu.Unlock()

	// Node 3 leaves: it holds no replica any more.
	require.NoError(t, n1.RemoveNode(ctx, 3))
	_, ok := n1.view.Load().nodes[3]
	require.False(t, ok)
	mem, err := n1.meta.Membership(ctx)
	require.NoError(t, err)
	require.False(t, mem.Has(3))
	require.Contains(t, mem.Voters, uint64(4), "node 4 took node 3's vote in the meta shard")
	require.Eventually(t, func() bool { return n4.log.meta.Voter() }, 10*time.Second, 50*time.Millisecond, "node 4 records its promotion")
	require.ErrorIs(t, n1.AddNode(ctx, 3, c.nodes[2].cfg.RaftAddr), ErrInvalidRequest, "a removed id never comes back")
	c.nodes[2].close(t)

	// Node 4 restarts as a voter of both shards; the cluster of 1, 2, 4
	// keeps taking writes.
	n4.close(t)
	n4.open(t)
	require.True(t, n4.log.meta.Voter())
	require.Eventually(t, func() bool {
		l := c.leader(t, tp).log
		_, err := l.Append(ctx, tp, recordBatch(t, -1, 0, "after", 1, 1), AppendOptions{Acks: AcksAll})
		return err == nil
	}, 30*time.Second, 50*time.Millisecond)
	require.NoError(t, n1.CreateTopic(ctx, TopicSpec{Name: "after", Partitions: 3, ReplicationFactor: 3}, false))
	for _, tpi := range n1.Topics() {
		for _, p := range tpi.Partitions {
			require.False(t, slices.ContainsFunc(p.Replicas, func(r meta.Replica) bool { return r.NodeID == 3 }))
		}
	}
}

func info2shard(t *testing.T, l *Log, tp TopicPartition) uint64 {
	t.Helper()
	_, p, err := l.part(tp)
	require.NoError(t, err)
	return p.shardID
}

// onlyIn returns the values of got that are in want, in got's order: an
// append that failed ambiguously may be in the log, and is no loss.
func onlyIn(got, want []string) []string {
	in := map[string]bool{}
	for _, w := range want {
		in[w] = true
	}
	var out []string
	for _, g := range got {
		if in[g] {
			out = append(out, g)
		}
	}
	return out
}

// TestClusterMetaVoters starts five peers: the three lowest ids vote in
// the meta shard, the other two follow it as non-voting members that the
// meta leader added, and all five hold partitions.
func TestClusterMetaVoters(t *testing.T) {
	c := newCluster(t, 5)
	ctx := ctxT(t, 60*time.Second)
	n1 := c.nodes[0].log
	mem, err := n1.meta.Membership(ctx)
	require.NoError(t, err)
	require.Len(t, mem.Voters, 3)
	for id := range uint64(3) {
		require.Contains(t, mem.Voters, id+1)
	}
	require.Len(t, mem.NonVoting, 2)
	require.Contains(t, mem.NonVoting, uint64(4))
	require.Contains(t, mem.NonVoting, uint64(5))
	require.False(t, c.nodes[4].log.meta.Voter())

	require.NoError(t, c.nodes[4].log.CreateTopic(ctx, TopicSpec{Name: "five", Partitions: 5, ReplicationFactor: 5}, false))
	tp := TopicPartition{"five", 4}
	l := c.leader(t, tp).log
	_, err = l.Append(ctx, tp, recordBatch(t, -1, 0, "v", 3, 1), AppendOptions{Acks: AcksAll})
	require.NoError(t, err)
	want := replicaBytes(t, l, tp)
	for _, n := range c.nodes {
		require.Eventually(t, func() bool { return bytes.Equal(want, replicaBytes(t, n.log, tp)) }, 20*time.Second, 20*time.Millisecond)
	}
}

// TestClusterMoveBySnapshotAndLeaderLoss moves a partition whose Raft log
// was compacted, so the new replica can only catch up from a snapshot
// stream of the segment files, and closes the partition's leader in the
// middle of the move: another leader carries the move on from the steps
// recorded in the metadata, and every replica ends byte-identical.
func TestClusterMoveBySnapshotAndLeaderLoss(t *testing.T) {
	root := t.TempDir()
	peers := map[uint64]string{1: freeAddr(t), 2: freeAddr(t), 3: freeAddr(t)}
	c := &testCluster{}
	for i := uint64(1); i <= 3; i++ {
		n := newNode(t, filepath.Join(root, fmt.Sprint(i)), i, peers)
		n.cfg.Raft.SnapshotBytes, n.cfg.Raft.CompactionOverhead = 32<<10, 8
		c.nodes = append(c.nodes, n)
	}
	c.openAll(t)
	t.Cleanup(func() { c.closeAll(t) })
	ctx := ctxT(t, 120*time.Second)
	n1 := c.nodes[0].log
	require.NoError(t, n1.CreateTopic(ctx, TopicSpec{Name: "snap", Partitions: 1, ReplicationFactor: 3}, false))
	tp := TopicPartition{"snap", 0}
	leader := c.leader(t, tp).log
	for i := range 300 {
		_, err := leader.Append(ctx, tp, recordBatch(t, -1, int32(i*10), "s", 10, 1), AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
	}

	n4 := newNode(t, filepath.Join(root, "4"), 4, map[uint64]string{4: freeAddr(t)})
	n4.cfg.Peers, n4.cfg.Join = nil, true
	n4.cfg.Raft.SnapshotBytes, n4.cfg.Raft.CompactionOverhead = 32<<10, 8
	opened := make(chan struct{})
	go func() { defer close(opened); n4.open(t) }()
	require.NoError(t, n1.AddNode(ctx, 4, n4.cfg.RaftAddr))
	<-opened
	c.nodes = append(c.nodes, n4)

	// Move to 4, 2, 3: node 1 leaves. Close the leader once node 4's
	// learner exists.
	// Node 4 registered itself through its own meta replica: node 1 may
	// apply that a moment later, and refuses the move until it has.
	require.Eventually(t, func() bool {
		errs, err := n1.Reassign(ctx, []meta.Reassignment{{Topic: "snap", Partition: 0, Replicas: []uint64{4, 2, 3}}})
		require.NoError(t, err)
		return errs[0] == nil
	}, 10*time.Second, 20*time.Millisecond, "node 1 accepts the move to node 4")
	shard := info2shard(t, n1, tp)
	require.Eventually(t, func() bool { return n4.log.host.Shard(shard) != nil }, 30*time.Second, 10*time.Millisecond, "node 4 starts its learner")
	old := c.leader(t, tp)
	old.close(t)
	t.Logf("closed node %d, the leader, during the move", old.cfg.NodeID)
	require.Eventually(t, func() bool {
		for _, n := range c.nodes {
			if n.log != nil && len(n.log.Reassignments()) > 0 {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "the move ends without the old leader")
	old.open(t) // it catches up, or learns that its replica is gone
	require.Greater(t, n4.log.host.Restores(), uint64(0), "node 4 caught up from a snapshot")

	leader = c.leader(t, tp).log
	_, err := leader.Append(ctx, tp, recordBatch(t, -1, 3000, "s", 10, 1), AppendOptions{Acks: AcksAll})
	require.NoError(t, err)
	want := replicaBytes(t, leader, tp)
	for _, id := range []int{4, 2, 3} {
		n := c.nodes[id-1]
		require.Eventually(t, func() bool { b, ok := tryReplicaBytes(n.log, tp); return ok && bytes.Equal(want, b) }, 20*time.Second, 20*time.Millisecond,
			"node %d holds the partition byte for byte", id)
	}
	require.Len(t, readAll(t, leader, tp, 0), 3010)
	require.Eventually(t, func() bool { return c.nodes[0].log.host.Shard(shard) == nil }, 30*time.Second, 50*time.Millisecond,
		"node 1 stopped its replica")
}

// tryReplicaBytes is replicaBytes for a replica that may be restoring a
// snapshot right now (its partition is swapped, the old one closed).
func tryReplicaBytes(l *Log, tp TopicPartition) ([]byte, bool) {
	_, p, err := l.part(tp)
	if err != nil || p.local == nil || p.local.Partition() == nil {
		return nil, false
	}
	lg := p.local.Partition().Log()
	secs, err := lg.Read(lg.StartOffset(), 1<<30, nil)
	if err != nil {
		return nil, false
	}
	defer segment.Release(secs)
	var out []byte
	for i := range secs {
		if out, err = secs[i].AppendTo(out); err != nil {
			return nil, false
		}
	}
	return out, true
}

// TestClusterRemoveMetaLeader removes the node that leads the meta shard:
// it hands the leadership over first, a node that joined takes its vote,
// and the removal answers within seconds, not after timeouts.
func TestClusterRemoveMetaLeader(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	n4 := newNode(t, filepath.Join(t.TempDir(), "4"), 4, map[uint64]string{4: freeAddr(t)})
	n4.cfg.Peers, n4.cfg.Join = nil, true
	opened := make(chan struct{})
	go func() { defer close(opened); n4.open(t) }()
	t.Cleanup(func() { <-opened; n4.close(t) })
	require.NoError(t, c.nodes[0].log.AddNode(ctx, 4, n4.cfg.RaftAddr))
	<-opened

	leader, err := c.nodes[0].log.host.WaitLeader(ctx, meta.MetaShardID)
	require.NoError(t, err)
	asker := c.nodes[leader%3].log // another voter
	start := time.Now()
	require.NoError(t, asker.RemoveNode(ctx, leader))
	t.Logf("removed node %d, the meta leader, in %v", leader, time.Since(start).Round(time.Millisecond))
	require.Less(t, time.Since(start), 10*time.Second)
	mem, err := asker.meta.Membership(ctx)
	require.NoError(t, err)
	require.False(t, mem.Has(leader))
	require.Len(t, mem.Voters, 3)
	require.Contains(t, mem.Voters, uint64(4))
	require.NoError(t, asker.CreateTopic(ctx, TopicSpec{Name: "after", Partitions: 1, ReplicationFactor: 3}, false))
}
