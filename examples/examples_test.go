// Package examples runs every example pipeline on a real node and checks
// what it stored: the topic (read with a Kafka client), the dead letters
// and the sink's output.
package examples

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"database/sql"
	"net/http"
	"net/url"
	"regexp"

	"github.com/eclipse/paho.golang/paho"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/samsa-io/samsa/engine"
	"github.com/samsa-io/samsa/pipelines"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestExamplesLint checks every example file as `samsa pipelines lint`
// does.
func TestExamplesLint(t *testing.T) {
	files, err := filepath.Glob("*/pipeline.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	env, err := pipelines.NewEnvironment(pipelines.Deps{Logger: testLogger()})
	require.NoError(t, err)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = env.Lint(f, data)
		require.NoError(t, err, f)
	}
}

// TestQuickstart plays the recorded playlist: 60 plays in the topic keyed
// by user and enriched, the 4 broken lines in plays.dlq, the archive sink
// holding what the topic holds.
func TestQuickstart(t *testing.T) {
	dir, n := runExample(t, "quickstart")
	plays := readTopic(t, n, "plays", 60)
	var values []string
	for _, r := range plays {
		var p struct {
			User     string   `json:"user"`
			PlayedAt string   `json:"played_at"`
			MsPlayed int64    `json:"ms_played"`
			Minutes  *float64 `json:"minutes"`
			Skipped  *bool    `json:"skipped"`
		}
		require.NoError(t, json.Unmarshal(r.Value, &p), "%s", r.Value)
		require.Equal(t, p.User, string(r.Key), "keyed by user")
		require.NotNil(t, p.Minutes, "%s", r.Value)
		require.InDelta(t, float64(p.MsPlayed)/60000, *p.Minutes, 0.006)
		require.NotNil(t, p.Skipped)
		require.Equal(t, p.MsPlayed < 30000, *p.Skipped)
		_, err := time.Parse(time.RFC3339, p.PlayedAt)
		require.NoError(t, err)
		values = append(values, string(r.Value))
	}
	dead := readTopic(t, n, "plays.dlq", 4)
	requireDeadLetters(t, dead, []deadLetter{
		{"validate", "ms_pla"},
		{"validate", "ms_played"},
		{"validate", "artist"},
		{"transform", "last tuesday"},
	})
	requireSameLines(t, values, sinkLines(t, filepath.Join(dir, "out", "plays.jsonl"), 60))
}

// TestIoT: 200 readings stored, a sensor glitch, a reading without its
// temperature and a torn line in the dead letters, and a rollup per
// device that accounts for every reading.
func TestIoT(t *testing.T) {
	dir, n := runExample(t, "iot")
	readTopic(t, n, "readings", 200)
	dead := readTopic(t, n, "readings.dlq", 3)
	requireDeadLetters(t, dead, []deadLetter{
		{"transform", "850"},
		{"validate", "temperature_c"},
		{"validate", ""},
	})
	path := filepath.Join(dir, "out", "rollup.jsonl")
	counts := map[string]int{}
	waitFor(t, 30*time.Second, func() bool {
		clear(counts)
		for _, line := range readLines(t, path) {
			var r struct {
				Device      string `json:"device"`
				Readings    int    `json:"readings"`
				Temperature struct {
					Min, Max, Mean float64
				} `json:"temperature_c"`
			}
			require.NoError(t, json.Unmarshal([]byte(line), &r), line)
			require.LessOrEqual(t, r.Temperature.Min, r.Temperature.Mean+0.01, line)
			require.LessOrEqual(t, r.Temperature.Mean, r.Temperature.Max+0.01, line)
			counts[r.Device] += r.Readings
		}
		return len(counts) == 4 && counts["attic"]+counts["cellar"]+counts["greenhouse-1"]+counts["greenhouse-2"] == 200
	}, "the rollup did not account for 200 readings: %v", counts)
	require.Equal(t, map[string]int{"attic": 50, "cellar": 50, "greenhouse-1": 50, "greenhouse-2": 50}, counts)
}

