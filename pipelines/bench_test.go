package pipelines_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/engine"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/samsa-io/samsa/pipelines"
	"github.com/stretchr/testify/require"
)

// The benchmarks of the quickstart's shape: file → validate (Avro) →
// transform (Bloblang) → topic, beside Benthos alone moving the same file
// through the same mapping into a file with the same batching, in the
// same run; and the end-to-end latency from a line appended to its
// arrival at a sink. scripts/bench-pipelines.sh runs them in interleaved
// rounds and prints medians and ratios. SAMSA_BENCH_DIR chooses the disk.

const benchLines = 200_000

const playMapping = `root.minutes = (this.ms_played / 600).round() / 100
root.skipped = this.ms_played < 30000`

func benchDir(b *testing.B) string {
	if d := os.Getenv("SAMSA_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "pipelines-")
		require.NoError(b, err)
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// writePlays writes n quickstart-like plays (about 130 bytes each).
func writePlays(b testing.TB, path string, n int) {
	f, err := os.Create(path)
	require.NoError(b, err)
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range n {
		writePlay(w, rng, i, 0)
	}
	require.NoError(b, w.Flush())
	require.NoError(b, f.Close())
}

func writePlay(w *bufio.Writer, rng *rand.Rand, i int, sentNs int64) {
	fmt.Fprintf(w, `{"user":"user%03d","track":"Track number %d","artist":"Artist %d","played_at":"2026-11-20T07:%02d:%02dZ","ms_played":%d,"sent":%d}`+"\n",
		rng.IntN(500), rng.IntN(10000), rng.IntN(300), i/60%60, i%60, 1000+rng.IntN(300000), sentNs)
}

// The plays carry a "sent" field the schema lacks: the Avro check
// rejects unknown fields, so the schema here has it.
const playSchemaSent = `{"type": "record", "name": "Play", "fields": [
  {"name": "user", "type": "string"}, {"name": "track", "type": "string"},
  {"name": "artist", "type": "string"}, {"name": "played_at", "type": "string"},
  {"name": "ms_played", "type": "long"}, {"name": "sent", "type": "long"}]}`

// benchNode starts a node with a data directory of its own under dir: a
// benchmark function runs more than once, each time on new ports.
func benchNode(b *testing.B, dir string) *engine.Node {
	data, err := os.MkdirTemp(dir, "data-")
	require.NoError(b, err)
	cfg := nodeConfig(b, data)
	return startNode(b, cfg)
}

// BenchmarkQuickstartShape reports records/s of file → validate →
// transform → topic (samsa), of Benthos alone doing file → mapping → file
// (benthos), and of Benthos alone with the same validation stage too
// (benthos-validate), on benchLines lines per iteration.
func BenchmarkQuickstartShape(b *testing.B) {
	dir := benchDir(b)
	input := filepath.Join(dir, "plays.jsonl")
	writePlays(b, input, benchLines)
	schema := filepath.Join(dir, "play.avsc")
	require.NoError(b, os.WriteFile(schema, []byte(playSchemaSent), 0o644))

	b.Run("samsa", func(b *testing.B) {
		n := benchNode(b, dir)
		var total time.Duration
		for i := range b.N {
			p, err := pipelines.Parse(filepath.Join(dir, "bench.yaml"), fmt.Appendf(nil, `name: bench%d
source:
  file: {paths: [%s], format: jsonl, tail: false}
validate:
  avro: {schema_file: %s}
transform:
  - mutation: |
%s
topic: {name: plays%d, partitions: 2, key: '${! json("user") }'}
`, i, input, schema, indent(playMapping, "      "), i))
			require.NoError(b, err)
			// The topics are made first: creating one waits for an election.
			for _, t := range []replog.TopicSpec{{Name: p.Topic.Name, Partitions: 2, ReplicationFactor: 1}, {Name: p.DeadLetterTopic(), Partitions: 1, ReplicationFactor: 1}} {
				require.NoError(b, n.Log().CreateTopic(context.Background(), t, false))
			}
			start := time.Now()
			require.NoError(b, n.Pipelines().Run(context.Background(), p))
			for {
				st, _ := n.Pipelines().Status(p.Name)
				require.NotEqual(b, pipelines.StateFailed, st.State, st.Error)
				if st.Out == benchLines {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			total += time.Since(start)
		}
		b.ReportMetric(float64(benchLines*b.N)/total.Seconds(), "records/s")
	})
	for _, validate := range []bool{false, true} {
		name := "benthos"
		if validate {
			name = "benthos-validate"
		}
		b.Run(name, func(b *testing.B) {
			env, err := pipelines.NewEnvironment(pipelines.Deps{Logger: testLogger()})
			require.NoError(b, err)
			procs := fmt.Sprintf("    - mutation: |\n%s\n", indent(playMapping, "        "))
			if validate {
				procs = fmt.Sprintf(`    - samsa_stage:
        name: validate
        processors: [{samsa_avro: {schema_file: %s}}]
    - samsa_stage:
        name: transform
        processors:
%s`, schema, indent(procs, "          "))
			}
			var total time.Duration
			for i := range b.N {
				sb := env.NewStreamBuilder()
				sb.SetLogger(testLogger())
				out := filepath.Join(dir, fmt.Sprintf("out-%s-%d.jsonl", name, i))
				require.NoError(b, sb.SetYAML(fmt.Sprintf(`
input:
  broker:
    inputs: [{file: {paths: [%s], scanner: {lines: {}}}}]
    batching: {count: 1024, period: 100ms}
pipeline:
  threads: 1
  processors:
%s
output:
  file: {path: %s, codec: lines}
error_handling: {strict: true}
`, input, procs, out)))
				s, err := sb.Build()
				require.NoError(b, err)
				start := time.Now()
				require.NoError(b, s.Run(context.Background()))
				total += time.Since(start)
				require.Equal(b, benchLines, countLines(b, out))
				os.Remove(out)
			}
			b.ReportMetric(float64(benchLines*b.N)/total.Seconds(), "records/s")
		})
	}
}

func indent(s, prefix string) string {
	var out string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out += prefix + sc.Text() + "\n"
	}
	return out[:len(out)-1]
}

func countLines(b testing.TB, path string) int {
	f, err := os.Open(path)
	require.NoError(b, err)
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}

// BenchmarkEndToEndLatency appends lines to a file at 10,000 records/s,
// each carrying the time it was written, and measures when each reaches
// the pipeline's sink, after the topic. b.N is the number of records.
func BenchmarkEndToEndLatency(b *testing.B) {
	const rate = 10_000
	dir := benchDir(b)
	input := filepath.Join(dir, "live.jsonl")
	require.NoError(b, os.WriteFile(input, nil, 0o644))
	schema := filepath.Join(dir, "play.avsc")
	require.NoError(b, os.WriteFile(schema, []byte(playSchemaSent), 0o644))
	n := benchNode(b, dir)

	var mu sync.Mutex
	hist := hdrhistogram.New(1, int64(time.Minute), 3)
	arrived := 0
	err := n.Pipelines().Env().RegisterOutput("bench_latency", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.Output, int, error) {
			return latencyOutput(func(sent int64) {
				mu.Lock()
				defer mu.Unlock()
				hist.RecordValue(max(1, time.Now().UnixNano()-sent))
				arrived++
			}), 1, nil
		})
	require.NoError(b, err)
	p, err := pipelines.Parse(filepath.Join(dir, "live.yaml"), fmt.Appendf(nil, `name: live
source:
  file: {paths: [%s], format: jsonl}
validate:
  avro: {schema_file: %s}
transform:
  - mutation: |
%s
topic: {name: live, partitions: 2, key: '${! json("user") }'}
sinks:
  - name: latency
    bench_latency: {}
`, input, schema, indent(playMapping, "      ")))
	require.NoError(b, err)
	require.NoError(b, n.Pipelines().Run(context.Background(), p))

	f, err := os.OpenFile(input, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(b, err)
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(5, 6))
	b.ResetTimer()
	// Every millisecond, the lines due by then, written at once.
	start := time.Now()
	for i := 0; i < b.N; {
		due := min(b.N, int(time.Since(start).Seconds()*rate)+1)
		now := time.Now().UnixNano()
		for ; i < due; i++ {
			writePlay(w, rng, i, now)
		}
		require.NoError(b, w.Flush())
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		done := arrived >= b.N
		mu.Unlock()
		if done {
			break
		}
		require.True(b, time.Now().Before(deadline), "only %d of %d records arrived", arrived, b.N)
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	b.ReportMetric(float64(hist.ValueAtQuantile(50))/1e6, "p50-ms")
	b.ReportMetric(float64(hist.ValueAtQuantile(99))/1e6, "p99-ms")
	b.ReportMetric(float64(hist.Max())/1e6, "max-ms")
}

// latencyOutput calls arrived with each record's sent time.
type latencyOutput func(sent int64)

func (latencyOutput) Connect(context.Context) error { return nil }
func (latencyOutput) Close(context.Context) error   { return nil }
func (o latencyOutput) Write(_ context.Context, m *service.Message) error {
	b, err := m.AsBytes()
	if err != nil {
		return err
	}
	var v struct {
		Sent int64 `json:"sent"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o(v.Sent)
	return nil
}
