package group_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSessionTimeout: a member that stops heartbeating is removed after
// its session timeout and the others rebalance without it.
func TestSessionTimeout(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(100*time.Millisecond))
	a, b := newClient(t, c, "session", "a"), newClient(t, c, "session", "b")
	a.session, b.session = 300*time.Millisecond, 300*time.Millisecond
	stable(t, a, b)

	// a keeps heartbeating; b went silent.
	require.Eventually(t, func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, kerr.UnknownMemberID.Code, b.heartbeat())
	resp := a.join()
	require.Zero(t, resp.ErrorCode)
	require.Equal(t, int32(2), a.gen)
	require.Len(t, a.members, 1)

	// Alone and silent: the group empties and leaves memory.
	require.Eventually(t, func() bool { g, m := c.Stats(); return g == 0 && m == 0 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "Dead", describe(t, c, "session").State)
}

// TestRebalanceTimeout: when the join phase's rebalance timeout passes,
// the members that rejoined go on without those that did not, even if
// those kept heartbeating.
func TestRebalanceTimeout(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(100*time.Millisecond))
	a, b, n := newClient(t, c, "rebalance-timeout", "a"), newClient(t, c, "rebalance-timeout", "b"), newClient(t, c, "rebalance-timeout", "n")
	for _, m := range []*client{a, b, n} {
		m.rebalance = 400 * time.Millisecond
	}
	stable(t, a, b)

	require.Equal(t, kerr.MemberIDRequired.Code, n.join().ErrorCode)
	nJoin := n.joinAsync(ctxT(t, 10*time.Second))
	require.Eventually(t, func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code }, 10*time.Second, 5*time.Millisecond)
	start := time.Now()
	aJoin := a.joinAsync(ctxT(t, 10*time.Second))
	require.Equal(t, kerr.RebalanceInProgress.Code, b.heartbeat(), "b is alive, but does not rejoin")
	a.took(recv(t, aJoin))
	n.took(recv(t, nJoin))
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	require.Equal(t, int32(2), a.gen)
	require.Equal(t, int32(2), n.gen)
	require.Len(t, a.members, 2)
	require.Equal(t, kerr.UnknownMemberID.Code, b.heartbeat())
}

// TestSyncTimeout: members that do not send SyncGroup within the
// rebalance timeout after a join phase are removed, and the group
// rebalances.
func TestSyncTimeout(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(100*time.Millisecond))
	a, b := newClient(t, c, "sync-timeout", "a"), newClient(t, c, "sync-timeout", "b")
	a.rebalance, b.rebalance = 300*time.Millisecond, 300*time.Millisecond
	a.version, b.version = 3, 3
	aJoin := a.joinAsync(ctxT(t, 10*time.Second))
	time.Sleep(20 * time.Millisecond)
	bJoin := b.joinAsync(ctxT(t, 10*time.Second))
	a.took(recv(t, aJoin))
	b.took(recv(t, bJoin))
	require.Equal(t, a.id, a.leader)
	require.Zero(t, a.sync(map[string][]byte{a.id: []byte("x"), b.id: []byte("y")}).ErrorCode)
	require.Equal(t, "Stable", describe(t, c, "sync-timeout").State)
	// b heartbeats but never syncs.
	require.Eventually(t, func() bool {
		b.heartbeat()
		return a.heartbeat() == kerr.RebalanceInProgress.Code
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, kerr.UnknownMemberID.Code, b.heartbeat())
	require.Len(t, describe(t, c, "sync-timeout").Members, 1)
}

// TestLeave: leaving makes the group rebalance; LeaveGroup's answers per
// version.
func TestLeave(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(100*time.Millisecond))
	a, b, s := newClient(t, c, "leave", "a"), newClient(t, c, "leave", "b"), newClient(t, c, "leave", "s")
	s.instance = kmsg.StringPtr("s-instance")
	stable(t, a, b, s)

	req := kmsg.NewPtrLeaveGroupRequest()
	req.SetVersion(3)
	req.Group = "leave"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: b.id}, {MemberID: "ghost"}, {InstanceID: s.instance}, {InstanceID: kmsg.StringPtr("nope")}}
	resp := c.LeaveGroup(context.Background(), req)
	require.Equal(t, int16(3), resp.GetVersion())
	require.Zero(t, resp.ErrorCode)
	require.Len(t, resp.Members, 4)
	codes := []int16{}
	for _, m := range resp.Members {
		codes = append(codes, m.ErrorCode)
	}
	require.Equal(t, []int16{0, kerr.UnknownMemberID.Code, 0, kerr.UnknownMemberID.Code}, codes)
	require.Equal(t, b.id, resp.Members[0].MemberID)
	require.Equal(t, "s-instance", *resp.Members[2].InstanceID)

	require.Equal(t, kerr.RebalanceInProgress.Code, a.heartbeat())
	require.Equal(t, kerr.UnknownMemberID.Code, b.heartbeat())
	require.Zero(t, a.join().ErrorCode)
	require.Equal(t, int32(2), a.gen)
	require.Len(t, a.members, 1)

	for version := int16(0); version < 3; version++ {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.SetVersion(version)
		req.Group, req.MemberID = "leave", "ghost"
		resp := c.LeaveGroup(context.Background(), req)
		require.Equal(t, kerr.UnknownMemberID.Code, resp.ErrorCode, "v%d: the member's error is the top-level one", version)
		require.Empty(t, resp.Members)
		req.Group = ""
		require.Equal(t, kerr.InvalidGroupID.Code, c.LeaveGroup(context.Background(), req).ErrorCode)
		req.Group = "no-such-group"
		require.Equal(t, kerr.UnknownMemberID.Code, c.LeaveGroup(context.Background(), req).ErrorCode)
	}
	leave(t, c, "leave", 1, a.id)
	require.Eventually(t, func() bool { g, _ := c.Stats(); return g == 0 }, 10*time.Second, 5*time.Millisecond)
}

