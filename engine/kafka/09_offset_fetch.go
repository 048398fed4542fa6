package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetFetch v1–5: a group's committed offsets; all of them for a null
// topic list (v2+).

func (s *Server) handleOffsetFetch(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	if resp := s.notCoordinator(req); resp != nil {
		return resp, nil
	}
	return s.groups.OffsetFetch(ctx, req.(*kmsg.OffsetFetchRequest)), nil
}
