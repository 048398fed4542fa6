package meta

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

const snapshotFormat = 1

// snapshot is the saved form of a State: one JSON object, every collection
// a slice in key order, so the same state always saves the same bytes.
// The field names of Node, Partition, Replica, Pipeline and GroupOffset
// are part of the format (TestSnapshotFormat pins it).
type snapshot struct {
	Format              int
	Version             uint64
	NextShardID         uint64
	NextReplicaID       uint64
	NextProducerID      int64
	NextPipelineVersion uint64
	NextSchemaID        int
	LeaderBalances      uint64           `json:",omitempty"`
	Nodes               []Node           `json:",omitempty"`
	Topics              []snapTopic      `json:",omitempty"`
	Groups              []snapGroup      `json:",omitempty"`
	Pipelines           []Pipeline       `json:",omitempty"`
	Checkpoints         []snapCheckpoint `json:",omitempty"`
	Schemas             []snapSchema     `json:",omitempty"` // by id
	Subjects            []snapSubject    `json:",omitempty"` // by name
	Txns                []Txn            `json:",omitempty"` // by transactional id
	Lagging             []snapLagging    `json:",omitempty"` // by node
}

type snapTopic struct {
	Name              string
	ID                [16]byte
	Partitions        []Partition
	ReplicationFactor int16
	Configs           map[string]string `json:",omitempty"` // encoding/json sorts map keys
	CreatedMs         int64
}

type snapGroup struct {
	Group   string
	Offsets []GroupOffset
}

type snapCheckpoint struct {
	Key   string
	Value []byte
}

type snapSchema struct {
	ID     int
	Schema string
}

type snapSubject struct {
	Subject  string
	Versions []schemaRef
}

// Save writes the whole state, counters included. The same state always
// writes the same bytes.
func (s *State) Save(w io.Writer) error {
	snap := snapshot{
		Format: snapshotFormat, Version: s.version,
		NextShardID: s.nextShardID, NextReplicaID: s.nextReplicaID, NextProducerID: s.nextProducerID,
		NextPipelineVersion: s.nextPipelineVersion, NextSchemaID: s.schemas.nextID,
		LeaderBalances: s.leaderBalances, Nodes: s.Nodes(), Pipelines: s.Pipelines(),
	}
	for _, name := range sortedKeys(s.topics) {
		t := s.topics[name]
		snap.Topics = append(snap.Topics, snapTopic{t.Name, t.ID, t.Partitions, t.ReplicationFactor, t.Configs, t.CreatedMs})
	}
	for _, g := range sortedKeys(s.groups) {
		snap.Groups = append(snap.Groups, snapGroup{g, s.GroupOffsets(g)})
	}
	for _, k := range sortedKeys(s.checkpoints) {
		snap.Checkpoints = append(snap.Checkpoints, snapCheckpoint{k, s.checkpoints[k]})
	}
	for _, id := range sortedKeys(s.schemas.texts) {
		snap.Schemas = append(snap.Schemas, snapSchema{id, s.schemas.texts[id]})
	}
	for _, sub := range sortedKeys(s.schemas.subjects) {
		snap.Subjects = append(snap.Subjects, snapSubject{sub, s.schemas.subjects[sub]})
	}
	for _, id := range sortedKeys(s.txns) {
		snap.Txns = append(snap.Txns, s.txns[id].clone())
	}
	snap.Lagging = s.saveLagging()
	b, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("meta: saving snapshot: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("meta: saving snapshot: %w", err)
	}
	return nil
}

// Load replaces the whole state by the one r holds. It reads r to its end
// and checks every invariant Apply keeps. Any error, a read error
// included, wraps ErrBadSnapshot and leaves the state as it was.
func (s *State) Load(r io.Reader) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var snap snapshot
	if err := dec.Decode(&snap); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the snapshot", ErrBadSnapshot)
	}
	st, err := snap.restore()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	*s = *st
	return nil
}

// ascending checks that keys are strictly increasing: sorted, no duplicates.
func ascending[K cmp.Ordered](what string, keys []K) error {
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			return fmt.Errorf("%s %v out of order or repeated", what, keys[i])
		}
	}
	return nil
}

func keysOf[T any, K cmp.Ordered](items []T, key func(T) K) []K {
	out := make([]K, len(items))
	for i, it := range items {
		out[i] = key(it)
	}
	return out
}

