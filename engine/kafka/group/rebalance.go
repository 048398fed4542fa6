package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// rebalanceTimeoutLocked is the longest rebalance timeout of the members:
// how long a join phase (and the wait for SyncGroups after it) may last.
func (g *group) rebalanceTimeoutLocked() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// maybePrepareRebalanceLocked starts a rebalance unless one is in its join
// phase already.
func (g *group) maybePrepareRebalanceLocked(reason string) {
	switch g.state {
	case stateEmpty, stateStable, stateCompletingRebalance:
		g.prepareRebalanceLocked(reason)
	}
}

// prepareRebalanceLocked starts a join phase (Kafka's prepareRebalance):
// members waiting in SyncGroup are told to rejoin, and the phase ends when
// every member rejoined or the rebalance timeout passed. The first phase of
// an empty group instead lasts the initial rebalance delay, extended while
// new members keep coming, so that a starting fleet lands in one
// generation.
func (g *group) prepareRebalanceLocked(reason string) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				g.answerSyncLocked(m, syncError(m.sync.version, kerr.RebalanceInProgress.Code))
			}
		}
	}
	g.stopSyncTimerLocked()
	clear(g.pendingSync)
	wasEmpty := g.state == stateEmpty
	g.state = statePreparingRebalance
	g.log.Info("preparing to rebalance", "generation", g.generation, "members", len(g.members), "reason", reason)
	timeout := g.rebalanceTimeoutLocked()
	if wasEmpty {
		delay := g.c.cfg.InitialRebalanceDelay
		g.initialDelay, g.newMemberAdded = true, false
		g.joinDeadline = g.c.now().Add(max(delay, timeout))
		g.armJoinTimerLocked(delay)
		return
	}
	g.initialDelay = false
	if g.tryCompleteJoinLocked(); g.state == statePreparingRebalance && g.joinTimer == nil {
		g.armJoinTimerLocked(timeout)
	}
}

// tryCompleteJoinLocked ends the join phase early when every member is
// waiting in JoinGroup and no member id handed out is still to come. The
// initial delay of an empty group is waited out, unless everyone left.
func (g *group) tryCompleteJoinLocked() {
	if g.state == statePreparingRebalance && g.awaiting == len(g.members) && len(g.pending) == 0 &&
		(!g.initialDelay || len(g.members) == 0) {
		g.completeJoinLocked()
	}
}

// joinTimerLocked runs when the join phase's time is up.
func (g *group) joinTimerLocked() {
	if g.initialDelay && g.newMemberAdded {
		if left := g.joinDeadline.Sub(g.c.now()); left > 0 {
			g.newMemberAdded = false
			g.armJoinTimerLocked(min(g.c.cfg.InitialRebalanceDelay, left))
			return
		}
	}
	g.completeJoinLocked()
}

// completeJoinLocked ends the join phase (Kafka's onCompleteJoin): dynamic
// members that did not rejoin are removed (static ones stay until their
// session expires, keeping their place in the assignment), a new
// generation begins with a protocol every member supports, and every
// waiting member learns it; the leader also gets every member's metadata.
func (g *group) completeJoinLocked() {
	g.stopJoinTimerLocked()
	g.initialDelay = false
	for _, m := range g.members {
		if m.join == nil && m.instanceID == nil {
			g.log.Info("removing member that did not rejoin", "member", m.id)
			g.dropMemberLocked(m)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeaderLocked() {
		// Only static members that are away are left: wait for them to
		// come back or for their sessions to expire.
		g.armJoinTimerLocked(g.rebalanceTimeoutLocked())
		return
	}
	g.generation++
	if g.generation <= 0 {
		g.generation = 1
	}
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = stateEmpty, "", ""
		g.log.Info("group is empty", "generation", g.generation)
		return
	}
	g.state = stateCompletingRebalance
	g.protocol = g.selectProtocolLocked()
	g.log.Info("rebalanced", "generation", g.generation, "members", len(g.members), "protocol", g.protocol, "leader", g.leader)
	for _, m := range g.members {
		if m.join != nil {
			g.answerJoinLocked(m, g.joinResponseLocked(m, m.join.version, true))
		}
		m.isNew = false
		g.touchLocked(m)
		m.timer.Reset(m.sessionTimeout)
		g.pendingSync[m.id] = true
	}
	g.armSyncTimerLocked(g.rebalanceTimeoutLocked())
}

// electJoinedLeaderLocked keeps the leader if it rejoined, or else makes
// the earliest member to rejoin the leader; false if nobody rejoined.
func (g *group) electJoinedLeaderLocked() bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	var first *member
	for _, m := range g.members {
		if m.join != nil && (first == nil || m.order < first.order) {
			first = m
		}
	}
	if first == nil {
		return false
	}
	g.leader = first.id
	return true
}

// selectProtocolLocked picks the protocol of the next generation as Kafka
// does: among the protocols every member supports, each member votes for
// the first in its own order, and the most votes win; ties go to the
// leader's preference.
func (g *group) selectProtocolLocked() string {
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.support[p.Name] == len(g.members) {
				votes[p.Name]++
				break
			}
		}
	}
	leader := g.members[g.leader]
	best, most := leader.protocols[0].Name, 0 // the fallback is unreachable: joins keep a common protocol
	for _, p := range leader.protocols {
		if votes[p.Name] > most {
			best, most = p.Name, votes[p.Name]
		}
	}
	return best
}

// syncTimerLocked runs when the members told of generation gen have had a
// rebalance timeout to send SyncGroup: those that did not are removed and
// the group rebalances (Kafka's pending-sync expiry).
func (g *group) syncTimerLocked(gen int32) {
	if gen != g.generation || (g.state != stateCompletingRebalance && g.state != stateStable) || len(g.pendingSync) == 0 {
		return
	}
	ids := make([]string, 0, len(g.pendingSync))
	for id := range g.pendingSync {
		ids = append(ids, id)
		if m := g.members[id]; m != nil {
			g.dropMemberLocked(m)
		}
	}
	slices.Sort(ids)
	g.log.Info("removed members that did not sync", "members", ids)
	g.prepareRebalanceLocked("members did not sync in time")
}

func (g *group) armJoinTimerLocked(d time.Duration) {
	g.stopJoinTimerLocked()
	g.joinSeq++
	seq := g.joinSeq
	g.joinTimer = g.c.afterFunc(g, d, func() {
		if g.joinSeq == seq && g.state == statePreparingRebalance {
			g.joinTimerLocked()
		}
	})
}

func (g *group) stopJoinTimerLocked() {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.joinSeq++
}

func (g *group) armSyncTimerLocked(d time.Duration) {
	g.stopSyncTimerLocked()
	gen := g.generation
	g.syncTimer = g.c.afterFunc(g, d, func() { g.syncTimerLocked(gen) })
}

func (g *group) stopSyncTimerLocked() {
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
}
