package group

import (
	"bytes"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a group's place in the classic protocol (see the table in
// doc.go).
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// String returns the state as Kafka spells it in DescribeGroups and
// ListGroups.
func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// member is one member of a group. Its id changes only when a static
// member restarts and replaces its previous incarnation.
type member struct {
	id               string
	instanceID       *string // group.instance.id of a static member (KIP-345)
	clientID         string
	clientHost       string
	protocols        []kmsg.JoinGroupRequestProtocol // owned copies, in the member's order of preference
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte // owned copy of what the leader assigned
	// isNew is set until the member's first join phase completes: until
	// then waiting in JoinGroup does not count as being alive for longer
	// than newMemberJoinTimeout.
	isNew bool
	// order is when the member last started to wait in JoinGroup: the
	// earliest one to rejoin leads if the leader did not rejoin.
	order    uint64
	lastSeen time.Time   // last heartbeat, join, sync or commit
	timer    *time.Timer // session expiry, re-armed lazily (see checkMemberLocked)
	join     *joinWaiter // a JoinGroup waiting for the join phase to end
	sync     *syncWaiter // a SyncGroup waiting for the leader's assignment
}

// joinWaiter is a JoinGroup request waiting for its answer, which is sent
// exactly once, under the group's lock, on a buffered channel.
type joinWaiter struct {
	m       *member
	version int16
	ch      chan *kmsg.JoinGroupResponse
}

// syncWaiter is a SyncGroup request waiting for the leader's assignment.
type syncWaiter struct {
	m       *member
	version int16
	ch      chan *kmsg.SyncGroupResponse
}

// pendingMember is a member id handed out with MEMBER_ID_REQUIRED (KIP-394)
// that has not joined with it yet.
type pendingMember struct{ timer *time.Timer }

// group is one consumer group's membership. Everything below mu is guarded
// by it; refs and removed are guarded by the coordinator's mu (removed is
// written under both, so either lock may read it).
type group struct {
	c    *Coordinator
	name string
	log  *slog.Logger

	// commitMu orders the Store proposals of this group (commits, deletion)
	// as their validations were ordered, without holding mu across them.
	commitMu sync.Mutex

	refs    int
	removed bool

	mu           sync.Mutex
	state        state
	generation   int32
	protocolType string
	protocol     string // chosen for the current generation; "" unless Completing or Stable
	leader       string
	members      map[string]*member
	static       map[string]string // instance id → member id
	pending      map[string]*pendingMember
	support      map[string]int  // protocol name → members that support it
	pendingSync  map[string]bool // members told of this generation that have not synced yet
	awaiting     int             // members with a join waiter
	seq          uint64

	joinTimer      *time.Timer
	joinSeq        uint64    // identifies the armed join timer
	initialDelay   bool      // the join phase of an empty group: never ends early
	joinDeadline   time.Time // the latest an initial delay may be extended to
	newMemberAdded bool      // a new member came during the initial delay
	syncTimer      *time.Timer
}

func newGroup(c *Coordinator, name string) *group {
	return &group{
		c: c, name: name, log: c.log.With("group", name),
		members: map[string]*member{}, static: map[string]string{}, pending: map[string]*pendingMember{},
		support: map[string]int{}, pendingSync: map[string]bool{},
	}
}

// idleLocked reports whether the group holds nothing worth keeping.
func (g *group) idleLocked() bool {
	return g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0
}

// supportsLocked reports whether a member with these protocols may join:
// the first member sets the protocol type; later ones must share it and
// support at least one protocol every member supports.
func (g *group) supportsLocked(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.support[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

// validateMemberLocked checks a request's member and instance ids, as
// Kafka's validateMember: a known instance id must come with its current
// member id (FENCED_INSTANCE_ID otherwise).
func (g *group) validateMemberLocked(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		id, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case id != memberID:
			return kerr.FencedInstanceID.Code
		}
		return 0
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// addMemberLocked adds a member that has just joined and waits for the
// join phase.
func (g *group) addMemberLocked(id string, j *joinRequest) *member {
	m := &member{id: id, instanceID: j.instanceID, clientID: j.clientID, clientHost: j.clientHost, isNew: true, lastSeen: g.c.now()}
	if len(g.members) == 0 {
		g.protocolType = j.protocolType
	}
	if g.leader == "" {
		g.leader = id
	}
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.members[id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = id
	}
	g.updateMemberLocked(m, j)
	g.c.members.Add(1)
	m.timer = g.c.afterFunc(g, m.sessionTimeout, func() { g.checkMemberLocked(m) })
	g.log.Debug("member added", "member", id, "client", j.clientID)
	return m
}

// updateMemberLocked takes a (re)joining member's protocols and timeouts.
func (g *group) updateMemberLocked(m *member, j *joinRequest) {
	g.countLocked(m, -1)
	m.protocols = j.protocols
	g.countLocked(m, +1)
	m.sessionTimeout, m.rebalanceTimeout = j.sessionTimeout, j.rebalanceTimeout
}

// countLocked adds d to the support of each protocol m lists (once each).
func (g *group) countLocked(m *member, d int) {
	for i, p := range m.protocols {
		if !listed(m.protocols[:i], p.Name) {
			g.support[p.Name] += d
			if g.support[p.Name] == 0 {
				delete(g.support, p.Name)
			}
		}
	}
}

func listed(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// matches reports whether protocols are exactly the member's (names, order
// and metadata), Kafka's test for a rejoin that changes nothing.
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(protocols) != len(m.protocols) {
		return false
	}
	for i, p := range protocols {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// metadata returns the member's metadata for a protocol.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// dropMemberLocked removes a member without reacting to it (see
// removeMemberLocked): its waiting requests learn they are no longer
// members.
func (g *group) dropMemberLocked(m *member) {
	if m.join != nil {
		g.answerJoinLocked(m, joinError(m.join.version, "", kerr.UnknownMemberID.Code))
	}
	if m.sync != nil {
		g.answerSyncLocked(m, syncError(m.sync.version, kerr.UnknownMemberID.Code))
	}
	g.countLocked(m, -1)
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	m.timer.Stop()
	g.c.members.Add(-1)
	if g.leader == m.id {
		g.leader = ""
		var first *member
		for _, o := range g.members {
			if first == nil || o.order < first.order {
				first = o
			}
		}
		if first != nil {
			g.leader = first.id
		}
	}
}

// removeMemberLocked removes a member and reacts as Kafka's
// removeMemberAndUpdateGroup: a settled group rebalances, a group in its
// join phase may now be complete.
func (g *group) removeMemberLocked(m *member, reason string) {
	g.log.Info("removing member", "member", m.id, "reason", reason)
	g.dropMemberLocked(m)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalanceLocked(reason)
	case statePreparingRebalance:
		g.tryCompleteJoinLocked()
	}
}

// addPendingLocked remembers a member id handed out with MEMBER_ID_REQUIRED
// for one session timeout.
func (g *group) addPendingLocked(id string, session time.Duration) {
	p := &pendingMember{}
	p.timer = g.c.afterFunc(g, session, func() {
		if g.pending[id] == p {
			g.removePendingLocked(id)
		}
	})
	g.pending[id] = p
}

// removePendingLocked forgets a pending member; a join phase may have been
// waiting for it.
func (g *group) removePendingLocked(id string) {
	g.pending[id].timer.Stop()
	delete(g.pending, id)
	g.tryCompleteJoinLocked()
}

// checkMemberLocked runs when a member's timer fires: it expires the
// member if its session (or, for a new member waiting in JoinGroup,
// newMemberJoinTimeout) passed since it was last seen, and re-arms the
// timer for the rest otherwise. Waiting in JoinGroup or SyncGroup counts
// as being alive, as in Kafka. It decides from the member's state alone,
// so a stale firing is harmless.
func (g *group) checkMemberLocked(m *member) {
	if g.members[m.id] != m {
		return
	}
	limit := m.sessionTimeout
	switch {
	case m.isNew && m.join != nil:
		limit = newMemberJoinTimeout
	case m.join != nil || m.sync != nil:
		m.timer.Reset(m.sessionTimeout)
		return
	}
	if left := m.lastSeen.Add(limit).Sub(g.c.now()); left > 0 {
		m.timer.Reset(left)
		return
	}
	g.removeMemberLocked(m, "session timeout expired")
}

// touchLocked records that a member is alive.
func (g *group) touchLocked(m *member) { m.lastSeen = g.c.now() }

// waitJoinLocked makes m wait for the end of the join phase. A request it
// was already waiting with is answered REBALANCE_IN_PROGRESS: the client
// gave up on it.
func (g *group) waitJoinLocked(m *member, version int16) *joinWaiter {
	if m.join != nil {
		g.answerJoinLocked(m, joinError(m.join.version, m.id, kerr.RebalanceInProgress.Code))
	}
	w := &joinWaiter{m: m, version: version, ch: make(chan *kmsg.JoinGroupResponse, 1)}
	m.join = w
	g.awaiting++
	g.seq++
	m.order = g.seq
	return w
}

func (g *group) answerJoinLocked(m *member, resp *kmsg.JoinGroupResponse) {
	m.join.ch <- resp
	g.stopWaitingJoinLocked(m)
}

// stopWaitingJoinLocked forgets m's join waiter (answered or abandoned).
func (g *group) stopWaitingJoinLocked(m *member) {
	m.join = nil
	g.awaiting--
}

// waitSyncLocked makes m wait for the leader's assignment.
func (g *group) waitSyncLocked(m *member, version int16) *syncWaiter {
	if m.sync != nil {
		g.answerSyncLocked(m, syncError(m.sync.version, kerr.RebalanceInProgress.Code))
	}
	w := &syncWaiter{m: m, version: version, ch: make(chan *kmsg.SyncGroupResponse, 1)}
	m.sync = w
	return w
}

func (g *group) answerSyncLocked(m *member, resp *kmsg.SyncGroupResponse) {
	m.sync.ch <- resp
	m.sync = nil
}

// shutdownLocked stops the group's timers and answers its waiting requests
// NOT_COORDINATOR; membership stays as it is (the coordinator is closed).
func (g *group) shutdownLocked() {
	g.stopJoinTimerLocked()
	g.stopSyncTimerLocked()
	for _, p := range g.pending {
		p.timer.Stop()
	}
	for _, m := range g.members {
		m.timer.Stop()
		if m.join != nil {
			g.answerJoinLocked(m, joinError(m.join.version, m.id, kerr.NotCoordinator.Code))
		}
		if m.sync != nil {
			g.answerSyncLocked(m, syncError(m.sync.version, kerr.NotCoordinator.Code))
		}
	}
}
