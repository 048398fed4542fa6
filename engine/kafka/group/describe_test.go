package group_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/engine/kafka/group"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeGroups(t *testing.T) {
	c := newCoordinator(t, sharedLog(t))
	m := newClient(t, c, "described", "a")
	m.instance = kmsg.StringPtr("inst")
	require.Zero(t, m.join().ErrorCode)
	d := describe(t, c, "described")
	require.Equal(t, "CompletingRebalance", d.State)
	require.Equal(t, "consumer", d.ProtocolType)
	require.Empty(t, d.Protocol, "the protocol shows once Stable")
	require.Len(t, d.Members, 1)
	require.Equal(t, "inst", *d.Members[0].InstanceID)
	require.Empty(t, d.Members[0].ProtocolMetadata)
	require.Empty(t, d.Members[0].MemberAssignment)
	require.Zero(t, m.sync(map[string][]byte{m.id: []byte("all")}).ErrorCode)
	require.Equal(t, []int16{0}, commit(t, c, "described-offsets", -1, "", 1))

	req := kmsg.NewPtrDescribeGroupsRequest()
	req.SetVersion(3)
	req.Groups = []string{"described", "described-offsets", "described-nobody", ""}
	req.IncludeAuthorizedOperations = true
	resp := c.DescribeGroups(context.Background(), req)
	require.Equal(t, int16(3), resp.GetVersion())
	require.Len(t, resp.Groups, 4)
	var states []string
	for _, g := range resp.Groups {
		require.Zero(t, g.ErrorCode)
		require.Equal(t, int32(1<<3|1<<6|1<<8), g.AuthorizedOperations, "READ, DELETE, DESCRIBE")
		states = append(states, g.Group+"="+g.State)
	}
	require.Equal(t, []string{"described=Stable", "described-offsets=Empty", "described-nobody=Dead", "=Dead"}, states)
	g := resp.Groups[0]
	require.Equal(t, "range", g.Protocol)
	require.Equal(t, "all", string(g.Members[0].MemberAssignment))
	require.Equal(t, "meta-a", string(g.Members[0].ProtocolMetadata))
	require.Equal(t, m.id, g.Members[0].MemberID)
}

func TestListAndDeleteGroups(t *testing.T) {
	c := newCoordinator(t, sharedLog(t))
	m := newClient(t, c, "listed-members", "a")
	stable(t, m)
	require.Equal(t, []int16{0}, m.commit(5))
	require.Equal(t, []int16{0, 0}, commit(t, c, "listed-offsets", -1, "", 1, 2))
	p := newClient(t, c, "listed-pending", "p")
	require.Equal(t, kerr.MemberIDRequired.Code, p.join().ErrorCode)

	list := func(version int16, states ...string) map[string]string {
		t.Helper()
		req := kmsg.NewPtrListGroupsRequest()
		req.SetVersion(version)
		req.StatesFilter = states
		resp := c.ListGroups(context.Background(), req)
		require.Equal(t, version, resp.GetVersion())
		require.Zero(t, resp.ErrorCode)
		out := map[string]string{}
		for _, g := range resp.Groups {
			if strings.HasPrefix(g.Group, "listed-") {
				out[g.Group] = g.ProtocolType + "/" + g.GroupState
			}
		}
		return out
	}
	require.Equal(t, map[string]string{
		"listed-members": "consumer/Stable", "listed-offsets": "/Empty", "listed-pending": "/Empty",
	}, list(2))
	require.Equal(t, map[string]string{"listed-members": "consumer/Stable"}, list(4, "stable"), "v4 filters by state")

	del := func(groups ...string) []int16 {
		t.Helper()
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.SetVersion(1)
		req.Groups = groups
		resp := c.DeleteGroups(ctxT(t, 20*time.Second), req)
		require.Equal(t, int16(1), resp.GetVersion())
		var codes []int16
		for i, g := range resp.Groups {
			require.Equal(t, groups[i], g.Group)
			codes = append(codes, g.ErrorCode)
		}
		return codes
	}
	require.Equal(t, []int16{kerr.NonEmptyGroup.Code, 0, 0, kerr.GroupIDNotFound.Code, kerr.GroupIDNotFound.Code},
		del("listed-members", "listed-offsets", "listed-pending", "listed-never", ""))
	require.Equal(t, map[string]string{"listed-members": "consumer/Stable"}, list(2))
	require.Equal(t, map[string]map[int32]string{}, fetch(t, c, 5, "listed-offsets", nil), "the offsets went with the group")
	require.Equal(t, kerr.UnknownMemberID.Code, p.join().ErrorCode, "the pending member id went with the group")
	require.Equal(t, []int16{kerr.GroupIDNotFound.Code}, del("listed-offsets"))

	leave(t, c, "listed-members", 3, m.id)
	require.Equal(t, map[string]string{"listed-members": "/Empty"}, list(2), "left; its offsets remain")
	require.Equal(t, []int16{0}, del("listed-members"))
	require.Empty(t, list(2))
	groups, members := c.Stats()
	require.Zero(t, groups)
	require.Zero(t, members)
}

