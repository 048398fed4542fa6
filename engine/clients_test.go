package engine_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterClientsAcrossLeaderChanges keeps a sarama producer
// (idempotent, acks=all), kcat (librdkafka) and a franz-go consumer
// working on a three-node cluster while the leader of every partition is
// killed: no client is restarted, every record sarama had acknowledged is
// read back by franz-go and by kcat, and kcat produces to the new leaders.
func TestClusterClientsAcrossLeaderChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three samsa processes")
	}
	const topic, partitions = "clients", 3
	c := testcluster.Start(t, 3)
	brokers := c.Brokers()
	adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(brokers...)))
	createTopic(t, adm, topic, partitions, 3)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Retry.Max = 1000
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1
	cfg.Metadata.Retry.Max = 1000
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	require.NoError(t, err)
	defer producer.Close()

	var mu sync.Mutex
	var acked []string
	produce := func(n int) {
		t.Helper()
		for range n {
			mu.Lock()
			i := len(acked)
			mu.Unlock()
			v := fmt.Sprintf("sarama-%d", i)
			_, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: int32(i % partitions), Value: sarama.StringEncoder(v)})
			require.NoError(t, err, "sarama, record %d", i)
			mu.Lock()
			acked = append(acked, v)
			mu.Unlock()
		}
	}
	cons := newClient(t, kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	readUpTo := func(n int) {
		t.Helper()
		ctx := ctxT(t, 2*time.Minute)
		for len(seen) < n {
			fs := cons.PollFetches(ctx)
			require.NoError(t, ctx.Err(), "franz-go read %d of %d", len(seen), n)
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		}
	}

	produce(300)
	readUpTo(300)
	kcats := 0
	for part := range int32(partitions) {
		leader := leaderOf(t, adm, topic, part)
		c.Node(leader).Kill()
		t.Logf("killed node %d, leader of partition %d", leader, part)
		produce(300) // sarama retries until the new leaders answer
		readUpTo(len(acked))
		if kcatProduce(t, brokers, topic, part, fmt.Sprintf("kcat-%d", part)) {
			kcats++
		}
		c.Node(leader).Start()
		require.Eventually(t, func() bool { return leaderOf(t, adm, topic, part) > 0 }, time.Minute, 100*time.Millisecond)
	}
	readUpTo(len(acked) + kcats)
	for _, v := range acked {
		require.Equal(t, 1, seen[v], "franz-go reads acknowledged record %s once", v)
	}
	for part := range kcats {
		require.Equal(t, 1, seen[fmt.Sprintf("kcat-%d", part)], "franz-go reads kcat's record to partition %d", part)
	}

	// kcat reads everything back too.
	if _, err := exec.LookPath("kcat"); err == nil {
		out, err := exec.Command("kcat", "-b", strings.Join(brokers, ","), "-C", "-t", topic, "-e", "-q", "-f", "%s\n").Output()
		require.NoError(t, err)
		got := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			got[line]++
		}
		for _, v := range acked {
			require.Equal(t, 1, got[v], "kcat reads acknowledged record %s once", v)
		}
	}
	t.Logf("%d records from sarama and %d from kcat across %d leader kills, read back once each", len(acked), kcats, partitions)
}

// kcatProduce writes one record to a partition with kcat (librdkafka)
// and reports true, or does nothing where kcat is not installed (.ci/run
// installs it).
func kcatProduce(t *testing.T, brokers []string, topic string, part int32, value string) bool {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Logf("kcat is not installed: skipping its part")
		return false
	}
	cmd := exec.Command("kcat", "-b", strings.Join(brokers, ","), "-P", "-t", topic, "-p", fmt.Sprint(part),
		"-X", "message.timeout.ms=60000", "-X", "acks=all")
	cmd.Stdin = strings.NewReader(value + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "kcat -P: %s", stderr.String())
	return true
}
