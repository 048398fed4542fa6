package replica

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/partition"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// logger is quiet unless SAMSA_TEST_LOG is set, for debugging.
func logger() *slog.Logger {
	if os.Getenv("SAMSA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return quiet
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// node is one host of a test cluster, restartable on the same directory
// and address.
type node struct {
	id   uint64
	dir  string
	addr string
	cfg  Config
	h    atomic.Pointer[Host] // nil while stopped; tests read it concurrently
}

func (n *node) host() *Host { return n.h.Load() }

func (n *node) start(t testing.TB) {
	t.Helper()
	h, err := Start(n.cfg)
	require.NoError(t, err)
	n.h.Store(h)
}

func (n *node) stop() {
	if h := n.h.Swap(nil); h != nil {
		h.Close()
	}
}

// cluster starts n hosts on loopback, each in its own directory.
func cluster(t testing.TB, n int, tweak func(*Config)) []*node {
	t.Helper()
	root := t.TempDir()
	nodes := make([]*node, n)
	for i := range nodes {
		id := uint64(i + 1)
		nd := &node{id: id, dir: filepath.Join(root, fmt.Sprint(id)), addr: freeAddr(t)}
		nd.cfg = Config{NodeID: id, Dir: filepath.Join(nd.dir, "raft"), RaftAddr: nd.addr, Logger: logger()}
		if tweak != nil {
			tweak(&nd.cfg)
		}
		nd.start(t)
		nodes[i] = nd
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, nd := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); nd.stop() }()
		}
		wg.Wait()
	})
	return nodes
}

const testShard = 1000

func members(nodes []*node) map[uint64]string {
	m := map[uint64]string{}
	for _, n := range nodes {
		m[n.id] = n.addr
	}
	return m
}

func (n *node) startPartition(t testing.TB, all []*node) *Shard {
	t.Helper()
	s, err := n.host().StartPartition(PartitionSpec{
		ShardID: testShard, ReplicaID: n.id, Members: members(all),
		Dir:    filepath.Join(n.dir, "partitions", "t-0"),
		Config: partition.Config{Logger: quiet, Log: segment.Config{SegmentBytes: 64 << 10}},
	})
	require.NoError(t, err)
	return s
}

// leaderOf waits for the shard's leader and returns its node.
func leaderOf(t testing.TB, nodes []*node) *node {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if h := n.host(); h == nil {
				continue
			} else if s := h.Shard(testShard); s != nil && s.IsLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader within 30s")
	return nil
}

// entryFor builds the entry of a batch whose records' values name their
// sequence numbers: producer 1, epoch 0, so retries are recognised.
func entryFor(t testing.TB, seq int32, n int) []byte { return entryFrom(t, 1, seq, n) }

// entryFrom is entryFor for producer pid; -1 is a plain producer.
func entryFrom(t testing.TB, pid int64, seq int32, n int) []byte {
	var b batch.Builder
	if pid >= 0 {
		b.SetProducer(pid, 0, seq)
	}
	for i := range n {
		b.Add(batch.Record{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "seq-%d", int(seq)+i)})
	}
	out, err := b.Build(nil)
	require.NoError(t, err)
	return partition.AppendEntry(nil, &partition.Meta{Kind: partition.KindBatch, AppendTime: time.Now().UnixMilli()}, out)
}

// contents reads a replica's whole log.
func contents(t testing.TB, s *Shard) []byte {
	t.Helper()
	p := s.Partition()
	secs, err := p.Log().Read(p.Log().StartOffset(), 1<<30, nil)
	require.NoError(t, err)
	defer segment.Release(secs)
	var out []byte
	for i := range secs {
		out, err = secs[i].AppendTo(out)
		require.NoError(t, err)
	}
	return out
}

// values lists the record values in b, in offset order.
func values(t testing.TB, b []byte) []string {
	t.Helper()
	var out []string
	it := batch.NewIterator(b)
	for it.Next() {
		out = append(out, string(it.Record().Value))
	}
	require.NoError(t, it.Err())
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
