package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions v0–1: grow a topic to a new total, validate_only
// honoured; the controller places the new replicas (manual assignment is
// refused).

func (s *Server) handleCreatePartitions(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := requestTimeout(ctx, r.TimeoutMillis)
	defer cancel()
	for _, t := range r.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		var err error
		if len(t.Assignment) > 0 {
			err = fmt.Errorf("%w: manual replica assignment is not supported", kerr.InvalidReplicaAssignment)
		} else {
			err = s.log.CreatePartitions(ctx, t.Topic, t.Count, r.ValidateOnly)
		}
		rt.ErrorCode, rt.ErrorMessage = s.errCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
