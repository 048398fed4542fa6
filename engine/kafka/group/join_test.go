package group_test

import (
	"context"
	"testing"
	"time"

	"github.com/samsa-io/samsa/engine/kafka/group"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func withDelay(d time.Duration) func(*group.Config) {
	return func(cfg *group.Config) { cfg.InitialRebalanceDelay = d }
}

func TestJoinSyncOneMember(t *testing.T) {
	c := newCoordinator(t, sharedLog(t))
	for _, version := range []int16{0, 3, 4, 5} {
		t.Run(string(rune('0'+version)), func(t *testing.T) {
			m := newClient(t, c, t.Name(), "solo")
			m.version = version
			resp := m.join()
			if version >= 4 {
				require.Equal(t, kerr.MemberIDRequired.Code, resp.ErrorCode, "KIP-394: a new member takes its id first")
				require.Equal(t, int32(-1), resp.Generation)
				require.NotEmpty(t, resp.MemberID)
				id := m.id
				resp = m.join()
				require.Equal(t, id, resp.MemberID)
			}
			require.Zero(t, resp.ErrorCode)
			require.Equal(t, int32(1), resp.Generation)
			require.Equal(t, resp.MemberID, resp.LeaderID)
			require.Equal(t, "range", *resp.Protocol)
			require.Len(t, resp.Members, 1)
			require.Equal(t, "meta-solo", string(resp.Members[0].ProtocolMetadata))
			require.Equal(t, "CompletingRebalance", describe(t, c, m.group).State)

			sync := m.sync(map[string][]byte{m.id: []byte("p0,p1,p2")})
			require.Zero(t, sync.ErrorCode)
			require.Equal(t, int16(3), sync.GetVersion())
			require.Equal(t, "p0,p1,p2", string(sync.MemberAssignment))
			require.Zero(t, m.heartbeat())

			d := describe(t, c, m.group)
			require.Equal(t, "Stable", d.State)
			require.Equal(t, "consumer", d.ProtocolType)
			require.Equal(t, "range", d.Protocol)
			require.Len(t, d.Members, 1)
			require.Equal(t, "solo", d.Members[0].ClientID)
			require.Equal(t, "/127.0.0.1", d.Members[0].ClientHost)
			require.Equal(t, "p0,p1,p2", string(d.Members[0].MemberAssignment))
			require.Equal(t, "meta-solo", string(d.Members[0].ProtocolMetadata))
		})
	}
}

// TestJoinErrors covers the refusals of JoinGroup, SyncGroup and Heartbeat
// against one Stable group with member a.
func TestJoinErrors(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), func(cfg *group.Config) { cfg.MinSessionTimeout, cfg.MaxSessionTimeout = time.Second, time.Minute })
	a := newClient(t, c, "errors", "a")
	stable(t, a)

	joins := map[string]struct {
		edit func(m *client)
		code int16
	}{
		"empty group id":                {func(m *client) { m.group = "" }, kerr.InvalidGroupID.Code},
		"session below the min":         {func(m *client) { m.session = 999 * time.Millisecond }, kerr.InvalidSessionTimeout.Code},
		"session above the max":         {func(m *client) { m.session = time.Minute + time.Millisecond }, kerr.InvalidSessionTimeout.Code},
		"unknown member, unknown group": {func(m *client) { m.group, m.id = "nobody-here", "ghost" }, kerr.UnknownMemberID.Code},
		"unknown member":                {func(m *client) { m.id = "ghost" }, kerr.UnknownMemberID.Code},
		"other protocol type":           {func(m *client) { m.id = a.id }, kerr.InconsistentGroupProtocol.Code},
		"no common protocol":            {func(m *client) { m.protocols[0].Name = "roundrobin" }, kerr.InconsistentGroupProtocol.Code},
		"no protocols":                  {func(m *client) { m.protocols = nil }, kerr.InconsistentGroupProtocol.Code},
		"unknown instance id":           {func(m *client) { m.id, m.instance = a.id, kmsg.StringPtr("i") }, kerr.UnknownMemberID.Code},
	}
	for name, tc := range joins {
		t.Run("join/"+name, func(t *testing.T) {
			m := newClient(t, c, "errors", "b")
			m.session = 10 * time.Second
			tc.edit(m)
			req := m.joinRequest()
			if name == "other protocol type" {
				req.ProtocolType = "connect"
			}
			resp := c.JoinGroup(ctxT(t, 10*time.Second), req, "b", "h")
			require.Equal(t, tc.code, resp.ErrorCode)
			require.Equal(t, int32(-1), resp.Generation)
		})
	}

	syncs := map[string]struct {
		edit func(req *kmsg.SyncGroupRequest)
		code int16
	}{
		"empty group id":      {func(r *kmsg.SyncGroupRequest) { r.Group = "" }, kerr.InvalidGroupID.Code},
		"unknown group":       {func(r *kmsg.SyncGroupRequest) { r.Group = "nobody-here" }, kerr.UnknownMemberID.Code},
		"unknown member":      {func(r *kmsg.SyncGroupRequest) { r.MemberID = "ghost" }, kerr.UnknownMemberID.Code},
		"old generation":      {func(r *kmsg.SyncGroupRequest) { r.Generation-- }, kerr.IllegalGeneration.Code},
		"other protocol (v5)": {func(r *kmsg.SyncGroupRequest) { r.Protocol = kmsg.StringPtr("roundrobin") }, kerr.InconsistentGroupProtocol.Code},
		"unknown instance":    {func(r *kmsg.SyncGroupRequest) { r.InstanceID = kmsg.StringPtr("i") }, kerr.UnknownMemberID.Code},
	}
	for name, tc := range syncs {
		t.Run("sync/"+name, func(t *testing.T) {
			req := a.syncRequest(nil)
			tc.edit(req)
			require.Equal(t, tc.code, c.SyncGroup(ctxT(t, 10*time.Second), req).ErrorCode)
		})
	}

	beats := map[string]struct {
		edit func(req *kmsg.HeartbeatRequest)
		code int16
	}{
		"ok":             {func(*kmsg.HeartbeatRequest) {}, 0},
		"empty group id": {func(r *kmsg.HeartbeatRequest) { r.Group = "" }, kerr.InvalidGroupID.Code},
		"unknown group":  {func(r *kmsg.HeartbeatRequest) { r.Group = "nobody-here" }, kerr.UnknownMemberID.Code},
		"unknown member": {func(r *kmsg.HeartbeatRequest) { r.MemberID = "ghost" }, kerr.UnknownMemberID.Code},
		"old generation": {func(r *kmsg.HeartbeatRequest) { r.Generation-- }, kerr.IllegalGeneration.Code},
		"new generation": {func(r *kmsg.HeartbeatRequest) { r.Generation++ }, kerr.IllegalGeneration.Code},
	}
	for name, tc := range beats {
		t.Run("heartbeat/"+name, func(t *testing.T) {
			req := kmsg.NewPtrHeartbeatRequest()
			req.SetVersion(3)
			req.Group, req.MemberID, req.Generation = a.group, a.id, a.gen
			tc.edit(req)
			resp := c.Heartbeat(context.Background(), req)
			require.Equal(t, int16(3), resp.GetVersion())
			require.Equal(t, tc.code, resp.ErrorCode)
		})
	}
	require.Equal(t, "Stable", describe(t, c, "errors").State, "no refusal disturbed the group")
	require.Len(t, describe(t, c, "errors").Members, 1)
}

