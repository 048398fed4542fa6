package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionCoordinatorKilled kills `samsa serve` with SIGKILL in the
// middle of transactions — once with a transaction open, then several
// times while its commit is being decided and its markers written — and
// restarts it. Each transaction must end up wholly visible to
// read_committed or not at all, and nothing may stay unstable: a record
// written after the restarts is read committed.
func TestTransactionCoordinatorKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts samsa processes")
	}
	const topic, perTxn = "txn-kill", 200
	c := testcluster.Start(t, 1)
	node := c.Node(1)
	brokers := c.Brokers()
	adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(brokers...)))
	createTopic(t, adm, topic, 2, 1)

	producer := func(id string) *kgo.Client {
		return newClient(t, kgo.SeedBrokers(brokers...), kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
			kgo.TransactionTimeout(3*time.Second), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
			kgo.RetryTimeout(time.Minute))
	}
	fill := func(cl *kgo.Client, prefix string) {
		t.Helper()
		ctx := ctxT(t, time.Minute)
		require.NoError(t, cl.BeginTransaction())
		rs := make([]*kgo.Record, perTxn)
		for i := range rs {
			rs[i] = kgo.StringRecord(fmt.Sprintf("%s-%d", prefix, i))
		}
		require.NoError(t, cl.ProduceSync(ctx, rs...).FirstErr())
	}
	restart := func() {
		node.Kill()
		node.Start()
	}

	// Killed with a transaction open: after the restart it times out and
	// is aborted.
	open := producer("tx-open")
	fill(open, "open")
	restart()
	open.Close()

	// Killed while the commit is decided: at each delay the kill lands
	// somewhere between the EndTxn request and the markers' completion.
	for i, delay := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond} {
		cl := producer(fmt.Sprintf("tx-commit-%d", i))
		fill(cl, fmt.Sprintf("commit%d", i))
		done := make(chan error, 1)
		go func() { done <- cl.EndTransaction(ctxT(t, time.Minute), kgo.TryCommit) }()
		time.Sleep(delay)
		restart()
		err := <-done
		t.Logf("kill %v after EndTxn: the client saw %v", delay, err)
		cl.Close()
	}

	// Something written afterwards must become readable committed: no
	// transaction may stay open.
	plain := newClient(t, kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	for p := range int32(2) {
		require.NoError(t, plain.ProduceSync(ctxT(t, time.Minute), &kgo.Record{Value: []byte(fmt.Sprintf("after-%d", p)), Partition: p}).FirstErr())
	}
	got := map[string]int{}
	cons := newClient(t, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	deadline := time.Now().Add(90 * time.Second)
	for got["after-0"] == 0 || got["after-1"] == 0 {
		require.True(t, time.Now().Before(deadline), "a transaction stayed open: read committed %v", prefixes(got))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
		})
		for _, r := range fs.Records() {
			got[string(r.Value)]++
		}
	}
	byPrefix := prefixes(got)
	t.Logf("read committed, records per transaction: %v", byPrefix)
	require.Zero(t, byPrefix["open"], "the transaction open at the kill was aborted")
	for p, n := range byPrefix {
		require.True(t, n == 0 || n == perTxn || p == "after", "transaction %s is partly visible: %d of %d", p, n, perTxn)
	}
	for v, n := range got {
		require.Equal(t, 1, n, "%s read twice", v)
	}
}

// prefixes counts records by the part of their value before the last '-'.
func prefixes(got map[string]int) map[string]int {
	out := map[string]int{}
	for v, n := range got {
		out[v[:strings.LastIndexByte(v, '-')]] += n
	}
	return out
}
