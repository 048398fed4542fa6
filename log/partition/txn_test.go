package partition

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
)

// txnHdr is the header of a transactional batch of n records.
func txnHdr(pid int64, epoch int16, seq int32, n int32) batch.Header {
	h := hdr(pid, epoch, seq, n)
	h.Attributes = 0x10
	return h
}

// txnBatch is producerBatch with the transactional attribute.
func txnBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	var b batch.Builder
	b.SetProducer(pid, epoch, seq)
	b.SetTransactional(true)
	for i := range n {
		b.Add(batch.Record{Timestamp: 1000 + int64(i), Value: fmt.Appendf(nil, "txn-%d", int(seq)+i)})
	}
	out, err := b.Build(nil)
	require.NoError(t, err)
	return out
}

// mark checks and, if accepted, records a marker; it returns the refusal.
func mark(s *State, at int64, pid int64, epoch int16, commit bool) error {
	m := Meta{Kind: KindTxnMarker, AppendTime: at, Marker: Marker{ProducerID: pid, ProducerEpoch: epoch, Commit: commit, CoordinatorEpoch: 3}}
	if err := s.CheckMarker(&m); err != nil {
		return err
	}
	s.RecordMarker(&m, s.NextOffset)
	return nil
}

func TestTxnLastStableOffsetAndAbortedIndex(t *testing.T) {
	s := NewState()
	at := Meta{Kind: KindBatch, AppendTime: 1}
	require.NoError(t, step(s, at, hdr(-1, -1, -1, 2)).Err) // 0-1, plain
	require.Equal(t, int64(2), s.LastStableOffset())        // nothing open: the end
	require.NoError(t, step(s, at, txnHdr(7, 0, 0, 3)).Err) // 2-4, txn of 7
	require.NoError(t, step(s, at, txnHdr(8, 0, 0, 2)).Err) // 5-6, txn of 8
	require.NoError(t, step(s, at, txnHdr(7, 0, 3, 1)).Err) // 7, still 7's first txn
	require.NoError(t, step(s, at, hdr(-1, -1, -1, 1)).Err) // 8, plain
	require.Equal(t, int64(2), s.LastStableOffset(), "the oldest open transaction holds it")
	require.Equal(t, 2, s.OpenTxns())

	require.NoError(t, mark(s, 2, 7, 0, true)) // 9: 7 commits
	require.Equal(t, int64(5), s.LastStableOffset(), "now 8's transaction is the oldest")
	require.NoError(t, mark(s, 2, 8, 0, false)) // 10: 8 aborts
	require.Equal(t, int64(11), s.LastStableOffset())
	require.Equal(t, 0, s.OpenTxns())
	require.Equal(t, []AbortedTxn{{ProducerID: 8, FirstOffset: 5, LastOffset: 10}}, s.AbortedTxns(0, 11, nil))

	require.NoError(t, mark(s, 3, 8, 0, false), "a marker with nothing open is still written")
	require.Equal(t, int64(12), s.NextOffset)
	require.Len(t, s.AbortedTxns(0, 100, nil), 1, "but adds nothing to the index")

	require.NoError(t, step(s, at, txnHdr(8, 0, 2, 1)).Err) // 12: 8's next txn, sequence continues
	require.Equal(t, int64(12), s.LastStableOffset())
	require.NoError(t, mark(s, 3, 8, 0, false)) // 13
	got := s.AbortedTxns(0, 100, nil)
	require.Equal(t, []AbortedTxn{{8, 5, 10}, {8, 12, 13}}, got)

	// Overlap with [from, to): last >= from and first < to.
	require.Equal(t, []AbortedTxn{{8, 12, 13}}, s.AbortedTxns(11, 100, nil))
	require.Equal(t, []AbortedTxn{{8, 5, 10}}, s.AbortedTxns(0, 12, nil))
	require.Equal(t, []AbortedTxn{{8, 5, 10}, {8, 12, 13}}, s.AbortedTxns(10, 13, nil))
	require.Empty(t, s.AbortedTxns(14, 100, nil))
	require.Empty(t, s.AbortedTxns(0, 5, nil))

	// The log start passing an entry's last offset drops it.
	s.DeleteBefore(10)
	require.Len(t, s.AbortedTxns(0, 100, nil), 2, "10 is still the first one's marker")
	s.DeleteBefore(11)
	require.Equal(t, []AbortedTxn{{8, 12, 13}}, s.AbortedTxns(0, 100, nil))
}

