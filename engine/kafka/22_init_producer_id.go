package kafka

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId v0–4. For idempotent producers: a producer id from the
// meta shard's blocks, epoch 0; a producer that gives its id and epoch
// (v3+, KIP-360) gets the next epoch, and a fresh id when the epoch would
// overflow. For transactional producers (a transactional id), on the
// transaction coordinator: the id's producer at its next epoch, which
// fences every older instance; a transaction the old instance left open
// is aborted first, and one being completed is finished first.

func (s *Server) handleInitProducerID(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	if r.TransactionalID != nil {
		s.initTxnProducer(ctx, r, resp)
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

func (s *Server) initTxnProducer(ctx context.Context, r *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if !s.coordinates() {
		resp.ErrorCode = notCoordinatorCode
		return
	}
	pid, epoch, err := s.log.InitTxnProducerAborting(ctx, *r.TransactionalID, r.TransactionTimeoutMillis, r.ProducerID, r.ProducerEpoch, s.txns.finish)
	if err != nil {
		resp.ErrorCode = s.txnErrCode(err, r.Version, 4)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = pid, epoch
}
