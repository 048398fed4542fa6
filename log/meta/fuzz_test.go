package meta

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzState is a small state with something of every kind, built by
// applying commands (the fuzz function must not share a State between runs).
func fuzzState(t testing.TB) *State {
	s := NewState()
	for _, cmd := range everyOp[:len(everyOp)-1] {
		mustApply(t, s, cmd)
	}
	return s
}

// FuzzApply applies arbitrary bytes: never a panic, a refusal changes
// nothing, the version moves only on success, and the state still saves
// and loads to the same bytes.
func FuzzApply(f *testing.F) {
	for _, cmd := range everyOp {
		f.Add(Encode(cmd))
	}
	f.Add(Encode(CreateTopic{Name: "n", ID: uuid(3), Placements: [][]uint64{{1}, {1}}, Configs: map[string]string{"cleanup.policy": "compact"}}))
	f.Add(Encode(CreatePartitions{Name: "t", Total: 3, Placements: [][]uint64{{1}}}))
	f.Add(Encode(CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 9}}}))
	f.Add([]byte(`{"op":"create_topic","args":{"Name":"x","ID":[1],"Placements":[[1],[1,1]]}}`))
	f.Add([]byte(`{"op":"alter_configs","args":{"Name":"t","Replace":true}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := fuzzState(t)
		before, version := saved(t, s), s.Version()
		r := s.Apply(b)
		value, data := EncodeResult(r)
		again, err := DecodeResult(value, data)
		require.NoError(t, err)
		require.Equal(t, r, again)
		if r.Code != CodeOK {
			require.NotEmpty(t, r.Message)
			require.Equal(t, version, s.Version())
			require.Equal(t, before, saved(t, s))
			return
		}
		after := saved(t, s)
		if s.Version() == version {
			require.Equal(t, before, after, "the state changed without the version")
		}
		restored := NewState()
		require.NoError(t, restored.Load(bytes.NewReader(after)), "a state Apply reached must load")
		require.Equal(t, after, saved(t, restored))
	})
}

// FuzzLoad loads arbitrary snapshots: never a panic, a refusal changes
// nothing, and what loads saves to bytes that load to the same state.
func FuzzLoad(f *testing.F) {
	good := saved(f, fuzzState(f))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"Format":1}`))
	f.Add(saved(f, NewState()))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := fuzzState(t)
		before := saved(t, s)
		if err := s.Load(bytes.NewReader(b)); err != nil {
			require.ErrorIs(t, err, ErrBadSnapshot)
			require.Equal(t, before, saved(t, s))
			return
		}
		once := saved(t, s)
		again := NewState()
		require.NoError(t, again.Load(bytes.NewReader(once)))
		require.Equal(t, once, saved(t, again))
	})
}
