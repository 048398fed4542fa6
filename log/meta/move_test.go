package meta

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// movingState has nodes 1–4 and topic t, one partition on 1, 2, 3 (shard
// 1000), with a move to 4, 2, 1 set.
func movingState(t *testing.T) *State {
	t.Helper()
	s := cluster(t, 4)
	mustApply(t, s, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{1, 2, 3}}})
	r := mustApply(t, s, ReassignPartitions{Moves: []Reassignment{{Topic: "t", Partition: 0, Replicas: []uint64{4, 2, 1}}}})
	require.Equal(t, []Code{CodeOK}, r.Items)
	return s
}

func partitionOf(t *testing.T, s *State) Partition {
	t.Helper()
	top, ok := s.Topic("t")
	require.True(t, ok)
	return top.Partitions[0]
}

func TestMoveWalkThrough(t *testing.T) {
	s := movingState(t)
	require.Equal(t, []uint64{4, 2, 1}, partitionOf(t, s).Target)

	// A voter outside the target cannot go before node 4 has a voter.
	require.ErrorIs(t, apply(t, s, RemoveReplica{ShardID: 1000, ReplicaID: 3}).Err(), ErrInvalidReplicaAssignment)
	// Nor can a learner be promoted before it caught up.
	id := mustApply(t, s, AddReplica{ShardID: 1000, NodeID: 4}).Value
	require.Equal(t, FirstMovedReplicaID, id, "a fresh replica id, never the node's")
	require.ErrorIs(t, apply(t, s, AddReplica{ShardID: 1000, NodeID: 4}).Err(), ErrInvalidReplicaAssignment, "one replica per node")
	require.ErrorIs(t, apply(t, s, AddReplica{ShardID: 1000, NodeID: 3}).Err(), ErrInvalidReplicaAssignment, "node 3 is not a target")
	require.ErrorIs(t, apply(t, s, PromoteReplica{ShardID: 1000, ReplicaID: id}).Err(), ErrInvalidReplicaAssignment)
	require.Equal(t, Replica{ReplicaID: id, NodeID: 4, Learner: true}, partitionOf(t, s).Replicas[3])

	mustApply(t, s, MarkCaughtUp{ShardID: 1000, ReplicaID: id})
	v := s.Version()
	mustApply(t, s, MarkCaughtUp{ShardID: 1000, ReplicaID: id})
	require.Equal(t, v, s.Version(), "marking again changes nothing")
	require.ErrorIs(t, apply(t, s, MarkCaughtUp{ShardID: 1000, ReplicaID: 1}).Err(), ErrInvalidReplicaAssignment, "a voter")
	mustApply(t, s, PromoteReplica{ShardID: 1000, ReplicaID: id})
	require.ErrorIs(t, apply(t, s, RemoveReplica{ShardID: 1000, ReplicaID: 1}).Err(), ErrInvalidReplicaAssignment, "node 1 is a target")
	require.ErrorIs(t, apply(t, s, RemoveNode{ID: 3}).Err(), ErrNodeInUse)

	mustApply(t, s, ReportLeaders{NodeID: 3, Shards: []ShardTerm{{ShardID: 1000, Term: 2}}})
	mustApply(t, s, RemoveReplica{ShardID: 1000, ReplicaID: 3})
	p := partitionOf(t, s)
	require.Nil(t, p.Target, "the move is over")
	require.Equal(t, []Replica{{ReplicaID: id, NodeID: 4}, {ReplicaID: 2, NodeID: 2}, {ReplicaID: 1, NodeID: 1}}, p.Replicas, "in the target's order")
	require.Zero(t, p.Leader, "the removed replica's leadership is forgotten")
	require.Equal(t, uint64(2), p.LeaderTerm)

	require.ErrorIs(t, apply(t, s, AddReplica{ShardID: 1000, NodeID: 3}).Err(), ErrNoReassignment)
	require.ErrorIs(t, apply(t, s, ReassignPartitions{Moves: []Reassignment{{Topic: "t"}}}).ItemErr(0), ErrNoReassignment)
	mustApply(t, s, RemoveNode{ID: 3})
	_, ok := s.Node(3)
	require.False(t, ok)
	require.ErrorIs(t, apply(t, s, RemoveNode{ID: 3}).Err(), ErrUnknownNode)

	restored := NewState()
	require.NoError(t, restored.Load(bytesReader(saved(t, s))))
	require.Equal(t, saved(t, s), saved(t, restored))
}

