package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

// TestKafkaGo uses segmentio/kafka-go: create a topic through a
// connection to the controller, write with acks=all, read from the start,
// read as a group that commits, and resume.
func TestKafkaGo(t *testing.T) {
	n := startNode(t)
	ctx := ctxT(t, 90*time.Second)

	conn, err := kafka.DialContext(ctx, "tcp", n.KafkaAddr())
	require.NoError(t, err)
	controller, err := conn.Controller()
	require.NoError(t, err)
	require.Equal(t, 1, controller.ID)
	require.NoError(t, conn.CreateTopics(kafka.TopicConfig{Topic: "kg", NumPartitions: 3, ReplicationFactor: 1}))
	parts, err := conn.ReadPartitions("kg")
	require.NoError(t, err)
	require.Len(t, parts, 3)
	conn.Close()

	w := &kafka.Writer{
		Addr: kafka.TCP(n.KafkaAddr()), Topic: "kg", RequiredAcks: kafka.RequireAll,
		Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond,
	}
	var msgs []kafka.Message
	for i := 0; i < 90; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint("k", i%9)), Value: []byte(fmt.Sprint("v", i))})
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	require.NoError(t, w.Close())

	// One partition from the start, without a group.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{n.KafkaAddr()}, Topic: "kg", Partition: 0, MaxWait: 100 * time.Millisecond})
	first, err := r.ReadMessage(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(0), first.Offset)
	require.NoError(t, r.Close())

	// A group reads all 90 and commits; a new reader of the group gets
	// only what came after.
	readGroup := func(want int) []string {
		gr := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{n.KafkaAddr()}, Topic: "kg", GroupID: "kg-readers",
			MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset,
			HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 6 * time.Second,
		})
		defer gr.Close()
		var got []string
		for len(got) < want {
			m, err := gr.FetchMessage(ctx)
			require.NoError(t, err)
			got = append(got, string(m.Value))
			require.NoError(t, gr.CommitMessages(ctx, m))
		}
		return got
	}
	require.Len(t, readGroup(90), 90)
	w = &kafka.Writer{Addr: kafka.TCP(n.KafkaAddr()), Topic: "kg", RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
	require.NoError(t, w.WriteMessages(ctx, kafka.Message{Value: []byte("after")}))
	require.NoError(t, w.Close())
	require.Equal(t, []string{"after"}, readGroup(1))

	conn, err = kafka.DialContext(context.Background(), "tcp", n.KafkaAddr())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.DeleteTopics("kg"))
}
