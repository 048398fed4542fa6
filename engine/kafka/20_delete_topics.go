package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics v0–3: the topics, their data on every replica, and the
// groups' committed offsets for them.

func (s *Server) handleDeleteTopics(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := requestTimeout(ctx, r.TimeoutMillis)
	defer cancel()
	for _, name := range r.TopicNames {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		rt.ErrorCode = s.errCode(s.log.DeleteTopic(ctx, name))
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
