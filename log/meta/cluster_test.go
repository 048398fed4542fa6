package meta

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRegisterNode(t *testing.T) {
	cases := []struct {
		name string
		cmd  RegisterNode
		err  error
	}{
		{"new node", RegisterNode{ID: 3, RaftAddr: "10.0.0.3:7000", KafkaAddr: "broker3:9092"}, nil},
		{"new addresses", RegisterNode{ID: 1, RaftAddr: "[::1]:7001", KafkaAddr: "node1:9093"}, nil},
		{"the largest id", RegisterNode{ID: FirstMovedReplicaID - 1, RaftAddr: "n:1", KafkaAddr: "n:2"}, nil},
		{"id 0", RegisterNode{ID: 0, RaftAddr: "n:1", KafkaAddr: "n:2"}, ErrInvalidRequest},
		{"id in the moved-replica range", RegisterNode{ID: FirstMovedReplicaID, RaftAddr: "n:1", KafkaAddr: "n:2"}, ErrInvalidRequest},
		{"no port", RegisterNode{ID: 3, RaftAddr: "n", KafkaAddr: "n:2"}, ErrInvalidRequest},
		{"no host", RegisterNode{ID: 3, RaftAddr: ":7000", KafkaAddr: "n:2"}, ErrInvalidRequest},
		{"port 0", RegisterNode{ID: 3, RaftAddr: "n:1", KafkaAddr: "n:0"}, ErrInvalidRequest},
		{"port too large", RegisterNode{ID: 3, RaftAddr: "n:65536", KafkaAddr: "n:2"}, ErrInvalidRequest},
		{"port not a number", RegisterNode{ID: 3, RaftAddr: "n:raft", KafkaAddr: "n:2"}, ErrInvalidRequest},
		{"address too long", RegisterNode{ID: 3, RaftAddr: strings.Repeat("n", MaxAddrLen) + ":1", KafkaAddr: "n:2"}, ErrInvalidRequest},
		{"another node's raft address", RegisterNode{ID: 3, RaftAddr: "node2:7000", KafkaAddr: "n:2"}, ErrInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := cluster(t, 2)
			r := apply(t, s, c.cmd)
			if c.err != nil {
				require.ErrorIs(t, r.Err(), c.err)
				return
			}
			require.NoError(t, r.Err())
			n, ok := s.Node(c.cmd.ID)
			require.True(t, ok)
			require.Equal(t, Node(c.cmd), n)
			want := 3 // nodes 1 and 2, and the new one
			if c.cmd.ID <= 2 {
				want = 2
			}
			require.Len(t, s.Nodes(), want)
		})
	}
}

func TestNodesSorted(t *testing.T) {
	s := NewState()
	for _, id := range []uint64{5, 2, 9, 1} {
		mustApply(t, s, node(id))
	}
	var ids []uint64
	for _, n := range s.Nodes() {
		ids = append(ids, n.ID)
	}
	require.Equal(t, []uint64{1, 2, 5, 9}, ids)
}

func TestAllocateProducerIDs(t *testing.T) {
	s := NewState()
	require.Equal(t, FirstProducerID, s.NextProducerID())
	require.Equal(t, uint64(1000), mustApply(t, s, AllocateProducerIDs{Count: 1}).Value)
	require.Equal(t, uint64(1001), mustApply(t, s, AllocateProducerIDs{Count: 100}).Value)
	require.Equal(t, uint64(1101), mustApply(t, s, AllocateProducerIDs{Count: MaxProducerIDBlock}).Value)
	require.Equal(t, int64(1101+MaxProducerIDBlock), s.NextProducerID())
	for _, n := range []int64{0, -1, MaxProducerIDBlock + 1} {
		require.ErrorIs(t, apply(t, s, AllocateProducerIDs{Count: n}).Err(), ErrInvalidRequest, "count %d", n)
	}
}

func TestPipelines(t *testing.T) {
	s := NewState()
	require.Equal(t, uint64(1), mustApply(t, s, PutPipeline{Name: "plays", Spec: []byte("a: 1")}).Version)
	require.Equal(t, uint64(2), mustApply(t, s, PutPipeline{Name: "clicks", Spec: []byte("b: 1")}).Version)
	v := s.Version()
	require.Equal(t, uint64(1), mustApply(t, s, PutPipeline{Name: "plays", Spec: []byte("a: 1")}).Version, "same spec: same version")
	require.Equal(t, v, s.Version())
	require.Equal(t, uint64(3), mustApply(t, s, PutPipeline{Name: "plays", Spec: []byte("a: 2")}).Version)

	p, ok := s.Pipeline("plays")
	require.True(t, ok)
	require.Equal(t, Pipeline{Name: "plays", Spec: []byte("a: 2"), Version: 3}, p)
	p.Spec[0] = 'x'
	require.Equal(t, []Pipeline{{"clicks", []byte("b: 1"), 2}, {"plays", []byte("a: 2"), 3}}, s.Pipelines())

	mustApply(t, s, DeletePipeline{Name: "plays"})
	_, ok = s.Pipeline("plays")
	require.False(t, ok)
	require.ErrorIs(t, apply(t, s, DeletePipeline{Name: "plays"}).Err(), ErrUnknownPipeline)
	require.Equal(t, uint64(4), mustApply(t, s, PutPipeline{Name: "plays", Spec: []byte("a: 1")}).Version, "a version is never given twice")

	for name, cmd := range map[string]PutPipeline{
		"empty name":     {Spec: []byte("a")},
		"name too long":  {Name: strings.Repeat("p", MaxNameLen+1), Spec: []byte("a")},
		"empty spec":     {Name: "p"},
		"spec too large": {Name: "p", Spec: make([]byte, MaxValueBytes+1)},
	} {
		require.ErrorIs(t, apply(t, s, cmd).Err(), ErrInvalidRequest, name)
	}
}

