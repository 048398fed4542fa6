package connectors

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// appendTxn appends values as one transactional batch of producer pid
// (epoch 0) at sequence seq.
func appendTxn(t *testing.T, l *replog.Log, tp replog.TopicPartition, pid int64, seq int32, values ...string) {
	t.Helper()
	var b batch.Builder
	b.SetProducer(pid, 0, seq)
	b.SetTransactional(true)
	for _, v := range values {
		b.Add(batch.Record{Timestamp: time.Now().UnixMilli(), Value: []byte(v)})
	}
	raw, err := b.Build(nil)
	require.NoError(t, err)
	_, err = l.Append(ctxT(t, time.Minute), tp, raw, replog.AppendOptions{Acks: replog.AcksAll})
	require.NoError(t, err)
}

// TestTopicToTopicTransactions: a transactional samsa_topic input reads
// committed — an aborted transaction upstream is skipped, and what
// follows an open one waits for its end — and the transactional output
// writes each batch, its dead letters and the input's offsets as one
// transaction. Restarted, it fences its previous epoch.
func TestTopicToTopicTransactions(t *testing.T) {
	n := newNode(t)
	l := n.log
	e := env(t, l)
	createTopic(t, l, "raw", 1)
	raw := replog.TopicPartition{Topic: "raw", Partition: 0}
	ctx := ctxT(t, time.Minute)

	appendRecords(t, l, raw, 0, 5, time.Now().UnixMilli()) // p0-0 … p0-4
	appendTxn(t, l, raw, 5000, 0, "aborted-0", "aborted-1")
	require.NoError(t, l.WriteTxnMarker(ctx, raw, 5000, 0, false, 0))
	appendTxn(t, l, raw, 6000, 0, "open-0")                // open: everything after it waits
	appendRecords(t, l, raw, 5, 8, time.Now().UnixMilli()) // p0-5 … p0-7, after the open transaction

	pipeline := `
input:
  samsa_topic: {topic: raw, group: g, transactional: true}
pipeline:
  processors:
    - mapping: |
        root = content().string().uppercase()
        meta samsa_dead_letter = content().string().has_suffix("-3")
output:
  samsa_topic:
    topic: out
    transaction: {id: tx, group: g, dead_letter_topic: out.dlq}
`
	st := startStream(t, e, pipeline)
	// readCommitted reads a topic committed, as a transactional input does.
	readCommitted := func(topic string) []string {
		c := &collector{}
		rd := consume(t, e, fmt.Sprintf("samsa_topic: {topic: %s, group: check-%s-%d, transactional: true}", topic, topic, time.Now().UnixNano()), c.add)
		time.Sleep(300 * time.Millisecond)
		rd.stop(t, 10*time.Second)
		var out []string
		for _, m := range c.snapshot() {
			b, _ := m.AsBytes()
			out = append(out, string(b))
		}
		sort.Strings(out)
		return out
	}
	waitCommitted := func(topic string, want ...string) {
		t.Helper()
		checkFor(t, 30*time.Second, 10*time.Millisecond, func() error {
			if got := readCommitted(topic); !slices.Equal(got, want) {
				return fmt.Errorf("%s read committed: %v, want %v", topic, got, want)
			}
			return nil
		})
	}
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if c := committed(l, "g", raw); c != 8 {
			return fmt.Errorf("committed %d, want 8 (up to the open transaction)", c)
		}
		return nil
	})
	// The aborted transaction is skipped; the open one holds back what
	// follows it.
	waitCommitted("out", "P0-0", "P0-1", "P0-2", "P0-4")
	waitCommitted("out.dlq", "P0-3")

	// The open transaction commits: it and what follows it go through.
	require.NoError(t, l.WriteTxnMarker(ctx, raw, 6000, 0, true, 0))
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if c := committed(l, "g", raw); c != 13 {
			return fmt.Errorf("committed %d, want 13", c)
		}
		return nil
	})
	waitCommitted("out", "OPEN-0", "P0-0", "P0-1", "P0-2", "P0-4", "P0-5", "P0-6", "P0-7")
	tx, ok := l.Txn("tx")
	require.True(t, ok)
	require.Equal(t, meta.TxnCompleteCommit, tx.Status)
	require.Zero(t, tx.Epoch)

	// Restarted, the output starts a new epoch (fencing any instance
	// left behind) and goes on from the committed offsets.
	st.stop(t, 10*time.Second)
	startStream(t, e, pipeline)
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if tx, _ := l.Txn("tx"); tx.Epoch != 1 {
			return fmt.Errorf("epoch %d", tx.Epoch)
		}
		return nil
	})
	appendRecords(t, l, raw, 8, 10, time.Now().UnixMilli())
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if c := committed(l, "g", raw); c != 15 {
			return fmt.Errorf("committed %d, want 15", c)
		}
		return nil
	})
	waitCommitted("out", "OPEN-0", "P0-0", "P0-1", "P0-2", "P0-4", "P0-5", "P0-6", "P0-7", "P0-8", "P0-9")

	// The old epoch can no longer add to a transaction.
	err := l.AddTxnPartitions(ctx, "tx", tx.ProducerID, 0, []replog.TopicPartition{{Topic: "out", Partition: 0}})
	require.ErrorIs(t, err, meta.ErrProducerFenced)
}
