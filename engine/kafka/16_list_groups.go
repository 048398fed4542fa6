package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups v0–2: groups with members or committed offsets.

func (s *Server) handleListGroups(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	return s.groups.ListGroups(ctx, req.(*kmsg.ListGroupsRequest)), nil
}
