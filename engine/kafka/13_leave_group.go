package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup v0–3 (v3: several members at once).

func (s *Server) handleLeaveGroup(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	if resp := s.notCoordinator(req); resp != nil {
		return resp, nil
	}
	return s.groups.LeaveGroup(ctx, req.(*kmsg.LeaveGroupRequest)), nil
}
