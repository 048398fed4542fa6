package kafka_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/engine"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawProducer is an idempotent producer id of the node, used through raw
// Produce requests so that the test decides every batch and marker.
type rawProducer struct {
	id    int64
	epoch int16
	seq   int32
}

func initRawProducer(t *testing.T, cl *kgo.Client) *rawProducer {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60_000
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), cl)
	require.NoError(t, err)
	require.NoError(t, kerr.ErrorForCode(resp.ErrorCode))
	return &rawProducer{id: resp.ProducerID, epoch: resp.ProducerEpoch}
}

// produce sends one batch of values to partition 0 of topic, transactional
// or not, and returns the error code and base offset.
func (p *rawProducer) produce(t *testing.T, cl *kgo.Client, topic string, txn bool, vals ...string) (int16, int64) {
	t.Helper()
	var b batch.Builder
	b.SetProducer(p.id, p.epoch, p.seq)
	b.SetTransactional(txn)
	for _, v := range vals {
		b.Add(batch.Record{Timestamp: time.Now().UnixMilli(), Value: []byte(v)})
	}
	records, err := b.Build(nil)
	require.NoError(t, err)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	if txn {
		id := "raw"
		req.TransactionID = &id
	}
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), cl)
	require.NoError(t, err)
	got := resp.Topics[0].Partitions[0]
	if got.ErrorCode == 0 {
		p.seq += int32(len(vals))
	}
	return got.ErrorCode, got.BaseOffset
}

// writeMarker sends WriteTxnMarkers for partition 0 of topic, as a
// coordinator on another node would, and returns the partition's code.
func writeMarker(t *testing.T, cl *kgo.Client, topic string, pid int64, epoch int16, commit bool) int16 {
	t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, commit, 4
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, []int32{0}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	// Straight to the node, as the coordinator sends it: kgo would route
	// by the partitions' leaders, and refuse an unknown topic itself.
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), cl.SeedBrokers()[0])
	require.NoError(t, err)
	require.Len(t, resp.Markers, 1)
	require.Equal(t, pid, resp.Markers[0].ProducerID)
	return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
}

// readValues reads partition 0 of topic from the start with a franz-go
// consumer at the given isolation level, until it has want records and
// then a second more, and returns their values.
func readValues(t *testing.T, addr, topic string, level kgo.IsolationLevel, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level),
		kgo.FetchMaxWait(200*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var out []string
	deadline := time.Now().Add(30 * time.Second)
	quiet := time.Time{}
	for quiet.IsZero() || time.Now().Before(quiet) {
		require.True(t, time.Now().Before(deadline), "read %v, want %d records", out, want)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			require.ErrorIs(t, err, context.DeadlineExceeded, "fetch %s/%d", topic, p)
		})
		for _, r := range fs.Records() {
			out = append(out, string(r.Value))
		}
		if len(out) >= want && quiet.IsZero() {
			quiet = time.Now().Add(time.Second) // anything more would be wrong
		}
	}
	return out
}

// listLatest answers ListOffsets latest for partition 0 at an isolation
// level.
func listLatest(t *testing.T, cl *kgo.Client, topic string, level int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = level
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	req.Topics = append(req.Topics, lt)
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), cl)
	require.NoError(t, err)
	p := resp.Topics[0].Partitions[0]
	require.NoError(t, kerr.ErrorForCode(p.ErrorCode))
	return p.Offset
}

// rawFetch fetches partition 0 of topic from offset at an isolation level.
func rawFetch(t *testing.T, cl *kgo.Client, topic string, offset int64, level int8) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.MaxWaitMillis, req.MaxBytes, req.IsolationLevel = 10, 1<<20, level
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes = offset, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctxT(t, 30*time.Second), cl)
	require.NoError(t, err)
	p := resp.Topics[0].Partitions[0]
	require.NoError(t, kerr.ErrorForCode(p.ErrorCode))
	return p
}

