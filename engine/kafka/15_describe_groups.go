package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups v0–4.

func (s *Server) handleDescribeGroups(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	if resp := s.notCoordinator(req); resp != nil {
		return resp, nil
	}
	return s.groups.DescribeGroups(ctx, req.(*kmsg.DescribeGroupsRequest)), nil
}
