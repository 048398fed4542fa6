package replog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/partition"
	"github.com/samsa-io/samsa/log/replica"
)

// Acks is how much of the write the producer waits for. With Raft there is
// nothing between "nothing" and "committed by a majority": 1 and all both
// answer after commit.
type Acks int16

// Acknowledgement levels.
const (
	AcksNone Acks = 0
	AcksOne  Acks = 1
	AcksAll  Acks = -1
)

// AppendOptions qualifies an Append.
type AppendOptions struct {
	Acks Acks
	// Source, SourceFirst and SourceLast identify a pipeline source and the
	// positions of the batch's first and last records (DESIGN invariant 4).
	Source      string
	SourceFirst []byte
	SourceLast  []byte
}

// AppendResult is the answer to an Append.
type AppendResult struct {
	BaseOffset     int64 // -1 with AcksNone
	LogAppendTime  int64 // the batch's timestamp under LogAppendTime, else -1
	LogStartOffset int64
	// Duplicate means the batch was stored before (a producer's retry, or a
	// source re-reading after a restart); BaseOffset is where it went.
	Duplicate bool
}

// Append stores one RecordBatch v2 in a partition this node leads: it
// checks the batch (CRC, size, not a control batch), proposes it with the
// leader's clock and epoch, and, unless acks is AcksNone, waits until a
// majority of replicas have it. The batch is copied; the caller keeps it.
func (l *Log) Append(ctx context.Context, tp TopicPartition, b []byte, opts AppendOptions) (AppendResult, error) {
	res := AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	t, s, err := l.leading(tp)
	if err != nil {
		return res, err
	}
	if max := t.settings.MaxMessageBytes; len(b) > int(max) {
		return res, fmt.Errorf("%w: %d bytes, %s allows %d", ErrMessageTooLarge, len(b), tp.Topic, max)
	}
	h, err := batch.Validate(b)
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrCorruptMessage, err)
	}
	if h.Attributes.Control() {
		return res, fmt.Errorf("%w: control batches come only from the broker", ErrInvalidRecord)
	}
	if err := l.free.check(); err != nil {
		return res, err
	}
	_, term, _ := s.Leader()
	m := partition.Meta{
		Kind:          partition.KindBatch,
		AppendTime:    time.Now().UnixMilli(),
		LeaderEpoch:   int32(term),
		LogAppendTime: t.settings.LogAppendTime,
		Source:        opts.Source, SourceFirst: opts.SourceFirst, SourceLast: opts.SourceLast,
	}
	entry := partition.AppendEntry(make([]byte, 0, len(b)+64+len(opts.Source)+len(opts.SourceFirst)+len(opts.SourceLast)), &m, b)
	if opts.Acks == AcksNone {
		return res, mapReplicaError(s.ProposeAsync(ctx, entry))
	}
	r, err := s.Propose(ctx, entry)
	if err != nil {
		return res, mapReplicaError(err)
	}
	if r.Err != nil {
		return res, r.Err
	}
	res.BaseOffset, res.Duplicate = r.BaseOffset, r.Duplicate
	if m.LogAppendTime && !r.Duplicate {
		res.LogAppendTime = m.AppendTime
	}
	if p := s.Partition(); p != nil {
		res.LogStartOffset = p.Log().StartOffset()
	}
	return res, nil
}

// DeleteRecords moves a partition's log start offset to offset (Kafka's
// DeleteRecords), deleting whole segments below it on every replica.
func (l *Log) DeleteRecords(ctx context.Context, tp TopicPartition, offset int64) (int64, error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return -1, err
	}
	r, err := s.Propose(ctx, partition.AppendEntry(nil, &partition.Meta{Kind: partition.KindDeleteRecords, DeleteBefore: offset}, nil))
	if err != nil {
		return -1, mapReplicaError(err)
	}
	if r.Err != nil {
		return -1, r.Err
	}
	return s.Partition().Log().StartOffset(), nil
}

// mapReplicaError turns a proposal's failure into this package's errors.
func mapReplicaError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replica.ErrNotReady):
		return errors.Join(ErrLeaderNotAvailable, err)
	case errors.Is(err, replica.ErrTimeout), errors.Is(err, replica.ErrBusy),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return errors.Join(ErrTimeout, err)
	case errors.Is(err, replica.ErrClosed):
		return errors.Join(ErrClosed, err)
	case errors.Is(err, replica.ErrUnknownShard):
		return errors.Join(ErrNotLeader, err)
	}
	return err
}
