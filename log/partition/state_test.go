package partition

import (
	"math"
	"testing"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
)

// hdr is the header of a producer batch of n records.
func hdr(pid int64, epoch int16, seq int32, n int32) batch.Header {
	return batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: n - 1, RecordCount: n}
}

// step checks and, if accepted, records one batch; it returns the verdict.
func step(s *State, m Meta, h batch.Header) Verdict {
	v := s.Check(&m, &h)
	if v.Err == nil && !v.Duplicate {
		s.Record(&m, &h, s.NextOffset)
	}
	return v
}

func TestProducerRules(t *testing.T) {
	at := Meta{Kind: KindBatch, AppendTime: 1000}
	type want struct {
		offset int64
		dup    bool
		err    error
	}
	cases := []struct {
		name  string
		setup []batch.Header // accepted first, in order
		h     batch.Header
		want  want
	}{
		{"not idempotent", nil, hdr(-1, -1, -1, 3), want{offset: 0}},
		{"new producer, any sequence", nil, hdr(7, 0, 42, 2), want{offset: 0}},
		{"next in sequence", []batch.Header{hdr(7, 0, 0, 3)}, hdr(7, 0, 3, 2), want{offset: 3}},
		{"retry of the last batch", []batch.Header{hdr(7, 0, 0, 3), hdr(7, 0, 3, 2)}, hdr(7, 0, 3, 2), want{offset: 3, dup: true}},
		{"retry of the fifth-last batch", []batch.Header{hdr(7, 0, 0, 1), hdr(7, 0, 1, 1), hdr(7, 0, 2, 1), hdr(7, 0, 3, 1), hdr(7, 0, 4, 1)}, hdr(7, 0, 0, 1), want{offset: 0, dup: true}},
		{"retry older than five batches", []batch.Header{hdr(7, 0, 0, 1), hdr(7, 0, 1, 1), hdr(7, 0, 2, 1), hdr(7, 0, 3, 1), hdr(7, 0, 4, 1), hdr(7, 0, 5, 1)}, hdr(7, 0, 0, 1), want{err: ErrOutOfOrderSequence}},
		{"same start, other length", []batch.Header{hdr(7, 0, 0, 3)}, hdr(7, 0, 0, 2), want{err: ErrOutOfOrderSequence}},
		{"gap", []batch.Header{hdr(7, 0, 0, 3)}, hdr(7, 0, 4, 1), want{err: ErrOutOfOrderSequence}},
		{"older epoch", []batch.Header{hdr(7, 3, 0, 1)}, hdr(7, 2, 1, 1), want{err: ErrInvalidProducerEpoch}},
		{"newer epoch from zero", []batch.Header{hdr(7, 3, 0, 10)}, hdr(7, 4, 0, 1), want{offset: 10}},
		{"newer epoch not from zero", []batch.Header{hdr(7, 3, 0, 10)}, hdr(7, 4, 5, 1), want{err: ErrOutOfOrderSequence}},
		{"sequence wraps to zero", []batch.Header{hdr(7, 0, math.MaxInt32-1, 2)}, hdr(7, 0, 0, 1), want{offset: 2}},
		{"other producers are independent", []batch.Header{hdr(7, 0, 0, 3)}, hdr(8, 0, 9, 1), want{offset: 3}},
		{"sequence without an epoch", nil, hdr(7, -1, 0, 1), want{err: ErrInvalidRecord}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewState()
			for _, h := range c.setup {
				require.NoError(t, step(s, at, h).Err)
			}
			v := step(s, at, c.h)
			if c.want.err != nil {
				require.ErrorIs(t, v.Err, c.want.err)
				return
			}
			require.NoError(t, v.Err)
			require.Equal(t, c.want.dup, v.Duplicate)
			require.Equal(t, c.want.offset, v.BaseOffset)
		})
	}
}

func TestRefusedBatches(t *testing.T) {
	s := NewState()
	m := Meta{Kind: KindBatch}
	for name, attrs := range map[string]batch.Attributes{"control": 0x20, "transactional control": 0x30} {
		h := hdr(1, 0, 0, 1)
		h.Attributes = attrs
		require.ErrorIs(t, s.Check(&m, &h).Err, ErrInvalidRecord, name)
	}
}

func TestProducerExpiry(t *testing.T) {
	s := NewState()
	s.ExpiryMs = 1000
	require.NoError(t, step(s, Meta{AppendTime: 0}, hdr(7, 0, 0, 5)).Err)
	require.ErrorIs(t, step(s, Meta{AppendTime: 1000}, hdr(7, 0, 9, 1)).Err, ErrOutOfOrderSequence, "not expired yet")
	require.NoError(t, step(s, Meta{AppendTime: 1001}, hdr(7, 0, 9, 1)).Err, "expired: any sequence starts it again")
	require.ErrorIs(t, step(s, Meta{AppendTime: 1500}, hdr(7, 0, 0, 5)).Err, ErrOutOfOrderSequence, "the new run is remembered")
}

