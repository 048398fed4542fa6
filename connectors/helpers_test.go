package connectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

func quietLogger() *slog.Logger {
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

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// node is a single-node replog that a test can close and reopen on the
// same directory.
type node struct {
	cfg replog.Config
	log *replog.Log
}

// newNode opens a one-node log in a temporary directory, closed at the
// end of the test.
func newNode(t testing.TB) *node {
	t.Helper()
	n := &node{cfg: replog.Config{
		NodeID: 1, DataDir: filepath.Join(t.TempDir(), "node"), RaftAddr: freeAddr(t),
		KafkaAddr: "127.0.0.1:9092", MinFreeBytes: -1, Logger: quietLogger(),
	}}
	n.open(t)
	t.Cleanup(func() { n.close(t) })
	return n
}

func (n *node) open(t testing.TB) *replog.Log {
	t.Helper()
	l, err := replog.Open(ctxT(t, time.Minute), n.cfg)
	require.NoError(t, err)
	n.log = l
	return l
}

func (n *node) close(t testing.TB) {
	t.Helper()
	if n.log != nil {
		require.NoError(t, n.log.Close(ctxT(t, 30*time.Second)))
		n.log = nil
	}
}

// env is an isolated Benthos environment with the connectors registered
// against l (plus the core components imported above).
func env(t testing.TB, l *replog.Log) *service.Environment {
	t.Helper()
	e := service.NewEnvironment()
	require.NoError(t, Register(e, Deps{Log: l, Logger: quietLogger()}))
	return e
}

// stream is a running Benthos stream.
type stream struct {
	s    *service.Stream
	done chan struct{}
	err  error
}

// startStream builds a stream from YAML and runs it until it ends or the
// test stops it.
func startStream(t testing.TB, e *service.Environment, yaml string) *stream {
	t.Helper()
	b := e.NewStreamBuilder()
	b.SetLogger(quietLogger())
	require.NoError(t, b.SetYAML(yaml))
	s, err := b.Build()
	require.NoError(t, err)
	st := &stream{s: s, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		st.err = s.Run(context.Background())
	}()
	t.Cleanup(func() { st.stop(t, 10*time.Second) })
	return st
}

// stop stops the stream within d (less gracefully as d runs out).
func (st *stream) stop(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-st.done:
		return
	default:
	}
	err := st.s.StopWithin(d)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("stopping the stream: %v", err)
	}
	<-st.done
}

// wait waits for the stream to end by itself.
func (st *stream) wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-st.done:
		if st.err != nil && !errors.Is(st.err, context.Canceled) {
			require.NoError(t, st.err)
		}
	case <-time.After(d):
		t.Fatalf("stream did not end within %v", d)
	}
}

// checkFor retries fn until it returns nil or total passes.
func checkFor(t testing.TB, total, poll time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(poll)
	}
	t.Fatalf("not true within %v: %v", total, err)
}

// rec is a record as read back from a partition.
type rec struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     string
	Headers   map[string]string
}

// readPartition reads a partition from its start to its end.
func readPartition(t testing.TB, l *replog.Log, tp replog.TopicPartition) []rec {
	t.Helper()
	out, err := tryReadPartition(l, tp)
	require.NoError(t, err)
	return out
}

func tryReadPartition(l *replog.Log, tp replog.TopicPartition) ([]rec, error) {
	start, _, err := l.Offsets(tp)
	if err != nil {
		return nil, err
	}
	var out []rec
	for from := start; ; {
		res, err := l.Read(tp, from, 4<<20, nil)
		if err != nil {
			return nil, err
		}
		if len(res.Sections) == 0 {
			return out, nil
		}
		var b []byte
		for i := range res.Sections {
			if b, err = res.Sections[i].AppendTo(b); err != nil {
				segment.Release(res.Sections)
				return nil, err
			}
		}
		segment.Release(res.Sections)
		it := batch.NewIterator(b)
		for it.Next() {
			r := it.Record()
			if r.Offset < from {
				continue
			}
			x := rec{Offset: r.Offset, Timestamp: r.Timestamp, Value: string(r.Value)}
			if r.Key != nil {
				x.Key = append([]byte{}, r.Key...)
			}
			for _, h := range r.Headers {
				if x.Headers == nil {
					x.Headers = map[string]string{}
				}
				x.Headers[string(h.Key)] = string(h.Value)
			}
			out = append(out, x)
			from = r.Offset + 1
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
}

// topicValues returns the values of every partition of a topic, in
// partition then offset order.
func topicValues(t testing.TB, l *replog.Log, topic string) []string {
	t.Helper()
	out, err := tryTopicValues(l, topic)
	require.NoError(t, err)
	return out
}

// tryTopicValues is topicValues for checkFor: a topic not there yet, or
// without leaders yet, is an error.
func tryTopicValues(l *replog.Log, topic string) ([]string, error) {
	tp, ok := l.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("no topic %q yet", topic)
	}
	var out []string
	for p := range len(tp.Partitions) {
		recs, err := tryReadPartition(l, replog.TopicPartition{Topic: topic, Partition: int32(p)})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out = append(out, r.Value)
		}
	}
	return out, nil
}

