package meta

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomTxn returns a transaction command for one of three transactional
// ids, mostly with the producer id and epoch the state has for it, so
// that transactions run their course, and sometimes stale ones.
func randomTxn(r *rand.Rand, s *State) Command {
	id := fmt.Sprintf("x%d", r.IntN(3))
	pid, epoch := int64(-1), int16(-1)
	if t, ok := s.Txn(id); ok && r.IntN(6) > 0 {
		pid, epoch = t.ProducerID, t.Epoch
		if r.IntN(8) == 0 {
			epoch--
		}
	}
	var tps []TopicPartition
	for range r.IntN(3) + 1 {
		tps = append(tps, TopicPartition{fmt.Sprintf("t%d", r.IntN(6)), int32(r.IntN(3))})
	}
	if ts := s.Topics(); len(ts) > 0 && r.IntN(3) > 0 { // mostly partitions that exist
		t := ts[r.IntN(len(ts))]
		tps = []TopicPartition{{t.Name, int32(r.IntN(len(t.Partitions)))}}
	}
	now := r.Int64N(1 << 40)
	switch r.IntN(8) {
	case 0:
		return InitTxnProducer{TxnID: id, TimeoutMs: int32(r.IntN(100000)), ProducerID: pid, Epoch: epoch, NowMs: now}
	case 1, 2:
		return AddTxnPartitions{TxnID: id, ProducerID: pid, Epoch: epoch, Partitions: tps, NowMs: now}
	case 3:
		return AddTxnGroup{TxnID: id, ProducerID: pid, Epoch: epoch, Group: fmt.Sprintf("g%d", r.IntN(4)), NowMs: now}
	case 4:
		offsets := []OffsetCommit{{Topic: tps[0].Topic, Partition: tps[0].Partition, Offset: r.Int64N(1000)}}
		group := fmt.Sprintf("g%d", r.IntN(4))
		if t, ok := s.Txn(id); ok && len(t.Groups) > 0 && r.IntN(4) > 0 { // mostly a group in the transaction
			group = t.Groups[r.IntN(len(t.Groups))]
		}
		return TxnCommitOffsets{TxnID: id, ProducerID: pid, Epoch: epoch, Group: group, Offsets: offsets, NowMs: now}
	case 5:
		return EndTxn{TxnID: id, ProducerID: pid, Epoch: epoch, Commit: r.IntN(3) > 0, NowMs: now}
	case 6:
		return CompleteTxn{TxnID: id, ProducerID: pid, Epoch: epoch, NowMs: now}
	default:
		return AbortTxn{TxnID: id, ProducerID: pid, Epoch: epoch, Fence: r.IntN(2) == 0, NowMs: now}
	}
}

