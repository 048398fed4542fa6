package kafka

import (
	"context"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets v1–3: earliest (-2), latest (-1), or the first offset whose
// record's timestamp is at least the one asked for (offset and timestamp
// -1 when every record is older). Under read_committed (isolation level 1,
// v2+) latest is the last stable offset, and a timestamp found at or
// above it is not found.

func (s *Server) handleListOffsets(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			list := s.log.ListOffsets
			if r.IsolationLevel == 1 {
				list = s.log.ListOffsetsCommitted
			}
			off, ts, err := list(replog.TopicPartition{Topic: t.Topic, Partition: p.Partition}, p.Timestamp)
			rp.ErrorCode, rp.Offset, rp.Timestamp = s.errCode(err), off, ts
			if err != nil {
				rp.Offset, rp.Timestamp = -1, -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
