package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readAll reads every record of topic from the start with the given
// isolation level until it has seen want records, or until quiet passes
// without a new one when want is -1.
func readAll(t *testing.T, seed string, topic string, level kgo.IsolationLevel, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level),
		kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	quiet := time.Now().Add(2 * time.Second)
	deadline := time.Now().Add(2 * time.Minute)
	for (want < 0 && time.Now().Before(quiet)) || (want >= 0 && len(out) < want) {
		require.True(t, time.Now().Before(deadline), "read %d of %d records of %s", len(out), want, topic)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		if rs := fs.Records(); len(rs) > 0 {
			out = append(out, rs...)
			quiet = time.Now().Add(2 * time.Second)
		}
	}
	return out
}

func valuesOf(rs []*kgo.Record) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		out[string(r.Value)]++
	}
	return out
}

// TestTransactionsCommitAbortFence: a franz-go transactional producer
// commits one transaction and aborts the next over two partitions;
// read_committed sees the first only, read_uncommitted both. A second
// producer with the same transactional id fences the first.
func TestTransactionsCommitAbortFence(t *testing.T) {
	n := startNode(t)
	seed := n.KafkaAddr()
	createTopic(t, n, "txn", 2, nil)
	ctx := ctxT(t, time.Minute)

	p1, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("txn"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	require.NoError(t, err)
	defer p1.Close()

	produce := func(cl *kgo.Client, prefix string, n int) {
		t.Helper()
		require.NoError(t, cl.BeginTransaction())
		for i := range n {
			require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("%s-%d", prefix, i))).FirstErr())
		}
	}
	produce(p1, "committed", 10)
	require.NoError(t, p1.EndTransaction(ctx, kgo.TryCommit))
	produce(p1, "aborted", 10)
	require.NoError(t, p1.EndTransaction(ctx, kgo.TryAbort))
	produce(p1, "committed-2", 4)
	require.NoError(t, p1.EndTransaction(ctx, kgo.TryCommit))

	committed := valuesOf(readAll(t, seed, "txn", kgo.ReadCommitted(), -1))
	require.Len(t, committed, 14, "read_committed: both committed transactions, not the aborted one")
	for v := range committed {
		require.NotContains(t, v, "aborted")
	}
	all := valuesOf(readAll(t, seed, "txn", kgo.ReadUncommitted(), 24))
	require.Len(t, all, 24, "read_uncommitted: every record, no control record")

	// An open transaction hides what follows it from read_committed.
	produce(p1, "open", 3)
	p2, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.DefaultProduceTopic("txn"))
	require.NoError(t, err)
	defer p2.Close()
	require.NoError(t, p2.ProduceSync(ctx, &kgo.Record{Value: []byte("plain"), Partition: 0}).FirstErr())
	require.Len(t, valuesOf(readAll(t, seed, "txn", kgo.ReadCommitted(), -1)), 14, "nothing past the open transaction is stable")

	// A new instance with the same transactional id aborts the open
	// transaction and fences the old instance.
	p3, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("txn"))
	require.NoError(t, err)
	defer p3.Close()
	produce(p3, "new", 2)
	require.NoError(t, p3.EndTransaction(ctx, kgo.TryCommit))
	err = p1.EndTransaction(ctx, kgo.TryCommit)
	require.Error(t, err, "the old instance is fenced")
	require.True(t, errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch), "%v", err)

	got := valuesOf(readAll(t, seed, "txn", kgo.ReadCommitted(), -1))
	require.Len(t, got, 14+1+2, "the fenced instance's open records were aborted; the plain record and the new instance's are stable")
	require.Contains(t, got, "plain")
	require.NotContains(t, got, "open-0")
}

// TestTransactionTimeout: a transaction left open past its timeout is
// aborted by the coordinator, and its producer is fenced.
func TestTransactionTimeout(t *testing.T) {
	n := startNode(t)
	seed := n.KafkaAddr()
	createTopic(t, n, "tmo", 1, nil)
	ctx := ctxT(t, time.Minute)
	p, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.TransactionalID("tx-timeout"), kgo.DefaultProduceTopic("tmo"),
		kgo.TransactionTimeout(time.Second))
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.BeginTransaction())
	require.NoError(t, p.ProduceSync(ctx, kgo.StringRecord("late")).FirstErr())
	time.Sleep(3 * time.Second)
	require.Error(t, p.EndTransaction(ctx, kgo.TryCommit), "the coordinator aborted it")

	plain, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.DefaultProduceTopic("tmo"))
	require.NoError(t, err)
	defer plain.Close()
	require.NoError(t, plain.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr())
	got := valuesOf(readAll(t, seed, "tmo", kgo.ReadCommitted(), 1))
	require.Equal(t, map[string]int{"after": 1}, got)
}

