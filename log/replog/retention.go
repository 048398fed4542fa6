package replog

import (
	"context"
	"time"

	"github.com/samsa-io/samsa/log/partition"
)

// retain applies retention on a timer: the leader of each partition works
// out how far retention.ms and retention.bytes allow deleting and proposes
// that as a delete-records entry, so every replica deletes the same
// records.
func (l *Log) retain() {
	defer l.wg.Done()
	tick := time.NewTicker(l.cfg.RetentionCheck)
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-tick.C:
			l.RetainNow(context.Background())
		}
	}
}

// RetainNow applies retention to every partition this node leads and
// returns how many partitions moved their log start offset.
func (l *Log) RetainNow(ctx context.Context) int {
	moved := 0
	now := time.Now().UnixMilli()
	for name, t := range l.view.Load().topics {
		for i := range t.parts {
			tp := TopicPartition{name, int32(i)}
			_, s, err := l.leading(tp)
			if err != nil {
				continue
			}
			p := s.Partition()
			point := p.RetentionPoint(now)
			if point <= p.Log().StartOffset() {
				continue
			}
			e := partition.AppendEntry(nil, &partition.Meta{Kind: partition.KindDeleteRecords, DeleteBefore: point}, nil)
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			r, err := s.Propose(ctx, e)
			cancel()
			if err == nil && r.Err == nil {
				moved++
				l.logger.Info("retention", "topic", tp.Topic, "partition", tp.Partition, "log_start_offset", point)
			} else {
				l.logger.Warn("retention", "topic", tp.Topic, "partition", tp.Partition, "err", err, "refused", r.Err)
			}
		}
	}
	return moved
}