// restore builds the state snap describes, checking it as it goes.
func (snap *snapshot) restore() (*State, error) {
	s := NewState()
	switch {
	case snap.Format != snapshotFormat:
		return nil, fmt.Errorf("format %d", snap.Format)
	case snap.NextShardID < FirstPartitionShardID, snap.NextReplicaID < FirstMovedReplicaID,
		snap.NextProducerID < FirstProducerID, snap.NextPipelineVersion < 1, snap.NextSchemaID < 1:
		return nil, errors.New("counter below its start")
	}
	s.nextShardID, s.nextReplicaID = snap.NextShardID, snap.NextReplicaID
	s.nextProducerID, s.nextPipelineVersion, s.schemas.nextID = snap.NextProducerID, snap.NextPipelineVersion, snap.NextSchemaID
	s.leaderBalances = snap.LeaderBalances
	for _, step := range []func(*State) error{snap.restoreNodes, snap.restoreTopics, snap.restoreGroups, snap.restoreStore, snap.restoreSchemas, snap.restoreTxns, snap.restoreLagging} {
		if err := step(s); err != nil {
			return nil, err
		}
	}
	s.version = snap.Version // after the steps: restoring nodes goes through registerNode
	return s, nil
}

func (snap *snapshot) restoreTxns(s *State) error {
	if err := checkTxns(snap.Txns); err != nil {
		return err
	}
	for _, t := range snap.Txns {
		if t.ProducerID >= s.nextProducerID {
			return fmt.Errorf("transactional id %q: producer %d not allocated", t.ID, t.ProducerID)
		}
		s.txns[t.ID] = &t
	}
	return nil
}

func (snap *snapshot) restoreNodes(s *State) error {
	if err := ascending("node", keysOf(snap.Nodes, func(n Node) uint64 { return n.ID })); err != nil {
		return err
	}
	for _, n := range snap.Nodes {
		if r := s.registerNode(RegisterNode(n)); r.Code != CodeOK {
			return r.Err()
		}
	}
	return nil
}

func (snap *snapshot) restoreTopics(s *State) error {
	if err := ascending("topic", keysOf(snap.Topics, func(t snapTopic) string { return t.Name })); err != nil {
		return err
	}
	shards := map[uint64]bool{}
	for _, t := range snap.Topics {
		if err := ValidateTopicName(t.Name); err != nil {
			return err
		}
		if _, dup := s.byID[t.ID]; dup || t.ID == ([16]byte{}) {
			return fmt.Errorf("topic %q: zero or repeated id", t.Name)
		}
		if len(t.Partitions) == 0 || t.ReplicationFactor < 1 {
			return fmt.Errorf("topic %q: no partitions or replicas", t.Name)
		}
		for i, p := range t.Partitions {
			if p.ShardID < FirstPartitionShardID || p.ShardID >= s.nextShardID || shards[p.ShardID] {
				return fmt.Errorf("topic %q partition %d: shard %d unallocated or repeated", t.Name, i, p.ShardID)
			}
			shards[p.ShardID] = true
			if err := s.checkReplicas(p, int(t.ReplicationFactor)); err != nil {
				return fmt.Errorf("topic %q partition %d: %v", t.Name, i, err)
			}
		}
		if err := ValidateConfigs(t.Configs); err != nil {
			return err
		}
		s.topics[t.Name] = &Topic{t.Name, t.ID, t.Partitions, t.ReplicationFactor, cloneConfigs(t.Configs), t.CreatedMs}
		s.byID[t.ID] = t.Name
	}
	return nil
}

// checkReplicas checks a stored partition's replicas: rf voters (more
// while a move is in progress, learners besides), on registered nodes, no
// node or replica id twice, replica ids either the node's own or
// allocated from the moved-replica counter; a target of rf registered
// nodes, and learners only while moving (a learner's node may have left
// the target since).
func (s *State) checkReplicas(p Partition, rf int) error {
	voters := 0
	for i, r := range p.Replicas {
		if _, ok := s.nodes[r.NodeID]; !ok {
			return fmt.Errorf("replica on unknown node %d", r.NodeID)
		}
		if r.ReplicaID != r.NodeID && (r.ReplicaID < FirstMovedReplicaID || r.ReplicaID >= s.nextReplicaID) {
			return fmt.Errorf("unallocated replica id %d", r.ReplicaID)
		}
		for _, o := range p.Replicas[:i] {
			if o.NodeID == r.NodeID || o.ReplicaID == r.ReplicaID {
				return fmt.Errorf("node %d or replica %d twice", r.NodeID, r.ReplicaID)
			}
		}
		switch {
		case !r.Learner && r.CaughtUp:
			return fmt.Errorf("voter %d marked caught up", r.ReplicaID)
		case !r.Learner:
			voters++
		}
	}
	if p.Target == nil && voters != len(p.Replicas) {
		return errors.New("learners without a move")
	}
	if voters < rf || (p.Target == nil && voters != rf) {
		return fmt.Errorf("%d replicas, replication factor %d", voters, rf)
	}
	if p.Target != nil {
		if err := s.checkPlacements(0, [][]uint64{p.Target}, rf); err != nil {
			return fmt.Errorf("target: %v", err)
		}
	}
	return nil
}

