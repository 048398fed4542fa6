package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite"
)

// source is one kind of source under the crash test: the pipeline's
// source and transform, and a writer that adds item n (of user u) to the
// outside world — a row, a change, a message.
type crashSource struct {
	pipeline string                         // source: and transform: of the pipeline
	write    func(n int, user string) error // adds item n of user
	close    func()
}

// TestRunKilledWhileSQLRowsArrive is the sql source's crash test on
// SQLite, the embedded default: rows keep being inserted while samsa run
// is killed with SIGKILL three times; every row is in the topic once,
// each user's in order.
func TestRunKilledWhileSQLRowsArrive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "app.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, n INTEGER NOT NULL)`)
	require.NoError(t, err)
	runCrashTest(t, dir, crashSource{
		pipeline: `source:
  sql: {dsn: app.db, table: items, cursor: id, key: [id], lag: 1s, poll_interval: 100ms}
`,
		write: func(n int, u string) error {
			_, err := db.Exec(`INSERT INTO items (user, n) VALUES (?, ?)`, u, n)
			return err
		},
		close: func() { db.Close() },
	})
}

// TestRunKilledWhileChangesArriveIntegration is the postgres_cdc
// source's crash test: rows are inserted into a PostgreSQL table while
// samsa run is killed with SIGKILL three times.
func TestRunKilledWhileChangesArriveIntegration(t *testing.T) {
	dsn := serviceVar(t, "SAMSA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	table := fmt.Sprintf("crash_items_%d", time.Now().UnixNano()%1_000_000_000)
	_, err = db.Exec(ctx, "CREATE TABLE "+table+" (id serial PRIMARY KEY, "+`"user"`+" text NOT NULL, n int NOT NULL)")
	require.NoError(t, err)
	name := "crash_" + table
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer c.Close(ctx)
		for _, q := range []string{
			"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'samsa_pipeline_" + name + "_source'",
			"DROP PUBLICATION IF EXISTS samsa_pipeline_" + name + "_source",
			"DROP TABLE IF EXISTS " + table,
		} {
			_, err := c.Exec(ctx, q)
			require.NoError(t, err, q)
		}
	})
	runCrashTestNamed(t, t.TempDir(), name, crashSource{
		pipeline: fmt.Sprintf(`source:
  postgres_cdc: {dsn: %q, tables: [%s]}
transform:
  - mapping: 'root = this.after'
`, dsn, table),
		write: func(n int, u string) error {
			_, err := db.Exec(ctx, "INSERT INTO "+table+` ("user", n) VALUES ($1, $2)`, u, n)
			return err
		},
		close: func() { db.Close(ctx) },
	})
}

// TestRunKilledWhileMessagesArriveIntegration is the mqtt source's crash
// test: devices publish QoS 1 readings with an id while samsa run is
// killed with SIGKILL three times.
func TestRunKilledWhileMessagesArriveIntegration(t *testing.T) {
	broker := serviceVar(t, "SAMSA_TEST_MQTT", "tcp://127.0.0.1:1883")
	u, err := url.Parse(broker)
	require.NoError(t, err)
	prefix := fmt.Sprintf("crash%d", time.Now().UnixNano()%1_000_000_000)
	client := "samsa-" + prefix
	connect := func(id string, clean bool) *paho.Client {
		conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		require.NoError(t, err)
		c := paho.NewClient(paho.ClientConfig{Conn: conn})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30})
		require.NoError(t, err)
		return c
	}
	t.Cleanup(func() { _ = connect(client, true).Disconnect(&paho.Disconnect{}) })
	pub := connect(client+"-devices", true)
	var mu sync.Mutex
	runCrashTestNamed(t, t.TempDir(), prefix, crashSource{
		pipeline: fmt.Sprintf(`source:
  mqtt: {urls: [%q], topics: [%s/+/items], client_id: %s, dedupe_id: '${! json("n") }'}
`, broker, prefix, client),
		write: func(n int, user string) error {
			mu.Lock()
			defer mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := pub.Publish(ctx, &paho.Publish{Topic: prefix + "/" + user + "/items", QoS: 1,
				Payload: fmt.Appendf(nil, `{"user":%q,"n":%d}`, user, n)})
			return err
		},
		close: func() { _ = pub.Disconnect(&paho.Disconnect{}) },
	})
}

