package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Command is one change to the state, proposed through Raft as the bytes
// Encode returns. The op structs below are the only implementations.
type Command interface{ op() string }

// RegisterNode adds a node, or updates the addresses of a registered one.
type RegisterNode struct {
	ID        uint64
	RaftAddr  string
	KafkaAddr string
}

// CreateTopic creates a topic with len(Placements) partitions; placement
// i lists the nodes of partition i's replicas, preferred leader first,
// and every placement has the topic's replication factor as its length.
type CreateTopic struct {
	Name       string
	ID         [16]byte // the topic's Kafka UUID, chosen by the proposer
	Placements [][]uint64
	Configs    map[string]string
	NowMs      int64 // the proposer's clock: the topic's creation time
}

// DeleteTopic deletes a topic and every group's committed offsets for it.
type DeleteTopic struct {
	Name string
}

// CreatePartitions grows a topic to Total partitions. Placements are for
// the new partitions only, so len(Placements) must be Total minus the
// current count: a proposal computed from a stale count is refused rather
// than adding partitions twice.
type CreatePartitions struct {
	Name       string
	Total      int32
	Placements [][]uint64
}

// AlterConfigs changes a topic's explicitly set configs. With Replace (Kafka's
// non-incremental AlterConfigs) the set becomes exactly Set and Delete must
// be empty; without it (IncrementalAlterConfigs) Set is merged in and the
// keys in Delete return to their defaults.
type AlterConfigs struct {
	Name    string
	Set     map[string]string
	Delete  []string
	Replace bool
}

// CommitOffsets stores a consumer group's committed offsets. Each entry
// is accepted or refused on its own (Result.Items).
type CommitOffsets struct {
	Group   string
	Offsets []OffsetCommit
	NowMs   int64 // the proposer's clock: the commit time
}

// OffsetCommit is one partition's offset in CommitOffsets.
type OffsetCommit struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// DeleteGroup deletes a group's committed offsets. Whether the group has
// live members is the coordinator's to check before proposing.
type DeleteGroup struct {
	Group string
}

// DeleteOffsets deletes a group's offsets for some partitions of a topic
// (Kafka's OffsetDelete). Each partition is answered on its own
// (Result.Items).
type DeleteOffsets struct {
	Group      string
	Topic      string
	Partitions []int32
}

// AllocateProducerIDs reserves Count consecutive producer ids, 1 to
// MaxProducerIDBlock; Result.Value is the first.
type AllocateProducerIDs struct {
	Count int64
}

// PutPipeline stores a pipeline spec. Putting the spec a pipeline already
// has changes nothing and answers its current version.
type PutPipeline struct {
	Name string
	Spec []byte
}

// DeletePipeline deletes a pipeline spec.
type DeletePipeline struct {
	Name string
}

// PutCheckpoint stores a connector checkpoint; an empty Value deletes it.
type PutCheckpoint struct {
	Key   string
	Value []byte
}

// RegisterSchema adds a schema version to a subject, with the dedupe rules
// of Confluent's registry (see schema.go).
type RegisterSchema struct {
	Subject string
	Schema  string
}

// ReportLeaders records that a node leads partition shards, each in a
// Raft term. A shard's report of an older term than the one recorded
// changes nothing.
type ReportLeaders struct {
	NodeID uint64
	Shards []ShardTerm
}

// ShardTerm is a shard and a Raft term.
type ShardTerm struct {
	ShardID uint64
	Term    uint64
}

// RequestLeaderBalance asks every node to move the leadership of the
// partitions it is the preferred replica of back to itself now, instead
// of at its next periodic check (Kafka's preferred leader election).
type RequestLeaderBalance struct{}

func (RegisterNode) op() string         { return "register_node" }
func (CreateTopic) op() string          { return "create_topic" }
func (DeleteTopic) op() string          { return "delete_topic" }
func (CreatePartitions) op() string     { return "create_partitions" }
func (AlterConfigs) op() string         { return "alter_configs" }
func (CommitOffsets) op() string        { return "commit_offsets" }
func (DeleteGroup) op() string          { return "delete_group" }
func (DeleteOffsets) op() string        { return "delete_offsets" }
func (AllocateProducerIDs) op() string  { return "allocate_producer_ids" }
func (PutPipeline) op() string          { return "put_pipeline" }
func (DeletePipeline) op() string       { return "delete_pipeline" }
func (PutCheckpoint) op() string        { return "put_checkpoint" }
func (RegisterSchema) op() string       { return "register_schema" }
func (RequestLeaderBalance) op() string { return "request_leader_balance" }
func (ReportLeaders) op() string        { return "report_leaders" }