// TestStaticMembership (KIP-345): a static member that restarts replaces
// its previous incarnation without a rebalance and gets its assignment
// back; one that rejoins with its id keeps it; one that is away during a
// rebalance keeps its place.
func TestStaticMembership(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(100*time.Millisecond))
	s1, s2 := newClient(t, c, "static", "s1"), newClient(t, c, "static", "s2")
	s1.instance, s2.instance = kmsg.StringPtr("one"), kmsg.StringPtr("two")
	for _, m := range []*client{s1, s2} {
		m.protocols = append(m.protocols, kmsg.JoinGroupRequestProtocol{Name: "roundrobin", Metadata: []byte("rr")})
		m.rebalance = time.Second // well within the 10 s session of a member that is away
	}
	stable(t, s1, s2)
	require.Equal(t, "range", describe(t, c, "static").Protocol)
	require.Regexp(t, "^two-", s2.id)
	gen := s1.gen

	t.Run("rejoin with its id", func(t *testing.T) {
		id := s2.id
		resp := s2.join()
		require.Zero(t, resp.ErrorCode)
		require.Equal(t, id, resp.MemberID)
		require.Equal(t, gen, resp.Generation)
		require.Equal(t, "Stable", describe(t, c, "static").State)
	})

	t.Run("follower restarts", func(t *testing.T) {
		old := *s2
		s2.id = ""
		s2.clientID = "s2-restarted"
		// A consumer's metadata changes at every restart (its owned
		// partitions are gone): that alone does not rebalance, or static
		// membership would be pointless.
		s2.protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("restarted")}, {Name: "roundrobin"}}
		resp := s2.join()
		require.Zero(t, resp.ErrorCode, "a known instance id needs no MEMBER_ID_REQUIRED")
		require.NotEqual(t, old.id, resp.MemberID, "the new incarnation replaces the old member id")
		require.Equal(t, gen, resp.Generation, "no rebalance")
		require.Equal(t, s1.id, resp.LeaderID)
		require.Equal(t, "Stable", describe(t, c, "static").State)
		require.Equal(t, kerr.FencedInstanceID.Code, old.heartbeat(), "the old incarnation is fenced")
		sync := s2.sync(nil)
		require.Zero(t, sync.ErrorCode)
		require.Equal(t, "assigned-s2", string(sync.MemberAssignment), "the assignment survived the restart")
		require.Zero(t, s1.heartbeat())
		require.Zero(t, s2.heartbeat())
	})

	t.Run("leader restarts", func(t *testing.T) {
		old := s1.id
		s1.id = ""
		resp := s1.join()
		require.Zero(t, resp.ErrorCode)
		require.Equal(t, gen, resp.Generation)
		require.Equal(t, old, resp.LeaderID, "told of the old leader id, so it does not assign what a Stable group would not pass on")
		require.Empty(t, resp.Members)
		sync := s1.sync(nil)
		require.Zero(t, sync.ErrorCode)
		require.Equal(t, "assigned-s1", string(sync.MemberAssignment))
		require.Equal(t, "Stable", describe(t, c, "static").State)
	})

	t.Run("restart with a protocol change rebalances", func(t *testing.T) {
		s2.id = ""
		s2.protocols = []kmsg.JoinGroupRequestProtocol{{Name: "roundrobin", Metadata: []byte("changed")}}
		ch := s2.joinAsync(ctxT(t, 10*time.Second))
		require.Eventually(t, func() bool { return s1.heartbeat() == kerr.RebalanceInProgress.Code }, 10*time.Second, 5*time.Millisecond)
		pending(t, ch)
		require.Zero(t, s1.join().ErrorCode)
		require.Zero(t, s2.took(recv(t, ch)).ErrorCode)
		require.Equal(t, gen+1, s2.gen)
		require.Equal(t, "roundrobin", *s2.took(s2.join()).Protocol, "the only protocol both support now")
		require.Zero(t, s1.sync(map[string][]byte{s1.id: []byte("assigned-s1"), s2.id: []byte("assigned-s2")}).ErrorCode)
		require.Zero(t, s2.sync(nil).ErrorCode)
		gen = s2.gen
	})

	t.Run("away during a rebalance", func(t *testing.T) {
		d := newClient(t, c, "static", "dynamic")
		d.protocols, d.rebalance = []kmsg.JoinGroupRequestProtocol{{Name: "roundrobin"}}, time.Second
		require.Equal(t, kerr.MemberIDRequired.Code, d.join().ErrorCode)
		dJoin := d.joinAsync(ctxT(t, 10*time.Second))
		require.Eventually(t, func() bool { return s1.heartbeat() == kerr.RebalanceInProgress.Code }, 10*time.Second, 5*time.Millisecond)
		require.Zero(t, s1.join().ErrorCode) // s2 is away, and comes back later
		require.Zero(t, d.took(recv(t, dJoin)).ErrorCode)
		require.Equal(t, gen+1, s1.gen)
		require.Len(t, s1.members, 3, "the absent static member keeps its place")
		instances := 0
		for _, m := range s1.members {
			if m.InstanceID != nil {
				instances++
			}
		}
		require.Equal(t, 2, instances)
	})
}

