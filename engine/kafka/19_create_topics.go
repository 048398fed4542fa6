package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics v0–4, with validate_only (v1+). -1 partitions or
// replication factor take the broker's defaults. Manual replica
// assignment is refused: the controller places replicas.

func (s *Server) handleCreateTopics(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := requestTimeout(ctx, r.TimeoutMillis)
	defer cancel()
	seen := map[string]int{}
	for _, t := range r.Topics {
		seen[t.Topic]++
	}
	for _, t := range r.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		var err error
		switch {
		case seen[t.Topic] > 1:
			err = fmt.Errorf("%w: topic %q appears twice in the request", kerr.InvalidRequest, t.Topic)
		case len(t.ReplicaAssignment) > 0:
			err = fmt.Errorf("%w: manual replica assignment is not supported; give a replication factor", kerr.InvalidReplicaAssignment)
		default:
			spec := replog.TopicSpec{Name: t.Topic, Partitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor, Configs: map[string]string{}}
			if spec.Partitions == -1 {
				spec.Partitions = s.cfg.DefaultPartitions
			}
			if spec.ReplicationFactor == -1 {
				spec.ReplicationFactor = s.cfg.DefaultReplicationFactor
			}
			for _, cfg := range t.Configs {
				if cfg.Value != nil {
					spec.Configs[cfg.Name] = *cfg.Value
				}
			}
			err = s.log.CreateTopic(ctx, spec, r.ValidateOnly)
		}
		rt.ErrorCode, rt.ErrorMessage = s.errCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// requestTimeout bounds a request by the timeout its client gave (ms),
// or 30 s without one.
func requestTimeout(ctx context.Context, ms int32) (context.Context, context.CancelFunc) {
	d := time.Duration(ms) * time.Millisecond
	if d <= 0 {
		d = 30 * time.Second
	}
	return context.WithTimeout(ctx, d)
}
