package group_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/engine/kafka/group"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topic is created with 3 partitions on every node the tests open.
const topic = "t"

// shared is one single-node replicated log for the tests that do not
// restart it: opening one takes seconds. Each test uses its own groups.
var shared struct {
	once sync.Once
	dir  string
	log  *replog.Log
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.log != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := shared.log.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "closing the shared log:", err)
			code = 1
		}
		cancel()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func logger() *slog.Logger {
	if os.Getenv("SAMSA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// openLog opens a single-node log on dir, creating the test topic if it is
// not there yet.
func openLog(t testing.TB, dir, raftAddr string) (*replog.Log, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := replog.Open(ctx, replog.Config{
		NodeID: 1, DataDir: dir, RaftAddr: raftAddr, KafkaAddr: "127.0.0.1:9092", MinFreeBytes: -1, Logger: logger(),
	})
	if err != nil {
		return nil, err
	}
	if _, ok := l.Topic(topic); !ok {
		err = l.CreateTopic(ctx, replog.TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: 1}, false)
		if err != nil {
			_ = l.Close(ctx)
			return nil, err
		}
	}
	return l, nil
}

// sharedLog returns the shared log, opening it on first use.
func sharedLog(t testing.TB) *replog.Log {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "samsa-group-")
		if shared.err == nil {
			shared.log, shared.err = openLog(t, filepath.Join(shared.dir, "node"), freeAddr(t))
		}
	})
	require.NoError(t, shared.err)
	return shared.log
}

// errorCode maps Store errors as engine/kafka's table does, for the errors
// these tests meet.
func errorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, replog.ErrUnknownTopicOrPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, replog.ErrGroupNotFound):
		return kerr.GroupIDNotFound.Code
	case errors.Is(err, replog.ErrInvalidGroup):
		return kerr.InvalidGroupID.Code
	case errors.Is(err, replog.ErrOffsetMetadataTooBig):
		return kerr.OffsetMetadataTooLarge.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// newCoordinator returns a coordinator on store with test settings: no
// initial rebalance delay and session timeouts down to 10 ms.
func newCoordinator(t testing.TB, store group.Store, opts ...func(*group.Config)) *group.Coordinator {
	cfg := group.Config{Store: store, ErrorCode: errorCode, Logger: logger(), InitialRebalanceDelay: -1, MinSessionTimeout: 10 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	c := group.New(cfg)
	t.Cleanup(c.Close)
	return c
}

// client plays one consumer of a group, driving the coordinator directly.
type client struct {
	t         testing.TB
	c         *group.Coordinator
	group     string
	clientID  string
	version   int16 // JoinGroup version
	instance  *string
	session   time.Duration
	rebalance time.Duration
	protocols []kmsg.JoinGroupRequestProtocol

	id      string
	gen     int32
	leader  string
	members []kmsg.JoinGroupResponseMember // as the leader got them
}

func newClient(t testing.TB, c *group.Coordinator, groupID, clientID string) *client {
	return &client{
		t: t, c: c, group: groupID, clientID: clientID, version: 5, session: 10 * time.Second, rebalance: 10 * time.Second,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("meta-" + clientID)}}, gen: -1,
	}
}

func (m *client) joinRequest() *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.SetVersion(m.version)
	req.Group, req.MemberID, req.InstanceID, req.ProtocolType = m.group, m.id, m.instance, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(m.session/time.Millisecond), int32(m.rebalance/time.Millisecond)
	req.Protocols = m.protocols
	return req
}

// joinAsync sends one JoinGroup on its own goroutine; took records the
// answer.
func (m *client) joinAsync(ctx context.Context) <-chan *kmsg.JoinGroupResponse {
	req := m.joinRequest()
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- m.c.JoinGroup(ctx, req, m.clientID, "/127.0.0.1") }()
	return ch
}

func (m *client) took(resp *kmsg.JoinGroupResponse) *kmsg.JoinGroupResponse {
	m.t.Helper()
	require.Equal(m.t, m.version, resp.GetVersion())
	switch resp.ErrorCode {
	case 0:
		m.id, m.gen, m.leader, m.members = resp.MemberID, resp.Generation, resp.LeaderID, resp.Members
	case kerr.MemberIDRequired.Code:
		m.id = resp.MemberID
	}
	return resp
}

