package kafka

import (
	"context"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets v1–3: earliest (-2), latest (-1), or the first offset whose
// record's timestamp is at least the one asked for (offset and timestamp
// -1 when every record is older). Without transactions the last stable
// offset is the high watermark, so read_committed changes nothing.

func (s *Server) handleListOffsets(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			off, ts, err := s.log.ListOffsets(replog.TopicPartition{Topic: t.Topic, Partition: p.Partition}, p.Timestamp)
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
