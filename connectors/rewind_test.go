package connectors

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/transforms"
	"github.com/stretchr/testify/require"
)

// flaky is a test processor that fails every 97th play the first time it
// sees it: a transient failure in the middle of a stream.
type flaky struct {
	mu   sync.Mutex
	seen map[int]bool
}

func (f *flaky) Process(_ context.Context, m *service.Message) (service.MessageBatch, error) {
	b, err := m.AsBytes()
	if err != nil {
		return nil, err
	}
	var p play
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.N%97 == 0 && !f.seen[p.N] {
		f.seen[p.N] = true
		return nil, fmt.Errorf("play %d: transient failure", p.N)
	}
	return service.MessageBatch{m}, nil
}

func (f *flaky) Close(context.Context) error { return nil }

// TestFileRewindAfterFailure keeps several batches in flight through a
// stage that lets records fail (on_error: fail) now and then: each failure
// sends the file input back to its acknowledged position, the batches
// read after the failed one are not written ahead of it, and the topic
// ends with every line once, each user's in order.
func TestFileRewindAfterFailure(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	lines, _ := writePlays(t, dir, 2, 1500, 7)
	e := env(t, n.log)
	require.NoError(t, transforms.Register(e, transforms.Deps{Logger: quietLogger()}))
	f := &flaky{seen: map[int]bool{}}
	require.NoError(t, e.RegisterProcessor("flaky", service.NewConfigSpec(), func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
		return f, nil
	}))
	st := startStream(t, e, fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    format: jsonl
    source_id: rewind
    tail: false
    batch_size: 10
    max_in_flight: 4
pipeline:
  threads: 1
  processors:
    - samsa_stage: {name: flaky, on_error: fail, processors: [{flaky: {}}]}
output:
  samsa_topic:
    topic: rewind
    partitions: 3
    key: '${! json("user") }'
error_handling: {strict: true}
`, filepath.Join(dir, "*.jsonl")))
	st.wait(t, 2*time.Minute)
	require.NoError(t, st.err)
	f.mu.Lock()
	require.GreaterOrEqual(t, len(f.seen), 10, "failures injected")
	f.mu.Unlock()
	checkExactlyOnce(t, n.log, "rewind", 3, lines, true)
}
