package group

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup versions 0–5. v0 has no rebalance timeout (the session timeout
// serves), v4 hands new members an id with MEMBER_ID_REQUIRED first
// (KIP-394), v5 adds group.instance.id (KIP-345).

// joinRequest is a JoinGroup request as the group keeps it: owned copies
// of what it retains, timeouts as durations.
type joinRequest struct {
	version          int16
	memberID         string
	instanceID       *string
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
}

// JoinGroup adds a member to a group or takes its rejoin, and blocks until
// the group's join phase ends (the answer then carries the new generation,
// and for the leader every member's metadata) or ctx ends. ctx should end
// when the connection closes: a waiting member is then let go (one that
// never completed a join is removed) and the answer, which nobody may
// read, is REBALANCE_IN_PROGRESS, or UNKNOWN_MEMBER_ID if it was removed.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, clientID, clientHost string) *kmsg.JoinGroupResponse {
	if req.Group == "" {
		return joinError(req.Version, req.MemberID, kerr.InvalidGroupID.Code)
	}
	// What the group keeps is copied: a request decoded with kmsg's unsafe
	// readers aliases its frame, which the server reuses.
	j := &joinRequest{
		version: req.Version, memberID: strings.Clone(req.MemberID),
		clientID: strings.Clone(clientID), clientHost: strings.Clone(clientHost),
		protocolType: strings.Clone(req.ProtocolType), sessionTimeout: millis(req.SessionTimeoutMillis),
		rebalanceTimeout: millis(req.RebalanceTimeoutMillis),
	}
	if j.sessionTimeout < c.cfg.MinSessionTimeout || j.sessionTimeout > c.cfg.MaxSessionTimeout {
		return joinError(req.Version, req.MemberID, kerr.InvalidSessionTimeout.Code)
	}
	if req.Version == 0 || j.rebalanceTimeout <= 0 {
		j.rebalanceTimeout = j.sessionTimeout
	}
	if req.Version >= 5 && req.InstanceID != nil {
		id := strings.Clone(*req.InstanceID)
		j.instanceID = &id
	}
	for _, p := range req.Protocols {
		j.protocols = append(j.protocols, kmsg.JoinGroupRequestProtocol{Name: strings.Clone(p.Name), Metadata: slices.Clone(p.Metadata)})
	}

	g, code := c.lock(req.Group, req.MemberID == "", false)
	switch {
	case code != 0:
		return joinError(req.Version, req.MemberID, code)
	case g == nil:
		return joinError(req.Version, req.MemberID, kerr.UnknownMemberID.Code)
	}
	resp, w := g.joinLocked(j)
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
	if w.m.join != w {
		return <-w.ch // answered while we gave up
	}
	m := w.m
	g.stopWaitingJoinLocked(m)
	if m.isNew {
		g.removeMemberLocked(m, "gave up waiting in its first JoinGroup")
		return joinError(req.Version, "", kerr.UnknownMemberID.Code)
	}
	return joinError(req.Version, m.id, kerr.RebalanceInProgress.Code)
}

