package pipelines_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samsa-io/samsa/pipelines"
	"github.com/stretchr/testify/require"
)

const eventSchema = `{"type": "record", "name": "Event", "fields": [
  {"name": "id", "type": "long"},
  {"name": "kind", "type": "string"}
]}`

const eventsPipeline = `name: events
source:
  file: {paths: [events.jsonl], format: jsonl}
validate:
  avro: {schema_file: event.avsc}
transform:
  - mapping: |
      root = if this.kind == "boom" { throw("kind boom is not allowed") } else { this }
      root.seen = true
topic:
  name: events
  partitions: 2
  key: '${! json("id") }'
sinks:
  - name: copy
    file: {path: out/events.jsonl, codec: lines}
`

func event(id int, kind string) string { return fmt.Sprintf(`{"id": %d, "kind": "%s"}`+"\n", id, kind) }

// TestBadInputGoesToDeadLetters is the bad input: a record that
// is not JSON, one that fails the schema and one the mapping throws on
// each end in the dead-letter topic with why, where and when — and the
// pipeline keeps running.
func TestBadInputGoesToDeadLetters(t *testing.T) {
	dir := t.TempDir()
	notJSON := `{"id": 3, "kind": ` + "\n"
	badSchema := `{"id": "four", "kind": "click"}` + "\n"
	writeFiles(t, dir, map[string]string{
		"pipeline.yaml": eventsPipeline,
		"event.avsc":    eventSchema,
		"events.jsonl":  event(1, "click") + event(2, "view") + notJSON + badSchema + event(5, "boom") + event(6, "click"),
	})
	n := startNode(t, nodeConfig(t, filepath.Join(dir, "data")))
	_, err := n.Pipelines().ApplyFile(context.Background(), filepath.Join(dir, "pipeline.yaml"))
	require.NoError(t, err)

	recs := readTopic(t, n.KafkaAddr(), "events", 3)
	ids := map[string]bool{}
	for _, r := range recs {
		var v struct {
			ID   int  `json:"id"`
			Seen bool `json:"seen"`
		}
		require.NoError(t, json.Unmarshal(r.Value, &v), "%s", r.Value)
		require.True(t, v.Seen, "the transform ran on %s", r.Value)
		require.Equal(t, fmt.Sprint(v.ID), string(r.Key))
		ids[string(r.Key)] = true
	}
	require.Equal(t, map[string]bool{"1": true, "2": true, "6": true}, ids)

	dead := readTopic(t, n.KafkaAddr(), "events.dlq", 3)
	line := func(s string) string { return strings.TrimSuffix(s, "\n") }
	wantOriginal := []string{line(notJSON), line(badSchema), line(event(5, "boom"))}
	wantStage := []string{"validate", "validate", "transform"}
	wantReason := []string{"JSON", `"id"`, "kind boom is not allowed"}
	for i, r := range dead {
		require.Equal(t, wantOriginal[i], string(r.Value), "a dead letter keeps the bytes the source read")
		require.Equal(t, wantStage[i], header(r, "samsa.error.stage"))
		require.Contains(t, header(r, "samsa.error.reason"), wantReason[i])
		_, err := time.Parse(time.RFC3339Nano, header(r, "samsa.error.time"))
		require.NoError(t, err, "samsa.error.time %q", header(r, "samsa.error.time"))
	}

	// It keeps running: lines appended later flow through.
	appendFile(t, filepath.Join(dir, "events.jsonl"), event(7, "view")+`not json at all`+"\n")
	readTopic(t, n.KafkaAddr(), "events", 4)
	readTopic(t, n.KafkaAddr(), "events.dlq", 4)

	// The sink wrote what the topic has, and committed it.
	waitFor(t, 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "out", "events.jsonl"))
		return bytes.Count(b, []byte("\n")) == 4
	}, "the sink did not write 4 lines")
	waitFor(t, 30*time.Second, func() bool {
		st, _ := n.Pipelines().Status("events")
		return len(st.Sinks) == 1 && st.Sinks[0].Lag == 0
	}, "the sink's lag did not reach 0")
	st, ok := n.Pipelines().Status("events")
	require.True(t, ok)
	require.Equal(t, pipelines.StateRunning, st.State)
	require.EqualValues(t, 8, st.In)
	require.EqualValues(t, 4, st.Out)
	require.EqualValues(t, 4, st.Dead)
}

