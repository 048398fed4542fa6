package meta

import (
	"fmt"
	"slices"
)

// Moving a partition's replicas (Kafka's partition reassignment). The
// controller records the nodes a partition should end on as its Target
// (ReassignPartitions); the partition's Raft leader then walks it there,
// one membership change at a time, recording each step here so that any
// node that becomes leader midway carries on from the same place:
//
//	AddReplica      a target node without a replica gets one, with a fresh
//	                replica id, as a Learner (a dragonboat non-voting
//	                member): it receives the log or a snapshot and counts
//	                for nothing
//	MarkCaughtUp    the learner's node saw it apply everything the leader
//	                had committed (a Raft ReadIndex)
//	PromoteReplica  the learner became a voter
//	RemoveReplica   a replica on a node outside the target left the shard;
//	                only once every target node has a voter, so the voters
//	                never number fewer than the replication factor
//
// When the replicas' nodes are the target's and none is a learner, the
// move is over: the replicas take the target's order (its first is the
// preferred leader) and Target is cleared.

// ReassignPartitions sets the target replicas of partitions, or with a
// nil Replicas cancels a partition's move (Kafka's
// AlterPartitionReassignments). Each move is answered on its own
// (Result.Items).
type ReassignPartitions struct {
	Moves []Reassignment
}

// Reassignment is one partition's move: the nodes it should end on,
// preferred leader first, as many as the topic's replication factor.
type Reassignment struct {
	Topic     string
	Partition int32
	Replicas  []uint64
}

// AddReplica gives a target node of a moving partition a learner replica
// with a new replica id (Result.Value).
type AddReplica struct {
	ShardID uint64
	NodeID  uint64
}

// MarkCaughtUp records that a learner has caught up with its leader.
type MarkCaughtUp struct {
	ShardID   uint64
	ReplicaID uint64
}

// PromoteReplica records that a learner is now a voter.
type PromoteReplica struct {
	ShardID   uint64
	ReplicaID uint64
}

// RemoveReplica removes a replica from a moving partition: a learner on a
// node no longer in the target, or a voter on a node outside the target
// once every target node has a voter.
type RemoveReplica struct {
	ShardID   uint64
	ReplicaID uint64
}

// RemoveNode removes a registered node that holds no replica and is no
// move's target (Kafka's UnregisterBroker). Its replicas must have been
// moved away first.
type RemoveNode struct {
	ID uint64
}

func (ReassignPartitions) op() string { return "reassign_partitions" }
func (AddReplica) op() string         { return "add_replica" }
func (MarkCaughtUp) op() string       { return "mark_caught_up" }
func (PromoteReplica) op() string     { return "promote_replica" }
func (RemoveReplica) op() string      { return "remove_replica" }
func (RemoveNode) op() string         { return "remove_node" }

// MaxReassignments bounds the moves of one ReassignPartitions.
const MaxReassignments = 1 << 16

func (s *State) reassignPartitions(c ReassignPartitions) Result {
	if len(c.Moves) > MaxReassignments {
		return refuse(fmt.Errorf("%w: %d moves in one command, at most %d", ErrInvalidRequest, len(c.Moves), MaxReassignments))
	}
	items := make([]Code, len(c.Moves))
	changed := false
	for i, m := range c.Moves {
		err := s.reassign(m)
		items[i] = CodeOf(err)
		changed = changed || err == nil
	}
	if changed {
		s.changed()
	}
	return Result{Items: items}
}

// CheckReassignment says why ReassignPartitions would refuse a move, or
// nil: a proposer asks first to answer with the reason, since the
// command's per-move results carry only codes.
func (s *State) CheckReassignment(m Reassignment) error {
	_, _, err := s.checkReassignment(m)
	return err
}

func (s *State) checkReassignment(m Reassignment) (*Topic, *Partition, error) {
	t, ok := s.topics[m.Topic]
	if !ok || m.Partition < 0 || int(m.Partition) >= len(t.Partitions) {
		return nil, nil, fmt.Errorf("%w: %s/%d", ErrUnknownTopic, m.Topic, m.Partition)
	}
	p := &t.Partitions[m.Partition]
	if m.Replicas == nil {
		if p.Target == nil {
			return nil, nil, fmt.Errorf("%w: %s/%d", ErrNoReassignment, m.Topic, m.Partition)
		}
		return t, p, nil
	}
	if err := s.checkPlacements(int(m.Partition), [][]uint64{m.Replicas}, int(t.ReplicationFactor)); err != nil {
		return nil, nil, fmt.Errorf("topic %q: %w", m.Topic, err)
	}
	return t, p, nil
}

// reassign sets or cancels one partition's target. Cancelling keeps the
// first voters (the replicas before the move, as far as they are still
// there) and lets the leader remove the learners and any other voter.
func (s *State) reassign(m Reassignment) error {
	t, p, err := s.checkReassignment(m)
	if err != nil {
		return err
	}
	if m.Replicas == nil {
		p.Target = nil
		for _, r := range p.Replicas {
			if !r.Learner && len(p.Target) < int(t.ReplicationFactor) {
				p.Target = append(p.Target, r.NodeID)
			}
		}
		p.complete()
		return nil
	}
	p.Target = slices.Clone(m.Replicas)
	p.complete()
	return nil
}