// TestTxnLifecycle runs a transaction through commit, then an abort by
// fencing, and checks what each step allows.
func TestTxnLifecycle(t *testing.T) {
	s := cluster(t, 1)
	mustApply(t, s, topic("t", 7, 2))
	r := mustApply(t, s, InitTxnProducer{TxnID: "x", TimeoutMs: 1000, ProducerID: -1, Epoch: -1, NowMs: 1})
	pid, epoch := int64(r.Value), int16(r.Version)
	require.Equal(t, FirstProducerID, pid)
	require.Zero(t, epoch)
	require.Equal(t, FirstProducerID+1, s.NextProducerID(), "the producer id is allocated from the shared counter")

	refused := func(err error, cmd Command) {
		t.Helper()
		before := saved(t, s)
		require.ErrorIs(t, s.apply(cmd).Err(), err)
		require.Equal(t, before, saved(t, s), "a refusal changes nothing")
	}
	refused(ErrInvalidTxnState, EndTxn{TxnID: "x", ProducerID: pid, Commit: true})
	refused(ErrUnknownTopic, AddTxnPartitions{TxnID: "x", ProducerID: pid, Partitions: []TopicPartition{{"t", 0}, {"t", 2}}})
	refused(ErrProducerFenced, AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: 1, Partitions: []TopicPartition{{"t", 0}}})
	refused(ErrInvalidProducerIDMapping, AddTxnPartitions{TxnID: "x", ProducerID: pid + 1, Partitions: []TopicPartition{{"t", 0}}})
	refused(ErrInvalidProducerIDMapping, AddTxnPartitions{TxnID: "y", ProducerID: pid, Partitions: []TopicPartition{{"t", 0}}})
	refused(ErrInvalidTxnTimeout, InitTxnProducer{TxnID: "x", TimeoutMs: MaxTxnTimeoutMs + 1, ProducerID: -1, Epoch: -1})

	mustApply(t, s, AddTxnPartitions{TxnID: "x", ProducerID: pid, Partitions: []TopicPartition{{"t", 1}, {"t", 0}, {"t", 1}}, NowMs: 5})
	refused(ErrInvalidTxnState, TxnCommitOffsets{TxnID: "x", ProducerID: pid, Group: "g", Offsets: []OffsetCommit{{Topic: "t", Offset: 7}}})
	mustApply(t, s, AddTxnGroup{TxnID: "x", ProducerID: pid, Group: "g", NowMs: 6})
	mustApply(t, s, TxnCommitOffsets{TxnID: "x", ProducerID: pid, Group: "g", Offsets: []OffsetCommit{{Topic: "t", Offset: 7}}, NowMs: 7})
	_, ok := s.CommittedOffset("g", "t", 0)
	require.False(t, ok, "an offset committed in a transaction is invisible before the commit")
	refused(ErrConcurrentTransactions, InitTxnProducer{TxnID: "x", TimeoutMs: 1000, ProducerID: -1, Epoch: -1})

	tx, _ := s.Txn("x")
	require.Equal(t, TxnOngoing, tx.Status)
	require.Equal(t, []TopicPartition{{"t", 0}, {"t", 1}}, tx.Partitions)
	require.Equal(t, int64(5), tx.StartMs)

	mustApply(t, s, EndTxn{TxnID: "x", ProducerID: pid, Commit: true, NowMs: 8})
	o, ok := s.CommittedOffset("g", "t", 0)
	require.True(t, ok, "the commit decision commits the offsets")
	require.Equal(t, int64(7), o.Offset)
	mustApply(t, s, EndTxn{TxnID: "x", ProducerID: pid, Commit: true, NowMs: 9}) // a retry
	refused(ErrInvalidTxnState, EndTxn{TxnID: "x", ProducerID: pid, Commit: false})
	refused(ErrConcurrentTransactions, AddTxnPartitions{TxnID: "x", ProducerID: pid, Partitions: []TopicPartition{{"t", 0}}})
	require.Len(t, s.OpenTxns(), 1, "a prepared transaction is still the coordinator's to finish")
	mustApply(t, s, CompleteTxn{TxnID: "x", ProducerID: pid, NowMs: 10})
	require.Empty(t, s.OpenTxns())
	tx, _ = s.Txn("x")
	require.Equal(t, TxnCompleteCommit, tx.Status)
	require.Empty(t, tx.Partitions)

	// The next transaction times out: the coordinator aborts it and fences
	// the producer; the producer may still recover with its old epoch.
	mustApply(t, s, AddTxnPartitions{TxnID: "x", ProducerID: pid, Partitions: []TopicPartition{{"t", 0}}, NowMs: 20})
	mustApply(t, s, AddTxnGroup{TxnID: "x", ProducerID: pid, Group: "g", NowMs: 20})
	mustApply(t, s, TxnCommitOffsets{TxnID: "x", ProducerID: pid, Group: "g", Offsets: []OffsetCommit{{Topic: "t", Offset: 9}}, NowMs: 21})
	refused(ErrInvalidTxnState, TxnCommitOffsets{TxnID: "x", ProducerID: pid, Group: "h", Offsets: []OffsetCommit{{Topic: "t", Offset: 9}}})
	mustApply(t, s, AbortTxn{TxnID: "x", ProducerID: pid, Fence: true, NowMs: 22})
	o, _ = s.CommittedOffset("g", "t", 0)
	require.Equal(t, int64(7), o.Offset, "an aborted transaction's offsets are dropped")
	refused(ErrProducerFenced, EndTxn{TxnID: "x", ProducerID: pid, Epoch: 0, Commit: true})
	mustApply(t, s, CompleteTxn{TxnID: "x", ProducerID: pid, Epoch: 1, NowMs: 23})
	r = mustApply(t, s, InitTxnProducer{TxnID: "x", TimeoutMs: 1000, ProducerID: pid, Epoch: 0, NowMs: 24})
	require.Equal(t, uint64(pid), r.Value)
	require.Equal(t, uint64(2), r.Version, "recovering from a fenced epoch gets the next one")
	refused(ErrProducerFenced, InitTxnProducer{TxnID: "x", TimeoutMs: 1000, ProducerID: pid, Epoch: 0})

	restored := NewState()
	require.NoError(t, restored.Load(bytesReader(saved(t, s))))
	require.Equal(t, saved(t, s), saved(t, restored))
}