// TestTxnMarkersIsolation writes transactional batches and markers by raw
// requests and reads them back with franz-go at both isolation levels:
// committed records visible, aborted ones only to read_uncommitted, an
// open transaction's records (and everything after) hidden from
// read_committed until its marker; ListOffsets and Fetch answer the last
// stable offset and the aborted transactions, also after a restart.
func TestTxnMarkersIsolation(t *testing.T) {
	cfg := engine.Config{
		DataDir:   filepath.Join(t.TempDir(), "data"),
		KafkaAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RaftAddr: freeAddr(t),
		InitialRebalanceDelay: 10 * time.Millisecond,
		Logger:                testLogger(),
	}
	n, err := engine.Start(ctxT(t, time.Minute), cfg)
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			n.Stop(context.Background())
		}
	})
	const topic = "txmarks"
	createTopic(t, n, topic, 1, nil)
	cl := client(t, n)
	committed, uncommitted := kgo.ReadCommitted(), kgo.ReadUncommitted()

	a, b, c := initRawProducer(t, cl), initRawProducer(t, cl), initRawProducer(t, cl)
	code, off := a.produce(t, cl, topic, true, "a1", "a2") // 0-1
	require.Zero(t, code)
	require.Equal(t, int64(0), off)
	code, _ = b.produce(t, cl, topic, true, "b1") // 2
	require.Zero(t, code)
	plain := &rawProducer{id: -1, epoch: -1, seq: -1}
	code, _ = plain.produce(t, cl, topic, false, "p1") // 3
	require.Zero(t, code)

	require.Equal(t, int64(0), listLatest(t, cl, topic, 1), "a's transaction holds the last stable offset")
	require.Equal(t, int64(4), listLatest(t, cl, topic, 0))
	require.Empty(t, readValues(t, n.KafkaAddr(), topic, committed, 0))

	require.Zero(t, writeMarker(t, cl, topic, a.id, a.epoch, true))  // 4
	require.Zero(t, writeMarker(t, cl, topic, b.id, b.epoch, false)) // 5
	require.Equal(t, int64(6), listLatest(t, cl, topic, 1))

	code, off = c.produce(t, cl, topic, true, "c1") // 6, left open
	require.Zero(t, code)
	require.Equal(t, int64(6), off)
	code, _ = plain.produce(t, cl, topic, false, "p2") // 7
	require.Zero(t, code)

	check := func(addr string, cl *kgo.Client, end int64) {
		t.Helper()
		require.Equal(t, []string{"a1", "a2", "p1"}, readValues(t, addr, topic, committed, 3))
		require.Equal(t, []string{"a1", "a2", "b1", "p1", "c1", "p2"}, readValues(t, addr, topic, uncommitted, 6))
		require.Equal(t, int64(6), listLatest(t, cl, topic, 1), "c's open transaction")
		require.Equal(t, end, listLatest(t, cl, topic, 0))

		f := rawFetch(t, cl, topic, 0, 1)
		require.Equal(t, int64(6), f.LastStableOffset)
		require.Equal(t, end, f.HighWatermark)
		require.Len(t, f.AbortedTransactions, 1)
		require.Equal(t, b.id, f.AbortedTransactions[0].ProducerID)
		require.Equal(t, int64(2), f.AbortedTransactions[0].FirstOffset)
		require.Less(t, lastOffset(t, f.RecordBatches), int64(6), "read_committed stops at the last stable offset")

		f = rawFetch(t, cl, topic, 0, 0)
		require.Equal(t, int64(6), f.LastStableOffset, "read_uncommitted is told it too")
		require.Nil(t, f.AbortedTransactions)
		require.Equal(t, end-1, lastOffset(t, f.RecordBatches))
	}
	check(n.KafkaAddr(), cl, 8)

	// A fencing abort for a producer with nothing open moves its epoch:
	// the zombie's next batch is refused, and so is its older marker.
	require.Zero(t, writeMarker(t, cl, topic, a.id, a.epoch+1, false)) // 8
	code, _ = a.produce(t, cl, topic, true, "zombie")
	require.Equal(t, kerr.InvalidProducerEpoch.Code, code)
	require.Equal(t, kerr.InvalidProducerEpoch.Code, writeMarker(t, cl, topic, a.id, a.epoch, true))
	require.Equal(t, kerr.UnknownTopicOrPartition.Code, writeMarker(t, cl, "nope", a.id, a.epoch, true))

	// The last stable offset and the aborted index survive a restart.
	require.NoError(t, n.Stop(ctxT(t, time.Minute)))
	stopped = true
	n, err = engine.Start(ctxT(t, time.Minute), cfg)
	require.NoError(t, err)
	stopped = false
	cl = client(t, n)
	require.Eventually(t, func() bool {
		_, _, err := n.Log().Offsets(replog.TopicPartition{Topic: topic})
		return err == nil
	}, 30*time.Second, 20*time.Millisecond)
	check(n.KafkaAddr(), cl, 9)

	// c commits: its record and the plain one after it become visible.
	require.Zero(t, writeMarker(t, cl, topic, c.id, c.epoch, true)) // 9
	require.Equal(t, int64(10), listLatest(t, cl, topic, 1))
	require.Equal(t, []string{"a1", "a2", "p1", "c1", "p2"}, readValues(t, n.KafkaAddr(), topic, committed, 5))
}

// lastOffset is the last offset of the batches in a Fetch response's
// records, -1 if there are none.
func lastOffset(t *testing.T, records []byte) int64 {
	t.Helper()
	last := int64(-1)
	for len(records) > 0 {
		h, err := batch.ParseHeader(records)
		require.NoError(t, err)
		last = h.LastOffset()
		records = records[h.Size():]
	}
	return last
}
