package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator v0–2. Group and transaction coordination run on the
// node that leads the meta shard, which holds the committed offsets and
// the transactions' state; group and transaction requests that reach
// another node are answered NOT_COORDINATOR, so the client asks again
// where the coordinator is (after a meta leader change, too).

func (s *Server) handleFindCoordinator(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if r.CoordinatorType != 0 && r.CoordinatorType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = kmsg.StringPtr("coordinator type must be 0 (group) or 1 (transaction)")
		return resp, nil
	}
	id := s.controller()
	for _, b := range s.brokers() {
		if b.NodeID == id {
			resp.NodeID, resp.Host, resp.Port = b.NodeID, b.Host, b.Port
			return resp, nil
		}
	}
	resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	resp.NodeID = -1
	return resp, nil
}

// notCoordinatorCode answers a coordinator's request on another node.
var notCoordinatorCode = kerr.NotCoordinator.Code

// coordinates reports whether this node coordinates groups and
// transactions: it leads the meta shard.
func (s *Server) coordinates() bool {
	id, ok := s.log.Controller()
	return ok && int32(id) == s.cfg.NodeID
}

// notCoordinator returns a NOT_COORDINATOR answer to a group request if
// this node does not coordinate groups (it does not lead the meta shard),
// or nil if it does.
func (s *Server) notCoordinator(req kmsg.Request) kmsg.Response {
	if s.coordinates() {
		return nil
	}
	code := notCoordinatorCode
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.SyncGroupRequest:
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.OffsetCommitRequest:
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.OffsetFetchRequest:
		resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = code
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.DescribeGroupsRequest:
		resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for _, g := range r.Groups {
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	case *kmsg.DeleteGroupsRequest:
		resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
		for _, g := range r.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}
	return nil
}
