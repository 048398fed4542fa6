package transforms

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"
)

func quietLogger() *slog.Logger {
	if os.Getenv("SAMSA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// sink is what reached an output.
type sink struct {
	mu   sync.Mutex
	msgs []*service.Message
}

func (s *sink) add(m *service.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m.Copy())
}

// take returns what arrived since the last take.
func (s *sink) take() []*service.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.msgs
	s.msgs = nil
	return out
}

// strictOutput is a real Benthos output: under strict error handling the
// engine rejects failed messages before Write, as it does for a topic.
type strictOutput struct{ s *sink }

func (o strictOutput) Connect(context.Context) error { return nil }
func (o strictOutput) Write(_ context.Context, m *service.Message) error {
	o.s.add(m)
	return nil
}
func (o strictOutput) Close(context.Context) error { return nil }

// panicProcessor panics on every message.
type panicProcessor struct{}

func (panicProcessor) Process(context.Context, *service.Message) (service.MessageBatch, error) {
	panic("boom")
}
func (panicProcessor) Close(context.Context) error { return nil }

// newEnv is an isolated environment with our processors, plus a
// test_output writing to the returned sink and a test_panic processor.
func newEnv(t testing.TB, deps Deps) (*service.Environment, *sink) {
	t.Helper()
	env := service.NewEnvironment()
	if deps.Logger == nil {
		deps.Logger = quietLogger()
	}
	require.NoError(t, Register(env, deps))
	s := &sink{}
	require.NoError(t, env.RegisterOutput("test_output", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.Output, int, error) {
			return strictOutput{s}, 1, nil
		}))
	require.NoError(t, env.RegisterProcessor("test_panic", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
			return panicProcessor{}, nil
		}))
	return env, s
}

// stream is a running Benthos stream with strict error handling, fed by
// a producer func.
type stream struct {
	send service.MessageHandlerFunc // returns the ack: nil once written or dropped
	out  *sink
}

// startStream runs processors (YAML, one per string) between a producer
// func and either the strict test_output (toSink) or a consumer func.
// A consumer func's output is not where strict mode rejects failed
// messages, so the messages it gets still carry their errors.
func startStream(t *testing.T, env *service.Environment, out *sink, toSink bool, processors ...string) *stream {
	t.Helper()
	b := env.NewStreamBuilder()
	b.SetStrict(true)
	b.SetLogger(quietLogger())
	for _, p := range processors {
		require.NoError(t, b.AddProcessorYAML(p))
	}
	send, err := b.AddProducerFunc()
	require.NoError(t, err)
	st := &stream{send: send, out: out}
	if toSink {
		require.NoError(t, b.AddOutputYAML("test_output: {}"))
	} else {
		st.out = &sink{}
		require.NoError(t, b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
			st.out.add(m)
			return nil
		}))
	}
	runStream(t, b)
	return st
}

// runStream builds and runs the stream until the test ends.
func runStream(t *testing.T, b *service.StreamBuilder) {
	t.Helper()
	s, err := b.Build()
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		require.NoError(t, s.StopWithin(10*time.Second))
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stream: %v", err)
		}
	})
}

// one sends one record and returns what came out of it.
func (st *stream) one(t *testing.T, record string) (delivered []*service.Message, ack error) {
	t.Helper()
	ack = st.send(ctxT(t, 10*time.Second), service.NewMessage([]byte(record)))
	return st.out.take(), ack
}

func metaString(t *testing.T, m *service.Message, key string) string {
	t.Helper()
	v, ok := m.MetaGet(key)
	require.Truef(t, ok, "metadata %s missing", key)
	return v
}

func content(t *testing.T, m *service.Message) string {
	t.Helper()
	b, err := m.AsBytes()
	require.NoError(t, err)
	return string(b)
}
