package replica

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSingleHost(t *testing.T) {
	nodes := cluster(t, 1, nil)
	n := nodes[0]
	s := n.startPartition(t, nodes)
	leaderOf(t, nodes)

	// Pipelined: many proposals in flight at once, each a whole batch.
	const batches, per = 200, 5
	var wg sync.WaitGroup
	errs := make([]error, batches)
	for i := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Propose(ctxT(t, 30*time.Second), entryFrom(t, -1, int32(i*per), per))
			errs[i] = errors.Join(err, res.Err)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "batch %d", i)
	}
	seen := map[string]int{}
	for _, v := range values(t, contents(t, s)) {
		seen[v]++
	}
	require.Len(t, seen, batches*per, "every record of every batch, each once")
	for v, n := range seen {
		require.Equal(t, 1, n, v)
	}
	require.Equal(t, int64(batches*per), s.Partition().Log().EndOffset())

	// An idempotent producer, one batch after another.
	var s2seq int32
	for i := 0; i < 20; i++ {
		res, err := s.Propose(ctxT(t, 10*time.Second), entryFor(t, s2seq, 3))
		require.NoError(t, err)
		require.NoError(t, res.Err)
		s2seq += 3
	}
	before := contents(t, s)
	applied := s.Partition().AppliedIndex()

	// A restart on the same directory finds everything.
	n.stop()
	n.start(t)
	s = n.startPartition(t, nodes)
	leaderOf(t, nodes)
	require.Equal(t, before, contents(t, s))
	require.GreaterOrEqual(t, s.Partition().AppliedIndex(), applied)
	// The producer state survived: a retry of the last batch is a duplicate.
	res, err := s.Propose(ctxT(t, 10*time.Second), entryFor(t, s2seq-3, 3))
	require.NoError(t, err)
	require.True(t, res.Duplicate)
}

func TestThreeReplicasConverge(t *testing.T) {
	nodes := cluster(t, 3, nil)
	shards := make([]*Shard, 3)
	for i, n := range nodes {
		shards[i] = n.startPartition(t, nodes)
	}
	leader := leaderOf(t, nodes)
	ls := leader.host().Shard(testShard)
	var seq int32
	for i := 0; i < 100; i++ {
		res, err := ls.Propose(ctxT(t, 10*time.Second), entryFor(t, seq, 4))
		require.NoError(t, err)
		require.NoError(t, res.Err)
		require.Equal(t, int64(seq), res.BaseOffset)
		seq += 4
	}
	want := contents(t, ls)
	for i, s := range shards {
		eventually(t, 10*time.Second, fmt.Sprintf("replica %d to catch up", i+1), func() bool {
			return s.Partition().Log().EndOffset() == int64(seq)
		})
		require.True(t, bytes.Equal(want, contents(t, s)), "replica %d holds byte-identical batches", i+1)
	}
}

// TestLeaderFailover closes the leader's host while a writer appends
// continuously: a new leader takes over, no acknowledged append is lost,
// and appends resume.
func TestLeaderFailover(t *testing.T) {
	nodes := cluster(t, 3, nil)
	for _, n := range nodes {
		n.startPartition(t, nodes)
	}
	old := leaderOf(t, nodes)

	var mu sync.Mutex
	acked := map[string]bool{} // value of each acknowledged record
	var stop atomic.Bool
	var seq int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			var s *Shard
			for _, n := range nodes {
				if h := n.host(); h != nil {
					if sh := h.Shard(testShard); sh != nil && sh.IsLeader() {
						s = sh
					}
				}
			}
			if s == nil {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			// Retries keep the same sequence: the producer id dedupes them.
			res, err := s.Propose(ctxT(t, 3*time.Second), entryFor(t, seq, 2))
			if err != nil || (res.Err != nil && !res.Duplicate) {
				continue
			}
			mu.Lock()
			acked[fmt.Sprintf("seq-%d", seq)], acked[fmt.Sprintf("seq-%d", seq+1)] = true, true
			mu.Unlock()
			seq += 2
		}
	}()
	eventually(t, 20*time.Second, "appends before the failover", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > 100 })
	old.stop()
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	eventually(t, 30*time.Second, "appends after the failover", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) > before+100 })
	stop.Store(true)
	wg.Wait()

	newLeader := leaderOf(t, nodes)
	require.NotEqual(t, old.id, newLeader.id)
	got := values(t, contents(t, newLeader.host().Shard(testShard)))
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for v := range acked {
		require.Equal(t, 1, seen[v], "acknowledged record %s stored exactly once", v)
	}
	// The old leader comes back and converges.
	old.start(t)
	s := old.startPartition(t, nodes)
	want := contents(t, newLeader.host().Shard(testShard))
	eventually(t, 30*time.Second, "the old leader to catch up", func() bool {
		return s.Partition() != nil && s.Partition().Log().EndOffset() == newLeader.host().Shard(testShard).Partition().Log().EndOffset()
	})
	require.True(t, bytes.Equal(want, contents(t, s)))
}

// TestSnapshotCatchUp stops a follower long enough for the leader to
// compact its Raft log past what the follower has: it must come back by
// a snapshot stream and hold exactly what the leader holds.
func TestSnapshotCatchUp(t *testing.T) {
	nodes := cluster(t, 3, func(c *Config) {
		c.SnapshotBytes = 64 << 10 // snapshot and compact often
		c.CompactionOverhead = 5
	})
	for _, n := range nodes {
		n.startPartition(t, nodes)
	}
	leader := leaderOf(t, nodes)
	var lagging *node
	for _, n := range nodes {
		if n != leader {
			lagging = n
			break
		}
	}
	lagging.stop()
	ls := leader.host().Shard(testShard)
	var seq int32
	for i := 0; i < 400; i++ {
		res, err := ls.Propose(ctxT(t, 10*time.Second), entryFor(t, seq, 20))
		require.NoError(t, err)
		require.NoError(t, res.Err)
		seq += 20
	}
	// The leader's Raft log no longer reaches back to where the follower is.
	eventually(t, 20*time.Second, "the leader to compact its log", func() bool {
		rs, err := leader.host().nh.QueryRaftLog(testShard, 1, 2, 1<<20)
		if err != nil {
			return false
		}
		defer rs.Release()
		r := <-rs.ResultC()
		return r.RequestOutOfRange()
	})
	lagging.start(t)
	s := lagging.startPartition(t, nodes)
	eventually(t, 60*time.Second, "the follower to catch up", func() bool {
		p := s.Partition()
		return p != nil && p.Log().EndOffset() == int64(seq)
	})
	require.True(t, bytes.Equal(contents(t, ls), contents(t, s)), "the restored replica is byte-identical")
	require.Positive(t, lagging.host().Restores(), "it caught up by a snapshot, not by the Raft log")
}
