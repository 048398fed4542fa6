package engine_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterNetworkPartition runs three nodes in network namespaces of
// their own and cuts the leader of a partition off from the other two
// while a producer writes through the cluster: the majority elects a new
// leader and keeps acknowledging; the cut-off leader, sent records
// directly, acknowledges none; after the network heals, every replica
// holds the same bytes: every acknowledged record once, in order, and
// nothing the cut-off leader was sent.
func TestClusterNetworkPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three samsa processes")
	}
	const topic = "split"
	c := testcluster.StartIsolated(t, 3)
	brokers := c.Brokers()
	cl := newClient(t, kgo.SeedBrokers(brokers...))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, topic, 1, 3)

	// sendCutOff sends a record straight to the cut-off node, which must
	// not acknowledge it: at first it still thinks it leads, later it
	// knows it does not.
	var bl batch.Builder
	bl.Add(batch.Record{Timestamp: time.Now().UnixMilli(), Value: []byte("cut-off-leader")})
	records, err := bl.Build(nil)
	require.NoError(t, err)
	sendCutOff := func(to int32) {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 3000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := cl.Broker(int(to)).Request(ctxT(t, 15*time.Second), req)
		if err != nil {
			t.Logf("the cut-off node: %v", err)
			return
		}
		code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		require.NotEqual(t, int16(0), code, "the cut-off node acknowledged a record")
		t.Logf("the cut-off node answers %v", kerr.ErrorForCode(code))
	}

	p := newFailoverProducer(t, brokers, topic, 1)
	defer p.stop()
	p.waitProgress(t, "before the partition", 300)
	old := leaderOf(t, adm, topic, 0)
	c.Partition(uint64(old))
	t.Logf("cut node %d, the leader, off from the others at %d records acknowledged", old, p.total())
	sendCutOff(old) // before it noticed

	// The majority elects a new leader and acknowledges writes.
	var majority []string
	for _, nd := range c.Nodes {
		if int32(nd.ID) != old {
			majority = append(majority, nd.KafkaAddr)
		}
	}
	madm := kadm.NewClient(newClient(t, kgo.SeedBrokers(majority...)))
	require.Eventually(t, func() bool {
		l := leaderOf(t, madm, topic, 0)
		return l > 0 && l != old
	}, time.Minute, 100*time.Millisecond, "the majority elects a leader")
	p.waitProgress(t, fmt.Sprintf("with node %d cut off", old), 500)
	sendCutOff(old) // after the majority moved on

	p.waitProgress(t, "still, with the old leader cut off", 300)

	// Heal: the old leader rejoins as a follower and catches up.
	c.Heal(uint64(old))
	t.Logf("healed at %d records acknowledged", p.total())
	p.waitProgress(t, "after healing", 300)
	acked, stall := p.finish(t)
	for _, nd := range c.Nodes {
		p.waitCaughtUp(t, nd, topic)
	}
	hw := func(nd *testcluster.Node) float64 {
		v, _, _ := nd.Metric(ctxT(t, 5*time.Second), fmt.Sprintf(`samsa_partition_high_watermark{partition="0",topic="%s"}`, topic))
		return v
	}
	require.Eventually(t, func() bool {
		var hws []float64
		for _, nd := range c.Nodes {
			hws = append(hws, hw(nd))
		}
		return slices.Min(hws) == slices.Max(hws)
	}, time.Minute, 100*time.Millisecond, "the replicas converge")
	c.Stop()
	total := checkReplicas(t, c, topic, acked)
	t.Logf("records acknowledged: %d; lost: 0; duplicated: 0; none from the cut-off leader; longest produce stall: %v", total, stall.Round(time.Millisecond))
}
