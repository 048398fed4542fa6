package partition

import (
	"testing"

	"github.com/samsa-io/samsa/internal/tmpdir"
	"github.com/stretchr/testify/require"
)

// FuzzApply applies arbitrary entries to a partition holding a few
// batches: no entry may panic it, a refusal changes nothing, and whatever
// it stores reopens intact.
func FuzzApply(f *testing.F) {
	good := producerBatch(f, 5, 0, 3, 2)
	f.Add(entry(plain, good))
	f.Add(entry(Meta{Kind: KindBatch, Source: "s", SourceFirst: []byte{1}, SourceLast: []byte{2}}, good))
	f.Add(entry(Meta{Kind: KindDeleteRecords, DeleteBefore: 2}, nil))
	f.Add(entry(Meta{Kind: KindTxnMarker, AppendTime: 5, Marker: Marker{ProducerID: 5, ProducerEpoch: 0, CoordinatorEpoch: 1}}, nil))
	f.Add([]byte{1, 1, 0, 0})
	f.Add([]byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, e []byte) {
		dir := tmpdir.Mem(t)
		p := open(t, dir)
		for i := uint64(1); i <= 3; i++ {
			_, err := p.Apply(i, entry(plain, producerBatch(t, 5, 0, int32(i-1), 1)))
			require.NoError(t, err)
		}
		before := stored(t, p)
		res, err := p.Apply(4, e)
		require.NoError(t, err)
		if res.Err != nil || res.Duplicate {
			require.Equal(t, before, stored(t, p))
		}
		end := p.Log().EndOffset()
		require.NoError(t, p.Close())
		p = open(t, dir)
		defer p.Close()
		require.Equal(t, end, p.Log().EndOffset())
		require.Equal(t, uint64(4), p.AppliedIndex())
	})
}

// FuzzCheckpoint parses arbitrary checkpoint files: never a panic, and a
// file that parses re-encodes to itself (an older state version to the
// current one, which then re-encodes to itself).
func FuzzCheckpoint(f *testing.F) {
	s := NewState()
	step(s, Meta{AppendTime: 1, Source: "a", SourceFirst: []byte{1}, SourceLast: []byte{2}}, hdr(-1, -1, -1, 1))
	step(s, Meta{AppendTime: 1}, hdr(3, 1, 0, 4))
	step(s, Meta{AppendTime: 1}, txnHdr(4, 0, 0, 2))
	step(s, Meta{AppendTime: 1}, txnHdr(5, 0, 0, 2))
	mark(s, 1, 5, 0, false)
	good, err := appendCheckpoint(nil, 77, s)
	require.NoError(f, err)
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte("SAMSACKP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewState()
		applied, err := parseCheckpoint(b, s)
		if err != nil {
			require.ErrorIs(t, err, ErrCheckpoint)
			return
		}
		again, err := appendCheckpoint(nil, applied, s)
		require.NoError(t, err)
		if b[20] == stateVersion {
			require.Equal(t, b, again)
			return
		}
		s2 := NewState()
		_, err = parseCheckpoint(again, s2)
		require.NoError(t, err)
		third, err := appendCheckpoint(nil, applied, s2)
		require.NoError(t, err)
		require.Equal(t, again, third)
	})
}