// TestTransactions: 7 retried deliveries dropped by the dedupe stage, an
// unknown currency and a negative amount in the dead letters, 120
// distinct transactions in the topic and the ledger.
func TestTransactions(t *testing.T) {
	dir, n := runExample(t, "transactions")
	txns := readTopic(t, n, "transactions", 120)
	ids := map[string]bool{}
	for _, r := range txns {
		var tx struct {
			ID      string `json:"txn_id"`
			Account string `json:"account"`
			Amount  string `json:"amount"`
		}
		require.NoError(t, json.Unmarshal(r.Value, &tx), "%s", r.Value)
		require.False(t, ids[tx.ID], "%s stored twice", tx.ID)
		ids[tx.ID] = true
		require.Equal(t, tx.Account, string(r.Key))
		require.Regexp(t, `^\d+\.\d\d$`, tx.Amount)
	}
	dead := readTopic(t, n, "transactions.dlq", 2)
	requireDeadLetters(t, dead, []deadLetter{
		{"validate", "XXX"},
		{"transform", "amount_cents must be positive"},
	})
	ledger := sinkLines(t, filepath.Join(dir, "out", "ledger.jsonl"), 120)
	var values []string
	for _, r := range txns {
		values = append(values, string(r.Value))
	}
	requireSameLines(t, values, ledger)
}

