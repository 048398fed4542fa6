package replog

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

func TestTopics(t *testing.T) {
	n := single(t)
	l := n.log
	ctx := ctxT(t, 60*time.Second)
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "MyfirstTopic1", Partitions: 2, ReplicationFactor: 1}, false))
	topic, ok := l.Topic("MyfirstTopic1")
	require.True(t, ok)
	require.Len(t, topic.Partitions, 2)
	for p := int32(0); p < 2; p++ {
		info, err := l.PartitionInfo(TopicPartition{"MyfirstTopic1", p})
		require.NoError(t, err)
		require.Equal(t, uint64(1), info.Leader)
		require.Equal(t, []uint64{1}, info.Replicas)
	}

	refusals := []struct {
		spec TopicSpec
		want error
	}{
		{TopicSpec{Name: "MyfirstTopic1", Partitions: 1, ReplicationFactor: 1}, ErrTopicExists},
		{TopicSpec{Name: "bad/name", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{TopicSpec{Name: "..", Partitions: 1, ReplicationFactor: 1}, ErrInvalidTopic},
		{TopicSpec{Name: "zero", Partitions: 0, ReplicationFactor: 1}, ErrInvalidPartitions},
		{TopicSpec{Name: "rf3", Partitions: 1, ReplicationFactor: 3}, ErrInvalidReplication},
		{TopicSpec{Name: "cfg", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}}, ErrInvalidConfig},
		{TopicSpec{Name: "cfg", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"no.such.config": "1"}}, ErrInvalidConfig},
	}
	for _, r := range refusals {
		require.ErrorIs(t, l.CreateTopic(ctx, r.spec, false), r.want, "%+v", r.spec)
	}
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "dry", Partitions: 1, ReplicationFactor: 1}, true))
	_, ok = l.Topic("dry")
	require.False(t, ok, "validate-only creates nothing")

	require.NoError(t, l.CreatePartitions(ctx, "MyfirstTopic1", 4, false))
	_, err := l.Append(ctx, TopicPartition{"MyfirstTopic1", 3}, recordBatch(t, -1, 0, "p3", 1, 1), AppendOptions{Acks: AcksAll})
	require.NoError(t, err)
	require.ErrorIs(t, l.CreatePartitions(ctx, "MyfirstTopic1", 3, false), ErrInvalidPartitions)

	require.NoError(t, l.AlterConfigs(ctx, "MyfirstTopic1", map[string]string{"retention.ms": "-1"}, nil, false, false))
	topic, _ = l.Topic("MyfirstTopic1")
	require.Equal(t, "-1", topic.Configs["retention.ms"])

	dir := filepath.Join(n.cfg.DataDir, "partitions", "MyfirstTopic1-0")
	require.DirExists(t, dir)
	require.NoError(t, l.DeleteTopic(ctx, "MyfirstTopic1"))
	_, ok = l.Topic("MyfirstTopic1")
	require.False(t, ok)
	require.NoDirExists(t, dir, "a deleted topic's data is removed")
	require.ErrorIs(t, l.DeleteTopic(ctx, "MyfirstTopic1"), ErrUnknownTopicOrPartition)
	_, err = l.Append(ctx, TopicPartition{"MyfirstTopic1", 0}, recordBatch(t, -1, 0, "x", 1, 1), AppendOptions{Acks: AcksAll})
	require.ErrorIs(t, err, ErrUnknownTopicOrPartition)

	// The name can be used again; the new topic starts empty.
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "MyfirstTopic1", Partitions: 1, ReplicationFactor: 1}, false))
	hw, _, err := l.ListOffsets(TopicPartition{"MyfirstTopic1", 0}, LatestTimestamp)
	require.NoError(t, err)
	require.Zero(t, hw)
}

