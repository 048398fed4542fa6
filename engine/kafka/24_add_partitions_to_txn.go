package kafka

import (
	"context"
	"errors"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddPartitionsToTxn v0–3: the partitions a transactional producer is
// about to write to join its transaction (beginning one), so that its
// end writes a marker to each. An unknown partition fails the request:
// it is answered UNKNOWN_TOPIC_OR_PARTITION and the others
// OPERATION_NOT_ATTEMPTED, as Kafka does. v4+ (KIP-890, brokers adding
// partitions on their own) is not offered.

func (s *Server) handleAddPartitionsToTxn(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.AddPartitionsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	answer := func(code func(topic string, p int32) int16) {
		for _, t := range r.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code(t.Topic, p)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	if !s.coordinates() {
		answer(func(string, int32) int16 { return kerr.NotCoordinator.Code })
		return resp, nil
	}
	var tps []replog.TopicPartition
	unknown := false
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			tp := replog.TopicPartition{Topic: t.Topic, Partition: p}
			if _, err := s.log.PartitionInfo(tp); err != nil {
				unknown = true
			}
			tps = append(tps, tp)
		}
	}
	if unknown {
		answer(func(topic string, p int32) int16 {
			if _, err := s.log.PartitionInfo(replog.TopicPartition{Topic: topic, Partition: p}); err != nil {
				return kerr.UnknownTopicOrPartition.Code
			}
			return kerr.OperationNotAttempted.Code
		})
		return resp, nil
	}
	err := s.log.AddTxnPartitions(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, tps)
	code := s.txnErrCode(err, r.Version, 2)
	answer(func(string, int32) int16 { return code })
	return resp, nil
}

// txnErrCode is the Kafka code of a transaction request's error: a
// fenced producer is PRODUCER_FENCED from version fencedFrom of the
// request on (KIP-588), INVALID_PRODUCER_EPOCH before.
func (s *Server) txnErrCode(err error, version, fencedFrom int16) int16 {
	if errors.Is(err, meta.ErrProducerFenced) && version >= fencedFrom {
		return kerr.ProducerFenced.Code
	}
	return s.errCode(err)
}
