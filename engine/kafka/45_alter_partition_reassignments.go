package kafka

import (
	"context"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartitionReassignments v0: move partitions to other nodes, or with
// null replicas cancel a move, as kafka-reassign-partitions and `samsa
// topics move-partition` ask. The answer comes once each target is
// recorded in the metadata; the move itself follows (replog's move.go)
// and ListPartitionReassignments shows it until it is over. The replica
// list must be as long as the topic's replication factor.

func (s *Server) handleAlterPartitionReassignments(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	ctx, cancel := requestTimeout(ctx, r.TimeoutMillis)
	defer cancel()
	var moves []meta.Reassignment
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			m := meta.Reassignment{Topic: t.Topic, Partition: p.Partition}
			if p.Replicas != nil {
				m.Replicas = make([]uint64, 0, len(p.Replicas))
				for _, id := range p.Replicas {
					if id > 0 {
						m.Replicas = append(m.Replicas, uint64(id))
					} else {
						m.Replicas = append(m.Replicas, 0) // never registered: refused as unknown
					}
				}
			}
			moves = append(moves, m)
		}
	}
	errs, err := s.log.Reassign(ctx, moves)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = s.errCode(err), errorMessage(err)
		return resp, nil
	}
	i := 0
	for _, t := range r.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode, rp.ErrorMessage = s.errCode(errs[i]), errorMessage(errs[i])
			rt.Partitions = append(rt.Partitions, rp)
			i++
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
