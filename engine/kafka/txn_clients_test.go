package kafka_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSaramaTransactions: sarama's transactional producer commits one
// transaction and aborts another; sarama's consumer reads them back in
// both isolation levels (it checks the 6-byte end-transaction marker).
func TestSaramaTransactions(t *testing.T) {
	n := startNode(t)
	createTopic(t, n, "sarama-txn", 2, nil)
	cfg := saramaConfig(sarama.V3_6_0_0)
	cfg.Producer.Transaction.ID = "sarama-tx"
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	p, err := sarama.NewAsyncProducer([]string{n.KafkaAddr()}, cfg)
	require.NoError(t, err)
	defer p.Close()

	send := func(prefix string, count int) {
		t.Helper()
		require.NoError(t, p.BeginTxn())
		for i := range count {
			p.Input() <- &sarama.ProducerMessage{Topic: "sarama-txn", Value: sarama.StringEncoder(prefix + "-" + string(rune('a'+i)))}
			select {
			case <-p.Successes():
			case err := <-p.Errors():
				t.Fatal(err)
			case <-time.After(30 * time.Second):
				t.Fatal("no answer to a transactional produce")
			}
		}
	}
	send("kept", 6)
	require.NoError(t, p.CommitTxn())
	send("dropped", 4)
	require.NoError(t, p.AbortTxn())
	send("kept2", 2)
	require.NoError(t, p.CommitTxn())

	read := func(level sarama.IsolationLevel, want int) map[string]bool {
		t.Helper()
		ccfg := saramaConfig(sarama.V3_6_0_0)
		ccfg.Consumer.IsolationLevel = level
		c, err := sarama.NewConsumer([]string{n.KafkaAddr()}, ccfg)
		require.NoError(t, err)
		defer c.Close()
		got := map[string]bool{}
		for part := range int32(2) {
			pc, err := c.ConsumePartition("sarama-txn", part, sarama.OffsetOldest)
			require.NoError(t, err)
			deadline := time.After(5 * time.Second)
		drain:
			for {
				select {
				case m := <-pc.Messages():
					got[string(m.Value)] = true
				case err := <-pc.Errors():
					t.Fatal(err)
				case <-deadline:
					break drain
				}
				if len(got) == want {
					deadline = time.After(500 * time.Millisecond) // and nothing more
				}
			}
			require.NoError(t, pc.Close())
		}
		return got
	}
	committed := read(sarama.ReadCommitted, 8)
	require.Len(t, committed, 8)
	for v := range committed {
		require.False(t, strings.HasPrefix(v, "dropped"), v)
	}
	require.Len(t, read(sarama.ReadUncommitted, 12), 12)
}

// TestLibrdkafkaTransactions runs scripts/txn-librdkafka.py: librdkafka's
// transactional producer (python3-confluent-kafka) commits and aborts,
// and its consumers read back in both isolation levels. .ci/run installs
// the binding; without it the test is skipped.
func TestLibrdkafkaTransactions(t *testing.T) {
	// Debian's package installs for the system's Python, which another
	// python3 earlier in PATH (pyenv, a venv) may not see.
	python := "/usr/bin/python3"
	if exec.Command(python, "-c", "import confluent_kafka").Run() != nil {
		t.Skip("python3-confluent-kafka is not installed (apt-get install -y python3-confluent-kafka; .ci/run does it)")
	}
	n := startNode(t)
	createTopic(t, n, "rdk-txn", 2, nil)
	cmd := exec.Command(python, "../../scripts/txn-librdkafka.py", n.KafkaAddr(), "rdk-txn")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "read_committed 30 read_uncommitted 50\n", string(out))

	// A franz-go consumer agrees.
	require.Len(t, valuesOf(readAll(t, n.KafkaAddr(), "rdk-txn", kgo.ReadCommitted(), -1)), 30)
}
