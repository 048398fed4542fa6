package kafka

import (
	"context"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetCommit v0–2: a group's offsets, committed as part of a
// transaction that AddOffsetsToTxn added the group to. They wait in the
// transaction and become the group's committed offsets when it commits;
// an abort drops them. Sent to the group's coordinator, which is the
// transaction coordinator's node too.

func (s *Server) handleTxnOffsetCommit(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.TxnOffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var offsets []meta.OffsetCommit
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			o := meta.OffsetCommit{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch}
			if p.Metadata != nil {
				o.Metadata = *p.Metadata
			}
			offsets = append(offsets, o)
		}
	}
	code := func(int) int16 { return notCoordinatorCode }
	if s.coordinates() {
		errs, err := s.log.TxnCommitOffsets(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, offsets)
		code = func(i int) int16 {
			if err != nil {
				return s.txnErrCode(err, r.Version, 3)
			}
			return s.errCode(errs[i])
		}
	}
	i := 0
	for _, t := range r.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code(i)
			rt.Partitions = append(rt.Partitions, rp)
			i++
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