func (snap *snapshot) restoreGroups(s *State) error {
	if err := ascending("group", keysOf(snap.Groups, func(g snapGroup) string { return g.Group })); err != nil {
		return err
	}
	for _, g := range snap.Groups {
		if err := checkGroup(g.Group); err != nil {
			return err
		}
		if len(g.Offsets) == 0 {
			return fmt.Errorf("group %q without offsets", g.Group)
		}
		offsets := groupOffsets{}
		for i, o := range g.Offsets {
			if i > 0 && compareTP(g.Offsets[i-1].TopicPartition, o.TopicPartition) >= 0 {
				return fmt.Errorf("group %q: offsets out of order", g.Group)
			}
			if !s.partitionExists(o.Topic, o.Partition) || len(o.Metadata) > MaxMetadataBytes {
				return fmt.Errorf("group %q: bad offset for %s/%d", g.Group, o.Topic, o.Partition)
			}
			if offsets[o.Topic] == nil {
				offsets[o.Topic] = map[int32]CommittedOffset{}
			}
			offsets[o.Topic][o.Partition] = o.CommittedOffset
		}
		s.groups[g.Group] = offsets
	}
	return nil
}

func compareTP(a, b TopicPartition) int {
	return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// restoreStore restores pipelines and checkpoints.
func (snap *snapshot) restoreStore(s *State) error {
	if err := ascending("pipeline", keysOf(snap.Pipelines, func(p Pipeline) string { return p.Name })); err != nil {
		return err
	}
	for _, p := range snap.Pipelines {
		if checkName("pipeline", p.Name, MaxNameLen) != nil || len(p.Spec) == 0 || len(p.Spec) > MaxValueBytes ||
			p.Version < 1 || p.Version >= s.nextPipelineVersion {
			return fmt.Errorf("bad pipeline %q", p.Name)
		}
		s.pipelines[p.Name] = p
	}
	if err := ascending("checkpoint", keysOf(snap.Checkpoints, func(c snapCheckpoint) string { return c.Key })); err != nil {
		return err
	}
	for _, c := range snap.Checkpoints {
		if checkName("checkpoint", c.Key, MaxCheckpointKeyLen) != nil || len(c.Value) == 0 || len(c.Value) > MaxValueBytes {
			return fmt.Errorf("bad checkpoint %q", c.Key)
		}
		s.checkpoints[c.Key] = bytes.Clone(c.Value)
	}
	return nil
}

func (snap *snapshot) restoreSchemas(s *State) error {
	st := &s.schemas
	if err := ascending("schema id", keysOf(snap.Schemas, func(sc snapSchema) int { return sc.ID })); err != nil {
		return err
	}
	for _, sc := range snap.Schemas {
		_, dup := st.ids[sc.Schema]
		if sc.ID < 1 || sc.ID >= st.nextID || sc.Schema == "" || len(sc.Schema) > MaxValueBytes || dup {
			return fmt.Errorf("bad schema %d", sc.ID)
		}
		st.texts[sc.ID], st.ids[sc.Schema] = sc.Schema, sc.ID
	}
	if err := ascending("subject", keysOf(snap.Subjects, func(sub snapSubject) string { return sub.Subject })); err != nil {
		return err
	}
	for _, sub := range snap.Subjects {
		if sub.Subject == "" || len(sub.Subject) > MaxNameLen || len(sub.Versions) == 0 {
			return fmt.Errorf("bad subject %q", sub.Subject)
		}
		seen := map[int]bool{}
		for i, v := range sub.Versions {
			if _, ok := st.texts[v.ID]; !ok || v.Version != i+1 || seen[v.ID] {
				return fmt.Errorf("subject %q: bad version %d", sub.Subject, v.Version)
			}
			seen[v.ID] = true
		}
		st.subjects[sub.Subject] = sub.Versions
	}
	return nil
}
