package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runner is a `samsa run` child process.
type runner struct {
	kafka, http string
	cmd         *exec.Cmd
	log         *lockedBuffer
	done        chan error
}

// startRun runs `samsa run file` on dataDir and waits until its
// pipeline runs.
func startRun(t *testing.T, bin, file, dataDir, kafka, raft, http string) *runner {
	t.Helper()
	r := &runner{kafka: kafka, http: http, log: &lockedBuffer{}, done: make(chan error, 1)}
	r.cmd = exec.Command(bin, "run", file, "--data-dir", dataDir, "--kafka-addr", kafka,
		"--raft-addr", raft, "--http-addr", http)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	require.NoError(t, r.cmd.Start())
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			t.Logf("samsa run log:\n%s", r.log)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(r.log.String(), "is running") {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("samsa run exited: %v\n%s", err, r.log)
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "samsa run did not start within 60 s:\n%s", r.log)
	}
	return r
}

func (r *runner) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGKILL))
	<-r.done
	r.done <- nil
}

// storedRecords is how many records a topic holds, by its offsets.
func storedRecords(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return -1
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n
}

// TestRunKilledExactlyOnce is the exactly-once ingest: `samsa run`
// is killed with SIGKILL twice in the middle of a large file, restarted
// each time on the same data, and in the end every valid line is in the
// topic exactly once and every invalid one in the dead-letter topic
// exactly once.
func TestRunKilledExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := samsaBinary(t)
	dir := t.TempDir()
	const lines = 300_000
	valid, invalid := writeEvents(t, filepath.Join(dir, "events.jsonl"), lines)
	pipeline := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "event.avsc"), []byte(`{"type": "record", "name": "Event",
  "fields": [{"name": "id", "type": "long"}, {"name": "user", "type": "string"}, {"name": "amount", "type": "long"}]}`), 0o644))
	require.NoError(t, os.WriteFile(pipeline, []byte(`name: events
source:
  file: {paths: [events.jsonl], format: jsonl, batch_size: 500}
validate:
  avro: {schema_file: event.avsc}
transform:
  - mutation: 'root.cents = this.amount * 100'
topic:
  name: events
  partitions: 3
  key: '${! json("id") }'
`), 0o644))
	data := filepath.Join(dir, "data")
	kafka, raft, http := freeAddr(t), freeAddr(t), freeAddr(t)

	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// Kill it twice, at a third and at two thirds of the file.
	for _, at := range []int64{int64(valid) / 3, 2 * int64(valid) / 3} {
		r := startRun(t, bin, pipeline, data, kafka, raft, http)
		var stored int64
		waitFor(t, 120*time.Second, func() bool { stored = storedRecords(t, adm, "events"); return stored >= at },
			"the pipeline did not store %d records", at)
		r.kill(t)
		t.Logf("killed with %d of %d records stored", stored, valid)
	}
	r := startRun(t, bin, pipeline, data, kafka, raft, http)
	waitFor(t, 120*time.Second, func() bool {
		return storedRecords(t, adm, "events") >= int64(valid) && storedRecords(t, adm, "events.dlq") >= int64(invalid)
	}, "the pipeline did not store everything")
	time.Sleep(time.Second) // anything more would be a duplicate
	require.EqualValues(t, valid, storedRecords(t, adm, "events"))
	require.EqualValues(t, invalid, storedRecords(t, adm, "events.dlq"))

	// Read it all back: each id once.
	seen := make([]bool, lines)
	readAll(t, kafka, "events", valid, func(rec *kgo.Record) {
		var e struct {
			ID    int   `json:"id"`
			Cents int64 `json:"cents"`
		}
		require.NoError(t, json.Unmarshal(rec.Value, &e), "%s", rec.Value)
		require.False(t, seen[e.ID], "id %d stored twice", e.ID)
		seen[e.ID] = true
		require.Positive(t, e.Cents)
	})
	readAll(t, kafka, "events.dlq", invalid, func(rec *kgo.Record) {
		id := strings.TrimPrefix(strings.SplitN(string(rec.Value), ",", 2)[0], `{"id":`)
		var n int
		_, err := fmt.Sscanf(id, "%d", &n)
		require.NoError(t, err, "%s", rec.Value)
		require.False(t, seen[n], "dead letter %d stored twice", n)
		seen[n] = true
	})
	for id, ok := range seen {
		require.True(t, ok, "line %d is in neither topic", id)
	}
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-r.done, "samsa run should exit 0 on SIGTERM")
	r.done <- nil
}

