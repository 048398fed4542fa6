package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup v0–3: the leader's assignments, handed to each member.

func (s *Server) handleSyncGroup(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	if resp := s.notCoordinator(req); resp != nil {
		return resp, nil
	}
	return s.groups.SyncGroup(ctx, req.(*kmsg.SyncGroupRequest)), nil
}
