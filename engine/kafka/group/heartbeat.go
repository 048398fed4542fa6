package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat versions 0–3 (v3 adds group.instance.id); LeaveGroup versions
// 0–3 (v3 takes a batch of members, by member id or by instance id).

// Heartbeat keeps a member's session alive and tells it whether the group
// is rebalancing (REBALANCE_IN_PROGRESS: rejoin).
func (c *Coordinator) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.SetVersion(req.Version)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g, code := c.lock(req.Group, false, false)
	switch {
	case code != 0:
		resp.ErrorCode = code
		return resp
	case g == nil:
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	defer c.unlock(g)
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	resp.ErrorCode = g.heartbeatLocked(req.MemberID, instanceID, req.Generation)
	return resp
}

func (g *group) heartbeatLocked(memberID string, instanceID *string, generation int32) int16 {
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if code := g.validateMemberLocked(memberID, instanceID); code != 0 {
		return code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case statePreparingRebalance:
		g.touchLocked(g.members[memberID])
		return kerr.RebalanceInProgress.Code
	case stateCompletingRebalance, stateStable:
		g.touchLocked(g.members[memberID])
		return 0
	}
	return kerr.UnknownMemberID.Code
}

// LeaveGroup removes members from a group, which then rebalances. Before
// v3 one member leaves and its error is the top-level one; from v3 each
// member has its own, and a member named only by instance id is removed by
// it (an administrator's removal of a static member).
func (c *Coordinator) LeaveGroup(_ context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.SetVersion(req.Version)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g, code := c.lock(req.Group, false, false)
	switch {
	case code != 0:
		resp.ErrorCode = code
	case g != nil && g.state == stateDead:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	}
	if resp.ErrorCode == 0 {
		for _, lm := range leaving {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ErrorCode = lm.MemberID, lm.InstanceID, kerr.UnknownMemberID.Code
			if g != nil {
				rm.ErrorCode = g.leaveLocked(lm.MemberID, lm.InstanceID)
			}
			resp.Members = append(resp.Members, rm)
		}
	}
	if g != nil {
		c.unlock(g)
	}
	if req.Version < 3 {
		if resp.ErrorCode == 0 {
			resp.ErrorCode = resp.Members[0].ErrorCode
		}
		resp.Members = nil
	}
	return resp
}

// leaveLocked is Kafka's per-member LeaveGroup.
func (g *group) leaveLocked(memberID string, instanceID *string) int16 {
	if memberID == "" {
		if instanceID != nil {
			if id, ok := g.static[*instanceID]; ok {
				g.removeMemberLocked(g.members[id], "static member removed by instance id")
				return 0
			}
		}
		return kerr.UnknownMemberID.Code
	}
	if _, ok := g.pending[memberID]; ok {
		g.removePendingLocked(memberID)
		return 0
	}
	if code := g.validateMemberLocked(memberID, instanceID); code != 0 {
		return code
	}
	g.removeMemberLocked(g.members[memberID], "member left")
	return 0
}
