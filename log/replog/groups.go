package replog

import (
	"context"
	"time"

	"github.com/samsa-io/samsa/log/meta"
)

// CommitOffsets stores a consumer group's committed offsets in the meta
// shard. It returns one error per offset (nil for stored ones: an unknown
// partition is refused alone), and an error for the request as a whole.
// Generation and membership checks are the group coordinator's, before.
func (l *Log) CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit) ([]error, error) {
	res, err := l.meta.Propose(ctx, meta.CommitOffsets{Group: group, Offsets: offsets, NowMs: time.Now().UnixMilli()})
	if err != nil {
		return nil, mapReplicaError(err)
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	errs := make([]error, len(offsets))
	for i := range offsets {
		errs[i] = res.ItemErr(i)
	}
	return errs, nil
}

// CommittedOffset returns a group's committed offset for a partition.
func (l *Log) CommittedOffset(group string, tp TopicPartition) (meta.CommittedOffset, bool) {
	var c meta.CommittedOffset
	var ok bool
	l.meta.Read(func(s *meta.State) { c, ok = s.CommittedOffset(group, tp.Topic, tp.Partition) })
	return c, ok
}

// GroupOffsets returns every offset a group committed, sorted by topic
// then partition.
func (l *Log) GroupOffsets(group string) []meta.GroupOffset {
	var out []meta.GroupOffset
	l.meta.Read(func(s *meta.State) { out = s.GroupOffsets(group) })
	return out
}

// Groups lists the groups that have committed offsets.
func (l *Log) Groups() []string {
	var out []string
	l.meta.Read(func(s *meta.State) { out = s.Groups() })
	return out
}

// DeleteGroup deletes a group's committed offsets.
func (l *Log) DeleteGroup(ctx context.Context, group string) error {
	return l.proposeMeta(ctx, meta.DeleteGroup{Group: group})
}

// DeleteOffsets deletes a group's committed offsets for some partitions.
func (l *Log) DeleteOffsets(ctx context.Context, group, topic string, partitions []int32) error {
	return l.proposeMeta(ctx, meta.DeleteOffsets{Group: group, Topic: topic, Partitions: partitions})
}
