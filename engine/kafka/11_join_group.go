package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup v0–5: the first half of a rebalance (package group).

func (s *Server) handleJoinGroup(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	if resp := s.notCoordinator(req); resp != nil {
		return resp, nil
	}
	return s.groups.JoinGroup(ctx, req.(*kmsg.JoinGroupRequest), c.clientID(), c.clientHost()), nil
}
