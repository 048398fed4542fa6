package meta

import (
	"cmp"
	"maps"
	"slices"
)

// Identifiers the meta shard hands out. Shard ids and replica ids are
// dragonboat's; producer ids are Kafka's.
const (
	// MetaShardID is the Raft shard that holds this state.
	MetaShardID uint64 = 1
	// FirstPartitionShardID is the first shard id given to a partition;
	// the ids below it are kept for Samsa's own shards.
	FirstPartitionShardID uint64 = 1000
	// FirstMovedReplicaID is where replica ids for moved replicas will
	// start, above every node id, so that a replica added by a move never
	// takes the id of a node's original replica in the same shard.
	FirstMovedReplicaID uint64 = 1 << 32
	// FirstProducerID is the first producer id handed out; Kafka clients
	// treat small ids as ordinary, this just keeps them recognisable.
	FirstProducerID int64 = 1000
)

// Limits that keep the state bounded and an apply cheap. Lengths are in
// bytes.
const (
	MaxNameLen          = 249     // topic, group, pipeline names and schema subjects (Kafka's topic limit)
	MaxMetadataBytes    = 4 << 10 // a committed offset's metadata string
	MaxValueBytes       = 1 << 20 // a pipeline spec, connector checkpoint or schema
	MaxCheckpointKeyLen = 1 << 10 // a connector checkpoint's key
	MaxAddrLen          = 512     // a node's Raft or Kafka address
	MaxProducerIDBlock  = 1 << 20 // producer ids reserved by one command
	MaxReportedLeaders  = 1 << 16 // shards in one ReportLeaders
)

// Node is a registered member of the cluster.
type Node struct {
	ID        uint64 // ≥ 1; also its replica id in every shard it was placed on at creation
	RaftAddr  string // host:port of its dragonboat NodeHost
	KafkaAddr string // host:port its Kafka listener advertises
}

// Topic is a topic and where its partitions live.
type Topic struct {
	Name string
	// ID is the Kafka topic id (a UUID), chosen by the proposer; never zero.
	ID                [16]byte
	Partitions        []Partition // index = partition number
	ReplicationFactor int16
	// Configs holds only the configs set explicitly; see LogSettings and
	// DescribeConfigs for the values in effect. Never nil in a copy.
	Configs   map[string]string
	CreatedMs int64
}

// Partition is one partition of a topic: its Raft shard and the replicas
// of that shard.
type Partition struct {
	ShardID  uint64
	Replicas []Replica // the first is the preferred leader
	// Leader is the node that last reported leading the shard, in Raft
	// term LeaderTerm (ReportLeader); 0 if none has. Nodes without a
	// replica of the partition answer Kafka's Metadata with it.
	Leader     uint64 `json:",omitempty"`
	LeaderTerm uint64 `json:",omitempty"`
	// Target is set while the partition moves: the nodes it will end on,
	// preferred leader first (move.go).
	Target []uint64 `json:",omitempty"`
}

// Replica is one member of a partition's shard.
type Replica struct {
	ReplicaID uint64
	NodeID    uint64
	// Learner marks a replica added by a move that is not yet a voter (a
	// dragonboat non-voting member); CaughtUp, that it has caught up.
	Learner  bool `json:",omitempty"`
	CaughtUp bool `json:",omitempty"`
}

// Pipeline is a stored pipeline spec.
type Pipeline struct {
	Name string
	Spec []byte // the YAML, opaque here
	// Version changes whenever the spec does. It comes from one counter
	// shared by all pipelines, so a pipeline deleted and put again never
	// gets a version it had before.
	Version uint64
}

// State is the cluster metadata held by the meta shard. It changes only
// through Apply, deterministically: everything a command's outcome
// depends on travels in the command. It is not safe for concurrent use;
// read methods return copies that the caller owns.
type State struct {
	version uint64 // bumped by every apply that changes something

	nodes  map[uint64]Node
	topics map[string]*Topic
	byID   map[[16]byte]string // topic id → name, derived from topics

	groups      map[string]groupOffsets
	pipelines   map[string]Pipeline
	checkpoints map[string][]byte
	schemas     schemaStore
	txns        map[string]*Txn     // transactional id → its producer and transaction
	lagging     map[uint64][]uint64 // node → partition shards it reported behind (lag.go)

	nextShardID         uint64
	nextReplicaID       uint64
	nextProducerID      int64
	nextPipelineVersion uint64
	leaderBalances      uint64 // RequestLeaderBalance commands applied
}

// NewState returns the state of a new cluster: no nodes, no topics.
func NewState() *State {
	return &State{
		nodes:               map[uint64]Node{},
		topics:              map[string]*Topic{},
		byID:                map[[16]byte]string{},
		groups:              map[string]groupOffsets{},
		pipelines:           map[string]Pipeline{},
		checkpoints:         map[string][]byte{},
		schemas:             newSchemaStore(),
		txns:                map[string]*Txn{},
		lagging:             map[uint64][]uint64{},
		nextShardID:         FirstPartitionShardID,
		nextReplicaID:       FirstMovedReplicaID,
		nextProducerID:      FirstProducerID,
		nextPipelineVersion: 1,
	}
}

// Version counts the applies that changed the state. Watchers compare it
// to notice any change; it is part of snapshots, so every replica agrees.
func (s *State) Version() uint64 { return s.version }

// LeaderBalances counts the RequestLeaderBalance commands applied: a node
// that sees it grow balances leadership at once.
func (s *State) LeaderBalances() uint64 { return s.leaderBalances }

// changed marks a successful apply that modified the state.
func (s *State) changed() { s.version++ }

// Nodes returns every registered node, by id.
func (s *State) Nodes() []Node {
	out := slices.Collect(maps.Values(s.nodes))
	slices.SortFunc(out, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Node returns one registered node.
func (s *State) Node(id uint64) (Node, bool) {
	n, ok := s.nodes[id]
	return n, ok
}

// NextProducerID is the first id the next AllocateProducerIDs will hand out.
func (s *State) NextProducerID() int64 { return s.nextProducerID }

// NextShardID is the id the next partition created will get.
func (s *State) NextShardID() uint64 { return s.nextShardID }

// sortedKeys returns m's keys in order: no result or encoding may depend on
// map iteration order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