// TestGroupTransactSessionChain runs franz-go's exactly-once
// consume-transform-produce over three topics, a → b → c, with 200,000
// records, while members of each stage's group join and leave: c, read
// committed, must hold every record of a exactly once.
func TestGroupTransactSessionChain(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 200,000 records through two transactional stages")
	}
	const total = 200_000
	n := startNode(t)
	seed := n.KafkaAddr()
	for _, topic := range []string{"chain-a", "chain-b", "chain-c"} {
		createTopic(t, n, topic, 3, nil)
	}
	ctx := ctxT(t, 5*time.Minute)

	src, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.DefaultProduceTopic("chain-a"))
	require.NoError(t, err)
	for i := 0; i < total; i += 1000 {
		rs := make([]*kgo.Record, 0, 1000)
		for j := i; j < i+1000; j++ {
			rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(j % 97)), Value: []byte(strconv.Itoa(j))})
		}
		require.NoError(t, src.ProduceSync(ctx, rs...).FirstErr())
	}
	src.Close()

	var moved [2]atomic.Int64
	stage := func(ctx context.Context, idx int, in, out, member string) error {
		sess, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(seed), kgo.TransactionalID("chain-"+member),
			kgo.ConsumerGroup("chain-"+in), kgo.ConsumeTopics(in), kgo.DefaultProduceTopic(out),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.TransactionTimeout(30*time.Second), kgo.FetchMaxWait(200*time.Millisecond),
		)
		if err != nil {
			return err
		}
		defer sess.Close()
		for ctx.Err() == nil {
			fs := sess.PollRecords(ctx, 2000)
			if fs.IsClientClosed() || ctx.Err() != nil {
				return nil
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if ferr != nil && !errors.Is(ferr, context.Canceled) {
				return ferr
			}
			rs := fs.Records()
			if len(rs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				return err
			}
			for _, r := range rs {
				sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, nil)
			}
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil && ctx.Err() == nil {
				return err
			}
			if committed {
				moved[idx].Add(int64(len(rs)))
			}
		}
		return nil
	}

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	run := func(ctx context.Context, idx int, in, out, member string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stage(ctx, idx, in, out, member); err != nil {
				errs <- fmt.Errorf("%s: %w", member, err)
			}
		}()
	}
	stop, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	run(stop, 0, "chain-a", "chain-b", "ab-1")
	run(stop, 1, "chain-b", "chain-c", "bc-1")
	waitFor := func(idx int, atLeast int64) {
		for moved[idx].Load() < atLeast {
			select {
			case err := <-errs:
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatalf("stage %d moved %d of %d", idx, moved[idx].Load(), atLeast)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Members join mid-run, and one leaves.
	waitFor(0, total/5)
	run(stop, 0, "chain-a", "chain-b", "ab-2")
	leaving, leave := context.WithCancel(stop)
	run(leaving, 1, "chain-b", "chain-c", "bc-2")
	waitFor(1, total/3)
	leave()
	run(stop, 1, "chain-b", "chain-c", "bc-3")

	got := readAll(t, seed, "chain-c", kgo.ReadCommitted(), total)
	cancelAll()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	counts := valuesOf(got)
	dups := 0
	for _, c := range counts {
		if c > 1 {
			dups++
		}
	}
	lost := 0
	for i := range total {
		if counts[strconv.Itoa(i)] == 0 {
			lost++
		}
	}
	t.Logf("records %d, lost %d, duplicated %d (stage a→b moved %d, b→c %d in committed transactions)", total, lost, dups, moved[0].Load(), moved[1].Load())
	require.Zero(t, lost)
	require.Zero(t, dups)
	require.Len(t, got, total)
	time.Sleep(time.Second)
	require.Len(t, readAll(t, seed, "chain-c", kgo.ReadCommitted(), -1), total, "nothing more arrives later")
}

// TestTransactionDecidedIsFinished: a transaction whose commit was
// decided in the meta shard but whose markers were never written (its
// coordinator died in between) is finished by the coordinator's sweep.
func TestTransactionDecidedIsFinished(t *testing.T) {
	n := startNode(t)
	seed := n.KafkaAddr()
	createTopic(t, n, "decided", 2, nil)
	ctx := ctxT(t, time.Minute)
	p, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.TransactionalID("tx-decided"), kgo.DefaultProduceTopic("decided"),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.BeginTransaction())
	for i := range 6 {
		require.NoError(t, p.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr())
	}
	tx, ok := n.Log().Txn("tx-decided")
	require.True(t, ok)
	require.Len(t, tx.Partitions, 2)
	// The decision alone, as a coordinator killed right after it left it.
	require.NoError(t, n.Log().EndTxn(ctx, "tx-decided", tx.ProducerID, tx.Epoch, true))
	require.Len(t, valuesOf(readAll(t, seed, "decided", kgo.ReadCommitted(), 6)), 6, "the sweep wrote the markers")
	require.Eventually(t, func() bool {
		tx, _ := n.Log().Txn("tx-decided")
		return tx.Status == meta.TxnCompleteCommit
	}, 10*time.Second, 50*time.Millisecond)
}
