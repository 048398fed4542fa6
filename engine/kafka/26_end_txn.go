package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn v0–1: commit or abort. The decision is recorded in the meta
// shard (with a commit, the transaction's offsets become the groups'),
// then the markers are written to every partition of the transaction
// before the answer, so a client that goes on at once finds its
// partitions stable. If that takes longer than endTxnWait the answer goes
// out anyway: the decision stands, and the coordinator's sweep finishes
// the markers (the producer's next request meets CONCURRENT_TRANSACTIONS
// until then, and retries).

// endTxnWait bounds how long EndTxn waits for the markers.
const endTxnWait = 10 * time.Second

func (s *Server) handleEndTxn(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.EndTxnRequest)
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	if !s.coordinates() {
		resp.ErrorCode = notCoordinatorCode
		return resp, nil
	}
	if err := s.log.EndTxn(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit); err != nil {
		resp.ErrorCode = s.txnErrCode(err, r.Version, 2)
		return resp, nil
	}
	wctx, cancel := context.WithTimeout(ctx, endTxnWait)
	defer cancel()
	if err := s.txns.finish(wctx, r.TransactionalID); err != nil {
		s.logger.Warn("transaction decided, markers still being written", "transactional_id", r.TransactionalID, "err", err)
		s.txns.finishAsync(r.TransactionalID)
	}
	return resp, nil
}
