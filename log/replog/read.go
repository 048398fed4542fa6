package replog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/samsa-io/samsa/log/segment"
)

// ReadResult is what a read returns besides the batches.
type ReadResult struct {
	// Sections hold whole batches; release them (segment.Release) after
	// sending or copying them.
	Sections []segment.Section
	// HighWatermark is the partition's end: with Raft every stored record
	// is committed, so it is also the last stable offset.
	HighWatermark  int64
	LogStartOffset int64
}

// Bytes is the total size of the sections.
func (r *ReadResult) Bytes() int64 {
	var n int64
	for i := range r.Sections {
		n += r.Sections[i].Len
	}
	return n
}

// Read returns the batches of tp from the one holding offset on, at most
// maxBytes but always at least one batch, appending the sections to dst.
// Only the leader serves reads, as in Kafka.
func (l *Log) Read(tp TopicPartition, offset int64, maxBytes int, dst []segment.Section) (ReadResult, error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return ReadResult{Sections: dst}, err
	}
	lg := s.Partition().Log()
	res := ReadResult{HighWatermark: lg.EndOffset(), LogStartOffset: lg.StartOffset()}
	res.Sections, err = lg.Read(offset, maxBytes, dst)
	if errors.Is(err, segment.ErrClosed) { // replaced by a snapshot just now
		err = fmt.Errorf("%w: %s is being restored", ErrLeaderNotAvailable, tp)
	}
	return res, err
}

// Offsets returns tp's log start offset and high watermark, on its leader.
func (l *Log) Offsets(tp TopicPartition) (start, end int64, err error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return -1, -1, err
	}
	lg := s.Partition().Log()
	return lg.StartOffset(), lg.EndOffset(), nil
}

// Changed returns a channel closed when tp next receives records (or is
// restored from a snapshot): the wake-up of a long-polling fetch. Take it
// before reading, so that nothing appended in between is missed.
func (l *Log) Changed(tp TopicPartition) (<-chan struct{}, error) {
	_, p, err := l.part(tp)
	if err != nil {
		return nil, err
	}
	if p.local == nil {
		return nil, fmt.Errorf("%w: %s has no replica on node %d", ErrNotLeader, tp, l.cfg.NodeID)
	}
	return p.local.Changed(), nil
}

// Fetch is Read with Kafka's long-poll: it waits up to maxWait for at
// least minBytes, returning what there is when the time is up.
func (l *Log) Fetch(ctx context.Context, tp TopicPartition, offset int64, maxBytes, minBytes int, maxWait time.Duration, dst []segment.Section) (ReadResult, error) {
	deadline := time.Now().Add(maxWait)
	for {
		changed, err := l.Changed(tp)
		if err != nil {
			return ReadResult{Sections: dst}, err
		}
		res, err := l.Read(tp, offset, maxBytes, dst)
		if err != nil || res.Bytes() >= int64(minBytes) || !time.Now().Before(deadline) {
			return res, err
		}
		segment.Release(res.Sections)
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
		case <-ctx.Done():
			return ReadResult{Sections: dst}, ctx.Err()
		}
	}
}

// Special timestamps of ListOffsets.
const (
	LatestTimestamp   int64 = -1
	EarliestTimestamp int64 = -2
)

// ListOffsets answers Kafka's ListOffsets for one partition: the earliest
// or latest offset, or the first offset whose record's timestamp is at
// least ts (offset and timestamp -1 when every record is older).
func (l *Log) ListOffsets(tp TopicPartition, ts int64) (offset, timestamp int64, err error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return -1, -1, err
	}
	lg := s.Partition().Log()
	switch ts {
	case LatestTimestamp:
		return lg.EndOffset(), -1, nil
	case EarliestTimestamp:
		return lg.StartOffset(), -1, nil
	}
	offset, timestamp, found, err := lg.OffsetForTime(ts)
	if err != nil || !found {
		return -1, -1, err
	}
	return offset, timestamp, nil
}
