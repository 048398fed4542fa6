package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRunKilledTopicToTopic is the crash test of a topic-to-topic
// pipeline, which runs one transaction per batch: `samsa run` reading
// topic raw through a mapping into topic out (and failing records into
// out.dlq) is killed with SIGKILL three times and restarted. Read
// committed, out and out.dlq hold each raw record's result exactly once.
func TestRunKilledTopicToTopic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const total = 60_000
	bin := samsaBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	kafka, raft, http := freeAddr(t), freeAddr(t), freeAddr(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic("raw"))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// The input: raw, filled by a plain producer while the node runs an
	// unrelated pipeline.
	var lines strings.Builder
	for i := range 10 {
		fmt.Fprintf(&lines, `{"n":%d}`+"\n", -1-i)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "seed.jsonl"), []byte(lines.String()), 0o644))
	seed := filepath.Join(dir, "seed.yaml")
	require.NoError(t, os.WriteFile(seed, []byte("name: seed\nsource:\n  file: {paths: [seed.jsonl], format: jsonl, tail: false}\ntopic:\n  name: seeded\n"), 0o644))
	r := startRun(t, bin, seed, data, kafka, raft, http)
	resp, err := adm.CreateTopic(context.Background(), 3, 1, nil, "raw")
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	for i := 0; i < total; i += 1000 {
		rs := make([]*kgo.Record, 0, 1000)
		for n := i; n < i+1000; n++ {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("u%d", n%31)), Value: fmt.Appendf(nil, `{"user":"u%d","n":%d}`, n%31, n)})
		}
		require.NoError(t, cl.ProduceSync(context.Background(), rs...).FirstErr())
	}
	r.kill(t)

	pipeline := filepath.Join(dir, "enrich.yaml")
	require.NoError(t, os.WriteFile(pipeline, []byte(`name: enrich
source:
  topic: {name: raw}
transform:
  - mapping: |
      root = if this.n % 97 == 0 { throw("unlucky") } else { this.merge({"doubled": this.n * 2}) }
  # About 5,000 records a second, so that every kill lands mid-stream.
  - sleep: {duration: '${! if this.n % 250 == 0 { "50ms" } else { "0s" } }'}
topic:
  name: out
  partitions: 2
  key: '${! json("user") }'
`), 0o644))
	committed := func(topic string) int {
		return len(readCommitted(t, kafka, topic, -1))
	}
	for _, at := range []int{total / 4, total / 2, 3 * total / 4} {
		r := startRun(t, bin, pipeline, data, kafka, raft, http)
		waitFor(t, 120*time.Second, func() bool { return storedRecords(t, adm, "out") >= int64(at) },
			"the pipeline did not write %d records", at)
		r.kill(t)
		t.Logf("killed at about %d of %d records written", at, total)
	}
	r = startRun(t, bin, pipeline, data, kafka, raft, http)
	unlucky := (total + 96) / 97
	waitFor(t, 180*time.Second, func() bool { return committed("out")+committed("out.dlq") >= total },
		"the pipeline did not commit all %d records", total)

	seen := make([]int, total)
	for _, rec := range readCommitted(t, kafka, "out", total-unlucky) {
		var v struct {
			N, Doubled int
			User       string
		}
		require.NoError(t, json.Unmarshal(rec.Value, &v), "%s", rec.Value)
		require.Equal(t, 2*v.N, v.Doubled)
		seen[v.N]++
	}
	for _, rec := range readCommitted(t, kafka, "out.dlq", unlucky) {
		var v struct{ N int }
		require.NoError(t, json.Unmarshal(rec.Value, &v), "%s", rec.Value)
		require.Zero(t, v.N%97, "%s is no dead letter", rec.Value)
		seen[v.N]++
	}
	for n, c := range seen {
		require.Equal(t, 1, c, "record %d's result read %d times", n, c)
	}

	st := ok(t, bin, kafka, "", "pipelines", "status", "enrich", "--admin", http)
	require.Contains(t, st.out, "exactly-once (transactions)")
	r.kill(t)
}

// readCommitted reads a topic from the start with read_committed: want
// records, or, with want -1, all there are once two seconds pass without
// a new one.
func readCommitted(t *testing.T, kafka, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	quiet := time.Now().Add(2 * time.Second)
	deadline := time.Now().Add(2 * time.Minute)
	for (want < 0 && time.Now().Before(quiet)) || (want >= 0 && len(out) < want) {
		require.True(t, time.Now().Before(deadline), "read %d of %d records of %s", len(out), want, topic)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if rs := fs.Records(); len(rs) > 0 {
			out = append(out, rs...)
			quiet = time.Now().Add(2 * time.Second)
		}
	}
	return out
}
