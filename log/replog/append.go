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
	p, err := l.AppendStart(ctx, tp, b, opts)
	if err != nil {
		return AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}, err
	}
	return p.Wait(ctx)
}

// PendingAppend is an append proposed and not yet answered.
type PendingAppend struct {
	p       *replica.Pending // nil with AcksNone
	s       *replica.Shard
	logTime int64 // the append time if the topic uses LogAppendTime, else -1
}

// AppendStart checks and proposes a batch as Append does, returning
// without waiting. Appends started one after another from one goroutine
// are stored in that order, so a connection can keep its produce requests
// in order while waiting for them concurrently.
func (l *Log) AppendStart(ctx context.Context, tp TopicPartition, b []byte, opts AppendOptions) (*PendingAppend, error) {
	t, s, err := l.leading(tp)
	if err != nil {
		return nil, err
	}
	if max := t.settings.MaxMessageBytes; len(b) > int(max) {
		return nil, fmt.Errorf("%w: %d bytes, %s allows %d", ErrMessageTooLarge, len(b), tp.Topic, max)
	}
	h, err := batch.Validate(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptMessage, err)
	}
	if h.Attributes.Control() {
		return nil, fmt.Errorf("%w: control batches come only from the broker", ErrInvalidRecord)
	}
	if err := l.free.check(); err != nil {
		return nil, err
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
	pa := &PendingAppend{s: s, logTime: -1}
	if m.LogAppendTime {
		pa.logTime = m.AppendTime
	}
	if opts.Acks == AcksNone {
		return pa, mapReplicaError(s.ProposeAsync(ctx, entry))
	}
	if pa.p, err = s.ProposeStart(ctx, entry); err != nil {
		return nil, mapReplicaError(err)
	}
	return pa, nil
}

// Wait waits until the append is committed (at once with AcksNone).
func (pa *PendingAppend) Wait(ctx context.Context) (AppendResult, error) {
	res := AppendResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	if pa.p == nil {
		return res, nil
	}
	r, err := pa.p.Wait(ctx)
	if err != nil {
		return res, mapReplicaError(err)
	}
	if r.Err != nil {
		return res, r.Err
	}
	res.BaseOffset, res.Duplicate = r.BaseOffset, r.Duplicate
	if !r.Duplicate {
		res.LogAppendTime = pa.logTime
	}
	if p := pa.s.Partition(); p != nil {
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
