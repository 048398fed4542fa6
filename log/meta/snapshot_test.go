package meta

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// richState holds something of every kind.
func richState(t *testing.T) *State {
	t.Helper()
	s := NewState()
	for _, cmd := range everyOp[:len(everyOp)-1] { // all but DeleteTopic
		mustApply(t, s, cmd)
	}
	mustApply(t, s, node(2))
	mustApply(t, s, CreateTopic{Name: "u", ID: uuid(8), Placements: [][]uint64{{1, 2}, {2, 1}}})
	mustApply(t, s, CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "u", Partition: 1, Offset: 9}}})
	mustApply(t, s, PutPipeline{Name: "q", Spec: []byte("q")})
	mustApply(t, s, RegisterSchema{Subject: "u-value", Schema: `{"type":"string"}`})
	mustApply(t, s, RegisterSchema{Subject: "u-value", Schema: `{"type":"long"}`})
	return s
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := richState(t)
	b := saved(t, s)
	require.Equal(t, b, saved(t, s), "same state, same bytes")

	got := cluster(t, 3) // Load replaces whatever was there
	mustApply(t, got, topic("other", 9, 1))
	require.NoError(t, got.Load(bytesReader(b)))
	require.Equal(t, b, saved(t, got))
	require.Equal(t, s.Version(), got.Version())
	require.Equal(t, s.Nodes(), got.Nodes())
	require.Equal(t, s.Topics(), got.Topics())
	require.Equal(t, s.Groups(), got.Groups())
	require.Equal(t, s.GroupOffsets("g"), got.GroupOffsets("g"))
	require.Equal(t, s.Pipelines(), got.Pipelines())
	require.Equal(t, s.NextProducerID(), got.NextProducerID())
	require.Equal(t, s.NextShardID(), got.NextShardID())
	require.Equal(t, s.Subjects(), got.Subjects())
	name, ok := got.TopicName(uuid(8))
	require.True(t, ok, "derived indexes are rebuilt")
	require.Equal(t, "u", name)
	cp, _ := got.Checkpoint("k")
	require.Equal(t, []byte{0, 1, 0xff}, cp)

	// Both continue alike: counters and indexes came across.
	for _, cmd := range []Command{
		topic("new", 10, 2), AllocateProducerIDs{Count: 3}, PutPipeline{Name: "r", Spec: []byte("r")},
		RegisterSchema{Subject: "x", Schema: `{"type":"long"}`}, RegisterSchema{Subject: "x", Schema: `"new"`},
	} {
		require.Equal(t, mustApply(t, s, cmd), mustApply(t, got, cmd))
	}
	require.Equal(t, saved(t, s), saved(t, got))
}

func TestEmptySnapshot(t *testing.T) {
	s := NewState()
	got := richState(t)
	require.NoError(t, got.Load(bytesReader(saved(t, s))))
	require.Equal(t, saved(t, s), saved(t, got))
	require.Empty(t, got.Topics())
}

// TestSnapshotFormat pins the encoding: a change here is a format change,
// which old replicas' snapshots must survive.
func TestSnapshotFormat(t *testing.T) {
	s := NewState()
	mustApply(t, s, RegisterNode{ID: 1, RaftAddr: "a:1", KafkaAddr: "a:2"})
	mustApply(t, s, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{1}}, Configs: map[string]string{"segment.ms": "5", "retention.ms": "-1"}, NowMs: 3})
	mustApply(t, s, CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Offset: 4, LeaderEpoch: 1, Metadata: "m"}}, NowMs: 6})
	mustApply(t, s, PutPipeline{Name: "p", Spec: []byte("x")})
	mustApply(t, s, PutCheckpoint{Key: "k", Value: []byte("v")})
	mustApply(t, s, RegisterSchema{Subject: "s", Schema: `"string"`})
	want := `{"Format":1,"Version":6,"NextShardID":1001,"NextReplicaID":4294967296,"NextProducerID":1000,` +
		`"NextPipelineVersion":2,"NextSchemaID":2,` +
		`"Nodes":[{"ID":1,"RaftAddr":"a:1","KafkaAddr":"a:2"}],` +
		`"Topics":[{"Name":"t","ID":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"Partitions":[{"ShardID":1000,"Replicas":[{"ReplicaID":1,"NodeID":1}]}],` +
		`"ReplicationFactor":1,"Configs":{"retention.ms":"-1","segment.ms":"5"},"CreatedMs":3}],` +
		`"Groups":[{"Group":"g","Offsets":[{"Topic":"t","Partition":0,"Offset":4,"LeaderEpoch":1,"Metadata":"m","CommitMs":6}]}],` +
		`"Pipelines":[{"Name":"p","Spec":"eA==","Version":1}],` +
		`"Checkpoints":[{"Key":"k","Value":"dg=="}],` +
		`"Schemas":[{"ID":1,"Schema":"\"string\""}],` +
		`"Subjects":[{"Subject":"s","Versions":[{"Version":1,"ID":1}]}]}`
	require.Equal(t, want, string(saved(t, s)))
}

