package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator v0–2. Group coordination runs on the node that leads
// the meta shard, which holds the committed offsets. Transactions are not
// supported, so there is no transaction coordinator.

func (s *Server) handleFindCoordinator(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if r.CoordinatorType != 0 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.ErrorMessage = kmsg.StringPtr("transactions are not supported: there is no transaction coordinator")
		return resp, nil
	}
	id := s.controller()
	for _, b := range s.brokers() {
		if b.NodeID == id {
			resp.NodeID, resp.Host, resp.Port = b.NodeID, b.Host, b.Port
			return resp, nil
		}
	}
	resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	resp.NodeID = -1
	return resp, nil
}