// join sends one JoinGroup and waits for it.
func (m *client) join() *kmsg.JoinGroupResponse {
	m.t.Helper()
	return m.took(recv(m.t, m.joinAsync(ctxT(m.t, 20*time.Second))))
}

func (m *client) syncRequest(assign map[string][]byte) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.SetVersion(3)
	req.Group, req.MemberID, req.Generation, req.InstanceID = m.group, m.id, m.gen, m.instance
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return req
}

func (m *client) syncAsync(ctx context.Context, assign map[string][]byte) <-chan *kmsg.SyncGroupResponse {
	req := m.syncRequest(assign)
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- m.c.SyncGroup(ctx, req) }()
	return ch
}

func (m *client) sync(assign map[string][]byte) *kmsg.SyncGroupResponse {
	m.t.Helper()
	return recv(m.t, m.syncAsync(ctxT(m.t, 20*time.Second), assign))
}

func (m *client) heartbeat() int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.SetVersion(3)
	req.Group, req.MemberID, req.Generation, req.InstanceID = m.group, m.id, m.gen, m.instance
	resp := m.c.Heartbeat(context.Background(), req)
	return resp.ErrorCode
}

// commit commits offsets of partitions 0.. of the test topic with the
// client's generation and member id.
func (m *client) commit(offsets ...int64) []int16 {
	m.t.Helper()
	return commit(m.t, m.c, m.group, m.gen, m.id, offsets...)
}

// commit commits offsets for partitions 0, 1, ... of the test topic and
// returns the partitions' error codes.
func commit(t testing.TB, c *group.Coordinator, groupID string, gen int32, memberID string, offsets ...int64) []int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(7)
	req.Group, req.Generation, req.MemberID = groupID, gen, memberID
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = int32(p), o, 4, kmsg.StringPtr(fmt.Sprint("m", p))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := c.OffsetCommit(ctxT(t, 20*time.Second), req)
	require.Equal(t, req.Version, resp.GetVersion())
	var codes []int16
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			codes = append(codes, rp.ErrorCode)
		}
	}
	return codes
}

// describe returns one group's description.
func describe(t testing.TB, c *group.Coordinator, groupID string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.SetVersion(4)
	req.Groups = []string{groupID}
	resp := c.DescribeGroups(context.Background(), req)
	require.Len(t, resp.Groups, 1)
	return resp.Groups[0]
}

// recv waits for one answer.
func recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		require.FailNow(t, "no answer")
	}
	var zero T
	return zero
}

// pending asserts that nothing answered yet.
func pending[T any](t testing.TB, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		require.FailNow(t, "answered too early", "%+v", v)
	case <-time.After(50 * time.Millisecond):
	}
}

// stable makes a group of the clients Stable: all join (the first one
// leads if the group is new), the leader assigns each member its client id.
func stable(t testing.TB, ms ...*client) {
	t.Helper()
	chs := make([]<-chan *kmsg.JoinGroupResponse, len(ms))
	for i, m := range ms {
		if m.id == "" && m.version >= 4 && m.instance == nil {
			require.Equal(t, kerr.MemberIDRequired.Code, m.join().ErrorCode)
		}
		chs[i] = m.joinAsync(ctxT(t, 20*time.Second))
		if i == 0 {
			time.Sleep(20 * time.Millisecond) // the first one in leads
		}
	}
	var leader *client
	for i, m := range ms {
		require.Zero(t, m.took(recv(t, chs[i])).ErrorCode)
		if m.id == m.leader {
			leader = m
		}
	}
	require.NotNil(t, leader)
	assign := map[string][]byte{}
	for _, m := range ms {
		assign[m.id] = []byte("assigned-" + m.clientID)
	}
	syncs := make([]<-chan *kmsg.SyncGroupResponse, len(ms))
	for i, m := range ms {
		if m != leader {
			syncs[i] = m.syncAsync(ctxT(t, 20*time.Second), nil)
		}
	}
	for i, m := range ms {
		var resp *kmsg.SyncGroupResponse
		if m == leader {
			resp = m.sync(assign)
		} else {
			resp = recv(t, syncs[i])
		}
		require.Zero(t, resp.ErrorCode)
		require.Equal(t, "assigned-"+m.clientID, string(resp.MemberAssignment))
	}
	require.Equal(t, "Stable", describe(t, ms[0].c, ms[0].group).State)
}