func TestLoadRefusesTruncated(t *testing.T) {
	s := richState(t)
	b := saved(t, s)
	for n := range len(b) {
		got := NewState()
		require.ErrorIs(t, got.Load(bytesReader(b[:n])), ErrBadSnapshot, "cut at %d of %d", n, len(b))
		require.Equal(t, saved(t, NewState()), saved(t, got), "unchanged")
	}
}

func TestLoadRefusesBadSnapshots(t *testing.T) {
	good := string(saved(t, richState(t)))
	edit := func(old, new string) string {
		require.Contains(t, good, old)
		return strings.Replace(good, old, new, 1)
	}
	cases := map[string]string{
		"empty":                   ``,
		"garbage":                 "\x00\xffSAMSA",
		"null":                    `null`,
		"not an object":           `[1,2]`,
		"trailing data":           good + `{}`,
		"unknown field":           edit(`"Format":1`, `"Format":1,"Extra":2`),
		"other format":            edit(`"Format":1`, `"Format":2`),
		"shard counter too low":   edit(`"NextShardID":1004`, `"NextShardID":999`),
		"producer counter low":    edit(`"NextProducerID":1011`, `"NextProducerID":5`),
		"shard id not allocated":  edit(`"NextShardID":1004`, `"NextShardID":1003`),
		"node id 0":               edit(`"ID":2,"RaftAddr"`, `"ID":0,"RaftAddr"`),
		"nodes out of order":      edit(`"ID":2,"RaftAddr"`, `"ID":1,"RaftAddr"`),
		"bad node address":        edit(`"RaftAddr":"a:1"`, `"RaftAddr":"a"`),
		"bad topic name":          edit(`"Name":"t"`, `"Name":"t/"`),
		"replica on unknown node": edit(`"ReplicaID":2,"NodeID":2`, `"ReplicaID":2,"NodeID":7`),
		"unallocated replica id":  edit(`"ReplicaID":2,"NodeID":2`, `"ReplicaID":3,"NodeID":2`),
		"wrong factor":            edit(`"ReplicationFactor":2`, `"ReplicationFactor":3`),
		"bad config":              edit(`"segment.ms":"1000"`, `"segment.ms":"0"`),
		"offset for no partition": edit(`"Topic":"u","Partition":1`, `"Topic":"u","Partition":2`),
		"pipeline version ahead":  edit(`"NextPipelineVersion":3`, `"NextPipelineVersion":2`),
		"empty checkpoint":        edit(`"Value":"AAH/"`, `"Value":""`),
		"schema id ahead":         edit(`"NextSchemaID":3`, `"NextSchemaID":2`),
		"version gap":             edit(`"Versions":[{"Version":1,"ID":1},{"Version":2`, `"Versions":[{"Version":1,"ID":1},{"Version":3`),
		"version of no schema":    edit(`{"Version":1,"ID":1}]`, `{"Version":1,"ID":9}]`),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			got := richState(t)
			before := saved(t, got)
			require.ErrorIs(t, got.Load(strings.NewReader(b)), ErrBadSnapshot)
			require.Equal(t, before, saved(t, got), "unchanged")
		})
	}
	require.NoError(t, NewState().Load(strings.NewReader(good+"\n")), "trailing space is fine")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSnapshotIOErrors(t *testing.T) {
	s := richState(t)
	require.ErrorContains(t, s.Save(failingWriter{}), "disk full")
	require.Error(t, s.Load(failingReader{}))
	require.NotEmpty(t, s.Topics())
}
