package meta

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// everyOp has one valid command of each op, in an order that applies.
var everyOp = []Command{
	RegisterNode{ID: 1, RaftAddr: "a:1", KafkaAddr: "a:2"},
	CreateTopic{Name: "t", ID: uuid(7), Placements: [][]uint64{{1}}, Configs: map[string]string{"retention.ms": "-1", "cleanup.policy": "delete"}, NowMs: 5},
	CreatePartitions{Name: "t", Total: 2, Placements: [][]uint64{{1}}},
	AlterConfigs{Name: "t", Set: map[string]string{"segment.ms": "1000"}, Delete: []string{"retention.ms"}},
	CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 3, LeaderEpoch: 2, Metadata: "x"}}, NowMs: 6},
	DeleteOffsets{Group: "g", Topic: "t", Partitions: []int32{1}},
	CommitOffsets{Group: "h", Offsets: []OffsetCommit{{Topic: "t", Offset: 1}}},
	DeleteGroup{Group: "h"},
	AllocateProducerIDs{Count: 10},
	PutPipeline{Name: "p", Spec: []byte("name: p\n")},
	DeletePipeline{Name: "p"},
	PutCheckpoint{Key: "k", Value: []byte{0, 1, 0xff}},
	RegisterSchema{Subject: "t-value", Schema: `{"type":"string"}`},
	RequestLeaderBalance{},
	ReportLeaders{NodeID: 1, Shards: []ShardTerm{{ShardID: 1000, Term: 3}}},
	ReportLagging{NodeID: 1, Shards: []uint64{1001, 1000}},
	RegisterNode{ID: 2, RaftAddr: "b:1", KafkaAddr: "b:2"},
	ReassignPartitions{Moves: []Reassignment{{Topic: "t", Partition: 0, Replicas: []uint64{2}}}},
	AddReplica{ShardID: 1000, NodeID: 2},
	MarkCaughtUp{ShardID: 1000, ReplicaID: FirstMovedReplicaID},
	PromoteReplica{ShardID: 1000, ReplicaID: FirstMovedReplicaID},
	RemoveReplica{ShardID: 1000, ReplicaID: 1},
	RegisterNode{ID: 3, RaftAddr: "c:1", KafkaAddr: "c:2"},
	RemoveNode{ID: 3},
	InitTxnProducer{TxnID: "x", TimeoutMs: 60000, ProducerID: -1, Epoch: -1, NowMs: 7},
	AddTxnPartitions{TxnID: "x", ProducerID: 1010, Partitions: []TopicPartition{{"t", 1}, {"t", 0}}, NowMs: 8},
	AddTxnGroup{TxnID: "x", ProducerID: 1010, Group: "g", NowMs: 8},
	TxnCommitOffsets{TxnID: "x", ProducerID: 1010, Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 5}}, NowMs: 9},
	EndTxn{TxnID: "x", ProducerID: 1010, Commit: true, NowMs: 10},
	CompleteTxn{TxnID: "x", ProducerID: 1010, NowMs: 11},
	AddTxnPartitions{TxnID: "x", ProducerID: 1010, Partitions: []TopicPartition{{"t", 1}}, NowMs: 12},
	AbortTxn{TxnID: "x", ProducerID: 1010, Fence: true, NowMs: 13},
	DeleteTopic{Name: "t"},
}

func TestEncodeDecode(t *testing.T) {
	seen := map[string]bool{}
	for _, cmd := range everyOp {
		got, err := Decode(Encode(cmd))
		require.NoError(t, err)
		require.Equal(t, cmd, got)
		seen[cmd.op()] = true
	}
	require.Len(t, seen, len(decoders), "everyOp covers every op")

	ptr, err := Decode(Encode(&DeleteTopic{Name: "t"}))
	require.NoError(t, err)
	require.Equal(t, DeleteTopic{Name: "t"}, ptr, "a pointer encodes as its value")

	s := NewState()
	for _, cmd := range everyOp {
		mustApply(t, s, cmd)
	}
	require.Equal(t, uint64(len(everyOp)), s.Version())
}

