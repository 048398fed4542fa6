package connectors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// appendRecords appends records "p<partition>-<i>" for i in [from, to) to
// a partition, keyed "k<i>", with a header and timestamps ts0 + i seconds.
func appendRecords(t *testing.T, l *replog.Log, tp replog.TopicPartition, from, to int, ts0 int64) {
	t.Helper()
	var b batch.Builder
	for i := from; i < to; i++ {
		b.Add(batch.Record{
			Timestamp: ts0 + int64(i)*1000,
			Key:       fmt.Appendf(nil, "k%d", i),
			Value:     fmt.Appendf(nil, "p%d-%d", tp.Partition, i),
			Headers:   []batch.RecordHeader{{Key: []byte("h"), Value: fmt.Appendf(nil, "x%d", i)}},
		})
	}
	raw, err := b.Build(nil)
	require.NoError(t, err)
	_, err = l.Append(ctxT(t, time.Minute), tp, raw, replog.AppendOptions{Acks: replog.AcksAll})
	require.NoError(t, err)
}

func createTopic(t *testing.T, l *replog.Log, name string, partitions int32) {
	t.Helper()
	require.NoError(t, l.CreateTopic(ctxT(t, time.Minute), replog.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1}, false))
}

// consume starts a stream from a samsa_topic input into a function.
func consume(t *testing.T, e *service.Environment, input string, fn service.MessageHandlerFunc) *stream {
	t.Helper()
	b := e.NewStreamBuilder()
	b.SetLogger(quietLogger())
	require.NoError(t, b.AddInputYAML(input))
	require.NoError(t, b.AddConsumerFunc(fn))
	s, err := b.Build()
	require.NoError(t, err)
	st := &stream{s: s, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		st.err = s.Run(context.Background())
	}()
	t.Cleanup(func() { st.stop(t, 10*time.Second) })
	return st
}

func waitCount(t *testing.T, c *collector, n int) {
	t.Helper()
	checkFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if got := len(c.snapshot()); got != n {
			return fmt.Errorf("%d messages, want %d", got, n)
		}
		return nil
	})
}

func committed(l *replog.Log, group string, tp replog.TopicPartition) int64 {
	c, ok := l.CommittedOffset(group, tp)
	if !ok {
		return -1
	}
	return c.Offset
}

// A group reads every partition in order with the records' metadata,
// commits after acknowledgement, and resumes after a restart.
func TestTopicInputGroupCommitAndResume(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	createTopic(t, n.log, "in", 3)
	ts0 := time.Now().Add(-time.Hour).UnixMilli()
	for p := range int32(3) {
		appendRecords(t, n.log, replog.TopicPartition{Topic: "in", Partition: p}, 0, 50, ts0)
		appendRecords(t, n.log, replog.TopicPartition{Topic: "in", Partition: p}, 50, 100, ts0)
	}
	e := env(t, n.log)
	conf := `
samsa_topic:
  topic: in
  group: g
  max_batch: 16
`
	var c collector
	st := consume(t, e, conf, c.add)
	waitCount(t, &c, 300)

	next := map[int]int64{}
	for _, m := range c.snapshot() {
		p, _ := m.MetaGetMut(MetaKafkaPartition)
		off, _ := m.MetaGetMut(MetaKafkaOffset)
		part, offset := p.(int), off.(int64)
		require.Equal(t, next[part], offset, "partition %d in order", part)
		next[part]++
		v, err := m.AsBytes()
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("p%d-%d", part, offset), string(v))
		key, _ := m.MetaGet(MetaKafkaKey)
		require.Equal(t, fmt.Sprintf("k%d", offset), key)
		h, _ := m.MetaGet("h")
		require.Equal(t, fmt.Sprintf("x%d", offset), h)
		topic, _ := m.MetaGet(MetaKafkaTopic)
		require.Equal(t, "in", topic)
		ms, _ := m.MetaGetMut(MetaKafkaTimestampMs)
		require.Equal(t, ts0+offset*1000, ms)
		unix, _ := m.MetaGetMut(MetaKafkaTimestampUnix)
		require.Equal(t, (ts0+offset*1000)/1000, unix)
	}
	for p := range int32(3) {
		tp := replog.TopicPartition{Topic: "in", Partition: p}
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if got := committed(n.log, "g", tp); got != 100 {
				return fmt.Errorf("partition %d committed %d", p, got)
			}
			return nil
		})
	}
	st.stop(t, 10*time.Second)

	for p := range int32(3) {
		appendRecords(t, n.log, replog.TopicPartition{Topic: "in", Partition: p}, 100, 110, ts0)
	}
	var again collector
	consume(t, e, conf, again.add)
	waitCount(t, &again, 30)
	time.Sleep(200 * time.Millisecond)
	require.Len(t, again.snapshot(), 30, "only what arrived since")
	for _, m := range again.snapshot() {
		off, _ := m.MetaGetMut(MetaKafkaOffset)
		require.GreaterOrEqual(t, off.(int64), int64(100))
	}
}