// complete ends a move whose replicas are the target's voters.
func (p *Partition) complete() {
	if p.Target == nil || len(p.Replicas) != len(p.Target) {
		return
	}
	ordered := make([]Replica, 0, len(p.Target))
	for _, n := range p.Target {
		i := slices.IndexFunc(p.Replicas, func(r Replica) bool { return r.NodeID == n })
		if i < 0 || p.Replicas[i].Learner {
			return
		}
		ordered = append(ordered, p.Replicas[i])
	}
	p.Replicas, p.Target = ordered, nil
}

// moving finds the partition of a shard that has a move in progress.
func (s *State) moving(shardID uint64) (*Topic, *Partition, error) {
	for _, name := range sortedKeys(s.topics) {
		t := s.topics[name]
		for i := range t.Partitions {
			if p := &t.Partitions[i]; p.ShardID == shardID {
				if p.Target == nil {
					return nil, nil, fmt.Errorf("%w: shard %d", ErrNoReassignment, shardID)
				}
				return t, p, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("%w: no partition has shard %d", ErrUnknownTopic, shardID)
}

func (s *State) addReplica(c AddReplica) Result {
	_, p, err := s.moving(c.ShardID)
	if err != nil {
		return refuse(err)
	}
	if !slices.Contains(p.Target, c.NodeID) {
		return refuse(fmt.Errorf("%w: node %d is not a target of shard %d", ErrInvalidReplicaAssignment, c.NodeID, c.ShardID))
	}
	if slices.ContainsFunc(p.Replicas, func(r Replica) bool { return r.NodeID == c.NodeID }) {
		return refuse(fmt.Errorf("%w: node %d already has a replica of shard %d", ErrInvalidReplicaAssignment, c.NodeID, c.ShardID))
	}
	id := s.nextReplicaID
	s.nextReplicaID++
	p.Replicas = append(p.Replicas, Replica{ReplicaID: id, NodeID: c.NodeID, Learner: true})
	s.changed()
	return success(id)
}

// replicaOf finds a replica of a moving partition.
func (s *State) replicaOf(shardID, replicaID uint64) (*Topic, *Partition, int, error) {
	t, p, err := s.moving(shardID)
	if err != nil {
		return nil, nil, 0, err
	}
	i := slices.IndexFunc(p.Replicas, func(r Replica) bool { return r.ReplicaID == replicaID })
	if i < 0 {
		return nil, nil, 0, fmt.Errorf("%w: shard %d has no replica %d", ErrInvalidReplicaAssignment, shardID, replicaID)
	}
	return t, p, i, nil
}

func (s *State) markCaughtUp(c MarkCaughtUp) Result {
	_, p, i, err := s.replicaOf(c.ShardID, c.ReplicaID)
	if err != nil {
		return refuse(err)
	}
	r := &p.Replicas[i]
	if !r.Learner {
		return refuse(fmt.Errorf("%w: replica %d of shard %d is a voter", ErrInvalidReplicaAssignment, c.ReplicaID, c.ShardID))
	}
	if r.CaughtUp {
		return Result{}
	}
	r.CaughtUp = true
	s.changed()
	return Result{}
}

func (s *State) promoteReplica(c PromoteReplica) Result {
	_, p, i, err := s.replicaOf(c.ShardID, c.ReplicaID)
	if err != nil {
		return refuse(err)
	}
	r := &p.Replicas[i]
	if !r.Learner {
		return Result{}
	}
	if !r.CaughtUp || !slices.Contains(p.Target, r.NodeID) {
		return refuse(fmt.Errorf("%w: replica %d of shard %d is not a caught-up learner of the target", ErrInvalidReplicaAssignment, c.ReplicaID, c.ShardID))
	}
	r.Learner, r.CaughtUp = false, false
	p.complete()
	s.changed()
	return Result{}
}

func (s *State) removeReplica(c RemoveReplica) Result {
	t, p, i, err := s.replicaOf(c.ShardID, c.ReplicaID)
	if err != nil {
		return refuse(err)
	}
	r := p.Replicas[i]
	if slices.Contains(p.Target, r.NodeID) {
		return refuse(fmt.Errorf("%w: node %d of replica %d is a target of shard %d", ErrInvalidReplicaAssignment, r.NodeID, r.ReplicaID, c.ShardID))
	}
	if !r.Learner {
		for _, n := range p.Target {
			if !slices.ContainsFunc(p.Replicas, func(o Replica) bool { return o.NodeID == n && !o.Learner }) {
				return refuse(fmt.Errorf("%w: shard %d: node %d has no voter yet; removing replica %d first would leave fewer than %d", ErrInvalidReplicaAssignment, c.ShardID, n, r.ReplicaID, t.ReplicationFactor))
			}
		}
	}
	p.Replicas = slices.Delete(p.Replicas, i, i+1)
	if p.Leader == r.NodeID {
		p.Leader = 0 // LeaderTerm stays: an older report must not bring it back
	}
	p.complete()
	s.changed()
	return Result{}
}

func (s *State) removeNode(c RemoveNode) Result {
	if _, ok := s.nodes[c.ID]; !ok {
		return refuse(fmt.Errorf("%w: node %d", ErrUnknownNode, c.ID))
	}
	for _, name := range sortedKeys(s.topics) {
		for i, p := range s.topics[name].Partitions {
			if slices.Contains(p.Target, c.ID) || slices.ContainsFunc(p.Replicas, func(r Replica) bool { return r.NodeID == c.ID }) {
				return refuse(fmt.Errorf("%w: node %d still holds or is to hold %s/%d: move its replicas first", ErrNodeInUse, c.ID, name, i))
			}
		}
	}
	delete(s.nodes, c.ID)
	delete(s.lagging, c.ID)
	s.changed()
	return Result{}
}
