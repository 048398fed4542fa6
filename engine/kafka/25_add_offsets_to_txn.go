package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddOffsetsToTxn v0–1: a consumer group joins the transaction, whose
// commit will then also commit the offsets TxnOffsetCommit gives for it.

func (s *Server) handleAddOffsetsToTxn(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.AddOffsetsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if !s.coordinates() {
		resp.ErrorCode = notCoordinatorCode
		return resp, nil
	}
	err := s.log.AddTxnGroup(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group)
	resp.ErrorCode = s.txnErrCode(err, r.Version, 2)
	return resp, nil
}