func serviceVar(t *testing.T, env, example string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("SAMSA_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is not set and SAMSA_TEST_REQUIRE_SERVICES=1", env)
		}
		t.Skipf("%s is not set (e.g. %s): skipping", env, example)
	}
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	return v
}

func runCrashTest(t *testing.T, dir string, src crashSource) {
	runCrashTestNamed(t, dir, "items", src)
}

// runCrashTestNamed runs pipeline name (topic "items", keyed by user) on
// samsa run, starts a writer adding items once the source has connected,
// kills samsa run with SIGKILL three times at 300 more items stored each,
// then stops the writer and checks that the topic holds every item once,
// each user's in the order written.
func runCrashTestNamed(t *testing.T, dir, name string, src crashSource) {
	bin := samsaBinary(t)
	pipeline := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(pipeline, fmt.Appendf(nil, `name: %s
%stopic:
  name: items
  partitions: 3
  key: '${! json("user") }'
`, name, src.pipeline), 0o644))

	data := filepath.Join(dir, "data")
	kafka, raft, http := freeAddr(t), freeAddr(t), freeAddr(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// The writer starts once the source has connected: an MQTT broker
	// keeps messages only for a session that has subscribed.
	r := startRun(t, bin, pipeline, data, kafka, raft, http)
	waitFor(t, 60*time.Second, func() bool { return sourceConnected(http) }, "the source did not connect")

	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer src.close()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond): // about 200 items/s
			}
			if err := src.write(n, fmt.Sprintf("u%d", n%7)); err != nil {
				t.Errorf("writing item %d: %v", n, err)
				return
			}
			written.Add(1)
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriter()

	for i := range 3 {
		if i > 0 {
			r = startRun(t, bin, pipeline, data, kafka, raft, http)
		}
		at := max(storedRecords(t, adm, "items"), 0) + 300
		waitFor(t, 120*time.Second, func() bool { return storedRecords(t, adm, "items") >= at },
			"the pipeline did not reach %d records", at)
		r.kill(t)
	}
	r = startRun(t, bin, pipeline, data, kafka, raft, http)
	time.Sleep(500 * time.Millisecond)
	stopWriter()
	total := written.Load()
	t.Logf("%d items written", total)
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		stored := storedRecords(t, adm, "items")
		if stored >= total {
			break
		}
		require.True(t, time.Now().Before(deadline), "the pipeline stored %d of %d items", stored, total)
	}
	time.Sleep(2 * time.Second) // anything more would be a duplicate
	require.Equal(t, total, storedRecords(t, adm, "items"))

	seen := make([]bool, total)
	last := map[string]int{}
	readAll(t, kafka, "items", int(total), func(rec *kgo.Record) {
		var v struct {
			User string `json:"user"`
			N    int    `json:"n"`
		}
		require.NoError(t, json.Unmarshal(rec.Value, &v), "%s", rec.Value)
		require.False(t, seen[v.N], "item %d stored twice", v.N)
		seen[v.N] = true
		if prev, ok := last[v.User]; ok {
			require.Greater(t, v.N, prev, "%s's items out of order", v.User)
		}
		last[v.User] = v.N
	})
	r.kill(t)
}

// sourceConnected reports whether a samsa run's pipeline source is
// connected, as its /metrics say.
func sourceConnected(httpAddr string) bool {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return regexp.MustCompile(`samsa_pipeline_input_connection_up_total\{[^}]*label="source"[^}]*\} 1`).Match(b)
}