// writeEvents writes n JSON lines with ids 0..n-1; one in fifty is
// invalid (a string amount, or cut short).
func writeEvents(t *testing.T, path string, n int) (valid, invalid int) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		switch {
		case i%100 == 7:
			fmt.Fprintf(w, `{"id":%d,"user":"u%d","amount":"lots"}`+"\n", i, i%97)
			invalid++
		case i%100 == 57:
			fmt.Fprintf(w, `{"id":%d,"user":"u%d","amo`+"\n", i, i%97)
			invalid++
		default:
			fmt.Fprintf(w, `{"id":%d,"user":"u%d","amount":%d}`+"\n", i, i%97, 1+rng.IntN(10000))
			valid++
		}
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
	return valid, invalid
}

// readAll reads want records of a topic from the start.
func readAll(t *testing.T, kafka, topic string, want int, each func(*kgo.Record)) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records of %s", got, want, topic)
		fs.EachRecord(func(r *kgo.Record) {
			got++
			each(r)
		})
	}
}

// TestPipelinesCLI runs the pipelines commands against `samsa serve`:
// lint's five messages, apply, list, status and delete, and the errors.
func TestPipelinesCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := samsaBinary(t)
	r := samsa(t, bin, "", "", "pipelines", "lint", "../../pipelines/testdata/five_mistakes.yaml")
	require.Equal(t, 1, r.code)
	require.Len(t, lines(r.out), 5, r.out)
	require.Contains(t, r.out, `five_mistakes.yaml:13: topic.partitons: unknown field; did you mean "partitions"?`)
	r = ok(t, bin, "", "", "pipelines", "lint", "../../examples/quickstart/pipeline.yaml")
	require.Contains(t, r.out, "pipeline.yaml: ok")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.txt"), []byte("hello\nworld\n"), 0o644))
	file := filepath.Join(dir, "greetings.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`name: greetings
source:
  file: {paths: [in.txt]}
transform:
  - mapping: 'root = content().uppercase()'
topic: {name: greetings}
sinks:
  - name: out
    file: {path: out.txt, codec: lines}
`), 0o644))

	admin := freeAddr(t)
	s := &server{kafka: freeAddr(t), log: &lockedBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--kafka-addr", s.kafka,
		"--raft-addr", freeAddr(t), "--http-addr", admin)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	require.NoError(t, s.cmd.Start())
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if !s.stopped {
			s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	waitFor(t, 60*time.Second, func() bool {
		c, err := net.Dial("tcp", admin)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "samsa serve did not answer on %s", admin)

	r = ok(t, bin, s.kafka, "", "pipelines", "apply", file, "--admin", admin)
	require.Contains(t, r.out, "pipeline greetings applied (version 1): running into topic greetings")
	got := lines(ok(t, bin, s.kafka, "", "consume", "greetings", "--from-beginning", "--max", "2").out)
	require.ElementsMatch(t, []string{"HELLO", "WORLD"}, got)
	waitFor(t, 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "out.txt"))
		return string(b) == "HELLO\nWORLD\n"
	}, "the sink did not write out.txt")

	r = ok(t, bin, s.kafka, "", "pipelines", "list", "--admin", admin)
	require.Contains(t, r.out, "greetings")
	require.Contains(t, r.out, "running")
	var st struct {
		State string `json:"state"`
		In    int    `json:"records_in"`
		Out   int    `json:"records_out"`
	}
	waitFor(t, 10*time.Second, func() bool {
		r = ok(t, bin, s.kafka, "", "pipelines", "status", "greetings", "--admin", admin, "-o", "json")
		require.NoError(t, json.Unmarshal([]byte(r.out), &st), r.out)
		return st.In == 2 && st.Out == 2
	}, "status: %+v", &st)
	require.Contains(t, ok(t, bin, s.kafka, "", "pipelines", "status", "greetings", "--admin", admin).out, "lag 0")

	// A file with a mistake: the server says what and where.
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: bad\nsource: {file: {paths: [x]}}\ntopic: {name: bad, partitions: 0}\n"), 0o644))
	r = samsa(t, bin, s.kafka, "", "pipelines", "apply", bad, "--admin", admin)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, "bad.yaml:3: topic.partitions: 0 is outside 1..10000")

	require.Contains(t, ok(t, bin, s.kafka, "", "pipelines", "delete", "greetings", "--admin", admin).out, "deleted")
	r = samsa(t, bin, s.kafka, "", "pipelines", "status", "greetings", "--admin", admin)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, "no such pipeline")

	r = samsa(t, bin, s.kafka, "", "pipelines", "list", "--admin", freeAddr(t))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.err, "samsa serve")
	s.stop(t)
}
