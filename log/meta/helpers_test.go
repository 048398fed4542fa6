package meta

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// apply encodes and applies cmd, and checks on the way that the result
// survives EncodeResult/DecodeResult and that a refusal changed nothing.
func apply(t testing.TB, s *State, cmd Command) Result {
	t.Helper()
	before := saved(t, s)
	version := s.Version()
	r := s.Apply(Encode(cmd))
	again, err := DecodeResult(EncodeResult(r))
	require.NoError(t, err)
	require.Equal(t, r, again, "result round trip")
	if r.Code != CodeOK {
		require.Equal(t, version, s.Version(), "a refusal changed the version")
		require.Equal(t, before, saved(t, s), "a refusal changed the state")
	}
	return r
}

// mustApply applies cmd and requires success.
func mustApply(t testing.TB, s *State, cmd Command) Result {
	t.Helper()
	r := apply(t, s, cmd)
	require.NoError(t, r.Err(), "%T", cmd)
	return r
}

// cluster returns a state with nodes 1 to n registered.
func cluster(t testing.TB, n int) *State {
	t.Helper()
	s := NewState()
	for id := uint64(1); id <= uint64(n); id++ {
		mustApply(t, s, node(id))
	}
	return s
}

func node(id uint64) RegisterNode {
	return RegisterNode{ID: id, RaftAddr: fmt.Sprintf("node%d:7000", id), KafkaAddr: fmt.Sprintf("node%d:9092", id)}
}

// uuid returns a topic id made of b.
func uuid(b byte) [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = b
	}
	return id
}

// placements returns n placements of the given nodes.
func placements(n int, nodes ...uint64) [][]uint64 {
	out := make([][]uint64, n)
	for i := range out {
		out[i] = append([]uint64(nil), nodes...)
	}
	return out
}

// topic is a CreateTopic of a valid topic with n partitions on node 1.
func topic(name string, id byte, n int) CreateTopic {
	return CreateTopic{Name: name, ID: uuid(id), Placements: placements(n, 1), NowMs: 1700000000000}
}

func saved(t testing.TB, s *State) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, s.Save(&buf))
	return buf.Bytes()
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
