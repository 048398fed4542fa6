package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

// TestSarama runs the same life of a topic with sarama speaking Kafka 2.8
// and 3.6: create, produce (acks all, idempotent), consume from the start,
// a consumer group that commits and resumes, offsets by time, configs,
// delete.
func TestSarama(t *testing.T) {
	for _, version := range []sarama.KafkaVersion{sarama.V2_8_0_0, sarama.V3_6_0_0} {
		t.Run(version.String(), func(t *testing.T) { saramaLife(t, version) })
	}
}

func saramaConfig(version sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "sarama-test"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner // the tests choose partitions
	cfg.Net.MaxOpenRequests = 1                            // sarama requires it for idempotence
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

func saramaLife(t *testing.T, version sarama.KafkaVersion) {
	n := startNode(t)
	cfg := saramaConfig(version)
	brokers := []string{n.KafkaAddr()}

	admin, err := sarama.NewClusterAdmin(brokers, cfg)
	require.NoError(t, err)
	defer admin.Close()
	retention := "-1"
	require.NoError(t, admin.CreateTopic("s", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}, false))
	err = admin.CreateTopic("s", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false)
	require.ErrorIs(t, err, sarama.ErrTopicAlreadyExists)

	producer, err := sarama.NewSyncProducer(brokers, cfg)
	require.NoError(t, err)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 40; i++ {
		_, _, err := producer.SendMessage(&sarama.ProducerMessage{
			Topic: "s", Partition: int32(i % 2), Key: sarama.StringEncoder(fmt.Sprint("k", i)),
			Value: sarama.StringEncoder(fmt.Sprint("v", i)), Timestamp: base.Add(time.Duration(i) * time.Second),
		})
		require.NoError(t, err)
	}
	require.NoError(t, producer.Close())

	// Consume one partition from the start.
	consumer, err := sarama.NewConsumer(brokers, cfg)
	require.NoError(t, err)
	pc, err := consumer.ConsumePartition("s", 0, sarama.OffsetOldest)
	require.NoError(t, err)
	var got []string
	for len(got) < 20 {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
			require.Equal(t, int64(len(got)-1), m.Offset)
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-time.After(20 * time.Second):
			t.Fatalf("got %d of 20", len(got))
		}
	}
	require.Equal(t, "v0", got[0])
	require.Equal(t, "v38", got[19])
	pc.Close()
	consumer.Close()

	// Offsets by time.
	client, err := sarama.NewClient(brokers, cfg)
	require.NoError(t, err)
	defer client.Close()
	off, err := client.GetOffset("s", 1, base.Add(11*time.Second).UnixMilli())
	require.NoError(t, err)
	require.Equal(t, int64(5), off) // partition 1 holds i = 1, 3, 5, ...: i=11 is its sixth
	newest, err := client.GetOffset("s", 1, sarama.OffsetNewest)
	require.NoError(t, err)
	require.Equal(t, int64(20), newest)

	// A group reads everything, commits, and a second run resumes.
	read := func(wantNew int) []string {
		group, err := sarama.NewConsumerGroup(brokers, "sarama-readers", cfg)
		require.NoError(t, err)
		defer group.Close()
		h := &collector{want: wantNew, done: make(chan struct{})}
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		go func() {
			for ctx.Err() == nil {
				if err := group.Consume(ctx, []string{"s"}, h); err != nil && ctx.Err() == nil {
					t.Errorf("consume: %v", err)
					return
				}
			}
		}()
		select {
		case <-h.done:
		case <-ctx.Done():
			t.Fatalf("group read %d of %d", len(h.values()), wantNew)
		}
		cancel()
		return h.values()
	}
	require.Len(t, read(40), 40)
	producer, err = sarama.NewSyncProducer(brokers, cfg)
	require.NoError(t, err)
	_, _, err = producer.SendMessage(&sarama.ProducerMessage{Topic: "s", Partition: 0, Value: sarama.StringEncoder("late")})
	require.NoError(t, err)
	producer.Close()
	require.Equal(t, []string{"late"}, read(1), "the group resumes after its committed offsets")

	// Configs and delete.
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: "s"}}, sarama.DescribeConfigsOptions{})
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Equal(t, sarama.ErrNoError, results[0].ErrorCode)
	found := false
	for _, e := range results[0].Configs {
		if e.Name == "retention.ms" {
			found = true
			require.Equal(t, "-1", e.Value)
		}
	}
	require.True(t, found)
	require.NoError(t, admin.DeleteTopic("s"))
}

// collector is a sarama group handler that keeps values until it has want.
type collector struct {
	mu   sync.Mutex
	vals []string
	want int
	done chan struct{}
	once sync.Once
}

func (c *collector) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *collector) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *collector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		c.mu.Lock()
		c.vals = append(c.vals, string(m.Value))
		n := len(c.vals)
		c.mu.Unlock()
		sess.MarkMessage(m, "")
		if n >= c.want {
			sess.Commit()
			c.once.Do(func() { close(c.done) })
		}
	}
	return nil
}

func (c *collector) values() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.vals...)
}
