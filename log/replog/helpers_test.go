package replog

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

// logger is a node's logger in tests: with SAMSA_TEST_LOG set, everything
// to stderr; else Info and above kept in memory and printed if the test
// fails, so that a failure that comes only at full speed explains itself.
func logger(t testing.TB) *slog.Logger {
	if os.Getenv("SAMSA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, nil))
}

// lockedBuffer is a buffer several goroutines log into.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testNode is a node's configuration, reopenable on the same directory.
type testNode struct {
	cfg Config
	log *Log
}

func newNode(t testing.TB, dir string, id uint64, peers map[uint64]string) *testNode {
	return &testNode{cfg: Config{
		NodeID: id, DataDir: dir, RaftAddr: peers[id], KafkaAddr: fmt.Sprintf("127.0.0.1:%d", 19000+id),
		Peers: peers, Logger: logger(t), MinFreeBytes: -1,
	}}
}

func (n *testNode) open(t testing.TB) *Log {
	t.Helper()
	l, err := Open(ctxT(t, 60*time.Second), n.cfg)
	require.NoError(t, err)
	n.log = l
	return l
}

func (n *testNode) close(t testing.TB) {
	t.Helper()
	if n.log != nil {
		require.NoError(t, n.log.Close(ctxT(t, 30*time.Second)))
		n.log = nil
	}
}

// single opens a one-node cluster in a temporary directory.
func single(t testing.TB) *testNode {
	t.Helper()
	addr := freeAddr(t)
	n := newNode(t, filepath.Join(t.TempDir(), "node"), 1, map[uint64]string{1: addr})
	n.open(t)
	t.Cleanup(func() { n.close(t) })
	return n
}

// recordBatch builds a producer batch of n records with the given values'
// prefix; pid -1 is a plain producer.
func recordBatch(t testing.TB, pid int64, seq int32, prefix string, n int, ts int64) []byte {
	t.Helper()
	var b batch.Builder
	if pid >= 0 {
		b.SetProducer(pid, 0, seq)
	}
	for i := range n {
		b.Add(batch.Record{Timestamp: ts + int64(i), Key: []byte(prefix), Value: fmt.Appendf(nil, "%s-%d", prefix, int(seq)+i)})
	}
	out, err := b.Build(nil)
	require.NoError(t, err)
	return out
}

// readAll reads a partition from offset to its end through Read.
func readAll(t testing.TB, l *Log, tp TopicPartition, from int64) []string {
	t.Helper()
	var out []string
	for {
		res, err := l.Read(tp, from, 1<<20, nil)
		require.NoError(t, err)
		if len(res.Sections) == 0 {
			return out
		}
		var b []byte
		for i := range res.Sections {
			b, err = res.Sections[i].AppendTo(b)
			require.NoError(t, err)
		}
		segment.Release(res.Sections)
		it := batch.NewIterator(b)
		for it.Next() {
			if r := it.Record(); r.Offset >= from {
				out = append(out, string(r.Value))
				from = r.Offset + 1
			}
		}
		require.NoError(t, it.Err())
	}
}