func TestGarbageCommands(t *testing.T) {
	cases := map[string]string{
		"empty":               ``,
		"not JSON":            `\x00\x01`,
		"null":                `null`,
		"array":               `[]`,
		"no op":               `{"args":{}}`,
		"unknown op":          `{"op":"drop_everything","args":{}}`,
		"no args":             `{"op":"delete_topic"}`,
		"unknown field":       `{"op":"delete_topic","args":{"Name":"t","Force":true}}`,
		"unknown envelope":    `{"op":"delete_topic","args":{"Name":"t"},"why":1}`,
		"trailing data":       `{"op":"delete_topic","args":{"Name":"t"}} {}`,
		"trailing garbage":    `{"op":"delete_topic","args":{"Name":"t"}}x`,
		"truncated":           `{"op":"delete_topic","args":{"Name":"t"}`,
		"wrong type":          `{"op":"delete_topic","args":{"Name":5}}`,
		"negative uint":       `{"op":"register_node","args":{"ID":-1,"RaftAddr":"a:1","KafkaAddr":"a:2"}}`,
		"float for int":       `{"op":"allocate_producer_ids","args":{"Count":1.5}}`,
		"uuid byte too large": `{"op":"create_topic","args":{"Name":"u","ID":[256],"Placements":[[1]]}}`,
		"args not an object":  `{"op":"delete_topic","args":"t"}`,
	}
	s := cluster(t, 1)
	mustApply(t, s, topic("t", 1, 1))
	before, version := saved(t, s), s.Version()
	for name, b := range cases {
		r := s.Apply([]byte(b))
		require.ErrorIs(t, r.Err(), ErrBadCommand, name)
		require.Equal(t, version, s.Version(), name)
		require.Equal(t, before, saved(t, s), name)
	}
}

// randomCommand draws from a small universe of names and nodes so that
// commands meet each other: most apply, many are refused.
func randomCommand(r *rand.Rand, s *State) Command {
	pick := func(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, r.IntN(n)) }
	place := func(n, rf int) [][]uint64 {
		out := make([][]uint64, n)
		for i := range out {
			for _, p := range r.Perm(5)[:rf] {
				out[i] = append(out[i], uint64(p+1))
			}
		}
		return out
	}
	configValues := []map[string]string{nil, {"retention.ms": "-1"}, {"segment.bytes": "1048576", "message.timestamp.type": "LogAppendTime"}, {"cleanup.policy": "compact"}}
	if c := randomMove(r, s); c != nil && r.IntN(4) == 0 {
		return c
	}
	if r.IntN(5) == 0 {
		return randomTxn(r, s)
	}
	switch r.IntN(17) {
	case 0:
		id := uint64(r.IntN(5) + 1)
		return RegisterNode{ID: id, RaftAddr: fmt.Sprintf("n%d:7000", id), KafkaAddr: fmt.Sprintf("n%d:%d", id, 9000+r.IntN(3))}
	case 1:
		var id [16]byte
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		return CreateTopic{Name: pick("t", 6), ID: id, Placements: place(r.IntN(3), r.IntN(2)+1), Configs: configValues[r.IntN(len(configValues))], NowMs: r.Int64N(1 << 40)}
	case 2:
		return DeleteTopic{Name: pick("t", 6)}
	case 3:
		if ts := s.Topics(); len(ts) > 0 && r.IntN(2) == 0 { // mostly a growth the state can take
			t := ts[r.IntN(len(ts))]
			k := r.IntN(2) + 1
			return CreatePartitions{Name: t.Name, Total: int32(len(t.Partitions) + k), Placements: place(k, int(t.ReplicationFactor))}
		}
		return CreatePartitions{Name: pick("t", 6), Total: int32(r.IntN(4) + 1), Placements: place(r.IntN(2)+1, r.IntN(2)+1)}
	case 4:
		return AlterConfigs{Name: pick("t", 6), Set: configValues[r.IntN(len(configValues))], Replace: r.IntN(2) == 0}
	case 5, 13, 14:
		var offsets []OffsetCommit
		for range r.IntN(4) {
			offsets = append(offsets, OffsetCommit{Topic: pick("t", 6), Partition: int32(r.IntN(4)), Offset: r.Int64N(1000), LeaderEpoch: int32(r.IntN(3)), Metadata: pick("m", 3)})
		}
		return CommitOffsets{Group: pick("g", 4), Offsets: offsets, NowMs: r.Int64N(1 << 40)}
	case 6:
		return DeleteGroup{Group: pick("g", 4)}
	case 7:
		return DeleteOffsets{Group: pick("g", 4), Topic: pick("t", 6), Partitions: []int32{int32(r.IntN(4)), int32(r.IntN(4))}}
	case 8:
		return AllocateProducerIDs{Count: r.Int64N(100)}
	case 9:
		return PutPipeline{Name: pick("p", 3), Spec: []byte(pick("spec", 3))}
	case 10:
		return DeletePipeline{Name: pick("p", 3)}
	case 11:
		return PutCheckpoint{Key: pick("k", 3), Value: []byte(pick("", 3))[:r.IntN(2)]}
	case 15:
		if r.IntN(2) == 0 {
			return ReportLagging{NodeID: uint64(r.IntN(5) + 1), Shards: []uint64{uint64(1000 + r.IntN(4)), uint64(1000 + r.IntN(4))}[:r.IntN(3)]}
		}
		return RequestLeaderBalance{}
	case 16:
		// Mostly a partition that exists (from the state the command will
		// meet), on any of five nodes: some leaders, some refusals.
		shard := uint64(1000 + r.IntN(100))
		if ts := s.Topics(); len(ts) > 0 && r.IntN(4) > 0 {
			if t := ts[r.IntN(len(ts))]; len(t.Partitions) > 0 {
				shard = t.Partitions[r.IntN(len(t.Partitions))].ShardID
			}
		}
		return ReportLeaders{NodeID: uint64(r.IntN(5) + 1), Shards: []ShardTerm{{ShardID: shard, Term: uint64(r.IntN(4))}}}
	default:
		return RegisterSchema{Subject: pick("s", 3), Schema: pick("schema", 4)}
	}
}

