package replog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/samsa-io/samsa/log/meta"
)

// The transaction coordinator's state lives in the meta shard
// (meta/txn.go); these propose its commands with this node's clock.
// Writing the markers between a transaction's decision and its completion
// is the coordinator's (engine/kafka), through WriteTxnMarker on each
// partition's leader.

// InitTxnProducer returns the producer id and epoch of a transactional
// id: new, or its next epoch. producerID and epoch are the caller's
// (KIP-360), -1 if it has none.
func (l *Log) InitTxnProducer(ctx context.Context, txnID string, timeoutMs int32, producerID int64, epoch int16) (int64, int16, error) {
	res, err := l.proposeMetaResult(ctx, meta.InitTxnProducer{TxnID: txnID, TimeoutMs: timeoutMs, ProducerID: producerID, Epoch: epoch, NowMs: time.Now().UnixMilli()})
	if err != nil {
		return -1, -1, err
	}
	return int64(res.Value), int16(res.Version), nil
}

// AddTxnPartitions adds partitions to a transaction.
func (l *Log) AddTxnPartitions(ctx context.Context, txnID string, producerID int64, epoch int16, tps []TopicPartition) error {
	parts := make([]meta.TopicPartition, len(tps))
	for i, tp := range tps {
		parts[i] = meta.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
	}
	return l.proposeMeta(ctx, meta.AddTxnPartitions{TxnID: txnID, ProducerID: producerID, Epoch: epoch, Partitions: parts, NowMs: time.Now().UnixMilli()})
}

// AddTxnGroup adds a consumer group whose offsets a transaction commits.
func (l *Log) AddTxnGroup(ctx context.Context, txnID string, producerID int64, epoch int16, group string) error {
	return l.proposeMeta(ctx, meta.AddTxnGroup{TxnID: txnID, ProducerID: producerID, Epoch: epoch, Group: group, NowMs: time.Now().UnixMilli()})
}

// TxnCommitOffsets commits a group's offsets in a transaction: they
// become the group's when it commits. It returns one error per offset and
// an error for the request as a whole.
func (l *Log) TxnCommitOffsets(ctx context.Context, txnID string, producerID int64, epoch int16, group string, offsets []meta.OffsetCommit) ([]error, error) {
	res, err := l.proposeMetaResult(ctx, meta.TxnCommitOffsets{TxnID: txnID, ProducerID: producerID, Epoch: epoch, Group: group, Offsets: offsets, NowMs: time.Now().UnixMilli()})
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(offsets))
	for i := range offsets {
		errs[i] = res.ItemErr(i)
	}
	return errs, nil
}

// EndTxn decides a transaction: commit or abort.
func (l *Log) EndTxn(ctx context.Context, txnID string, producerID int64, epoch int16, commit bool) error {
	return l.proposeMeta(ctx, meta.EndTxn{TxnID: txnID, ProducerID: producerID, Epoch: epoch, Commit: commit, NowMs: time.Now().UnixMilli()})
}

// CompleteTxn records that a decided transaction's markers are written.
func (l *Log) CompleteTxn(ctx context.Context, txnID string, producerID int64, epoch int16) error {
	return l.proposeMeta(ctx, meta.CompleteTxn{TxnID: txnID, ProducerID: producerID, Epoch: epoch, NowMs: time.Now().UnixMilli()})
}

// AbortTxn aborts an open transaction on the coordinator's initiative;
// with fence the producer's epoch moves on.
func (l *Log) AbortTxn(ctx context.Context, txnID string, producerID int64, epoch int16, fence bool) error {
	return l.proposeMeta(ctx, meta.AbortTxn{TxnID: txnID, ProducerID: producerID, Epoch: epoch, Fence: fence, NowMs: time.Now().UnixMilli()})
}

// Txn returns a transactional id's state.
func (l *Log) Txn(txnID string) (meta.Txn, bool) {
	var t meta.Txn
	var ok bool
	l.meta.Read(func(s *meta.State) { t, ok = s.Txn(txnID) })
	return t, ok
}

