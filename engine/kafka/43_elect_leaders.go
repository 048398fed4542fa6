package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ElectLeaders v0–2: preferred leader election, as kafka-leader-election
// --election-type preferred and `samsa cluster rebalance` ask for it. The
// request is recorded in the metadata; every node then takes back the
// leadership of the partitions it is the preferred (first) replica of,
// where its replica is caught up (replog's balance.go). The answer waits,
// up to the request's timeout, until each partition is led by its
// preferred replica. Unclean elections (type 1) do not exist under Raft:
// a replica that lacks committed entries cannot win an election.

func (s *Server) handleElectLeaders(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	ctx, cancel := requestTimeout(ctx, r.TimeoutMillis)
	defer cancel()

	type result struct {
		code int16
		msg  string
	}
	var order []replog.TopicPartition
	results := map[replog.TopicPartition]*result{}
	add := func(tp replog.TopicPartition) {
		if results[tp] == nil {
			order = append(order, tp)
			results[tp] = &result{}
		}
	}
	if r.Topics == nil { // every partition
		for _, t := range s.log.Topics() {
			for p := range t.Partitions {
				add(replog.TopicPartition{Topic: t.Name, Partition: int32(p)})
			}
		}
	}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			add(replog.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}

	preferred := map[replog.TopicPartition]uint64{} // the partitions to move
	for _, tp := range order {
		res := results[tp]
		if r.Version >= 1 && r.ElectionType != 0 {
			res.code, res.msg = kerr.InvalidRequest.Code, "unclean leader election does not exist with Raft: a replica without every committed record cannot be elected"
			continue
		}
		pref, err := s.log.PreferredLeader(tp)
		if err != nil {
			res.code, res.msg = s.errCode(err), err.Error()
			continue
		}
		if info, _ := s.log.PartitionInfo(tp); info.Leader == pref {
			res.code = kerr.ElectionNotNeeded.Code
			continue
		}
		preferred[tp] = pref
	}
	if len(preferred) > 0 {
		if err := s.log.RequestLeaderBalance(ctx); err != nil {
			for tp := range preferred {
				results[tp].code, results[tp].msg = s.errCode(err), err.Error()
			}
			clear(preferred)
		}
	}
	for len(preferred) > 0 && ctx.Err() == nil {
		for tp, pref := range preferred {
			if info, _ := s.log.PartitionInfo(tp); info.Leader == pref {
				delete(preferred, tp)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	for tp, pref := range preferred {
		results[tp].code = kerr.PreferredLeaderNotAvailable.Code
		results[tp].msg = fmt.Sprintf("node %d has not taken the leadership back in time: it is down, or its replica is not caught up", pref)
	}

	byTopic := map[string]int{}
	for _, tp := range order {
		i, ok := byTopic[tp.Topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[tp.Topic] = i
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = tp.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = tp.Partition
		rp.ErrorCode = results[tp].code
		if m := results[tp].msg; m != "" {
			rp.ErrorMessage = kmsg.StringPtr(m)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	return resp, nil
}