// TestAPI drives the pipeline API over HTTP as the CLI does.
func TestAPI(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"event.avsc":   eventSchema,
		"events.jsonl": event(1, "click") + event(2, "view"),
	})
	n := startNode(t, nodeConfig(t, filepath.Join(dir, "data")))
	base := "http://" + n.HTTPAddr() + "/v1/pipelines"
	call := func(method, url string, body any) (int, []byte) {
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, url, rd)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}

	// Mistakes: 400 with every problem.
	bad := strings.Replace(eventsPipeline, "partitions: 2", "partitons: 2", 1)
	bad = strings.Replace(bad, "format: jsonl", "format: xml", 1)
	code, body := call("POST", base, pipelines.ApplyRequest{File: "p.yaml", Dir: dir, YAML: bad})
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	var e pipelines.ErrorResponse
	require.NoError(t, json.Unmarshal(body, &e))
	require.Len(t, e.Problems, 2, "%s", body)
	require.Equal(t, "source.file.format", e.Problems[0].Field)
	require.Equal(t, "topic.partitons", e.Problems[1].Field)

	code, body = call("POST", base, pipelines.ApplyRequest{File: "p.yaml", Dir: dir, YAML: eventsPipeline})
	require.Equal(t, http.StatusOK, code, "%s", body)
	var st pipelines.Status
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, "events", st.Name)
	require.Equal(t, pipelines.StateRunning, st.State)
	version := st.Version

	// The same file again changes nothing.
	code, body = call("POST", base, pipelines.ApplyRequest{File: "p.yaml", Dir: dir, YAML: eventsPipeline})
	require.Equal(t, http.StatusOK, code, "%s", body)
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, version, st.Version)

	readTopic(t, n.KafkaAddr(), "events", 2)
	waitFor(t, 10*time.Second, func() bool {
		code, body := call("GET", base+"/events", nil)
		require.Equal(t, http.StatusOK, code)
		require.NoError(t, json.Unmarshal(body, &st))
		return st.In == 2 && st.Out == 2
	}, "status did not count 2 records in and out")

	code, body = call("GET", base, nil)
	require.Equal(t, http.StatusOK, code)
	var list []pipelines.Status
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list, 1)

	// Benthos metrics reach /metrics, labelled by pipeline.
	code, body = call("GET", "http://"+n.HTTPAddr()+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `samsa_pipeline_input_received_total{label="source",path="root.input",pipeline="events",stream="source"} 2`)

	code, _ = call("DELETE", base+"/events", nil)
	require.Equal(t, http.StatusNoContent, code)
	code, _ = call("GET", base+"/events", nil)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = call("DELETE", base+"/events", nil)
	require.Equal(t, http.StatusNotFound, code)
}

// TestStoredPipelineResumes restarts the node: the stored pipeline starts
// again by itself and picks up where it stopped — lines appended while it
// was down arrive, none twice.
func TestStoredPipelineResumes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"pipeline.yaml": eventsPipeline,
		"event.avsc":    eventSchema,
		"events.jsonl":  event(1, "click") + event(2, "view"),
	})
	cfg := nodeConfig(t, filepath.Join(dir, "data"))
	n := startNode(t, cfg)
	_, err := n.Pipelines().ApplyFile(context.Background(), filepath.Join(dir, "pipeline.yaml"))
	require.NoError(t, err)
	readTopic(t, n.KafkaAddr(), "events", 2)
	require.NoError(t, n.Stop(context.Background()))

	appendFile(t, filepath.Join(dir, "events.jsonl"), event(3, "click")+event(4, "view"))
	n = startNode(t, cfg)
	recs := readTopic(t, n.KafkaAddr(), "events", 4)
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.Key)]++
	}
	require.Equal(t, map[string]int{"1": 1, "2": 1, "3": 1, "4": 1}, seen)
	st, ok := n.Pipelines().Status("events")
	require.True(t, ok)
	require.Equal(t, pipelines.StateRunning, st.State)
}

// TestCoreSinks: Benthos core's outputs work as sinks — an http_client
// posting each record to a webhook, a socket writing lines to a TCP
// server, and Samsa's rotating samsa_file — each reading the topic on its
// own.
func TestCoreSinks(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var posted []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posted = append(posted, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	received := make(chan string, 100)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			received <- sc.Text()
		}
	}()

	writeFiles(t, dir, map[string]string{
		"pipeline.yaml": fmt.Sprintf(`name: hooks
source:
  file: {paths: [events.jsonl], format: jsonl}
topic: {name: hooks}
sinks:
  - name: webhook
    http_client: {url: %s/events, verb: POST}
  - name: socket
    socket: {network: tcp, address: %s, codec: lines}
  - name: archive
    samsa_file: {path: out/hooks.jsonl, rotate_size: 1KiB}
`, hook.URL, ln.Addr()),
		"events.jsonl": event(1, "click") + event(2, "view") + event(3, "click"),
	})
	n := startNode(t, nodeConfig(t, filepath.Join(dir, "data")))
	_, err = n.Pipelines().ApplyFile(context.Background(), filepath.Join(dir, "pipeline.yaml"))
	require.NoError(t, err)

	want := []string{`{"id": 1, "kind": "click"}`, `{"id": 2, "kind": "view"}`, `{"id": 3, "kind": "click"}`}
	waitFor(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posted) == 3
	}, "the webhook did not get 3 posts")
	mu.Lock()
	require.Equal(t, want, posted)
	mu.Unlock()
	for _, w := range want {
		select {
		case got := <-received:
			require.Equal(t, w, got)
		case <-time.After(30 * time.Second):
			t.Fatal("the socket sink sent nothing")
		}
	}
	waitFor(t, 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "out", "hooks.jsonl"))
		return string(b) == strings.Join(want, "\n")+"\n"
	}, "the file sink did not write the 3 records")
}
