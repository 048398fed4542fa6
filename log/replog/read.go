package replog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/samsa-io/samsa/log/partition"
	"github.com/samsa-io/samsa/log/segment"
)

// ReadResult is what a read returns besides the batches.
type ReadResult struct {
	// Sections hold whole batches; release them (segment.Release) after
	// sending or copying them.
	Sections []segment.Section
	// HighWatermark is the partition's end: with Raft every stored record
	// is committed.
	HighWatermark int64
	// LastStableOffset is where the oldest open transaction starts, else
	// the high watermark; never above it.
	LastStableOffset int64
	LogStartOffset   int64
	// Aborted lists, for ReadCommitted, the aborted transactions whose
	// records overlap what it returns: from the offset read up to the
	// last stable offset or the end of the last segment read, whichever
	// comes first (a superset, as Kafka's).
	Aborted []AbortedTxn
}

// AbortedTxn is an aborted transaction of one producer in a partition: a
// read_committed consumer skips that producer's records from FirstOffset
// to its abort marker at LastOffset.
type AbortedTxn = partition.AbortedTxn

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
	return l.read(tp, offset, maxBytes, dst, false)
}

// ReadCommitted is Read for a read_committed consumer: it returns only
// batches below the last stable offset (a batch boundary), and the
// aborted transactions among them in ReadResult.Aborted.
func (l *Log) ReadCommitted(tp TopicPartition, offset int64, maxBytes int, dst []segment.Section) (ReadResult, error) {
	return l.read(tp, offset, maxBytes, dst, true)
}

func (l *Log) read(tp TopicPartition, offset int64, maxBytes int, dst []segment.Section, committed bool) (ReadResult, error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return ReadResult{Sections: dst}, err
	}
	p := s.Partition()
	lg := p.Log()
	// The last stable offset first: the state moves only after the log
	// has the batches, so the end read next is at or above it.
	res := ReadResult{LastStableOffset: p.LastStableOffset()}
	res.HighWatermark, res.LogStartOffset = lg.EndOffset(), lg.StartOffset()
	if committed {
		res.Sections, err = lg.ReadBelow(offset, res.LastStableOffset, maxBytes, dst)
		if err == nil && len(res.Sections) > len(dst) {
			// Everything returned lies below the segment after the last
			// section's: a bound on the transactions listed, however far
			// the last stable offset is.
			to := min(res.LastStableOffset, lg.NextSegmentBase(res.Sections[len(res.Sections)-1].Base()))
			res.Aborted = p.AbortedTxns(offset, to, nil)
		}
	} else {
		res.Sections, err = lg.Read(offset, maxBytes, dst)
	}
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

// LastStableOffset returns tp's last stable offset, on its leader: below
// it every transaction is decided.
func (l *Log) LastStableOffset(tp TopicPartition) (int64, error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return -1, err
	}
	return s.Partition().LastStableOffset(), nil
}

// AbortedTxns returns tp's aborted transactions whose records overlap
// [from, to), on its leader.
func (l *Log) AbortedTxns(tp TopicPartition, from, to int64) ([]AbortedTxn, error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return nil, err
	}
	return s.Partition().AbortedTxns(from, to, nil), nil
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
	return l.listOffsets(tp, ts, false)
}

// ListOffsetsCommitted is ListOffsets for read_committed: the latest
// offset is the last stable offset.
func (l *Log) ListOffsetsCommitted(tp TopicPartition, ts int64) (offset, timestamp int64, err error) {
	return l.listOffsets(tp, ts, true)
}

func (l *Log) listOffsets(tp TopicPartition, ts int64, committed bool) (offset, timestamp int64, err error) {
	_, s, err := l.leading(tp)
	if err != nil {
		return -1, -1, err
	}
	lg := s.Partition().Log()
	switch {
	case ts == LatestTimestamp && committed:
		return s.Partition().LastStableOffset(), -1, nil
	case ts == LatestTimestamp:
		return lg.EndOffset(), -1, nil
	case ts == EarliestTimestamp:
		return lg.StartOffset(), -1, nil
	}
	lso := s.Partition().LastStableOffset()
	offset, timestamp, found, err := lg.OffsetForTime(ts)
	if err != nil || !found || (committed && offset >= lso) {
		return -1, -1, err
	}
	return offset, timestamp, nil
}
