package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeN reads n records with cl, failing after the deadline.
func consumeN(t *testing.T, cl *kgo.Client, n int, d time.Duration) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t, d)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "got %d of %d records", len(out), n)
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func TestFranzAdmin(t *testing.T) {
	n := startNode(t)
	adm := kadm.NewClient(client(t, n))
	ctx := ctxT(t, 60*time.Second)

	resp, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("-1")}, "MyfirstTopic1")
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	_, err = adm.CreateTopic(ctx, 2, 1, nil, "MyfirstTopic1")
	require.ErrorIs(t, err, kerr.TopicAlreadyExists)
	_, err = adm.CreateTopic(ctx, 1, 3, nil, "rf3")
	require.ErrorIs(t, err, kerr.InvalidReplicationFactor)

	topics, err := adm.ListTopics(ctx)
	require.NoError(t, err)
	require.True(t, topics.Has("MyfirstTopic1"))
	td := topics["MyfirstTopic1"]
	require.Len(t, td.Partitions, 2)
	for _, p := range td.Partitions {
		require.Equal(t, int32(1), p.Leader)
		require.Equal(t, []int32{1}, p.Replicas)
	}

	cfgs, err := adm.DescribeTopicConfigs(ctx, "MyfirstTopic1")
	require.NoError(t, err)
	rc, err := cfgs.On("MyfirstTopic1", nil)
	require.NoError(t, err)
	byName := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		byName[c.Key] = c
	}
	require.Equal(t, "-1", *byName["retention.ms"].Value)
	require.Equal(t, "1073741824", *byName["segment.bytes"].Value, "defaults are described too")
	require.Equal(t, kmsgDefaultSource, byName["segment.bytes"].Source.String())

	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("86400000")}}, "MyfirstTopic1")
	require.NoError(t, err)
	require.NoError(t, alter[0].Err)
	alter, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}}, "MyfirstTopic1")
	require.NoError(t, err)
	require.ErrorIs(t, alter[0].Err, kerr.InvalidConfig)

	cp, err := adm.CreatePartitions(ctx, 2, "MyfirstTopic1")
	require.NoError(t, err)
	require.NoError(t, cp["MyfirstTopic1"].Err)
	topics, err = adm.ListTopics(ctx, "MyfirstTopic1")
	require.NoError(t, err)
	require.Len(t, topics["MyfirstTopic1"].Partitions, 4)

	del, err := adm.DeleteTopics(ctx, "MyfirstTopic1")
	require.NoError(t, err)
	require.NoError(t, del["MyfirstTopic1"].Err)
	// A fresh client: kadm answers ListTopics from franz-go's metadata cache.
	topics, err = kadm.NewClient(client(t, n)).ListTopics(ctx)
	require.NoError(t, err)
	require.False(t, topics.Has("MyfirstTopic1"))

	brokers, err := adm.ListBrokers(ctx)
	require.NoError(t, err)
	require.Len(t, brokers, 1)
	require.Equal(t, n.KafkaAddr(), fmt.Sprintf("%s:%d", brokers[0].Host, brokers[0].Port))
}

const kmsgDefaultSource = "DEFAULT_CONFIG"