// TestRebalance: a second member joins a Stable group; the first learns
// of the rebalance from its heartbeat, rejoins, stays leader and gets both
// members' metadata; both get the leader's assignments in a new
// generation.
func TestRebalance(t *testing.T) {
	c := newCoordinator(t, sharedLog(t))
	a, b := newClient(t, c, "rebalance", "a"), newClient(t, c, "rebalance", "b")
	a.protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("a-range")}, {Name: "roundrobin", Metadata: []byte("a-rr")}}
	b.protocols = []kmsg.JoinGroupRequestProtocol{{Name: "roundrobin", Metadata: []byte("b-rr")}, {Name: "range", Metadata: []byte("b-range")}}
	stable(t, a)
	require.Equal(t, int32(1), a.gen)

	require.Equal(t, kerr.MemberIDRequired.Code, b.join().ErrorCode)
	bJoin := b.joinAsync(ctxT(t, 20*time.Second))
	require.Eventually(t, func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "PreparingRebalance", describe(t, c, "rebalance").State)
	pending(t, bJoin)
	commitCodes := a.commit(1, 2, 3)
	require.Equal(t, []int16{0, 0, 0}, commitCodes, "commits are allowed while the group prepares to rebalance")

	aResp := a.join()
	bResp := b.took(recv(t, bJoin))
	require.Zero(t, aResp.ErrorCode)
	require.Zero(t, bResp.ErrorCode)
	require.Equal(t, int32(2), a.gen)
	require.Equal(t, int32(2), b.gen)
	require.Equal(t, a.id, a.leader, "the leader that rejoined stays leader")
	require.Equal(t, a.id, b.leader)
	require.Equal(t, "range", *aResp.Protocol, "one vote each: the leader's preference wins")
	require.Len(t, a.members, 2)
	require.Empty(t, b.members, "followers do not get the members")
	metas := map[string]string{}
	for _, m := range a.members {
		metas[m.MemberID] = string(m.ProtocolMetadata)
	}
	require.Equal(t, map[string]string{a.id: "a-range", b.id: "b-range"}, metas)
	require.Equal(t, kerr.RebalanceInProgress.Code, a.commit(1)[0], "no commits between join and sync")

	bSync := b.syncAsync(ctxT(t, 20*time.Second), nil)
	pending(t, bSync)
	aSync := a.sync(map[string][]byte{a.id: []byte("a-parts"), b.id: []byte("b-parts"), "ghost": []byte("x")})
	require.Zero(t, aSync.ErrorCode)
	require.Equal(t, "a-parts", string(aSync.MemberAssignment))
	bs := recv(t, bSync)
	require.Zero(t, bs.ErrorCode)
	require.Equal(t, "b-parts", string(bs.MemberAssignment))
	require.Zero(t, a.heartbeat())
	require.Zero(t, b.heartbeat())
	require.Equal(t, kerr.IllegalGeneration.Code, commit(t, c, "rebalance", 1, a.id, 9)[0])
	require.Equal(t, []int16{0}, a.commit(9))
}