// TestSweepChangesNoDecision replays one history with sweeps at different
// moments (as replicas restarted at different times would): every verdict
// and the final state must be the same.
func TestSweepChangesNoDecision(t *testing.T) {
	type op struct {
		at int64
		h  batch.Header
	}
	var hist []op
	seq := map[int64]int32{}
	for i := int64(0); i < 400; i++ {
		pid := i % 7
		at := i * 37
		if i%50 == 0 {
			seq[pid] += 3 // a gap now and then
		}
		hist = append(hist, op{at, hdr(pid, 0, seq[pid], 2)})
		seq[pid] += 2
	}
	run := func(sweepEvery int) ([]Verdict, []byte) {
		s := NewState()
		s.ExpiryMs = 2000
		var vs []Verdict
		for i, o := range hist {
			if sweepEvery > 0 && i%sweepEvery == 0 {
				s.Sweep(o.at)
			}
			vs = append(vs, step(s, Meta{AppendTime: o.at}, o.h))
		}
		s.Sweep(hist[len(hist)-1].at)
		b, _ := s.AppendBinary(nil)
		return vs, b
	}
	v0, b0 := run(0)
	for _, every := range []int{1, 3, 17, 100} {
		v, b := run(every)
		require.Equal(t, v0, v, "sweep every %d", every)
		require.Equal(t, b0, b, "sweep every %d", every)
	}
}

func TestDeleteBeforeForgetsProducers(t *testing.T) {
	s := NewState()
	at := Meta{AppendTime: 1}
	require.NoError(t, step(s, at, hdr(1, 0, 0, 10)).Err) // offsets 0-9
	require.NoError(t, step(s, at, hdr(2, 0, 0, 10)).Err) // offsets 10-19
	s.DeleteBefore(10)
	require.Equal(t, int64(10), s.LogStartOffset)
	require.Equal(t, 1, s.Producers())
	require.NoError(t, step(s, at, hdr(1, 0, 77, 1)).Err, "producer 1's records are gone: it starts afresh")
	require.ErrorIs(t, step(s, at, hdr(2, 0, 77, 1)).Err, ErrOutOfOrderSequence)
	s.DeleteBefore(5)
	require.Equal(t, int64(10), s.LogStartOffset, "never backwards")
}

func TestSourceFencing(t *testing.T) {
	src := func(first, last string) Meta {
		return Meta{Kind: KindBatch, Source: "file:plays", SourceFirst: []byte(first), SourceLast: []byte(last)}
	}
	h := hdr(-1, -1, -1, 3)
	s := NewState()
	require.NoError(t, step(s, src("a01", "a03"), h).Err)
	require.NoError(t, step(s, src("a04", "a06"), h).Err)

	v := step(s, src("a04", "a06"), h)
	require.True(t, v.Duplicate, "a re-sent batch is a duplicate")
	require.Equal(t, int64(5), v.BaseOffset)
	v = step(s, src("a02", "a03"), h)
	require.True(t, v.Duplicate, "so is any batch at or below the stored position")
	require.ErrorIs(t, step(s, src("a05", "a08"), h).Err, ErrSourceOverlap)
	require.ErrorIs(t, step(s, src("a09", "a07"), h).Err, ErrInvalidRecord)
	require.ErrorIs(t, step(s, src("", ""), h).Err, ErrInvalidRecord)
	require.NoError(t, step(s, src("a07", "a09"), h).Err)
	require.NoError(t, step(s, Meta{Kind: KindBatch, Source: "other", SourceFirst: []byte("a01"), SourceLast: []byte("a01")}, h).Err)
	pos, last, ok := s.SourcePosition("file:plays")
	require.True(t, ok)
	require.Equal(t, "a09", string(pos))
	require.Equal(t, int64(8), last)
}

func TestStateEncoding(t *testing.T) {
	build := func(order []int64) *State {
		s := NewState()
		for _, pid := range order {
			for seq := int32(0); seq < 12; seq += 2 {
				require.NoError(t, step(s, Meta{AppendTime: int64(seq)}, hdr(pid, 1, seq, 2)).Err)
			}
		}
		for _, name := range []string{"z", "a", "m"} {
			require.NoError(t, step(s, Meta{Source: name, SourceFirst: []byte{1}, SourceLast: []byte{2, 3}}, hdr(-1, -1, -1, 1)).Err)
		}
		s.DeleteBefore(3)
		return s
	}
	st := build([]int64{5, 1, 9, 4, 7, 3})
	a, _ := st.AppendBinary(nil)
	for range 20 { // map iteration order is random on every range
		b, _ := st.AppendBinary(nil)
		require.Equal(t, a, b, "the same state encodes to the same bytes")
	}

	var back State
	require.NoError(t, back.UnmarshalBinary(a))
	c, _ := back.AppendBinary(nil)
	require.Equal(t, a, c)
	require.Equal(t, int64(3), back.LogStartOffset)
	require.Equal(t, DefaultProducerExpiryMs, int(back.ExpiryMs))
	// Decisions survive the round trip.
	require.True(t, step(&back, Meta{AppendTime: 10}, hdr(5, 1, 10, 2)).Duplicate)

	for n := 0; n < len(a); n++ {
		var s State
		require.ErrorIs(t, s.UnmarshalBinary(a[:n]), ErrCheckpoint, "cut at %d", n)
	}
	var s State
	require.ErrorIs(t, s.UnmarshalBinary(append(a, 0)), ErrCheckpoint)
}