func TestTxnMarkerEpochs(t *testing.T) {
	at := Meta{Kind: KindBatch, AppendTime: 1}
	t.Run("older epoch is fenced", func(t *testing.T) {
		s := NewState()
		require.NoError(t, step(s, at, txnHdr(7, 3, 0, 1)).Err)
		require.ErrorIs(t, mark(s, 1, 7, 2, true), ErrInvalidProducerEpoch)
		require.Equal(t, int64(1), s.NextOffset, "nothing written")
		require.Equal(t, int64(0), s.LastStableOffset(), "still open")
	})
	t.Run("a fencing abort fences the zombie", func(t *testing.T) {
		s := NewState()
		require.NoError(t, step(s, at, txnHdr(7, 3, 0, 2)).Err)
		require.NoError(t, mark(s, 1, 7, 4, false)) // the coordinator bumped the epoch
		require.Equal(t, []AbortedTxn{{7, 0, 2}}, s.AbortedTxns(0, 10, nil))
		require.ErrorIs(t, step(s, at, txnHdr(7, 3, 2, 1)).Err, ErrInvalidProducerEpoch, "the zombie's next batch")
		require.NoError(t, step(s, at, txnHdr(7, 4, 0, 1)).Err, "the new instance at the marker's epoch")
		require.NoError(t, step(s, at, txnHdr(7, 4, 1, 1)).Err)
		require.ErrorIs(t, step(s, at, txnHdr(7, 4, 5, 1)).Err, ErrOutOfOrderSequence, "and its sequence is checked from there")
	})
	t.Run("a marker for a producer never seen here", func(t *testing.T) {
		s := NewState()
		require.NoError(t, mark(s, 1, 9, 5, false))
		require.Empty(t, s.AbortedTxns(0, 10, nil))
		require.ErrorIs(t, step(s, at, txnHdr(9, 4, 0, 1)).Err, ErrInvalidProducerEpoch, "it learned the epoch")
		require.NoError(t, step(s, at, txnHdr(9, 5, 0, 1)).Err)
	})
	t.Run("refused without a producer", func(t *testing.T) {
		s := NewState()
		require.ErrorIs(t, mark(s, 1, -1, 0, true), ErrInvalidRecord)
		h := hdr(-1, -1, -1, 1)
		h.Attributes = 0x10
		require.ErrorIs(t, step(s, at, h).Err, ErrInvalidRecord, "a transactional batch needs a producer id")
	})
	t.Run("a retried transactional batch is a duplicate", func(t *testing.T) {
		s := NewState()
		require.NoError(t, step(s, at, txnHdr(7, 0, 0, 2)).Err)
		v := step(s, at, txnHdr(7, 0, 0, 2))
		require.True(t, v.Duplicate)
		require.Equal(t, int64(0), s.LastStableOffset())
	})
}

func TestTxnOpenProducerDoesNotExpire(t *testing.T) {
	s := NewState()
	s.ExpiryMs = 1000
	require.NoError(t, step(s, Meta{AppendTime: 0}, txnHdr(7, 0, 0, 2)).Err)
	require.NoError(t, step(s, Meta{AppendTime: 0}, hdr(8, 0, 0, 2)).Err)
	s.Sweep(5000)
	require.Equal(t, 1, s.Producers(), "8 expired, 7 is in a transaction")
	require.ErrorIs(t, step(s, Meta{AppendTime: 5000}, txnHdr(7, 0, 9, 1)).Err, ErrOutOfOrderSequence, "7's sequence is still checked")
	require.NoError(t, mark(s, 5000, 7, 0, false))
	require.Equal(t, []AbortedTxn{{7, 0, 4}}, s.AbortedTxns(0, 10, nil))
	s.Sweep(6001)
	require.Equal(t, 0, s.Producers(), "closed, it expires like any other")

	// DeleteBefore keeps a producer whose transaction is open, and the
	// last stable offset never goes below the log start.
	require.NoError(t, step(s, Meta{AppendTime: 7000}, txnHdr(9, 0, 0, 2)).Err) // 5-6
	require.NoError(t, step(s, Meta{AppendTime: 7000}, hdr(-1, -1, -1, 3)).Err) // 7-9
	s.DeleteBefore(8)
	require.Equal(t, 1, s.Producers())
	require.Equal(t, int64(8), s.LastStableOffset())
	require.Empty(t, s.AbortedTxns(0, 100, nil), "the old abort ended at 4")
}

