package replog

import (
	"context"
	"time"

	"github.com/samsa-io/samsa/log/partition"
)

// WriteTxnMarker ends producer producerID's transaction in a partition
// this node leads: it proposes a marker entry, from which every replica
// writes the same control batch (commit or abort, with coordinatorEpoch
// in its EndTxnMarker), and waits until a majority has it. It fails as
// appends do (ErrNotLeader, ErrLeaderNotAvailable, ErrTimeout, ...), and
// with ErrInvalidProducerEpoch if the partition knows the producer at a
// newer epoch. Writing the same marker twice is harmless: the second
// control batch is stored but ends no transaction. The free-space guard
// does not apply: a marker is a few dozen bytes, and refusing it would
// hold the partition's last stable offset back.
func (l *Log) WriteTxnMarker(ctx context.Context, tp TopicPartition, producerID int64, epoch int16, commit bool, coordinatorEpoch int32) error {
	_, s, err := l.leading(tp)
	if err != nil {
		return err
	}
	_, term, _ := s.Leader()
	m := partition.Meta{
		Kind:        partition.KindTxnMarker,
		AppendTime:  time.Now().UnixMilli(),
		LeaderEpoch: int32(term),
		Marker:      partition.Marker{ProducerID: producerID, ProducerEpoch: epoch, Commit: commit, CoordinatorEpoch: coordinatorEpoch},
	}
	r, err := s.Propose(ctx, partition.AppendEntry(nil, &m, nil))
	if err != nil {
		return mapReplicaError(err)
	}
	return r.Err
}