// TestDeterminism applies one random sequence to two states, and to a third
// that is saved and loaded into a fresh state halfway: same results, same
// bytes.
func TestDeterminism(t *testing.T) {
	for seed := range uint64(5) {
		r := rand.New(rand.NewPCG(seed, 42))
		a, b, c := NewState(), NewState(), NewState()
		accepted := map[string]int{}
		for i := range 2000 {
			cmd := Encode(randomCommand(r, a))
			ra, rb := a.Apply(cmd), b.Apply(cmd)
			require.Equal(t, ra, rb)
			if i == 1000 {
				restored := NewState()
				require.NoError(t, restored.Load(bytesReader(saved(t, c))))
				require.Equal(t, saved(t, c), saved(t, restored))
				c = restored
			}
			require.Equal(t, ra, c.Apply(cmd), "command %d on the restored state", i)
			if ra.Code == CodeOK {
				decoded, err := Decode(cmd)
				require.NoError(t, err)
				accepted[decoded.op()]++
			}
		}
		require.Equal(t, saved(t, a), saved(t, b))
		require.Equal(t, saved(t, a), saved(t, c))
		require.Len(t, accepted, len(decoders), "seed %d: every op applied at least once: %v", seed, accepted)
	}
}

// randomMove returns a step of a partition move, most of the time one
// that the state is ready for, or nil if there is no topic.
func randomMove(r *rand.Rand, s *State) Command {
	ts := s.Topics()
	if len(ts) == 0 {
		return nil
	}
	t := ts[r.IntN(len(ts))]
	pi := r.IntN(len(t.Partitions))
	p := t.Partitions[pi]
	for _, tt := range ts { // prefer a partition that is moving
		for i, pp := range tt.Partitions {
			if pp.Target != nil && r.IntN(2) == 0 {
				t, pi, p = tt, i, pp
			}
		}
	}
	rep := p.Replicas[r.IntN(len(p.Replicas))]
	switch r.IntN(7) {
	case 0, 1:
		var nodes []uint64
		if r.IntN(5) > 0 {
			for _, n := range r.Perm(5)[:t.ReplicationFactor] {
				nodes = append(nodes, uint64(n+1))
			}
		}
		return ReassignPartitions{Moves: []Reassignment{{Topic: t.Name, Partition: int32(pi), Replicas: nodes}}}
	case 2:
		n := uint64(r.IntN(5) + 1)
		if len(p.Target) > 0 {
			n = p.Target[r.IntN(len(p.Target))]
		}
		return AddReplica{ShardID: p.ShardID, NodeID: n}
	case 3:
		return MarkCaughtUp{ShardID: p.ShardID, ReplicaID: rep.ReplicaID}
	case 4:
		return PromoteReplica{ShardID: p.ShardID, ReplicaID: rep.ReplicaID}
	case 5:
		return RemoveReplica{ShardID: p.ShardID, ReplicaID: rep.ReplicaID}
	default:
		return RemoveNode{ID: uint64(r.IntN(5) + 1)}
	}
}