// decoders maps each op name to the decoder of its struct.
var decoders = map[string]func(json.RawMessage) (Command, error){
	RegisterNode{}.op():         decodeArgs[RegisterNode],
	CreateTopic{}.op():          decodeArgs[CreateTopic],
	DeleteTopic{}.op():          decodeArgs[DeleteTopic],
	CreatePartitions{}.op():     decodeArgs[CreatePartitions],
	AlterConfigs{}.op():         decodeArgs[AlterConfigs],
	CommitOffsets{}.op():        decodeArgs[CommitOffsets],
	DeleteGroup{}.op():          decodeArgs[DeleteGroup],
	DeleteOffsets{}.op():        decodeArgs[DeleteOffsets],
	AllocateProducerIDs{}.op():  decodeArgs[AllocateProducerIDs],
	PutPipeline{}.op():          decodeArgs[PutPipeline],
	DeletePipeline{}.op():       decodeArgs[DeletePipeline],
	PutCheckpoint{}.op():        decodeArgs[PutCheckpoint],
	RegisterSchema{}.op():       decodeArgs[RegisterSchema],
	RequestLeaderBalance{}.op(): decodeArgs[RequestLeaderBalance],
	ReportLeaders{}.op():        decodeArgs[ReportLeaders],
	ReassignPartitions{}.op():   decodeArgs[ReassignPartitions],
	AddReplica{}.op():           decodeArgs[AddReplica],
	MarkCaughtUp{}.op():         decodeArgs[MarkCaughtUp],
	PromoteReplica{}.op():       decodeArgs[PromoteReplica],
	RemoveReplica{}.op():        decodeArgs[RemoveReplica],
	RemoveNode{}.op():           decodeArgs[RemoveNode],
	InitTxnProducer{}.op():      decodeArgs[InitTxnProducer],
	AddTxnPartitions{}.op():     decodeArgs[AddTxnPartitions],
	AddTxnGroup{}.op():          decodeArgs[AddTxnGroup],
	TxnCommitOffsets{}.op():     decodeArgs[TxnCommitOffsets],
	EndTxn{}.op():               decodeArgs[EndTxn],
	CompleteTxn{}.op():          decodeArgs[CompleteTxn],
	AbortTxn{}.op():             decodeArgs[AbortTxn],
	ReportLagging{}.op():        decodeArgs[ReportLagging],
}

// envelope is the encoding of a command: {"op":"create_topic","args":{...}}.
type envelope struct {
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args"`
}

// Encode returns the bytes to propose for cmd (a value or a pointer to
// one of the op structs). It cannot fail: the op structs hold only
// strings, numbers, byte slices and string-keyed maps. Strings that are
// not valid UTF-8 are encoded with U+FFFD in place of the bad bytes, so
// the state sees them so changed.
func Encode(cmd Command) []byte {
	args, err := json.Marshal(cmd)
	if err != nil {
		panic(fmt.Sprintf("meta: encoding %T: %v", cmd, err)) // unreachable, see above
	}
	b, err := json.Marshal(envelope{Op: cmd.op(), Args: args})
	if err != nil {
		panic(fmt.Sprintf("meta: encoding %T: %v", cmd, err))
	}
	return b
}

// Decode parses the bytes Encode made. It is strict: unknown ops, unknown
// fields and trailing bytes are refused with ErrBadCommand. The command
// returned is a value, never a pointer.
func Decode(b []byte) (Command, error) {
	var env envelope
	if err := decodeStrict(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	dec, ok := decoders[env.Op]
	if !ok {
		return nil, fmt.Errorf("%w: unknown op %q", ErrBadCommand, env.Op)
	}
	cmd, err := dec(env.Args)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadCommand, env.Op, err)
	}
	return cmd, nil
}

func decodeArgs[T Command](args json.RawMessage) (Command, error) {
	var c T
	if len(args) == 0 {
		return nil, fmt.Errorf("no args")
	}
	if err := decodeStrict(args, &c); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeStrict decodes exactly one JSON value from b into v, refusing
// unknown fields and anything after the value.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the command")
	}
	return nil
}

// Apply decodes and applies one committed command. A command that does
// not decode, or is refused, changes nothing; Version increases only when
// the state changed.
func (s *State) Apply(b []byte) Result {
	cmd, err := Decode(b)
	if err != nil {
		return refuse(err)
	}
	return s.apply(cmd)
}

// apply dispatches one decoded command. Each apply function checks
// everything before it changes anything, so a refusal leaves no trace.
func (s *State) apply(cmd Command) Result {
	switch c := cmd.(type) {
	case RegisterNode:
		return s.registerNode(c)
	case CreateTopic:
		return s.createTopic(c)
	case DeleteTopic:
		return s.deleteTopic(c)
	case CreatePartitions:
		return s.createPartitions(c)
	case AlterConfigs:
		return s.alterConfigs(c)
	case CommitOffsets:
		return s.commitOffsets(c)
	case DeleteGroup:
		return s.deleteGroup(c)
	case DeleteOffsets:
		return s.deleteOffsets(c)
	case AllocateProducerIDs:
		return s.allocateProducerIDs(c)
	case PutPipeline:
		return s.putPipeline(c)
	case DeletePipeline:
		return s.deletePipeline(c)
	case PutCheckpoint:
		return s.putCheckpoint(c)
	case RegisterSchema:
		return s.registerSchema(c)
	case ReportLeaders:
		return s.reportLeaders(c)
	case InitTxnProducer:
		return s.initTxnProducer(c)
	case AddTxnPartitions:
		return s.addTxnPartitions(c)
	case AddTxnGroup:
		return s.addTxnGroup(c)
	case TxnCommitOffsets:
		return s.txnCommitOffsets(c)
	case EndTxn:
		return s.endTxn(c)
	case CompleteTxn:
		return s.completeTxn(c)
	case AbortTxn:
		return s.abortTxn(c)
	case ReportLagging:
		return s.reportLagging(c)
	case ReassignPartitions:
		return s.reassignPartitions(c)
	case AddReplica:
		return s.addReplica(c)
	case MarkCaughtUp:
		return s.markCaughtUp(c)
	case PromoteReplica:
		return s.promoteReplica(c)
	case RemoveReplica:
		return s.removeReplica(c)
	case RemoveNode:
		return s.removeNode(c)
	case RequestLeaderBalance:
		s.leaderBalances++
		s.changed()
		return Result{}
	}
	return refuse(fmt.Errorf("%w: %T", ErrBadCommand, cmd))
}
