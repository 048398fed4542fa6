package pipelines_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/engine"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Helpers shared by the tests that run pipelines on a real node.

func testLogger() *slog.Logger {
	if os.Getenv("SAMSA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// nodeConfig is a single node on loopback ports in dir.
func nodeConfig(t testing.TB, dir string) engine.Config {
	return engine.Config{
		DataDir:   dir,
		KafkaAddr: freeAddr(t), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		InitialRebalanceDelay: 10 * time.Millisecond,
		Logger:                testLogger(),
	}
}

// startNode starts a node, stopped when the test ends.
func startNode(t testing.TB, cfg engine.Config) *engine.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := engine.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

// writeFiles writes name → content into dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
}

func appendFile(t testing.TB, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(content)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// readTopic reads a topic from the beginning with a real Kafka client
// until it has want records, and fails if more arrive within a moment.
func readTopic(t testing.TB, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var got []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	settle := time.Time{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
		switch {
		case len(got) > want:
			t.Fatalf("topic %s: %d records, want %d", topic, len(got), want)
		case len(got) == want && settle.IsZero():
			settle = time.Now().Add(500 * time.Millisecond)
		case len(got) == want && time.Now().After(settle):
			return got
		case time.Now().After(deadline):
			t.Fatalf("topic %s: %d records after 60 s, want %d", topic, len(got), want)
		}
	}
}

// waitFor polls cond until it holds or total passes.
func waitFor(t testing.TB, total time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