// runExample copies an example to a scratch folder (its sink writes
// there), starts a node and applies the example's pipeline.
func runExample(t *testing.T, name string) (string, *engine.Node) {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(name)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(name, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := engine.Start(ctx, engine.Config{
		DataDir:   filepath.Join(dir, "data"),
		KafkaAddr: freeAddr(t), HTTPAddr: freeAddr(t), RaftAddr: freeAddr(t),
		Logger: testLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	_, err = n.Pipelines().ApplyFile(ctx, filepath.Join(dir, "pipeline.yaml"))
	require.NoError(t, err)
	return dir, n
}

type deadLetter struct{ stage, reason string }

func requireDeadLetters(t *testing.T, got []*kgo.Record, want []deadLetter) {
	t.Helper()
	for i, r := range got {
		require.Equal(t, want[i].stage, header(r, "samsa.error.stage"), "dead letter %d: %s", i, r.Value)
		require.Contains(t, header(r, "samsa.error.reason")+" "+string(r.Value), want[i].reason, "dead letter %d", i)
		require.NotEmpty(t, header(r, "samsa.error.reason"))
		_, err := time.Parse(time.RFC3339Nano, header(r, "samsa.error.time"))
		require.NoError(t, err)
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// readTopic reads a topic from the start with franz-go until it has want
// records, and fails if more arrive soon after.
func readTopic(t *testing.T, n *engine.Node, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var got []*kgo.Record
	deadline := time.Now().Add(60 * time.Second)
	var settle time.Time
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
		switch {
		case len(got) > want:
			t.Fatalf("topic %s: %d records, want %d", topic, len(got), want)
		case len(got) == want && settle.IsZero():
			settle = time.Now().Add(500 * time.Millisecond)
		case len(got) == want && time.Now().After(settle):
			return got
		case time.Now().After(deadline):
			t.Fatalf("topic %s: %d records after 60 s, want %d", topic, len(got), want)
		}
	}
}

// sinkLines waits until a sink's file has want lines.
func sinkLines(t *testing.T, path string, want int) []string {
	t.Helper()
	var got []string
	waitFor(t, 30*time.Second, func() bool {
		got = readLines(t, path)
		return len(got) >= want
	}, "%s: fewer than %d lines", path, want)
	time.Sleep(300 * time.Millisecond)
	got = readLines(t, path)
	require.Len(t, got, want, path)
	return got
}

func readLines(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func requireSameLines(t *testing.T, want, got []string) {
	t.Helper()
	want, got = append([]string(nil), want...), append([]string(nil), got...)
	sort.Strings(want)
	sort.Strings(got)
	require.Equal(t, want, got)
}

func waitFor(t *testing.T, total time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func testLogger() *slog.Logger {
	if os.Getenv("SAMSA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// service returns the address of a test service from its variable, or
// skips the test (fails it under SAMSA_TEST_REQUIRE_SERVICES=1).
func service(t *testing.T, env, example string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("SAMSA_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is not set and SAMSA_TEST_REQUIRE_SERVICES=1", env)
		}
		t.Skipf("%s is not set (e.g. %s): skipping", env, example)
	}
	return v
}

// TestOrdersCDCIntegration runs examples/orders-cdc against PostgreSQL:
// the three seeded orders arrive as a snapshot, then an update, a delete
// and an insert as they happen; the topic is keyed by order id and the
// rotating file sink holds the same six changes.
func TestOrdersCDCIntegration(t *testing.T) {
	dsn := service(t, "SAMSA_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer db.Close(context.Background())
	table := fmt.Sprintf("public.orders_%d", time.Now().UnixNano()%1_000_000_000)
	seed, err := os.ReadFile("orders-cdc/seed.sql")
	require.NoError(t, err)
	_, err = db.Exec(ctx, strings.ReplaceAll(string(seed), "public.orders", table))
	require.NoError(t, err)
	// Runs after the node stops: a forgotten slot keeps WAL forever.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer c.Close(ctx)
		for _, q := range []string{
			"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'samsa_pipeline_orders_source'",
			"DROP PUBLICATION IF EXISTS samsa_pipeline_orders_source",
			"DROP TABLE IF EXISTS " + table,
		} {
			_, err := c.Exec(ctx, q)
			require.NoError(t, err, q)
		}
	})
	t.Setenv("SAMSA_ORDERS_DSN", dsn)
	t.Setenv("SAMSA_ORDERS_TABLE", table)

	dir, n := runExample(t, "orders-cdc")
	readTopic(t, n, "orders.changes", 3)
	for _, q := range []string{
		"UPDATE " + table + " SET status = 'paid' WHERE customer = 'ben'",
		"DELETE FROM " + table + " WHERE customer = 'chloe'",
		"INSERT INTO " + table + " (customer, total) VALUES ('dev', 42.00)",
	} {
		_, err := db.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	recs := readTopic(t, n, "orders.changes", 6)
	type change struct {
		ID       int    `json:"id"`
		Customer string `json:"customer"`
		Total    string `json:"total"`
		Status   string `json:"status"`
		Op       string `json:"op"`
	}
	byID := map[int][]change{}
	var values []string
	for _, r := range recs {
		var c change
		require.NoError(t, json.Unmarshal(r.Value, &c), "%s", r.Value)
		require.JSONEq(t, fmt.Sprintf(`{"id":%d}`, c.ID), string(r.Key), "keyed by the primary key")
		byID[c.ID] = append(byID[c.ID], c)
		values = append(values, string(r.Value))
	}
	require.Equal(t, []change{{1, "ann", "12.50", "new", "read"}}, byID[1])
	require.Equal(t, []change{{2, "ben", "99.99", "new", "read"}, {2, "ben", "99.99", "paid", "update"}}, byID[2])
	require.Equal(t, []change{{3, "chloe", "5.00", "new", "read"}, {ID: 3, Op: "delete"}}, byID[3])
	require.Equal(t, []change{{4, "dev", "42.00", "new", "insert"}}, byID[4])
	requireSameLines(t, values, sinkLines(t, filepath.Join(dir, "out", "orders.jsonl"), 6))
}

// TestSensorsMQTTIntegration runs examples/sensors-mqtt against
// Mosquitto: five devices publish twenty readings each (one sent twice),
// plus a reading out of range and one that is not JSON. The topic holds
// the hundred readings keyed by device, in order; the two bad ones are
// dead letters; the SQLite table holds each device's latest.
func TestSensorsMQTTIntegration(t *testing.T) {
	broker := service(t, "SAMSA_TEST_MQTT", "tcp://127.0.0.1:1883")
	client := fmt.Sprintf("samsa-sensors-test-%d", time.Now().UnixNano())
	t.Setenv("SAMSA_MQTT_URL", broker)
	t.Setenv("SAMSA_SENSORS_CLIENT", client)
	t.Cleanup(func() { mqttSession(t, broker, client, true) }) // the source's session, once it stopped
	dir, n := runExample(t, "sensors-mqtt")

	// A new session gets what is published once the source has connected
	// and subscribed: wait for that, as /metrics tells.
	waitFor(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return regexp.MustCompile(`samsa_pipeline_input_connection_up_total\{[^}]*label="source"[^}]*pipeline="sensors"[^}]*\} 1`).Match(b)
	}, "the MQTT source did not connect")
	pub := mqttSession(t, broker, fmt.Sprintf("%s-devices", client), false)
	defer pub.Disconnect(&paho.Disconnect{})
	publish := func(device, payload string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pub.Publish(ctx, &paho.Publish{Topic: "sensors/" + device + "/readings", QoS: 1, Payload: []byte(payload)})
		require.NoError(t, err)
	}
	devices := []string{"greenhouse-1", "greenhouse-2", "cellar", "attic", "garage"}
	for seq := 1; seq <= 20; seq++ {
		for i, d := range devices {
			publish(d, fmt.Sprintf(`{"device": %q, "seq": %d, "ts": "2026-11-26T09:%02d:%02dZ", "temperature_c": %d.5, "humidity_pct": 55.0, "battery_v": 3.9}`,
				d, seq, seq, i, 10+seq))
			if d == "cellar" && seq == 7 { // a retry: the same reading again
				publish(d, fmt.Sprintf(`{"device": %q, "seq": %d, "ts": "2026-11-26T09:%02d:%02dZ", "temperature_c": %d.5, "humidity_pct": 55.0, "battery_v": 3.9}`,
					d, seq, seq, i, 10+seq))
			}
		}
	}
	publish("attic", `{"device": "attic", "seq": 21, "ts": "2026-11-26T09:30:00Z", "temperature_c": 500.0, "humidity_pct": 55.0, "battery_v": 3.9}`)
	publish("garage", `{"device": "garage", "seq": 21, "ts": "2026-11-26T09:30:0`)

	recs := readTopic(t, n, "sensors", 100)
	last := map[string]int{}
	for _, r := range recs {
		var v struct {
			Device string `json:"device"`
			Seq    int    `json:"seq"`
		}
		require.NoError(t, json.Unmarshal(r.Value, &v), "%s", r.Value)
		require.Equal(t, v.Device, string(r.Key), "keyed by device")
		require.Equal(t, last[v.Device]+1, v.Seq, "%s: each reading once, in order", v.Device)
		last[v.Device] = v.Seq
	}
	requireDeadLetters(t, readTopic(t, n, "sensors.dlq", 2), []deadLetter{
		{"transform", "outside the sensor's range"},
		{"validate", "JSON"},
	})

	db, err := sql.Open("sqlite", filepath.Join(dir, "out", "latest.db"))
	require.NoError(t, err)
	defer db.Close()
	waitFor(t, 30*time.Second, func() bool {
		var rows, seqs int
		err := db.QueryRow("SELECT count(*), coalesce(sum(seq), 0) FROM latest_readings").Scan(&rows, &seqs)
		return err == nil && rows == 5 && seqs == 5*20
	}, "latest_readings does not hold each device's reading 20")
	var temp float64
	require.NoError(t, db.QueryRow("SELECT temperature_c FROM latest_readings WHERE device = 'cellar'").Scan(&temp))
	require.Equal(t, 30.5, temp)
}

// mqttSession connects a client to the broker; with drop, it ends the
// persistent session of that client id (a clean start) and disconnects.
func mqttSession(t *testing.T, broker, clientID string, drop bool) *paho.Client {
	t.Helper()
	u, err := url.Parse(broker)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	require.NoError(t, err)
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	_, err = c.Connect(ctx, &paho.Connect{ClientID: clientID, CleanStart: true, KeepAlive: 30})
	require.NoError(t, err)
	if drop {
		_ = c.Disconnect(&paho.Disconnect{})
		return nil
	}
	return c
}
