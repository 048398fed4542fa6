package kafka

import (
	"context"
	"sync"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WriteTxnMarkers v0–1: a transaction coordinator on another node asks the
// leader of each partition of a decided transaction to write its marker
// (commit or abort, with the coordinator's epoch). Each partition's
// marker is proposed and waited for on its own, all at once; a partition
// this node does not lead answers NOT_LEADER_OR_FOLLOWER, a marker from an
// epoch older than the partition knows INVALID_PRODUCER_EPOCH, as Kafka
// answers since 2.7. The request has no timeout field: 30 s.

func (s *Server) handleWriteTxnMarkers(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.WriteTxnMarkersRequest)
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	ctx, cancel := requestTimeout(ctx, 0)
	defer cancel()
	var wg sync.WaitGroup
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(r.Markers))
	for i, m := range r.Markers {
		rm := &resp.Markers[i]
		*rm = kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		rm.Topics = make([]kmsg.WriteTxnMarkersResponseMarkerTopic, len(m.Topics))
		for j, t := range m.Topics {
			rt := &rm.Topics[j]
			*rt = kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for k, p := range t.Partitions {
				rp := &rt.Partitions[k]
				*rp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				tp := replog.TopicPartition{Topic: t.Topic, Partition: p}
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := s.log.WriteTxnMarker(ctx, tp, m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch)
					rp.ErrorCode = s.errCode(err)
				}()
			}
		}
	}
	wg.Wait()
	return resp, nil
}
