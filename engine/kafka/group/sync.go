package group

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup versions 0–3. v3 adds group.instance.id; the protocol fields
// of v5 are checked when present.

// SyncGroup answers a member's SyncGroup with its assignment. The leader's
// carries everyone's assignments (opaque bytes, passed through untouched)
// and makes the group Stable; a follower's waits for the leader's, or for
// the rebalance to restart (REBALANCE_IN_PROGRESS), or for ctx to end
// (then it is let go and answered REBALANCE_IN_PROGRESS).
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	if req.Group == "" {
		return syncError(req.Version, kerr.InvalidGroupID.Code)
	}
	g, code := c.lock(req.Group, false, false)
	switch {
	case code != 0:
		return syncError(req.Version, code)
	case g == nil:
		return syncError(req.Version, kerr.UnknownMemberID.Code)
	}
	resp, w := g.syncLocked(req)
	if w == nil {
		c.unlock(g)
		return resp
	}
	g.mu.Unlock()
	select {
	case resp = <-w.ch:
		c.release(g)
		return resp
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer c.unlock(g)
	if w.m.sync != w {
		return <-w.ch // answered while we gave up
	}
	w.m.sync = nil
	return syncError(req.Version, kerr.RebalanceInProgress.Code)
}

// syncLocked is Kafka's doSyncGroup: it answers at once, or returns the
// waiter the answer will come on.
func (g *group) syncLocked(req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, *syncWaiter) {
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	fail := func(code int16) (*kmsg.SyncGroupResponse, *syncWaiter) { return syncError(req.Version, code), nil }
	if g.state == stateDead {
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
	if code := g.validateMemberLocked(req.MemberID, instanceID); code != 0 {
		return fail(code)
	}
	switch {
	case req.Generation != g.generation:
		return fail(kerr.IllegalGeneration.Code)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case stateCompletingRebalance:
		w := g.waitSyncLocked(m, req.Version)
		delete(g.pendingSync, m.id)
		if m.id == g.leader {
			g.completeSyncLocked(req.GroupAssignment)
		}
		return nil, w
	case stateStable:
		delete(g.pendingSync, m.id)
		g.touchLocked(m)
		return g.syncResponseLocked(m, req.Version), nil
	}
	return fail(kerr.UnknownMemberID.Code) // Empty: no members
}

// completeSyncLocked takes the leader's assignments: members it left out
// get an empty one, ids that are not members are ignored, and every member
// waiting in SyncGroup gets its own. The group is then Stable.
func (g *group) completeSyncLocked(assignments []kmsg.SyncGroupRequestGroupAssignment) {
	for _, m := range g.members {
		m.assignment = []byte{}
	}
	for _, a := range assignments {
		if m := g.members[a.MemberID]; m != nil {
			m.assignment = slices.Clone(a.MemberAssignment)
		}
	}
	g.state = stateStable
	g.log.Info("group is stable", "generation", g.generation, "members", len(g.members))
	for _, m := range g.members {
		if m.sync != nil {
			g.answerSyncLocked(m, g.syncResponseLocked(m, m.sync.version))
			g.touchLocked(m)
		}
	}
	if len(g.pendingSync) == 0 {
		g.stopSyncTimerLocked()
	}
}

func (g *group) syncResponseLocked(m *member, version int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.SetVersion(version)
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	return resp
}

// syncError is a SyncGroup answer with an error code.
func syncError(version int16, code int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.SetVersion(version)
	resp.ErrorCode = code
	return resp
}
