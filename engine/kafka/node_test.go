package kafka_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/engine"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

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

// startNode starts a real single node on loopback ports in a temporary
// directory, stopped when the test ends.
func startNode(t testing.TB, tweak ...func(*engine.Config)) *engine.Node {
	t.Helper()
	cfg := engine.Config{
		DataDir:   filepath.Join(t.TempDir(), "data"),
		KafkaAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RaftAddr: freeAddr(t),
		InitialRebalanceDelay: 10 * time.Millisecond,
		Logger:                testLogger(),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := engine.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

// client returns a franz-go client of the node, closed when the test ends.
func client(t testing.TB, n *engine.Node, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.KafkaAddr())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t testing.TB, n *engine.Node, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(client(t, n))
	resp, err := adm.CreateTopic(ctxT(t, 30*time.Second), partitions, 1, configs, name)
	require.NoError(t, err)
	require.NoError(t, resp.Err)
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func values(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}