// waitValues waits until a topic holds exactly want, in partition then
// offset order.
func waitValues(t testing.TB, l *replog.Log, topic string, want []string) {
	t.Helper()
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		got, err := tryTopicValues(l, topic)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("topic %s holds %d records, want %d: %q", topic, len(got), len(want), got)
		}
		return nil
	})
}

// countTopic counts the records of a topic.
func countTopic(t testing.TB, l *replog.Log, topic string) int {
	t.Helper()
	tp, ok := l.Topic(topic)
	if !ok {
		return 0
	}
	n := 0
	for p := range len(tp.Partitions) {
		start, end, err := l.Offsets(replog.TopicPartition{Topic: topic, Partition: int32(p)})
		if err != nil {
			return -1
		}
		n += int(end - start)
	}
	return n
}

// writeLines writes lines numbered from..to-1 to path (appending), each
// "prefix-N".
func writeLines(t testing.TB, path, prefix string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	var sb strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&sb, "%s-%d\n", prefix, i)
	}
	_, err = f.WriteString(sb.String())
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// appendFile appends raw text to path.
func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(text)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// collector gathers the messages a stream's consumer function receives.
type collector struct {
	mu   sync.Mutex
	msgs []*service.Message
}

func (c *collector) add(_ context.Context, m *service.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	return nil
}

func (c *collector) snapshot() []*service.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*service.Message(nil), c.msgs...)
}

// tcpProxy forwards TCP connections to a server, and can cut them all and
// refuse new ones for a while (the server "goes away"), or mute them: what
// clients send is dropped, as if lost on the way or by a process that died.
type tcpProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	servers map[net.Conn]bool // the server sides of conns
	muted   map[net.Conn]bool // server sides whose clients are muted
	refuse  bool
	wg      sync.WaitGroup
}

// newTCPProxy starts a proxy to target on addr ("127.0.0.1:0": any port),
// closed at the end of the test.
func newTCPProxy(t testing.TB, addr, target string) *tcpProxy {
	t.Helper()
	var ln net.Listener
	checkFor(t, 5*time.Second, 50*time.Millisecond, func() (err error) {
		ln, err = net.Listen("tcp", addr) // a port just freed may not be free yet
		return err
	})
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, servers: map[net.Conn]bool{}, muted: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s], p.servers[s] = struct{}{}, struct{}{}, true
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(proxyWriter{p, pair[0]}, pair[1])
				pair[0].Close()
				pair[1].Close()
				p.mu.Lock()
				delete(p.conns, pair[0])
				delete(p.conns, pair[1])
				delete(p.servers, pair[0])
				delete(p.muted, pair[0])
				p.mu.Unlock()
			}()
		}
	}
}

// proxyWriter writes to a side of a proxied connection unless it is muted.
type proxyWriter struct {
	p    *tcpProxy
	conn net.Conn
}

func (w proxyWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	muted := w.p.muted[w.conn]
	w.p.mu.Unlock()
	if muted {
		return len(b), nil
	}
	return w.conn.Write(b)
}

// cut closes every connection and refuses new ones for d.
func (p *tcpProxy) cut(d time.Duration) {
	p.mu.Lock()
	p.refuse = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	time.Sleep(d)
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

// mute drops from now on what the clients of the connections open now
// send; the server's side still reaches them.
func (p *tcpProxy) mute() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.servers {
		p.muted[s] = true
	}
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