// TestRunKilledDuringCDCSnapshotIntegration is the postgres_cdc source's
// crash test of the first snapshot: the table holds rows already, and a
// writer inserts more from before the source first connects. samsa run is
// killed with SIGKILL twice in the middle of the snapshot and once just
// after it, when the first changes streamed are stored, each time
// restarted. In the end every row is in the topic once, each user's in
// order: the ones there before and during the snapshot came from the
// snapshot or from the stream, none from both.
func TestRunKilledDuringCDCSnapshotIntegration(t *testing.T) {
	dsn := serviceVar(t, "SAMSA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	const prefilled = 60_000
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	table := fmt.Sprintf("crash_snap_%d", time.Now().UnixNano()%1_000_000_000)
	name := "crash_" + table
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer c.Close(ctx)
		for _, q := range []string{
			"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'samsa_pipeline_" + name + "_source'",
			"DROP PUBLICATION IF EXISTS samsa_pipeline_" + name + "_source",
			"DROP TABLE IF EXISTS " + table,
		} {
			_, err := c.Exec(ctx, q)
			require.NoError(t, err, q)
		}
	})
	_, err = db.Exec(ctx, "CREATE TABLE "+table+" (id serial PRIMARY KEY, "+`"user"`+" text NOT NULL, n int NOT NULL)")
	require.NoError(t, err)
	_, err = db.Exec(ctx, "INSERT INTO "+table+` ("user", n) SELECT 'u' || (n % 7), n FROM generate_series(0, $1 - 1) AS n`, prefilled)
	require.NoError(t, err)

	dir := t.TempDir()
	pipeline := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(pipeline, fmt.Appendf(nil, `name: %s
source:
  postgres_cdc: {dsn: %q, tables: [%s], batch_size: 200, checkpoint_interval: 10s}
transform:
  - mapping: 'root = this.after'
topic:
  name: items
  partitions: 3
  key: '${! json("user") }'
`, name, dsn, table), 0o644))

	// The writer starts before samsa run: rows arrive before the slot
	// exists, while it is created, during the snapshot and between runs.
	var written atomic.Int64
	written.Store(prefilled)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := prefilled; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond): // about 200 rows/s
			}
			if _, err := db.Exec(ctx, "INSERT INTO "+table+` ("user", n) VALUES ($1, $2)`, fmt.Sprintf("u%d", n%7), n); err != nil {
				t.Errorf("inserting row %d: %v", n, err)
				return
			}
			written.Add(1)
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); wg.Wait(); db.Close(ctx) })
	defer stopWriter()

	bin := samsaBinary(t)
	data := filepath.Join(dir, "data")
	kafka, raft, http := freeAddr(t), freeAddr(t), freeAddr(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// Killed at a quarter and at half of the snapshot, then once the
	// snapshot is read and the first changes streamed are stored (before
	// the next periodic checkpoint: checkpoint_interval is long).
	for _, at := range []int64{prefilled / 4, prefilled / 2, -1} {
		r := startRun(t, bin, pipeline, data, kafka, raft, http)
		if at > 0 {
			waitFor(t, 120*time.Second, func() bool { return storedRecords(t, adm, "items") >= at },
				"the pipeline did not reach %d records", at)
		} else {
			waitFor(t, 120*time.Second, func() bool { return strings.Contains(r.log.String(), "snapshot read; streaming changes") },
				"the snapshot did not end")
			time.Sleep(500 * time.Millisecond)
		}
		stored := storedRecords(t, adm, "items")
		r.kill(t)
		t.Logf("killed at %d records stored, %d rows written", stored, written.Load())
	}
	r := startRun(t, bin, pipeline, data, kafka, raft, http)
	defer r.kill(t)
	time.Sleep(500 * time.Millisecond)
	stopWriter()
	total := written.Load()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if storedRecords(t, adm, "items") >= total {
			break
		}
	}
	time.Sleep(2 * time.Second) // anything more would be a duplicate
	stored := storedRecords(t, adm, "items")

	seen := make([]int, total)
	var dups, disorders int
	last := map[string]int{}
	readAll(t, kafka, "items", int(stored), func(rec *kgo.Record) {
		var v struct {
			User string `json:"user"`
			N    int    `json:"n"`
		}
		require.NoError(t, json.Unmarshal(rec.Value, &v), "%s", rec.Value)
		require.Less(t, v.N, int(total), "%s", rec.Value)
		if seen[v.N]++; seen[v.N] > 1 {
			dups++
		}
		if prev, ok := last[v.User]; ok && v.N <= prev {
			disorders++
		}
		last[v.User] = v.N
	})
	var missing []int
	for n, c := range seen {
		if c == 0 {
			missing = append(missing, n)
		}
	}
	t.Logf("%d rows written (%d before the source started), %d records stored: %d rows missing, %d stored twice, %d out of order",
		total, prefilled, stored, len(missing), dups, disorders)
	require.Empty(t, missing, "rows missing from the topic")
	require.Zero(t, dups, "rows stored twice")
	require.Zero(t, disorders, "rows out of order")
}
