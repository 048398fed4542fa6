package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterGroupCoordinator: on a three-node cluster only the
// coordinator (the meta shard's leader) answers group requests; the others
// say NOT_COORDINATOR. A franz-go consumer group reads half a topic, the
// coordinator's node is killed, the other half is written, and the group
// finds the new coordinator, reads it, and its committed offsets cover
// every record.
func TestClusterGroupCoordinator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three samsa processes")
	}
	const topic, group, records = "grouped", "readers", 3000
	c := testcluster.Start(t, 3)
	brokers := c.Brokers()
	cl := newClient(t, kgo.SeedBrokers(brokers...))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, topic, 3, 3)
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			cl.Produce(ctxT(t, time.Minute), &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%d", i)}, nil)
		}
		require.NoError(t, cl.Flush(ctxT(t, time.Minute)))
	}
	produce(0, records/2)

	// Exactly one node coordinates the group.
	coordinators := 0
	for _, nd := range c.Nodes {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = group, "nobody", 1
		resp, err := cl.Broker(int(nd.ID)).Request(ctxT(t, 10*time.Second), req)
		require.NoError(t, err)
		switch code := resp.(*kmsg.HeartbeatResponse).ErrorCode; code {
		case kerr.NotCoordinator.Code:
		default:
			coordinators++
			require.NotEqual(t, kerr.CoordinatorNotAvailable.Code, code, "node %d", nd.ID)
		}
	}
	require.Equal(t, 1, coordinators, "one node answers the group's requests")

	cons := newClient(t, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	seen := map[string]bool{}
	read := func(n int) {
		ctx := ctxT(t, 2*time.Minute)
		for len(seen) < n {
			fs := cons.PollFetches(ctx)
			require.NoError(t, ctx.Err(), "read %d of %d", len(seen), n)
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Logf("commit: %v (retried with the next poll)", err)
			}
		}
	}
	read(records / 2)
	controller := int32(-1)
	require.Eventually(t, func() bool {
		md, err := adm.Metadata(ctxT(t, 5*time.Second))
		controller = md.Controller
		return err == nil && controller > 0
	}, 30*time.Second, 100*time.Millisecond)
	c.Node(controller).Kill()
	t.Logf("killed node %d, the coordinator, after %d records read", controller, len(seen))
	produce(records/2, records)
	read(records)
	// After the move the group rejoins at the new coordinator and resumes
	// from its committed offsets (the first commits may meet it before it
	// rejoined: ILLEGAL_GENERATION), so it reads on and commits until its
	// offsets cover every record.
	require.Eventually(t, func() bool {
		cons.PollFetches(ctxT(t, time.Second)) // returns at the deadline when nothing is left
		if err := cons.CommitUncommittedOffsets(ctxT(t, 10*time.Second)); err != nil {
			return false
		}
		offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
		if err != nil || offs.Error() != nil {
			return false
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum == records
	}, 2*time.Minute, 100*time.Millisecond, "the group's committed offsets cover every record")
	c.Node(controller).Start()
}
