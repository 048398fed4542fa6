package kafka

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0–4 for idempotent producers: a producer id from the
// meta shard's blocks, epoch 0. A producer that gives its id and epoch
// (v3+, KIP-360) gets the next epoch, and a fresh id when the epoch would
// overflow. Transactional ids are refused: transactions are not supported.

func (s *Server) handleInitProducerID(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	if r.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp, nil
	}
	if r.ProducerID >= 0 && r.ProducerEpoch >= 0 && r.ProducerEpoch < math.MaxInt16 {
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.ProducerEpoch+1
		return resp, nil
	}
	id, err := s.log.AllocateProducerID(ctx)
	if err != nil {
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = s.errCode(err), -1, -1
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
