package group

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups versions 0–4, ListGroups 0–2 (the state and type filters
// of v4 and v5 are honoured if a later version is let through), DeleteGroups
// 0–1.

// groupOperations is the authorized-operations bit field of a group with
// no authorizer: READ (3), DELETE (6) and DESCRIBE (8), as Kafka answers.
const groupOperations = 1<<3 | 1<<6 | 1<<8

// DescribeGroups describes groups as Kafka does: members with their client
// id and host always, their metadata and assignment only while Stable (and
// the protocol too). A group with committed offsets but no members is
// Empty; an unknown group is Dead.
func (c *Coordinator) DescribeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.SetVersion(req.Version)
	for _, name := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = name
		if req.IncludeAuthorizedOperations {
			rg.AuthorizedOperations = groupOperations
		}
		g, code := c.lock(name, false, false)
		switch {
		case code != 0:
			rg.ErrorCode = code
		case g != nil:
			g.describeLocked(&rg)
			c.unlock(g)
		case len(c.cfg.Store.GroupOffsets(name)) > 0:
			rg.State = stateEmpty.String()
		default:
			rg.State = stateDead.String()
			if req.Version >= 6 {
				rg.ErrorCode = kerr.GroupIDNotFound.Code
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (g *group) describeLocked(rg *kmsg.DescribeGroupsResponseGroup) {
	rg.State = g.state.String()
	rg.ProtocolType = g.protocolType
	stable := g.state == stateStable
	if stable {
		rg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembersLocked() {
		rm := kmsg.NewDescribeGroupsResponseGroupMember()
		rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		if stable {
			rm.ProtocolMetadata, rm.MemberAssignment = m.metadata(g.protocol), m.assignment
		}
		rg.Members = append(rg.Members, rm)
	}
}

// ListGroups lists every group in memory and every group with committed
// offsets in the Store (Empty, no protocol type, if it has no members),
// sorted by name.
func (c *Coordinator) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.SetVersion(req.Version)
	if c.closed.Load() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	seen := map[string]bool{}
	add := func(name, protocolType string, s state) {
		seen[name] = true
		if !filtered(req.StatesFilter, s.String()) || !filtered(req.TypesFilter, "classic") {
			return
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = name, protocolType, s.String(), "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	for _, g := range c.snapshot() {
		g.mu.Lock()
		if !g.removed && g.state != stateDead {
			add(g.name, g.protocolType, g.state)
		}
		g.mu.Unlock()
	}
	for _, name := range c.cfg.Store.Groups() {
		if !seen[name] {
			add(name, "", stateEmpty)
		}
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return resp
}

// filtered reports whether v passes a ListGroups filter (none, or one of
// its values, compared as Kafka does without case).
func filtered(filter []string, v string) bool {
	if len(filter) == 0 {
		return true
	}
	return slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
}

// DeleteGroups deletes groups without members and their committed offsets:
// NON_EMPTY_GROUP while a group has members, GROUP_ID_NOT_FOUND for a
// group the coordinator and the Store do not know.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.SetVersion(req.Version)
	for _, name := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = name
		rg.ErrorCode = c.deleteGroup(ctx, name)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// deleteGroup is Kafka's deletion of one group: the group is Dead while
// the Store deletes its offsets (members that try to join meanwhile are
// told COORDINATOR_NOT_AVAILABLE and retry), then leaves memory.
func (c *Coordinator) deleteGroup(ctx context.Context, name string) int16 {
	if name == "" {
		return kerr.GroupIDNotFound.Code
	}
	g, code := c.lock(name, true, true)
	if code != 0 {
		return code
	}
	defer g.commitMu.Unlock()
	if g.state != stateEmpty {
		c.unlock(g)
		return kerr.NonEmptyGroup.Code
	}
	known := len(g.pending) > 0
	for id, p := range g.pending {
		p.timer.Stop()
		delete(g.pending, id)
	}
	g.state = stateDead
	g.mu.Unlock()
	err := c.cfg.Store.DeleteGroup(ctx, name)
	g.mu.Lock()
	c.removeLocked(g)
	c.unlock(g)
	if err == nil {
		g.log.Info("group deleted")
		return 0
	}
	code = c.cfg.ErrorCode(err)
	if code == kerr.GroupIDNotFound.Code && known {
		return 0 // it had members-to-be but no offsets
	}
	return code
}
