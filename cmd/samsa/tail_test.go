package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRunKilledWhileTailing is the file source's crash test: a writer
// appends lines to a log file, rotating it by rename now and then, while
// `samsa run` tails it and is killed with SIGKILL three times and
// restarted. In the end the topic holds every line exactly once, each
// user's lines in the order they were written.
func TestRunKilledWhileTailing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := samsaBinary(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	require.NoError(t, os.Mkdir(logs, 0o755))
	pipeline := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(pipeline, []byte(`name: tail
source:
  file: {paths: [logs/app*.log], format: jsonl, batch_size: 200}
topic:
  name: tail
  partitions: 3
  key: '${! json("user") }'
`), 0o644))

	// The writer: app.log, renamed to app.<n>.log every 5,000 lines (the
	// glob still matches it, and the source finishes it before moving on).
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		path := filepath.Join(logs, "app.log")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { f.Close() }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i > 0 && i%5000 == 0 {
				f.Close()
				if err := os.Rename(path, filepath.Join(logs, fmt.Sprintf("app.%03d.log", i/5000))); err != nil {
					t.Error(err)
					return
				}
				if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
					t.Error(err)
					return
				}
			}
			if _, err := fmt.Fprintf(f, `{"user":"u%d","n":%d}`+"\n", i%17, i); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // about 20,000 lines/s at most
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	data := filepath.Join(dir, "data")
	kafka, raft, http := freeAddr(t), freeAddr(t), freeAddr(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	for range 3 {
		r := startRun(t, bin, pipeline, data, kafka, raft, http)
		at := storedRecords(t, adm, "tail") + 8000
		waitFor(t, 120*time.Second, func() bool { return storedRecords(t, adm, "tail") >= at },
			"the pipeline did not reach %d records", at)
		r.kill(t)
	}
	r := startRun(t, bin, pipeline, data, kafka, raft, http)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	total := written.Load()
	t.Logf("%d lines written across %d files", total, total/5000+1)
	waitFor(t, 120*time.Second, func() bool { return storedRecords(t, adm, "tail") >= total },
		"the pipeline did not store all %d lines", total)
	time.Sleep(time.Second) // anything more would be a duplicate
	require.Equal(t, total, storedRecords(t, adm, "tail"))

	seen := make([]bool, total)
	last := map[string]int{}
	readAll(t, kafka, "tail", int(total), func(rec *kgo.Record) {
		var l struct {
			User string `json:"user"`
			N    int    `json:"n"`
		}
		require.NoError(t, json.Unmarshal(rec.Value, &l), "%s", rec.Value)
		require.False(t, seen[l.N], "line %d stored twice", l.N)
		seen[l.N] = true
		if prev, ok := last[l.User]; ok {
			require.Greater(t, l.N, prev, "%s's lines out of order", l.User)
		}
		last[l.User] = l.N
	})
	r.kill(t)
}
