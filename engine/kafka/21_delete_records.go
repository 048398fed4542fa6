package kafka

import (
	"context"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords v0–1: move a partition's log start offset (-1: to the
// high watermark), deleting whole segments below it on every replica.

func (s *Server) handleDeleteRecords(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ctx, cancel := requestTimeout(ctx, r.TimeoutMillis)
	defer cancel()
	for _, t := range r.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition = p.Partition
			tp := replog.TopicPartition{Topic: t.Topic, Partition: p.Partition}
			off := p.Offset
			var err error
			if off == -1 {
				off, _, err = s.log.ListOffsets(tp, replog.LatestTimestamp)
			}
			if err == nil {
				rp.LowWatermark, err = s.log.DeleteRecords(ctx, tp, off)
			}
			rp.ErrorCode = s.errCode(err)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
