package kafka

import (
	"context"
	"fmt"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce v3–7 (v3 is the first with RecordBatch v2, which is all Samsa
// stores; librdkafka needs 3 inside the range). Each partition carries
// exactly one batch; each is checked and proposed on its own, so one bad
// partition does not fail the others. acks=1 and acks=all both answer
// after a majority committed the batch (Raft has nothing weaker); acks=0
// gets no response at all. Transactional batches are taken from
// idempotent producers as Kafka takes them before KIP-890: the partition
// opens the producer's transaction at its first one, and the coordinator's
// marker closes it; a batch from a fenced epoch gets INVALID_PRODUCER_EPOCH
// (Produce has no PRODUCER_FENCED, and clients abort on it).
//
// The batches are proposed here, on the connection's reader, in request
// order, and waited for afterwards: a producer's pipelined requests for a
// partition are stored in the order it sent them.

func (s *Server) startProduce(ctx context.Context, c *conn, req kmsg.Request) func() (reply, error) {
	r := req.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	wctx, cancel := requestTimeout(ctx, r.TimeoutMillis)

	type waiting struct {
		rp      *kmsg.ProduceResponseTopicPartition
		pending *replog.PendingAppend
		records int32
	}
	var wait []waiting
	for _, t := range r.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		for i, p := range t.Partitions {
			rp := &rt.Partitions[i]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.BaseOffset = p.Partition, -1
			n, err := s.checkProduce(r, p.Records)
			var pa *replog.PendingAppend
			if err == nil {
				pa, err = s.log.AppendStart(wctx, replog.TopicPartition{Topic: t.Topic, Partition: p.Partition}, p.Records, replog.AppendOptions{Acks: replog.Acks(r.Acks)})
			}
			if err != nil {
				rp.ErrorCode = s.errCode(err)
				continue
			}
			wait = append(wait, waiting{rp, pa, n})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return func() (reply, error) {
		defer cancel()
		for _, w := range wait {
			res, err := w.pending.Wait(wctx)
			w.rp.ErrorCode = s.errCode(err)
			if err != nil {
				continue
			}
			w.rp.BaseOffset, w.rp.LogAppendTime, w.rp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
			if !res.Duplicate {
				s.metrics.produced.Add(float64(w.records))
			}
		}
		if r.Acks == 0 {
			return reply{none: true}, nil
		}
		return reply{msg: resp}, nil
	}
}

// checkProduce applies the rules of the request itself and returns the
// batch's record count: acks must be 0, 1 or -1, and the records are
// exactly one batch.
func (s *Server) checkProduce(r *kmsg.ProduceRequest, records []byte) (int32, error) {
	if r.Acks != 0 && r.Acks != 1 && r.Acks != -1 {
		return 0, fmt.Errorf("%w: acks %d", kerr.InvalidRequiredAcks, r.Acks)
	}
	n, err := batch.PeekSize(records)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", replog.ErrCorruptMessage, err)
	}
	if n != len(records) {
		return 0, fmt.Errorf("%w: a produce request carries exactly one record batch per partition", replog.ErrInvalidRecord)
	}
	h, err := batch.ParseHeader(records)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", replog.ErrCorruptMessage, err)
	}
	return h.RecordCount, nil
}