// joinLocked is Kafka's handleJoinGroup for an existing group: it answers
// at once, or returns the waiter the answer will come on.
func (g *group) joinLocked(j *joinRequest) (*kmsg.JoinGroupResponse, *joinWaiter) {
	switch {
	case g.state == stateDead:
		return joinError(j.version, j.memberID, kerr.CoordinatorNotAvailable.Code), nil
	case !g.supportsLocked(j.protocolType, j.protocols):
		return joinError(j.version, j.memberID, kerr.InconsistentGroupProtocol.Code), nil
	}
	if j.memberID == "" {
		if j.instanceID != nil {
			if id, ok := g.static[*j.instanceID]; ok {
				return g.replaceStaticLocked(g.members[id], j)
			}
			m := g.addMemberLocked(newMemberID(j.clientID, j.instanceID), j)
			return g.waitRebalanceLocked(m, j.version, "static member joined")
		}
		id := newMemberID(j.clientID, nil)
		if j.version >= 4 {
			g.addPendingLocked(id, j.sessionTimeout)
			return joinError(j.version, id, kerr.MemberIDRequired.Code), nil
		}
		m := g.addMemberLocked(id, j)
		return g.waitRebalanceLocked(m, j.version, "member joined")
	}
	if p, ok := g.pending[j.memberID]; ok && j.instanceID == nil {
		p.timer.Stop()
		delete(g.pending, j.memberID)
		m := g.addMemberLocked(j.memberID, j)
		return g.waitRebalanceLocked(m, j.version, "member joined")
	}
	if code := g.validateMemberLocked(j.memberID, j.instanceID); code != 0 {
		return joinError(j.version, j.memberID, code), nil
	}
	m := g.members[j.memberID]
	m.clientID, m.clientHost = j.clientID, j.clientHost
	switch g.state {
	case stateCompletingRebalance:
		if m.matches(j.protocols) {
			// A retry of the join that just completed: same answer.
			return g.joinResponseLocked(m, j.version, true), nil
		}
	case stateStable:
		if m.id != g.leader && m.matches(j.protocols) {
			// A follower with nothing new: no reason to rebalance. The
			// leader's rejoin always rebalances (it may have seen metadata
			// change that the members' do not show).
			return g.joinResponseLocked(m, j.version, false), nil
		}
	}
	g.updateMemberLocked(m, j)
	return g.waitRebalanceLocked(m, j.version, "member rejoined")
}

// waitRebalanceLocked makes m wait for the join phase, starting one if
// needed, and ends it if m was the last one awaited.
func (g *group) waitRebalanceLocked(m *member, version int16, reason string) (*kmsg.JoinGroupResponse, *joinWaiter) {
	w := g.waitJoinLocked(m, version)
	g.maybePrepareRebalanceLocked(reason)
	g.tryCompleteJoinLocked()
	return nil, w
}

// replaceStaticLocked takes the join of a static member that restarted
// (empty member id, known instance id), as Kafka does (KIP-345): the
// member gets a new id that replaces the old one, whose waiting requests
// are fenced, and keeps its assignment. A Stable group whose protocol
// would not change answers at once without a rebalance, with the
// previous leader id so that even a returning leader only syncs to get its
// assignment back; otherwise the group rebalances.
func (g *group) replaceStaticLocked(m *member, j *joinRequest) (*kmsg.JoinGroupResponse, *joinWaiter) {
	oldID, prevLeader := m.id, g.leader
	if m.join != nil {
		g.answerJoinLocked(m, joinError(m.join.version, oldID, kerr.FencedInstanceID.Code))
	}
	if m.sync != nil {
		g.answerSyncLocked(m, syncError(m.sync.version, kerr.FencedInstanceID.Code))
	}
	m.id = newMemberID(j.clientID, j.instanceID)
	delete(g.members, oldID)
	g.members[m.id] = m
	g.static[*j.instanceID] = m.id
	if g.leader == oldID {
		g.leader = m.id
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[m.id] = true
	}
	m.clientID, m.clientHost = j.clientID, j.clientHost
	g.touchLocked(m)
	g.updateMemberLocked(m, j)
	g.log.Info("static member replaced", "instance", *j.instanceID, "old", oldID, "member", m.id)
	if g.state == stateStable && g.selectProtocolLocked() == g.protocol {
		resp := g.joinResponseLocked(m, j.version, false)
		resp.LeaderID = prevLeader
		return resp, nil
	}
	return g.waitRebalanceLocked(m, j.version, "static member rejoined")
}

// joinResponseLocked is the answer that tells m of the current generation;
// withMembers gives the leader every member's metadata for the protocol.
func (g *group) joinResponseLocked(m *member, version int16, withMembers bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.SetVersion(version)
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if withMembers && m.id == g.leader {
		for _, o := range g.sortedMembersLocked() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = o.id, o.instanceID, o.metadata(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

// sortedMembersLocked returns the members in the order they joined.
func (g *group) sortedMembersLocked() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.order, b.order) })
	return ms
}

// joinError is a JoinGroup answer with an error code.
func joinError(version int16, memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.SetVersion(version)
	resp.ErrorCode = code
	resp.MemberID = memberID
	return resp
}