func TestTxnStateEncoding(t *testing.T) {
	s := NewState()
	at := Meta{Kind: KindBatch, AppendTime: 1}
	require.NoError(t, step(s, at, txnHdr(7, 0, 0, 3)).Err)
	require.NoError(t, step(s, at, txnHdr(3, 0, 0, 1)).Err)
	require.NoError(t, step(s, at, txnHdr(5, 0, 0, 1)).Err)
	require.NoError(t, mark(s, 2, 3, 0, false))
	require.NoError(t, mark(s, 2, 11, 2, false)) // known only from its marker
	require.NoError(t, step(s, at, txnHdr(3, 0, 1, 1)).Err)
	a, err := s.AppendBinary(nil)
	require.NoError(t, err)
	for range 20 {
		b, _ := s.AppendBinary(nil)
		require.Equal(t, a, b)
	}
	var back State
	require.NoError(t, back.UnmarshalBinary(a))
	c, _ := back.AppendBinary(nil)
	require.Equal(t, a, c)
	require.Equal(t, s.LastStableOffset(), back.LastStableOffset())
	require.Equal(t, int64(0), back.LastStableOffset())
	require.Equal(t, 3, back.OpenTxns())
	require.Equal(t, s.AbortedTxns(0, 100, nil), back.AbortedTxns(0, 100, nil))
	require.ErrorIs(t, step(&back, at, txnHdr(11, 1, 0, 1)).Err, ErrInvalidProducerEpoch, "the marker's epoch survives")
	for n := 0; n < len(a); n++ {
		var s State
		require.ErrorIs(t, s.UnmarshalBinary(a[:n]), ErrCheckpoint, "cut at %d", n)
	}
}

// TestStateVersion1Loads decodes a state written before transactions: a
// checkpoint of an older node still opens.
func TestStateVersion1Loads(t *testing.T) {
	be := binary.BigEndian
	v1 := []byte{1}
	v1 = be.AppendUint64(v1, 10) // next offset
	v1 = be.AppendUint64(v1, 2)  // log start
	v1 = be.AppendUint32(v1, 1)  // one producer
	v1 = be.AppendUint64(v1, 7)
	v1 = be.AppendUint16(v1, 1)
	v1 = be.AppendUint64(v1, 100) // last time
	v1 = be.AppendUint64(v1, 9)   // last offset
	v1 = append(v1, 1)
	v1 = be.AppendUint32(v1, 0)
	v1 = be.AppendUint32(v1, 4)
	v1 = be.AppendUint64(v1, 5)
	v1 = be.AppendUint32(v1, 1) // one source
	v1 = be.AppendUint16(v1, 1)
	v1 = append(v1, 'f')
	v1 = be.AppendUint16(v1, 1)
	v1 = append(v1, 9)
	v1 = be.AppendUint64(v1, 8)
	s := NewState()
	require.NoError(t, s.UnmarshalBinary(v1))
	require.Equal(t, int64(10), s.NextOffset)
	require.Equal(t, int64(10), s.LastStableOffset())
	require.Equal(t, 0, s.OpenTxns())
	require.True(t, step(s, Meta{AppendTime: 100}, hdr(7, 1, 0, 5)).Duplicate)
	pos, _, ok := s.SourcePosition("f")
	require.True(t, ok)
	require.Equal(t, []byte{9}, pos)

	// Version 1 had no producer without batches.
	bad := append([]byte(nil), v1...)
	bad[8+8+4+1+8+2+8+8] = 0
	require.ErrorIs(t, NewState().UnmarshalBinary(bad[:len(bad)-16]), ErrCheckpoint)
}

func TestMarkerBatch(t *testing.T) {
	m := Meta{Kind: KindTxnMarker, AppendTime: 1234, LeaderEpoch: 6, Marker: Marker{ProducerID: 42, ProducerEpoch: 3, Commit: true, CoordinatorEpoch: 9}}
	b, err := MarkerBatch(&m, 77)
	require.NoError(t, err)
	again, err := MarkerBatch(&m, 77)
	require.NoError(t, err)
	require.Equal(t, b, again, "deterministic")
	h, err := batch.Validate(b)
	require.NoError(t, err)
	require.True(t, h.Attributes.Control())
	require.True(t, h.Attributes.Transactional())
	require.Equal(t, int64(77), h.BaseOffset)
	require.Equal(t, int32(6), h.LeaderEpoch)
	require.Equal(t, int64(42), h.ProducerID)
	require.Equal(t, int16(3), h.ProducerEpoch)
	require.Equal(t, int32(-1), h.BaseSequence)
	require.Equal(t, int64(1234), h.BaseTimestamp)
	require.Equal(t, int64(1234), h.MaxTimestamp)
	require.Equal(t, int32(1), h.RecordCount)
	it := batch.NewIterator(b)
	require.True(t, it.Next())
	r := it.Record()
	require.Equal(t, []byte{0, 0, 0, 1}, r.Key, "version 0, type commit")
	require.Equal(t, []byte{0, 0, 0, 0, 0, 9}, r.Value, "EndTxnMarker: version 0, coordinator epoch")
	require.Equal(t, int64(77), r.Offset)

	m.Marker.Commit = false
	b, err = MarkerBatch(&m, 77)
	require.NoError(t, err)
	it = batch.NewIterator(b)
	require.True(t, it.Next())
	require.Equal(t, []byte{0, 0, 0, 0}, it.Record().Key, "type abort")
}