func TestReassignRefusals(t *testing.T) {
	s := cluster(t, 4)
	mustApply(t, s, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{1, 2, 3}}})
	r := mustApply(t, s, ReassignPartitions{Moves: []Reassignment{
		{Topic: "t", Partition: 0, Replicas: []uint64{1, 2}},       // below the replication factor
		{Topic: "t", Partition: 0, Replicas: []uint64{1, 2, 3, 4}}, // a change of replication factor
		{Topic: "t", Partition: 0, Replicas: []uint64{1, 2, 9}},    // unknown node
		{Topic: "t", Partition: 0, Replicas: []uint64{1, 2, 2}},    // twice
		{Topic: "t", Partition: 1, Replicas: []uint64{1, 2, 4}},    // no such partition
		{Topic: "t", Partition: 0},                                 // nothing to cancel
		{Topic: "t", Partition: 0, Replicas: []uint64{3, 1, 2}},    // the same nodes: done at once
	}})
	require.Equal(t, []Code{CodeInvalidReplicaAssignment, CodeInvalidReplicaAssignment, CodeInvalidReplicaAssignment,
		CodeInvalidReplicaAssignment, CodeUnknownTopic, CodeNoReassignment, CodeOK}, r.Items)
	p := partitionOf(t, s)
	require.Nil(t, p.Target)
	require.Equal(t, []Replica{{ReplicaID: 3, NodeID: 3}, {ReplicaID: 1, NodeID: 1}, {ReplicaID: 2, NodeID: 2}}, p.Replicas, "reordered: a new preferred leader")
}

// TestCancelMove cancels a move whose learner has become a voter: the
// target goes back to the first replicas, and the extra voter can leave.
func TestCancelMove(t *testing.T) {
	s := movingState(t)
	id := mustApply(t, s, AddReplica{ShardID: 1000, NodeID: 4}).Value
	mustApply(t, s, MarkCaughtUp{ShardID: 1000, ReplicaID: id})
	mustApply(t, s, PromoteReplica{ShardID: 1000, ReplicaID: id})
	r := mustApply(t, s, ReassignPartitions{Moves: []Reassignment{{Topic: "t"}}})
	require.Equal(t, []Code{CodeOK}, r.Items)
	require.Equal(t, []uint64{1, 2, 3}, partitionOf(t, s).Target)
	mustApply(t, s, RemoveReplica{ShardID: 1000, ReplicaID: id})
	p := partitionOf(t, s)
	require.Nil(t, p.Target)
	require.Equal(t, []Replica{{ReplicaID: 1, NodeID: 1}, {ReplicaID: 2, NodeID: 2}, {ReplicaID: 3, NodeID: 3}}, p.Replicas)

	// A learner still catching up when its node leaves the target.
	s = movingState(t)
	id = mustApply(t, s, AddReplica{ShardID: 1000, NodeID: 4}).Value
	mustApply(t, s, ReassignPartitions{Moves: []Reassignment{{Topic: "t", Partition: 0, Replicas: []uint64{3, 2, 1}}}})
	require.Len(t, partitionOf(t, s).Replicas, 4)
	restored := NewState()
	require.NoError(t, restored.Load(bytesReader(saved(t, s))), "a learner outside the target is a state a snapshot holds")
	mustApply(t, s, RemoveReplica{ShardID: 1000, ReplicaID: id})
	require.Nil(t, partitionOf(t, s).Target)
}