func TestFranzProduceConsume(t *testing.T) {
	n := startNode(t)
	createTopic(t, n, "t", 2, nil)
	for _, acks := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"idempotent acks=all", nil},
		{"acks=1", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"acks=0", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
	} {
		t.Run(acks.name, func(t *testing.T) {
			pr := client(t, n, append(acks.opts, kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
			ctx := ctxT(t, 30*time.Second)
			want := values(200, acks.name)
			for i, v := range want {
				pr.Produce(ctx, &kgo.Record{Partition: int32(i % 2), Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
					require.NoError(t, err)
				})
			}
			require.NoError(t, pr.Flush(ctx))
		})
	}
	// All 600 records, each partition in the order produced.
	cl := client(t, n, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	recs := consumeN(t, cl, 600, 30*time.Second)
	perPartition := map[int32][]int64{}
	for _, r := range recs {
		perPartition[r.Partition] = append(perPartition[r.Partition], r.Offset)
		require.Equal(t, string(r.Key), string(r.Value))
	}
	for p, offs := range perPartition {
		require.Len(t, offs, 300, "partition %d", p)
		require.True(t, slices.IsSorted(offs))
		require.Equal(t, int64(0), offs[0])
		require.Equal(t, int64(299), offs[299], "dense offsets")
	}
}

func TestFranzGroup(t *testing.T) {
	n := startNode(t)
	createTopic(t, n, "g", 4, nil)
	pr := client(t, n, kgo.DefaultProduceTopic("g"))
	ctx := ctxT(t, 90*time.Second)
	produce := func(vals []string) {
		for _, v := range vals {
			require.NoError(t, pr.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr())
		}
	}
	first := values(100, "first")
	produce(first)

	// Two members share the four partitions, each commits what it read.
	var mu sync.Mutex
	seen := map[string]int{}
	member := func(name string) *kgo.Client {
		return client(t, n, kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("g"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ClientID(name),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {}),
			kgo.DisableAutoCommit())
	}
	a, b := member("a"), member("b")
	poll := func(cl *kgo.Client) {
		fs := cl.PollRecords(ctxT(t, 500*time.Millisecond), 1000)
		recs := fs.Records()
		mu.Lock()
		for _, r := range recs {
			seen[string(r.Value)]++
		}
		mu.Unlock()
		if len(recs) > 0 {
			require.NoError(t, cl.CommitRecords(ctx, recs...))
		}
	}
	require.Eventually(t, func() bool {
		poll(a)
		poll(b)
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 100
	}, 60*time.Second, 10*time.Millisecond)

	adm := kadm.NewClient(client(t, n))
	described, err := adm.DescribeGroups(ctx, "readers")
	require.NoError(t, err)
	g := described["readers"]
	require.Equal(t, "Stable", g.State)
	require.Len(t, g.Members, 2, "both members share the group")
	lags, err := adm.Lag(ctx, "readers")
	require.NoError(t, err)
	require.Zero(t, lags["readers"].Lag.Total(), "everything read was committed")

	// Members leave; new data; a new member resumes from the commits.
	a.Close()
	b.Close()
	second := values(50, "second")
	produce(second)
	c := client(t, n, kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("g"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	recs := consumeN(t, c, 50, 60*time.Second)
	for _, r := range recs {
		require.Contains(t, second, string(r.Value), "only records after the committed offsets")
	}
	for v, k := range seen {
		require.Equal(t, 1, k, "%s read once", v)
	}
}

func TestFranzListOffsetsByTime(t *testing.T) {
	n := startNode(t)
	createTopic(t, n, "times", 1, nil)
	pr := client(t, n, kgo.DefaultProduceTopic("times"))
	ctx := ctxT(t, 30*time.Second)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Minute)}
		require.NoError(t, pr.ProduceSync(ctx, r).FirstErr())
	}
	adm := kadm.NewClient(client(t, n))
	offs, err := adm.ListOffsetsAfterMilli(ctx, base.Add(5*time.Minute).UnixMilli(), "times")
	require.NoError(t, err)
	o, ok := offs.Lookup("times", 0)
	require.True(t, ok)
	require.NoError(t, o.Err)
	require.Equal(t, int64(5), o.Offset)
	start, err := adm.ListStartOffsets(ctx, "times")
	require.NoError(t, err)
	so, _ := start.Lookup("times", 0)
	require.Equal(t, int64(0), so.Offset)
	end, err := adm.ListEndOffsets(ctx, "times")
	require.NoError(t, err)
	eo, _ := end.Lookup("times", 0)
	require.Equal(t, int64(10), eo.Offset)
}