func TestAppendRead(t *testing.T) {
	l := single(t).log
	ctx := ctxT(t, 60*time.Second)
	tp := TopicPartition{"events", 0}
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "events", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"max.message.bytes": "100000"}}, false))

	var want []string
	for i := 0; i < 10; i++ {
		res, err := l.Append(ctx, tp, recordBatch(t, -1, int32(i*3), "a", 3, 1000), AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
		require.Equal(t, int64(i*3), res.BaseOffset)
		require.Equal(t, int64(-1), res.LogAppendTime)
		for j := 0; j < 3; j++ {
			want = append(want, fmt.Sprintf("a-%d", i*3+j))
		}
	}
	// acks=0 returns before commit; the record arrives all the same.
	res, err := l.Append(ctx, tp, recordBatch(t, -1, 30, "a", 1, 1000), AppendOptions{Acks: AcksNone})
	require.NoError(t, err)
	require.Equal(t, int64(-1), res.BaseOffset)
	want = append(want, "a-30")
	require.Eventually(t, func() bool { return len(readAll(t, l, tp, 0)) == 31 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, want, readAll(t, l, tp, 0))
	require.Equal(t, want[7:], readAll(t, l, tp, 7))

	// An idempotent producer's retry is answered with the first offset.
	first, err := l.Append(ctx, tp, recordBatch(t, 42, 0, "p", 2, 1000), AppendOptions{Acks: AcksAll})
	require.NoError(t, err)
	again, err := l.Append(ctx, tp, recordBatch(t, 42, 0, "p", 2, 1000), AppendOptions{Acks: AcksAll})
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.BaseOffset, again.BaseOffset)
	_, err = l.Append(ctx, tp, recordBatch(t, 42, 5, "p", 1, 1000), AppendOptions{Acks: AcksAll})
	require.ErrorIs(t, err, ErrOutOfOrderSequence)

	// Bad input is refused at the door, and nothing changes.
	end, _, _ := l.ListOffsets(tp, LatestTimestamp)
	bad := recordBatch(t, -1, 0, "x", 1, 1)
	bad[len(bad)-1] ^= 1
	_, err = l.Append(ctx, tp, bad, AppendOptions{Acks: AcksAll})
	require.ErrorIs(t, err, ErrCorruptMessage)
	_, err = l.Append(ctx, tp, recordBatch(t, -1, 0, string(make([]byte, 200_000)), 1, 1), AppendOptions{Acks: AcksAll})
	require.ErrorIs(t, err, ErrMessageTooLarge)
	_, err = l.Append(ctx, TopicPartition{"events", 7}, recordBatch(t, -1, 0, "x", 1, 1), AppendOptions{Acks: AcksAll})
	require.ErrorIs(t, err, ErrUnknownTopicOrPartition)
	end2, _, _ := l.ListOffsets(tp, LatestTimestamp)
	require.Equal(t, end, end2)

	_, err = l.Read(tp, end+1, 100, nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
}

func TestFetchLongPoll(t *testing.T) {
	l := single(t).log
	ctx := ctxT(t, 60*time.Second)
	tp := TopicPartition{"poll", 0}
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "poll", Partitions: 1, ReplicationFactor: 1}, false))

	start := time.Now()
	res, err := l.Fetch(ctx, tp, 0, 1<<20, 1, 300*time.Millisecond, nil)
	require.NoError(t, err)
	require.Empty(t, res.Sections)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "nothing there: waits the whole maxWait")

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(100 * time.Millisecond)
		_, err := l.Append(ctx, tp, recordBatch(t, -1, 0, "late", 1, 1), AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
	}()
	start = time.Now()
	res, err = l.Fetch(ctx, tp, 0, 1<<20, 1, 10*time.Second, nil)
	require.NoError(t, err)
	require.NotEmpty(t, res.Sections, "woken by the append")
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, int64(1), res.HighWatermark)
	segment.Release(res.Sections)
	wg.Wait()
}

func TestListOffsetsByTime(t *testing.T) {
	l := single(t).log
	ctx := ctxT(t, 60*time.Second)
	tp := TopicPartition{"times", 0}
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "times", Partitions: 1, ReplicationFactor: 1}, false))
	for i := int64(0); i < 5; i++ {
		_, err := l.Append(ctx, tp, recordBatch(t, -1, int32(i*2), "t", 2, 10_000+i*1000), AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
	}
	cases := []struct{ ts, offset, timestamp int64 }{
		{EarliestTimestamp, 0, -1},
		{LatestTimestamp, 10, -1},
		{0, 0, 10_000},
		{12_000, 4, 12_000},
		{12_001, 5, 12_001},
		{12_002, 6, 13_000},
		{99_999, -1, -1},
	}
	for _, c := range cases {
		off, ts, err := l.ListOffsets(tp, c.ts)
		require.NoError(t, err)
		require.Equal(t, c.offset, off, "ts %d", c.ts)
		require.Equal(t, c.timestamp, ts, "ts %d", c.ts)
	}

	// A LogAppendTime topic stamps the broker's clock on every record.
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "stamped", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"message.timestamp.type": "LogAppendTime"}}, false))
	before := time.Now().UnixMilli()
	res, err := l.Append(ctx, TopicPartition{"stamped", 0}, recordBatch(t, -1, 0, "s", 2, 1), AppendOptions{Acks: AcksAll})
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.LogAppendTime, before)
	off, ts, err := l.ListOffsets(TopicPartition{"stamped", 0}, before)
	require.NoError(t, err)
	require.Equal(t, int64(0), off)
	require.Equal(t, res.LogAppendTime, ts)
}

