package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups v0–1: empty groups and their committed offsets.

func (s *Server) handleDeleteGroups(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	if resp := s.notCoordinator(req); resp != nil {
		return resp, nil
	}
	return s.groups.DeleteGroups(ctx, req.(*kmsg.DeleteGroupsRequest)), nil
}
