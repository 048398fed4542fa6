package kafka

import (
	"context"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch v0–3, as the fetch path needs it: a client that saw
// a leader change asks where the epoch it read from ends, to detect a log
// truncated under it. Raft never truncates a committed record, and Samsa
// serves only committed ones, so no epoch a client read from can have
// ended below what it read: the answer is the epoch asked for and the high
// watermark. A client whose current_leader_epoch (v2+) is older than the
// leader's is fenced; a newer one means this node lags behind.

func (s *Server) handleOffsetForLeaderEpoch(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.EndOffset = p.Partition, -1, -1
			tp := replog.TopicPartition{Topic: t.Topic, Partition: p.Partition}
			info, err := s.log.PartitionInfo(tp)
			var end int64
			if err == nil {
				end, _, err = s.log.ListOffsets(tp, replog.LatestTimestamp)
			}
			switch {
			case err != nil:
				rp.ErrorCode = s.errCode(err)
			case p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch < info.LeaderEpoch:
				rp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case p.CurrentLeaderEpoch > info.LeaderEpoch || p.LeaderEpoch > info.LeaderEpoch:
				rp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				rp.LeaderEpoch, rp.EndOffset = p.LeaderEpoch, end
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
