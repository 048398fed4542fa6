package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat v0–3: keeps a member's session (package group).

func (s *Server) handleHeartbeat(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	if resp := s.notCoordinator(req); resp != nil {
		return resp, nil
	}
	return s.groups.Heartbeat(ctx, req.(*kmsg.HeartbeatRequest)), nil
}