func TestCheckpoints(t *testing.T) {
	s := NewState()
	mustApply(t, s, PutCheckpoint{Key: "plays/file", Value: []byte{1, 2}})
	v, ok := s.Checkpoint("plays/file")
	require.True(t, ok)
	require.Equal(t, []byte{1, 2}, v)
	v[0] = 9
	v, _ = s.Checkpoint("plays/file")
	require.Equal(t, []byte{1, 2}, v, "a copy")

	version := s.Version()
	mustApply(t, s, PutCheckpoint{Key: "plays/file", Value: []byte{1, 2}})
	mustApply(t, s, PutCheckpoint{Key: "never", Value: nil})
	require.Equal(t, version, s.Version(), "no change")

	mustApply(t, s, PutCheckpoint{Key: "plays/file"})
	_, ok = s.Checkpoint("plays/file")
	require.False(t, ok, "an empty value deletes")

	require.ErrorIs(t, apply(t, s, PutCheckpoint{Value: []byte{1}}).Err(), ErrInvalidRequest)
	require.ErrorIs(t, apply(t, s, PutCheckpoint{Key: strings.Repeat("k", MaxCheckpointKeyLen+1), Value: []byte{1}}).Err(), ErrInvalidRequest)
	require.ErrorIs(t, apply(t, s, PutCheckpoint{Key: "k", Value: make([]byte, MaxValueBytes+1)}).Err(), ErrInvalidRequest)
}

func TestRequestLeaderBalance(t *testing.T) {
	s := NewState()
	version := s.Version()
	mustApply(t, s, RequestLeaderBalance{})
	mustApply(t, s, RequestLeaderBalance{})
	require.Equal(t, uint64(2), s.LeaderBalances())
	require.Greater(t, s.Version(), version, "watchers see the request")

	var buf bytes.Buffer
	require.NoError(t, s.Save(&buf))
	loaded := NewState()
	require.NoError(t, loaded.Load(&buf))
	require.Equal(t, uint64(2), loaded.LeaderBalances(), "kept in snapshots")
}

func TestReportLeaders(t *testing.T) {
	s := NewState()
	for id := range uint64(4) {
		mustApply(t, s, RegisterNode{ID: id + 1, RaftAddr: fmt.Sprintf("n%d:1", id+1), KafkaAddr: fmt.Sprintf("n%d:2", id+1)})
	}
	mustApply(t, s, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{1, 2, 3}}, NowMs: 1})
	shard := s.Topics()[0].Partitions[0].ShardID
	leader := func() (uint64, uint64) {
		p := s.Topics()[0].Partitions[0]
		return p.Leader, p.LeaderTerm
	}

	mustApply(t, s, ReportLeaders{NodeID: 2, Shards: []ShardTerm{{ShardID: shard, Term: 4}}})
	n, term := leader()
	require.Equal(t, []uint64{2, 4}, []uint64{n, term})

	version := s.Version()
	mustApply(t, s, ReportLeaders{NodeID: 1, Shards: []ShardTerm{{ShardID: shard, Term: 3}}}) // stale
	mustApply(t, s, ReportLeaders{NodeID: 2, Shards: []ShardTerm{{ShardID: shard, Term: 4}}}) // the same
	require.Equal(t, version, s.Version(), "no change")

	mustApply(t, s, ReportLeaders{NodeID: 3, Shards: []ShardTerm{{ShardID: shard, Term: 5}}})
	n, term = leader()
	require.Equal(t, []uint64{3, 5}, []uint64{n, term})

	require.ErrorIs(t, apply(t, s, ReportLeaders{NodeID: 4, Shards: []ShardTerm{{ShardID: shard, Term: 9}}}).Err(), ErrInvalidRequest, "not a replica")
	require.ErrorIs(t, apply(t, s, ReportLeaders{NodeID: 1, Shards: []ShardTerm{{ShardID: shard + 1, Term: 9}}}).Err(), ErrInvalidRequest, "no such shard")

	var buf bytes.Buffer
	require.NoError(t, s.Save(&buf))
	loaded := NewState()
	require.NoError(t, loaded.Load(&buf))
	require.Equal(t, s.Topics(), loaded.Topics(), "kept in snapshots")

	version = s.Version()
	require.ErrorIs(t, apply(t, s, ReportLeaders{NodeID: 1, Shards: []ShardTerm{{ShardID: shard, Term: 9}, {ShardID: shard + 7, Term: 9}}}).Err(), ErrInvalidRequest)
	require.Equal(t, version, s.Version(), "one bad shard: nothing changes")
}