// TestSyncWaits: a follower's SyncGroup waits for the leader's; it is
// released by a rebalance that restarts (REBALANCE_IN_PROGRESS) or by its
// ctx, and a known member that gives up waiting in JoinGroup stays a
// member until the join phase ends without it.
func TestSyncWaits(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(100*time.Millisecond))
	a, b, n := newClient(t, c, "sync-waits", "a"), newClient(t, c, "sync-waits", "b"), newClient(t, c, "sync-waits", "n")
	for _, m := range []*client{a, b, n} {
		m.version, m.rebalance = 3, 500*time.Millisecond
	}
	aJoin := a.joinAsync(ctxT(t, 10*time.Second))
	time.Sleep(20 * time.Millisecond)
	bJoin := b.joinAsync(ctxT(t, 10*time.Second))
	a.took(recv(t, aJoin))
	b.took(recv(t, bJoin))
	require.Equal(t, a.id, a.leader)

	bSync := b.syncAsync(ctxT(t, 10*time.Second), nil)
	pending(t, bSync)
	nJoin := n.joinAsync(ctxT(t, 10*time.Second))
	require.Equal(t, kerr.RebalanceInProgress.Code, recv(t, bSync).ErrorCode, "the rebalance restarted")

	aJoin, bJoin = a.joinAsync(ctxT(t, 10*time.Second)), b.joinAsync(ctxT(t, 10*time.Second))
	for _, r := range []struct {
		m  *client
		ch <-chan *kmsg.JoinGroupResponse
	}{{a, aJoin}, {b, bJoin}, {n, nJoin}} {
		require.Zero(t, r.m.took(recv(t, r.ch)).ErrorCode)
		require.Equal(t, int32(2), r.m.gen)
	}

	ctx, cancel := context.WithCancel(context.Background())
	bSync = b.syncAsync(ctx, nil)
	pending(t, bSync)
	cancel()
	require.Equal(t, kerr.RebalanceInProgress.Code, recv(t, bSync).ErrorCode)
	require.Zero(t, b.heartbeat(), "still a member")

	// The group settles; then the leader rejoins (a rebalance), b starts to
	// rejoin and gives up.
	require.Zero(t, a.sync(map[string][]byte{a.id: []byte("a"), b.id: []byte("b"), n.id: []byte("n")}).ErrorCode)
	require.Equal(t, "n", string(n.sync(nil).MemberAssignment))
	require.Equal(t, "b", string(b.sync(nil).MemberAssignment), "the group is Stable: b gets its assignment at once")
	aJoin = a.joinAsync(ctxT(t, 10*time.Second))
	require.Eventually(t, func() bool { return n.heartbeat() == kerr.RebalanceInProgress.Code }, 10*time.Second, 5*time.Millisecond)
	ctx, cancel = context.WithCancel(context.Background())
	bJoin = b.joinAsync(ctx)
	pending(t, bJoin)
	cancel()
	require.Equal(t, kerr.RebalanceInProgress.Code, recv(t, bJoin).ErrorCode)
	require.Len(t, describe(t, c, "sync-waits").Members, 3, "b is still a member while the join phase lasts")
	nJoin = n.joinAsync(ctxT(t, 10*time.Second))
	pending(t, nJoin) // waiting for b, which does not come back
	a.took(recv(t, aJoin))
	n.took(recv(t, nJoin))
	require.Equal(t, int32(3), a.gen)
	require.Len(t, a.members, 2, "b did not rejoin in time")
	require.Equal(t, kerr.UnknownMemberID.Code, b.heartbeat())
}