// TestPartitionTxnSurvives applies transactions to a partition and checks
// that the control batches are stored, and that the last stable offset
// and the aborted index come back after a restart and in a snapshot.
func TestPartitionTxnSurvives(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir)
	marker := func(pid int64, commit bool) []byte {
		return entry(Meta{Kind: KindTxnMarker, AppendTime: 7000, LeaderEpoch: 3, Marker: Marker{ProducerID: pid, ProducerEpoch: 0, Commit: commit, CoordinatorEpoch: 2}}, nil)
	}
	entries := [][]byte{
		entry(plain, txnBatch(t, 1, 0, 0, 2)),         // 0-1
		entry(plain, txnBatch(t, 2, 0, 0, 3)),         // 2-4
		marker(1, false),                              // 5: 1 aborts
		entry(plain, producerBatch(t, -1, -1, -1, 1)), // 6
		entry(plain, txnBatch(t, 3, 0, 0, 1)),         // 7: stays open
		marker(2, true),                               // 8: 2 commits
		entry(Meta{Kind: KindTxnMarker, AppendTime: 7000, Marker: Marker{ProducerID: 3, ProducerEpoch: -1}}, nil), // refused
	}
	for i, e := range entries {
		res, err := p.Apply(uint64(i+1), e)
		require.NoError(t, err)
		if i == 6 {
			require.ErrorIs(t, res.Err, ErrInvalidRecord)
		} else {
			require.NoError(t, res.Err)
		}
		if i == 5 {
			require.Equal(t, int64(8), res.BaseOffset, "a marker answers its offset")
		}
	}
	require.Equal(t, int64(9), p.Log().EndOffset())
	check := func(p *Partition) {
		t.Helper()
		require.Equal(t, int64(7), p.LastStableOffset())
		require.Equal(t, []AbortedTxn{{ProducerID: 1, FirstOffset: 0, LastOffset: 5}}, p.AbortedTxns(0, 9, nil))
	}
	check(p)

	// The log holds the control batches at 5 and 8, as MarkerBatch builds them.
	log := stored(t, p)
	var controls []int64
	for len(log) > 0 {
		h, err := batch.ParseHeader(log)
		require.NoError(t, err)
		if h.Attributes.Control() {
			controls = append(controls, h.BaseOffset)
			want, err := MarkerBatch(&Meta{AppendTime: 7000, LeaderEpoch: 3, Marker: Marker{ProducerID: h.ProducerID, Commit: h.BaseOffset == 8, CoordinatorEpoch: 2}}, h.BaseOffset)
			require.NoError(t, err)
			require.Equal(t, want, log[:h.Size()])
		}
		log = log[h.Size():]
	}
	require.Equal(t, []int64{5, 8}, controls)

	snap, err := p.Snapshot()
	require.NoError(t, err)
	var stream bytes.Buffer
	_, err = snap.WriteTo(&stream, nil, nil)
	require.NoError(t, err)
	snap.Release()

	require.NoError(t, p.Close())
	p = open(t, dir)
	check(p)
	res, err := p.Apply(8, marker(3, false))
	require.NoError(t, err)
	require.NoError(t, res.Err)
	require.Equal(t, int64(10), p.LastStableOffset())
	require.Equal(t, []AbortedTxn{{3, 7, 9}}, p.AbortedTxns(6, 10, nil))
	require.NoError(t, p.Close())

	restored := filepath.Join(t.TempDir(), "p")
	_, err = Restore(restored, bytes.NewReader(stream.Bytes()), nil, nil)
	require.NoError(t, err)
	q := open(t, restored)
	defer q.Close()
	check(q)
}
