package kafka

import (
	"context"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListPartitionReassignments v0: the moves in progress, each with every
// replica (current ones, then those being added), the replicas being
// added (target nodes without a voter yet) and those being removed. A
// partition that is not moving is left out, as Kafka does. Topics come
// in name order.

func (s *Server) handleListPartitionReassignments(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	wanted := func(replog.TopicPartition) bool { return true }
	if r.Topics != nil {
		asked := map[replog.TopicPartition]bool{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				asked[replog.TopicPartition{Topic: t.Topic, Partition: p}] = true
			}
		}
		wanted = func(tp replog.TopicPartition) bool { return asked[tp] }
	}
	for _, m := range s.log.Reassignments() {
		if !wanted(m.TopicPartition) {
			continue
		}
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != m.Topic {
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = m.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		rp.Partition = m.Partition
		rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas = int32s(m.Replicas), int32s(m.Adding), int32s(m.Removing)
		t := &resp.Topics[len(resp.Topics)-1]
		t.Partitions = append(t.Partitions, rp)
	}
	return resp, nil
}

// int32s converts node ids to Kafka broker ids; never nil, since the
// fields are not nullable.
func int32s(ids []uint64) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