// OpenTxns returns the transactions that are open or being completed.
func (l *Log) OpenTxns() []meta.Txn {
	var out []meta.Txn
	l.meta.Read(func(s *meta.State) { out = s.OpenTxns() })
	return out
}

// proposeMetaResult proposes cmd and returns its result, or the refusal
// as an error.
func (l *Log) proposeMetaResult(ctx context.Context, cmd meta.Command) (meta.Result, error) {
	res, err := l.meta.Propose(ctx, cmd)
	if err != nil {
		return meta.Result{}, mapReplicaError(err)
	}
	return res, res.Err()
}

// MarkerWriter writes one partition's transaction marker on its leader.
type MarkerWriter func(ctx context.Context, tp TopicPartition, producerID int64, epoch int16, commit bool) error

// FinishTxn writes the markers of a decided transaction with write, one
// partition at a time in parallel, and records the transaction complete.
// A partition deleted since needs no marker. It does nothing if the
// transaction is not decided, and may run again after a failure or on
// another node: writing a marker twice is harmless (the second closes
// nothing), and completing twice is refused with meta.ErrInvalidTxnState,
// which FinishTxn treats as done.
func (l *Log) FinishTxn(ctx context.Context, txnID string, write MarkerWriter) error {
	t, ok := l.Txn(txnID)
	if !ok || !t.Status.Preparing() {
		return nil
	}
	commit := t.Status == meta.TxnPrepareCommit
	errs := make(chan error, len(t.Partitions))
	for _, tp := range t.Partitions {
		go func() {
			err := write(ctx, TopicPartition{Topic: tp.Topic, Partition: tp.Partition}, t.ProducerID, t.Epoch, commit)
			if errors.Is(err, ErrUnknownTopicOrPartition) {
				err = nil
			}
			errs <- err
		}()
	}
	var first error
	for range t.Partitions {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return first
	}
	err := l.CompleteTxn(ctx, txnID, t.ProducerID, t.Epoch)
	if errors.Is(err, meta.ErrInvalidTxnState) {
		return nil // completed meanwhile
	}
	return err
}

// WriteTxnMarkerRetrying is a MarkerWriter for partitions this node
// leads: it retries while leadership settles, until ctx ends.
func (l *Log) WriteTxnMarkerRetrying(ctx context.Context, tp TopicPartition, producerID int64, epoch int16, commit bool) error {
	backoff := 10 * time.Millisecond
	for {
		err := l.WriteTxnMarker(ctx, tp, producerID, epoch, commit, 0)
		if err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeaderNotAvailable) || errors.Is(err, ErrTimeout)) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// initTxnProducerTries bounds how often a transaction in the way is
// aborted or finished before giving up with ErrConcurrentTransactions.
const initTxnProducerTries = 3

// InitTxnProducerAborting is InitTxnProducer for an instance that must
// get its producer even if an older instance left a transaction in the
// way: one left open is aborted (fencing that instance) and a decided one
// finished with finish, then the producer is initialised. producerID and
// epoch are the caller's (KIP-360), -1 for a new instance.
func (l *Log) InitTxnProducerAborting(ctx context.Context, txnID string, timeoutMs int32, producerID int64, epoch int16, finish func(ctx context.Context, txnID string) error) (int64, int16, error) {
	var err error
	for range initTxnProducerTries {
		var pid int64
		var e int16
		pid, e, err = l.InitTxnProducer(ctx, txnID, timeoutMs, producerID, epoch)
		if !errors.Is(err, meta.ErrConcurrentTransactions) {
			return pid, e, err
		}
		if t, ok := l.Txn(txnID); ok && t.Status == meta.TxnOngoing {
			if err := l.AbortTxn(ctx, txnID, t.ProducerID, t.Epoch, true); err != nil && !errors.Is(err, meta.ErrInvalidTxnState) {
				return -1, -1, err
			}
		}
		if err := finish(ctx, txnID); err != nil {
			return -1, -1, err
		}
	}
	return -1, -1, err
}