// TestConcurrentMembers runs members as real clients would, concurrently,
// joining and leaving while the rest keep going, until the group is
// Stable with everyone in one generation (run under -race).
func TestConcurrentMembers(t *testing.T) {
	c := newCoordinator(t, sharedLog(t), withDelay(50*time.Millisecond))
	const n = 8
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	synced := make(chan [2]string, 10000)
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			runMember(ctx, c, "concurrent", string(rune('a'+i)), i%3 == 0, synced)
		}()
	}
	require.Eventually(t, func() bool {
		d := describe(t, c, "concurrent")
		if d.State != "Stable" || len(d.Members) != n {
			return false
		}
		for _, m := range d.Members {
			if string(m.MemberAssignment) != "for "+m.MemberID {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
	cancel()
	for range n {
		recv(t, done)
	}
	close(synced)
	for s := range synced {
		require.Equal(t, s[1], s[0], "every member got its own assignment")
	}
	require.Eventually(t, func() bool { g, m := c.Stats(); return g == 0 && m == 0 }, 10*time.Second, 10*time.Millisecond, "everyone left")
}

// runMember is a consumer's group loop: join, sync (the leader assigns),
// heartbeat and commit until told to rejoin; the bouncing ones leave and
// come back now and then. It leaves when ctx ends.
func runMember(ctx context.Context, c *group.Coordinator, groupID, name string, bounce bool, synced chan<- [2]string) {
	id, gen := "", int32(-1)
	for rounds := 0; ctx.Err() == nil; rounds++ {
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(5)
		req.Group, req.MemberID, req.ProtocolType = groupID, id, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte(name)}}
		join := c.JoinGroup(ctx, req, name, "h")
		switch join.ErrorCode {
		case 0:
		case kerr.MemberIDRequired.Code:
			id = join.MemberID
			continue
		case kerr.UnknownMemberID.Code:
			id = ""
			continue
		default:
			continue
		}
		id, gen = join.MemberID, join.Generation
		sreq := kmsg.NewPtrSyncGroupRequest()
		sreq.SetVersion(3)
		sreq.Group, sreq.MemberID, sreq.Generation = groupID, id, gen
		for _, m := range join.Members {
			sreq.GroupAssignment = append(sreq.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m.MemberID, MemberAssignment: []byte("for " + m.MemberID)})
		}
		sync := c.SyncGroup(ctx, sreq)
		if sync.ErrorCode != 0 {
			continue
		}
		synced <- [2]string{string(sync.MemberAssignment), "for " + id}
		for ctx.Err() == nil {
			hreq := kmsg.NewPtrHeartbeatRequest()
			hreq.Group, hreq.MemberID, hreq.Generation = groupID, id, gen
			if c.Heartbeat(ctx, hreq).ErrorCode != 0 {
				break
			}
			creq := kmsg.NewPtrOffsetCommitRequest()
			creq.SetVersion(7)
			creq.Group, creq.MemberID, creq.Generation = groupID, id, gen
			creq.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: int64(rounds)}}}}
			c.OffsetCommit(ctx, creq)
			if bounce && rounds < 8 {
				lreq := kmsg.NewPtrLeaveGroupRequest()
				lreq.SetVersion(3)
				lreq.Group, lreq.Members = groupID, []kmsg.LeaveGroupRequestMember{{MemberID: id}}
				c.LeaveGroup(ctx, lreq)
				id = ""
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.SetVersion(3)
	lreq.Group, lreq.Members = groupID, []kmsg.LeaveGroupRequestMember{{MemberID: id}}
	c.LeaveGroup(context.Background(), lreq)
}