// Offsets are committed only after the sink acknowledges; a nacked batch
// is delivered again.
func TestTopicInputCommitsAfterAck(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	createTopic(t, n.log, "acks", 1)
	tp := replog.TopicPartition{Topic: "acks"}
	appendRecords(t, n.log, tp, 0, 10, time.Now().UnixMilli())

	release := make(chan struct{})
	var failures atomic.Int32
	var c collector
	consume(t, env(t, n.log), `
samsa_topic:
  topic: acks
  group: g
  max_batch: 5
`, func(ctx context.Context, m *service.Message) error {
		off, _ := m.MetaGetMut(MetaKafkaOffset)
		if off.(int64) == 7 && failures.Add(1) <= 2 {
			return errors.New("sink down")
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return c.add(ctx, m)
	})
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, int64(-1), committed(n.log, "g", tp), "nothing acknowledged, nothing committed")
	close(release)
	checkFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if got := committed(n.log, "g", tp); got != 10 {
			return fmt.Errorf("committed %d", got)
		}
		return nil
	})
	seen := map[int64]int{}
	for _, m := range c.snapshot() {
		off, _ := m.MetaGetMut(MetaKafkaOffset)
		seen[off.(int64)]++
	}
	require.Len(t, seen, 10, "every record delivered, the nacked one again")
	require.Equal(t, int32(3), failures.Load())
}

// start: earliest reads everything, latest only what comes after, a time
// from the first record at or after it.
func TestTopicInputStart(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	createTopic(t, n.log, "st", 2)
	ts0 := time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC).UnixMilli()
	for p := range int32(2) {
		appendRecords(t, n.log, replog.TopicPartition{Topic: "st", Partition: p}, 0, 20, ts0)
	}
	e := env(t, n.log)

	var earliest, latest, since collector
	consume(t, e, "samsa_topic: {topic: st, start: earliest}", earliest.add)
	consume(t, e, "samsa_topic: {topic: st, start: latest}", latest.add)
	consume(t, e, `samsa_topic: {topic: st, start: "2025-01-31T00:00:15Z"}`, since.add)
	waitCount(t, &earliest, 40)
	waitCount(t, &since, 10) // offsets 15..19 of both partitions
	for _, m := range since.snapshot() {
		off, _ := m.MetaGetMut(MetaKafkaOffset)
		require.GreaterOrEqual(t, off.(int64), int64(15))
	}
	time.Sleep(300 * time.Millisecond) // the latest input has connected
	require.Empty(t, latest.snapshot())
	appendRecords(t, n.log, replog.TopicPartition{Topic: "st", Partition: 1}, 20, 23, ts0)
	waitCount(t, &latest, 3)
	waitCount(t, &earliest, 43)
	waitCount(t, &since, 13)
	for _, m := range latest.snapshot() {
		v, _ := m.AsBytes()
		require.Contains(t, []string{"p1-20", "p1-21", "p1-22"}, string(v))
	}
}

// The input waits for a topic that does not exist yet.
func TestTopicInputWaitsForTopic(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	var c collector
	consume(t, env(t, n.log), "samsa_topic: {topic: later, group: g}", c.add)
	time.Sleep(300 * time.Millisecond)
	createTopic(t, n.log, "later", 1)
	appendRecords(t, n.log, replog.TopicPartition{Topic: "later"}, 0, 5, time.Now().UnixMilli())
	waitCount(t, &c, 5)
}