func TestGroupOffsetsAndProducerIDs(t *testing.T) {
	l := single(t).log
	ctx := ctxT(t, 60*time.Second)
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "g", Partitions: 2, ReplicationFactor: 1}, false))
	errs, err := l.CommitOffsets(ctx, "readers", []meta.OffsetCommit{
		{Topic: "g", Partition: 0, Offset: 5, Metadata: "m"},
		{Topic: "g", Partition: 1, Offset: 7},
		{Topic: "nope", Partition: 0, Offset: 1},
	})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], ErrUnknownTopicOrPartition)
	c, ok := l.CommittedOffset("readers", TopicPartition{"g", 0})
	require.True(t, ok)
	require.Equal(t, int64(5), c.Offset)
	require.Equal(t, "m", c.Metadata)
	require.Equal(t, []string{"readers"}, l.Groups())
	require.Len(t, l.GroupOffsets("readers"), 2)

	seen := map[int64]bool{}
	for i := 0; i < 2500; i++ {
		id, err := l.AllocateProducerID(ctx)
		require.NoError(t, err)
		require.False(t, seen[id])
		seen[id] = true
	}
	require.NoError(t, l.DeleteGroup(ctx, "readers"))
	require.Empty(t, l.Groups())
}

// TestRestart closes a node and opens it on the same directory: topics,
// configs, records, offsets by time, group offsets and producer state all
// come back.
func TestRestart(t *testing.T) {
	n := single(t)
	ctx := ctxT(t, 120*time.Second)
	tp := TopicPartition{"kept", 1}
	require.NoError(t, n.log.CreateTopic(ctx, TopicSpec{Name: "kept", Partitions: 2, ReplicationFactor: 1,
		Configs: map[string]string{"retention.ms": "-1", "segment.bytes": "4096"}}, false))
	for i := 0; i < 50; i++ {
		_, err := n.log.Append(ctx, tp, recordBatch(t, 9, int32(i*4), "k", 4, 5000+int64(i)), AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
	}
	_, err := n.log.CommitOffsets(ctx, "g", []meta.OffsetCommit{{Topic: "kept", Partition: 1, Offset: 123}})
	require.NoError(t, err)
	want := readAll(t, n.log, tp, 0)
	require.Len(t, want, 200)

	n.close(t)
	l := n.open(t)
	topic, ok := l.Topic("kept")
	require.True(t, ok)
	require.Equal(t, "4096", topic.Configs["segment.bytes"])
	require.Eventually(t, func() bool { _, err := l.Read(tp, 0, 1, nil); return err == nil }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, want, readAll(t, l, tp, 0))
	c, _ := l.CommittedOffset("g", tp)
	require.Equal(t, int64(123), c.Offset)
	off, _, err := l.ListOffsets(tp, 5010)
	require.NoError(t, err)
	require.Equal(t, int64(31), off) // batch 7 holds 5007..5010
	res, err := l.Append(ctx, tp, recordBatch(t, 9, 196, "k", 4, 1), AppendOptions{Acks: AcksAll})
	require.NoError(t, err)
	require.True(t, res.Duplicate, "the producer's state survived the restart")
	require.Equal(t, int64(196), res.BaseOffset)
}

func TestRetention(t *testing.T) {
	l := single(t).log
	ctx := ctxT(t, 60*time.Second)
	tp := TopicPartition{"short", 0}
	require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "short", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"segment.bytes": "2048", "retention.ms": "-1"}}, false))
	old := time.Now().Add(-time.Hour).UnixMilli()
	for i := 0; i < 40; i++ {
		_, err := l.Append(ctx, tp, recordBatch(t, -1, int32(i), "r", 1, old), AppendOptions{Acks: AcksAll})
		require.NoError(t, err)
	}
	require.Zero(t, l.RetainNow(ctx), "retention.ms=-1 keeps everything")
	require.NoError(t, l.AlterConfigs(ctx, "short", map[string]string{"retention.ms": "60000"}, nil, false, false))
	require.Equal(t, 1, l.RetainNow(ctx))
	_, err := l.Read(tp, 0, 10, nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	start, _, err := l.ListOffsets(tp, EarliestTimestamp)
	require.NoError(t, err)
	require.Equal(t, int64(40), start, "every segment was older than an hour")
	_, err = l.Append(ctx, tp, recordBatch(t, -1, 0, "new", 1, time.Now().UnixMilli()), AppendOptions{Acks: AcksAll})
	require.NoError(t, err)
	require.Equal(t, []string{"new-0"}, readAll(t, l, tp, 40))

	// DeleteRecords moves the start inside a segment.
	_, err = l.DeleteRecords(ctx, tp, 41)
	require.NoError(t, err)
	start, _, _ = l.ListOffsets(tp, EarliestTimestamp)
	require.Equal(t, int64(41), start)
}
