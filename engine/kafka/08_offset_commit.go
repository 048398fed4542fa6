package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit v2–7: checked against the group's generation, stored in the
// meta shard (package group).

func (s *Server) handleOffsetCommit(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	if resp := s.notCoordinator(req); resp != nil {
		return resp, nil
	}
	return s.groups.OffsetCommit(ctx, req.(*kmsg.OffsetCommitRequest)), nil
}
