package replog

import (
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

// txnRecordBatch is recordBatch for a transactional producer.
func txnRecordBatch(t testing.TB, pid int64, epoch int16, seq int32, prefix string, n int) []byte {
	t.Helper()
	var b batch.Builder
	b.SetProducer(pid, epoch, seq)
	b.SetTransactional(true)
	for range n {
		b.Add(batch.Record{Timestamp: 1000, Value: []byte(prefix)})
	}
	out, err := b.Build(nil)
	require.NoError(t, err)
	return out
}

func TestTxnMarkers(t *testing.T) {
	n := single(t)
	ctx := ctxT(t, 120*time.Second)
	tp := TopicPartition{"txn", 0}
	require.NoError(t, n.log.CreateTopic(ctx, TopicSpec{Name: "txn", Partitions: 1, ReplicationFactor: 1}, false))
	l := n.log
	appendB := func(b []byte) int64 {
		res, err := l.Append(ctx, tp, b, AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
		return res.BaseOffset
	}
	require.Equal(t, int64(0), appendB(txnRecordBatch(t, 5, 0, 0, "a", 2)))   // 0-1, aborted below
	require.Equal(t, int64(2), appendB(txnRecordBatch(t, 6, 0, 0, "c", 1)))   // 2, committed below
	require.Equal(t, int64(3), appendB(recordBatch(t, -1, 0, "plain", 1, 1))) // 3
	lso, err := l.LastStableOffset(tp)
	require.NoError(t, err)
	require.Equal(t, int64(0), lso)
	res, err := l.ReadCommitted(tp, 0, 1<<20, nil)
	require.NoError(t, err)
	require.Empty(t, res.Sections, "nothing is stable yet")
	require.Equal(t, int64(4), res.HighWatermark)
	require.Equal(t, int64(0), res.LastStableOffset)

	require.NoError(t, l.WriteTxnMarker(ctx, tp, 5, 0, false, 1)) // 4
	require.ErrorIs(t, l.WriteTxnMarker(ctx, tp, 6, -1, true, 1), ErrInvalidRecord)
	lso, _ = l.LastStableOffset(tp)
	require.Equal(t, int64(2), lso, "6's transaction is still open")
	res, err = l.ReadCommitted(tp, 0, 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 1}, recordOffsets(t, res.Sections), "below the last stable offset only")
	require.Equal(t, []AbortedTxn{{ProducerID: 5, FirstOffset: 0, LastOffset: 4}}, res.Aborted)

	require.NoError(t, l.WriteTxnMarker(ctx, tp, 6, 0, true, 1)) // 5
	res, err = l.ReadCommitted(tp, 0, 1<<20, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5}, recordOffsets(t, res.Sections))
	require.Equal(t, int64(6), res.LastStableOffset)
	res, err = l.Read(tp, 0, 1<<20, nil)
	require.NoError(t, err)
	segment.Release(res.Sections)
	require.Equal(t, int64(6), res.LastStableOffset, "read_uncommitted reports it too")

	// The epoch moves with a fencing abort: the zombie is refused.
	require.NoError(t, l.WriteTxnMarker(ctx, tp, 6, 1, false, 2))
	_, err = l.Append(ctx, tp, txnRecordBatch(t, 6, 0, 1, "z", 1), AppendOptions{Acks: AcksAll})
	require.ErrorIs(t, err, ErrInvalidProducerEpoch)
	require.ErrorIs(t, l.WriteTxnMarker(ctx, tp, 6, 0, true, 2), ErrInvalidProducerEpoch)

	// An open transaction and the aborted index survive a restart.
	appendB(txnRecordBatch(t, 7, 0, 0, "open", 1)) // 7
	off, _, err := l.ListOffsetsCommitted(tp, LatestTimestamp)
	require.NoError(t, err)
	require.Equal(t, int64(7), off)
	off, _, err = l.ListOffsets(tp, LatestTimestamp)
	require.NoError(t, err)
	require.Equal(t, int64(8), off)
	n.close(t)
	l = n.open(t)
	require.Eventually(t, func() bool { _, err := l.LastStableOffset(tp); return err == nil }, 30*time.Second, 20*time.Millisecond)
	lso, _ = l.LastStableOffset(tp)
	require.Equal(t, int64(7), lso)
	aborted, err := l.AbortedTxns(tp, 0, 8)
	require.NoError(t, err)
	require.Equal(t, []AbortedTxn{{ProducerID: 5, FirstOffset: 0, LastOffset: 4}}, aborted, "6's fencing abort had nothing open")
	require.ErrorIs(t, l.WriteTxnMarker(ctx, TopicPartition{"txn", 3}, 7, 0, true, 0), ErrUnknownTopicOrPartition)
}

// recordOffsets lists the offsets of the records in sections, control
// records included, and releases them.
func recordOffsets(t testing.TB, secs []segment.Section) []int64 {
	t.Helper()
	defer segment.Release(secs)
	var b []byte
	var err error
	for i := range secs {
		b, err = secs[i].AppendTo(b)
		require.NoError(t, err)
	}
	var out []int64
	it := batch.NewIterator(b)
	for it.Next() {
		out = append(out, it.Record().Offset)
	}
	require.NoError(t, it.Err())
	return out
}

// TestReadCommittedBoundsAborted: a read_committed read lists the aborted
// transactions up to the end of the last segment it read, not all the
// way to the last stable offset.
func TestReadCommittedBoundsAborted(t *testing.T) {
	l := single(t).log
	ctx := ctxT(t, 120*time.Second)
	tp := TopicPartition{"aborts", 0}
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "aborts", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"segment.bytes": "4096"}}, false))
	big := string(make([]byte, 600))
	for i := range 30 {
		_, err := l.Append(ctx, tp, txnRecordBatch(t, 9, 0, int32(i), big, 1), AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
		require.NoError(t, l.WriteTxnMarker(ctx, tp, 9, 0, false, 0))
	}
	all, err := l.AbortedTxns(tp, 0, 60)
	require.NoError(t, err)
	require.Len(t, all, 30)
	res, err := l.ReadCommitted(tp, 0, 1, nil)
	require.NoError(t, err)
	require.Equal(t, []int64{0}, recordOffsets(t, res.Sections), "one batch within the budget")
	require.Equal(t, int64(60), res.LastStableOffset)
	require.NotEmpty(t, res.Aborted)
	require.Less(t, len(res.Aborted), 30, "the first segment's, not the whole log's")
	require.Equal(t, all[:len(res.Aborted)], res.Aborted)
}