// TestProtocolVotes: the protocol is chosen by the members' votes, not by
// the leader alone.
func TestProtocolVotes(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(200*time.Millisecond))
	var ms []*client
	for i, order := range [][]string{{"a", "b", "c"}, {"b", "a"}, {"c", "b", "a"}, {"b", "c", "a"}} {
		m := newClient(t, c, "votes", string(rune('p'+i)))
		m.protocols = nil
		for _, p := range order {
			m.protocols = append(m.protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte(p)})
		}
		ms = append(ms, m)
	}
	stable(t, ms...)
	require.Equal(t, "b", describe(t, c, "votes").Protocol, "c is not supported by everyone; b has three votes")
}

// TestInitialDelay: the first join phase of an empty group waits for more
// members instead of ending with the first one.
func TestInitialDelay(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(300*time.Millisecond))
	a, b := newClient(t, c, "delay", "a"), newClient(t, c, "delay", "b")
	a.version, b.version = 3, 3
	start := time.Now()
	aJoin := a.joinAsync(ctxT(t, 10*time.Second))
	time.Sleep(100 * time.Millisecond)
	bJoin := b.joinAsync(ctxT(t, 10*time.Second))
	a.took(recv(t, aJoin))
	b.took(recv(t, bJoin))
	// b came during the delay, which was then extended once.
	require.GreaterOrEqual(t, time.Since(start), 600*time.Millisecond)
	require.Equal(t, int32(1), a.gen)
	require.Equal(t, int32(1), b.gen, "both landed in the first generation")
	require.Equal(t, a.id, a.leader, "the first to join leads")
	require.Len(t, a.members, 2)
}

// TestMemberIDRequired: only JoinGroup v4+ asks new members to come back
// with an id, and the id it gives is the one the member then has.
func TestMemberIDRequired(t *testing.T) {
	c := newCoordinator(t, sharedLog(t))
	for version := int16(0); version <= 5; version++ {
		m := newClient(t, c, "required", "v")
		m.version = version
		resp := m.join()
		if version >= 4 {
			require.Equal(t, kerr.MemberIDRequired.Code, resp.ErrorCode, "v%d", version)
			id := resp.MemberID
			require.Regexp(t, `^v-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id)
			resp = m.join()
			require.Equal(t, id, resp.MemberID)
		}
		require.Zero(t, resp.ErrorCode, "v%d", version)
		require.Equal(t, version, resp.GetVersion())
		leave(t, c, m.group, version, m.id)
	}
}

// TestJoinCanceled: a new member that gives up waiting in JoinGroup is
// removed, and nothing of it is left.
func TestJoinCanceled(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(time.Minute))
	m := newClient(t, c, "canceled", "a")
	m.version = 3
	ctx, cancel := context.WithCancel(context.Background())
	ch := m.joinAsync(ctx)
	require.Eventually(t, func() bool { _, n := c.Stats(); return n == 1 }, 10*time.Second, 5*time.Millisecond)
	pending(t, ch)
	cancel()
	resp := recv(t, ch)
	require.Equal(t, kerr.UnknownMemberID.Code, resp.ErrorCode)
	groups, members := c.Stats()
	require.Zero(t, groups)
	require.Zero(t, members)
}

// TestClose: Close answers waiting requests NOT_COORDINATOR, and every
// later request too.
func TestClose(t *testing.T) {
	c := group.New(group.Config{Store: sharedLog(t), ErrorCode: errorCode, Logger: logger(), InitialRebalanceDelay: time.Minute})
	defer c.Close()
	m := newClient(t, c, "closing", "a")
	m.version = 3
	ch := m.joinAsync(ctxT(t, 20*time.Second))
	require.Eventually(t, func() bool { _, n := c.Stats(); return n == 1 }, 10*time.Second, 5*time.Millisecond)
	c.Close()
	require.Equal(t, kerr.NotCoordinator.Code, recv(t, ch).ErrorCode)
	require.Equal(t, kerr.NotCoordinator.Code, m.join().ErrorCode)
	require.Equal(t, kerr.NotCoordinator.Code, m.heartbeat())
	require.Equal(t, []int16{kerr.NotCoordinator.Code}, commit(t, c, "closing", -1, "", 1))
	c.Close() // twice is fine
}

func leave(t testing.TB, c *group.Coordinator, groupID string, version int16, memberID string) {
	t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.SetVersion(min(version, 3))
	req.Group = groupID
	if version < 3 {
		req.MemberID = memberID
	} else {
		req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: memberID}}
	}
	resp := c.LeaveGroup(context.Background(), req)
	require.Zero(t, resp.ErrorCode)
}
