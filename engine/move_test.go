package engine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterMembership grows a three-node cluster by a fourth node and
// shrinks it by one, with the samsa CLI, while a franz-go producer
// (idempotent, acks=all) writes to a topic of two partitions replicated
// three times: `cluster add-node 4`, `topics move-partition T 0
// --replicas 4,2,1` (a replica on 4 catches up, 3 leaves), then `cluster
// remove-node 3` (partition 1 moves its replica from 3 to 4, and node 3
// leaves the metadata and the meta shard). Afterwards every acknowledged
// record is on every remaining replica exactly once, in order, and the
// replicas' segment files — node 4's copies included — are
// byte-identical.
func TestClusterMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four samsa processes")
	}
	const topic, partitions = "members", 2
	c := testcluster.Start(t, 3)
	adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(c.Brokers()...)))
	createTopic(t, adm, topic, partitions, 3)
	p := newFailoverProducer(t, c.Brokers(), topic, partitions)
	defer p.stop()
	p.waitProgress(t, "on three nodes", 200)

	n4 := c.Join(t)
	out := samsaCLI(t, c, "cluster", "add-node", "4", "--raft-addr", n4.RaftAddr)
	require.Contains(t, out, "node 4 has registered")
	p.waitProgress(t, "after node 4 joined", 100)

	start := time.Now()
	out = samsaCLI(t, c, "topics", "move-partition", topic, "0", "--replicas", "4,2,1")
	t.Logf("move-partition took %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	require.Regexp(t, `4 (catching up|caught up, joining)`, out, "progress shows the new replica catching up")
	require.Contains(t, out, "members[0]: done, replicas 4,2,1")
	p.waitProgress(t, "after the move", 100)

	start = time.Now()
	out = samsaCLI(t, c, "cluster", "remove-node", "3")
	t.Logf("remove-node took %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	require.Contains(t, out, "members[1]: done, replicas")
	require.Contains(t, out, "node 3 has left the cluster")
	require.Eventually(t, func() bool {
		_, err0 := os.Stat(filepath.Join(c.Node(3).Dir, "partitions", topic+"-0"))
		_, err1 := os.Stat(filepath.Join(c.Node(3).Dir, "partitions", topic+"-1"))
		return os.IsNotExist(err0) && os.IsNotExist(err1)
	}, 30*time.Second, 100*time.Millisecond, "node 3 deleted its replicas")
	md, err := adm.Metadata(ctxT(t, 10*time.Second), topic)
	require.NoError(t, err)
	for _, b := range md.Brokers {
		require.NotEqual(t, int32(3), b.NodeID, "node 3 is no broker any more")
	}
	for _, part := range md.Topics[topic].Partitions {
		require.Len(t, part.Replicas, 3)
		require.NotContains(t, part.Replicas, int32(3))
	}
	c.Node(3).Stop()
	p.waitProgress(t, "without node 3", 200)

	acked, stall := p.finish(t)
	for _, nd := range []*testcluster.Node{c.Node(1), c.Node(2), c.Node(4)} {
		p.waitCaughtUp(t, nd, topic)
	}
	c.Stop()
	remaining := []*testcluster.Node{c.Node(1), c.Node(2), c.Node(4)}
	total := checkReplicasOn(t, remaining, topic, acked)
	t.Logf("records acknowledged: %d, lost: 0, duplicated: 0, longest produce stall: %v", total, stall.Round(time.Millisecond))
}

// samsaCLI runs a samsa command against the cluster and returns its
// output; it must succeed within two minutes.
func samsaCLI(t *testing.T, c *testcluster.Cluster, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append(args, "--brokers", strings.Join(c.Brokers(), ","), "--timeout", "30s")
	cmd := exec.CommandContext(ctx, testcluster.Binary(t), args...)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "samsa %s:\n%s", strings.Join(args, " "), b)
	return string(b)
}
