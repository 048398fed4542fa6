package connectors

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// cdcTestDSN returns SAMSA_TEST_POSTGRES (e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), skipping the
// test without it, or failing it under SAMSA_TEST_REQUIRE_SERVICES=1. The
// server needs wal_level = logical.
func cdcTestDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SAMSA_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("SAMSA_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("SAMSA_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and SAMSA_TEST_REQUIRE_SERVICES=1")
		}
		t.Skip("SAMSA_TEST_POSTGRES is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable): skipping the PostgreSQL CDC test")
	}
	return dsn
}

// cdcDB is a test's PostgreSQL database objects: tables named with its
// prefix, and the slot and publication of its source id, all dropped at
// the end of the test.
type cdcDB struct {
	t        testing.TB
	dsn      string
	conn     *pgx.Conn
	prefix   string // of the test's tables
	sourceID string
	slot     string // the input's default slot and publication name
}

func newCDCDB(t testing.TB) *cdcDB {
	t.Helper()
	dsn := cdcTestDSN(t)
	conn, err := pgx.Connect(ctxT(t, 10*time.Second), dsn)
	require.NoError(t, err)
	var level string
	require.NoError(t, conn.QueryRow(ctxT(t, 5*time.Second), "SHOW wal_level").Scan(&level))
	if level != "logical" {
		conn.Close(context.Background())
		t.Fatalf("PostgreSQL at SAMSA_TEST_POSTGRES has wal_level %s; CDC needs logical", level)
	}
	id := fmt.Sprintf("%d_%d", os.Getpid(), rand.IntN(1_000_000_000))
	d := &cdcDB{t: t, dsn: dsn, conn: conn, prefix: "cdc_" + id + "_", sourceID: "cdc-test." + id}
	d.slot = cdcDefaultName(d.sourceID)
	t.Cleanup(d.drop)
	return d
}

// drop removes the slot (stopping any session still on it), the
// publications and the tables of the test.
func (d *cdcDB) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, slot := range []string{d.slot, d.slot + "_raw"} {
		for range 50 {
			_, err := d.conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot)
			if err == nil {
				_, err = d.conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
			}
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	_, _ = d.conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+d.slot)
	rows, err := d.conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1`, d.prefix+"%")
	if err == nil {
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			_, _ = d.conn.Exec(ctx, "DROP TABLE IF EXISTS "+cdcQuoteIdent(n))
		}
	}
	var left int
	_ = d.conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, d.slot).Scan(&left)
	if left > 0 {
		d.t.Errorf("slot %s is left behind", d.slot)
	}
	d.conn.Close(ctx)
}

// table is the name of one of the test's tables.
func (d *cdcDB) table(name string) string { return d.prefix + name }

func (d *cdcDB) exec(sql string, args ...any) {
	d.t.Helper()
	_, err := d.conn.Exec(ctxT(d.t, 30*time.Second), sql, args...)
	require.NoError(d.t, err, sql)
}

// waitSlot waits until the input's slot is made: changes committed from
// then on are kept for it.
func (d *cdcDB) waitSlot() {
	d.t.Helper()
	checkFor(d.t, 30*time.Second, 10*time.Millisecond, func() error {
		var s string
		return d.conn.QueryRow(ctxT(d.t, 5*time.Second), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots
			WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL`, d.slot).Scan(&s)
	})
}

// confirmed is the slot's confirmed_flush_lsn.
func (d *cdcDB) confirmed() pglogrepl.LSN {
	d.t.Helper()
	var s string
	require.NoError(d.t, d.conn.QueryRow(ctxT(d.t, 5*time.Second), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, d.slot).Scan(&s))
	lsn, err := pglogrepl.ParseLSN(s)
	require.NoError(d.t, err)
	return lsn
}

// pipeline is the YAML of a samsa_postgres_cdc → samsa_topic stream.
func (d *cdcDB) pipeline(topic string, parts int, tables []string, extra string) string {
	return fmt.Sprintf(`
input:
  samsa_postgres_cdc:
    dsn: %q
    tables: [%s]
    source_id: %q
    status_interval: 100ms
    checkpoint_interval: 100ms
%s
output:
  samsa_topic:
    topic: %s
    partitions: %d
    key: '${! meta("samsa_key") }'
`, d.dsn, strings.Join(tables, ", "), d.sourceID, cdcIndent(extra, "    "), topic, parts)
}

func cdcIndent(s, by string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = by + strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "\n")
}

// cdcEvent is a change event as read back from the topic.
type cdcEvent struct {
	Op         string         `json:"op"`
	Table      string         `json:"table"`
	Before     map[string]any `json:"before"`
	After      map[string]any `json:"after"`
	LSN        *string        `json:"lsn"`
	CommitLSN  *string        `json:"commit_lsn"`
	Xid        *uint32        `json:"xid"`
	CommitTime string         `json:"commit_time"`

	key       string
	partition int32
	raw       string
}

// row is the event's row: after, or before for a delete.
func (e cdcEvent) row() map[string]any {
	if e.After != nil {
		return e.After
	}
	return e.Before
}

func (e cdcEvent) commitLSN(t testing.TB) pglogrepl.LSN {
	t.Helper()
	require.NotNil(t, e.CommitLSN, e.raw)
	lsn, err := pglogrepl.ParseLSN(*e.CommitLSN)
	require.NoError(t, err)
	return lsn
}

// cdcEvents reads every event of a topic, partition by partition (once
// the partitions have leaders, after a node opens).
func cdcEvents(t testing.TB, l *replog.Log, topic string) []cdcEvent {
	t.Helper()
	tp, ok := l.Topic(topic)
	require.True(t, ok, "topic %s", topic)
	var out []cdcEvent
	for p := range len(tp.Partitions) {
		var recs []rec
		checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			var err error
			recs, err = tryReadPartition(l, replog.TopicPartition{Topic: topic, Partition: int32(p)})
			return err
		})
		for _, r := range recs {
			var e cdcEvent
			dec := json.NewDecoder(strings.NewReader(r.Value))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&e), r.Value)
			e.key, e.partition, e.raw = string(r.Key), int32(p), r.Value
			out = append(out, e)
		}
	}
	return out
}

// cdcWaitCount waits until a topic holds at least n records.
func cdcWaitCount(t testing.TB, l *replog.Log, topic string, n int, within time.Duration) {
	t.Helper()
	checkFor(t, within, 10*time.Millisecond, func() error {
		if got := countTopic(t, l, topic); got < n {
			return fmt.Errorf("%d records in %s, waiting for %d", got, topic, n)
		}
		return nil
	})
}

// cdcCrash closes the node under the stream (its acknowledgements and its
// last checkpoint fail), stops the stream and opens the node again.
func cdcCrash(t testing.TB, n *node, st *stream) {
	t.Helper()
	n.close(t)
	st.stop(t, time.Second)
	n.open(t)
}

// TestPostgresCDCTypesIntegration: a snapshot row, then inserts, updates
// and deletes arrive as events with the right op, before and after, keys
// and typed values, for a table with the default replica identity and one
// with REPLICA IDENTITY FULL.
func TestPostgresCDCTypesIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	typed, full := d.table("typed"), d.table("full")
	d.exec(`CREATE TABLE ` + typed + ` (id bigint PRIMARY KEY, i int, b bigint, n numeric, t text, f bool, by bytea,
		ts timestamptz, d date, j jsonb, u uuid, a int[], note text)`)
	d.exec(`CREATE TABLE ` + full + ` (k text PRIMARY KEY, v int, w text)`)
	d.exec(`ALTER TABLE ` + full + ` REPLICA IDENTITY FULL`)
	d.exec(`INSERT INTO ` + typed + ` (id, i, t) VALUES (1, 10, 'before start')`)

	st := startStream(t, env(t, n.log), d.pipeline("types", 2, []string{typed, "public." + full}, ""))
	cdcWaitCount(t, n.log, "types", 1, 30*time.Second)

	d.exec(`INSERT INTO ` + typed + ` VALUES (2, -2147483648, 9223372036854775807, 12345678901234567890.123456789, 'tab	"quote" ü',
		true, '\xdeadbeef', '2024-01-02 03:04:05.123456+02', '2024-02-29', '{"a": [1, 2.5, "x"], "b": null}',
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}', NULL)`)
	d.exec(`INSERT INTO ` + typed + ` (id) VALUES (3)`)
	d.exec(`UPDATE ` + typed + ` SET t = 'changed', n = 'NaN' WHERE id = 2`)
	d.exec(`DELETE FROM ` + typed + ` WHERE id = 3`)
	d.exec(`INSERT INTO ` + full + ` VALUES ('k1', 1, 'w1')`)
	d.exec(`UPDATE ` + full + ` SET v = 2 WHERE k = 'k1'`)
	d.exec(`DELETE FROM ` + full + ` WHERE k = 'k1'`)
	d.exec(`TRUNCATE ` + full)
	cdcWaitCount(t, n.log, "types", 9, 30*time.Second)
	st.stop(t, 5*time.Second)

	events := cdcEvents(t, n.log, "types")
	require.Len(t, events, 9)
	byOp := map[string]cdcEvent{}
	for _, e := range events {
		k := e.Op + " " + strings.TrimPrefix(e.Table, "public.") + " " + e.key
		require.NotContains(t, byOp, k)
		byOp[k] = e
	}
	get := func(op, table, key string) cdcEvent {
		t.Helper()
		e, ok := byOp[op+" "+table+" "+key]
		require.True(t, ok, "no %s of %s %s in %v", op, table, key, events)
		return e
	}
	tbl := "public." + typed

	read := get("read", typed, `{"id":1}`)
	require.Equal(t, tbl, read.Table)
	require.Nil(t, read.Before)
	require.Equal(t, json.Number("10"), read.After["i"])
	require.Equal(t, "before start", read.After["t"])
	require.Nil(t, read.After["n"])
	require.Nil(t, read.Xid)
	require.NotNil(t, read.LSN)

	ins := get("insert", typed, `{"id":2}`)
	require.Nil(t, ins.Before)
	want := map[string]any{
		"id": json.Number("2"), "i": json.Number("-2147483648"), "b": json.Number("9223372036854775807"),
		"n": "12345678901234567890.123456789", "t": "tab\t\"quote\" ü", "f": true, "by": "3q2+7w==",
		"ts": "2024-01-02T01:04:05.123456Z", "d": "2024-02-29",
		"j": map[string]any{"a": []any{json.Number("1"), json.Number("2.5"), "x"}, "b": nil},
		"u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a": []any{json.Number("1"), nil, json.Number("3")}, "note": nil,
	}
	require.Equal(t, want, ins.After)
	require.NotNil(t, ins.Xid)
	_, err := time.Parse(time.RFC3339Nano, ins.CommitTime)
	require.NoError(t, err)
	changeLSN, err := pglogrepl.ParseLSN(*ins.LSN)
	require.NoError(t, err)
	require.Less(t, changeLSN, ins.commitLSN(t))

	nulls := get("insert", typed, `{"id":3}`)
	for k, v := range nulls.After {
		if k != "id" {
			require.Nil(t, v, k)
		}
	}
	require.Len(t, nulls.After, 13)

	upd := get("update", typed, `{"id":2}`)
	require.Equal(t, map[string]any{"id": json.Number("2")}, upd.Before)
	require.Equal(t, "changed", upd.After["t"])
	require.Equal(t, "NaN", upd.After["n"])
	require.Equal(t, "3q2+7w==", upd.After["by"])

	del := get("delete", typed, `{"id":3}`)
	require.Equal(t, map[string]any{"id": json.Number("3")}, del.Before)
	require.Nil(t, del.After)

	fupd := get("update", full, `{"k":"k1"}`)
	require.Equal(t, map[string]any{"k": "k1", "v": json.Number("1"), "w": "w1"}, fupd.Before)
	require.Equal(t, map[string]any{"k": "k1", "v": json.Number("2"), "w": "w1"}, fupd.After)
	fdel := get("delete", full, `{"k":"k1"}`)
	require.Equal(t, map[string]any{"k": "k1", "v": json.Number("2"), "w": "w1"}, fdel.Before)
	var trunc []cdcEvent
	for _, e := range events {
		if e.Op == "truncate" {
			trunc = append(trunc, e)
		}
	}
	require.Len(t, trunc, 1)
	require.Equal(t, "public."+full, trunc[0].Table)
	require.Nil(t, trunc[0].Before)
	require.Nil(t, trunc[0].After)

	// Each row's events are in one partition, in commit order.
	require.Equal(t, ins.partition, upd.partition)
	require.Equal(t, get("insert", full, `{"k":"k1"}`).partition, fdel.partition)
	require.Less(t, ins.commitLSN(t), upd.commitLSN(t))
}

// cdcFact is an event reduced to what a test expects of it.
type cdcFact struct {
	Op, Table, Key, V string
}

func cdcFactOf(e cdcEvent) cdcFact {
	r := e.row()
	f := cdcFact{Op: e.Op, Table: e.Table, Key: e.key}
	if v, ok := r["v"]; ok && v != nil && e.Op != "delete" {
		f.V = fmt.Sprint(v)
	}
	return f
}

// cdcCheckFacts checks that the events are exactly want (as multisets) and
// that each key's events are in one partition, a read before changes and
// changes in commit order.
func cdcCheckFacts(t *testing.T, events []cdcEvent, want []cdcFact) {
	t.Helper()
	got := map[cdcFact]int{}
	for _, e := range events {
		got[cdcFactOf(e)]++
	}
	exp := map[cdcFact]int{}
	for _, f := range want {
		exp[f]++
	}
	var problems []string
	for f, n := range exp {
		if got[f] != n {
			problems = append(problems, fmt.Sprintf("%+v: %d, want %d", f, got[f], n))
		}
	}
	for f, n := range got {
		if exp[f] == 0 {
			problems = append(problems, fmt.Sprintf("%+v: %d, want none", f, n))
		}
	}
	sort.Strings(problems)
	require.Empty(t, problems, "%d events, want %d", len(events), len(want))
	last := map[string]cdcEvent{}
	for _, e := range events {
		k := e.Table + e.key
		if prev, ok := last[k]; ok {
			require.Equal(t, prev.partition, e.partition, "key %s", k)
			require.NotEqual(t, "read", e.Op, "a read after a change of %s", k)
			if prev.Op != "read" {
				require.Less(t, prev.commitLSN(t), e.commitLSN(t), "order of %s", k)
			}
		}
		last[k] = e
	}
}

// TestPostgresCDCSnapshotRestartsIntegration reads two tables (an integer
// key and a composite key with text) by snapshot and then streams, with a
// crash in the middle of the snapshot and another after it, and changes
// committed while the source is down each time — to rows read before the
// crash (streamed after the snapshot) and to rows not read yet (read with
// the change, which is not streamed again): every row and every change
// arrives exactly once.
func TestPostgresCDCSnapshotRestartsIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	a, b := d.table("a"), d.table("b")
	d.exec(`CREATE TABLE ` + a + ` (id int PRIMARY KEY, v text)`)
	d.exec(`CREATE TABLE ` + b + ` (g int, name text, v text, PRIMARY KEY (g, name))`)
	d.exec(`INSERT INTO ` + a + ` SELECT i, 'v' || i FROM generate_series(1, 2000) i`)
	d.exec(`INSERT INTO ` + b + ` SELECT i % 7, 'Name-' || i, 'v' || i FROM generate_series(1, 1000) i`)
	tables := []string{a, b}
	akey := func(id int) string { return fmt.Sprintf(`{"id":%d}`, id) }
	bkey := func(i int) string { return fmt.Sprintf(`{"g":%d,"name":"Name-%d"}`, i%7, i) }
	ta, tb := "public."+a, "public."+b

	var want []cdcFact
	for i := 1; i <= 2000; i++ {
		v := fmt.Sprintf("v%d", i)
		if i == 2000 {
			v = "u2000" // updated before it is read
		}
		want = append(want, cdcFact{"read", ta, akey(i), v})
	}
	for i := 1; i <= 1000; i++ {
		v := fmt.Sprintf("v%d", i)
		if i == 999 {
			v = "u999"
		}
		want = append(want, cdcFact{"read", tb, bkey(i), v})
	}
	want = append(want, cdcFact{"read", ta, akey(2001), "new"}, cdcFact{"read", tb, bkey(1001), "new"},
		cdcFact{"update", ta, akey(1), "u1"}, cdcFact{"delete", ta, akey(2), ""})

	conf := d.pipeline("snap", 3, tables, "batch_size: 25\nmax_in_flight: 4")
	st := startStream(t, env(t, n.log), conf)
	checkFor(t, time.Minute, 5*time.Millisecond, func() error {
		if got := countTopic(t, n.log, "snap"); got < 900 {
			return fmt.Errorf("%d records", got)
		}
		return nil
	})
	cdcCrash(t, n, st)
	have := map[string]bool{}
	for _, e := range cdcEvents(t, n.log, "snap") {
		have[e.key] = true
	}
	require.True(t, have[akey(1)] && have[akey(2)], "rows 1 and 2 are stored before the crash")
	require.Less(t, countTopic(t, n.log, "snap"), 2000, "the crash is in the middle of the snapshot")

	// While the source is down: changes to rows read (streamed after the
	// snapshot) and to rows not read yet (read with the change).
	d.exec(`UPDATE ` + a + ` SET v = 'u1' WHERE id = 1`)
	d.exec(`DELETE FROM ` + a + ` WHERE id = 2`)
	d.exec(`UPDATE ` + a + ` SET v = 'u2000' WHERE id = 2000`)
	d.exec(`INSERT INTO ` + a + ` VALUES (2001, 'new')`)
	d.exec(`UPDATE ` + b + ` SET v = 'u999' WHERE g = 999 % 7 AND name = 'Name-999'`)
	d.exec(`INSERT INTO ` + b + ` VALUES (1001 % 7, 'Name-1001', 'new')`)

	st = startStream(t, env(t, n.log), conf)
	cdcWaitCount(t, n.log, "snap", 3002, time.Minute) // every read
	cdcCrash(t, n, st)

	d.exec(`INSERT INTO ` + a + ` VALUES (3000, 'x3000')`)
	d.exec(`UPDATE ` + a + ` SET v = 'u5' WHERE id = 5`)
	d.exec(`DELETE FROM ` + a + ` WHERE id = 6`)
	d.exec(`UPDATE ` + b + ` SET v = 'u7' WHERE g = 0 AND name = 'Name-7'`)
	want = append(want, cdcFact{"insert", ta, akey(3000), "x3000"}, cdcFact{"update", ta, akey(5), "u5"},
		cdcFact{"delete", ta, akey(6), ""}, cdcFact{"update", tb, bkey(7), "u7"})

	st = startStream(t, env(t, n.log), conf)
	cdcWaitCount(t, n.log, "snap", len(want), time.Minute)
	time.Sleep(500 * time.Millisecond) // nothing more comes
	st.stop(t, 5*time.Second)
	cdcCheckFacts(t, cdcEvents(t, n.log, "snap"), want)
}

// TestPostgresCDCCrashAfterSnapshotReadIntegration: the snapshot is read,
// the first changes streamed are stored, and the node crashes before the
// periodic checkpoint records that the snapshot's records are all stored
// (checkpoint_interval is long). Changes committed while the source is
// down are seen by any new transaction the restart would read the rest of
// the snapshot in, yet the topic already holds streamed positions above
// every snapshot row's: they must come from the stream. Every row and
// change arrives once.
func TestPostgresCDCCrashAfterSnapshotReadIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	a := d.table("a")
	d.exec(`CREATE TABLE ` + a + ` (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO ` + a + ` SELECT i, 'v' || i FROM generate_series(1, 300) i`)
	ta := "public." + a
	key := func(id int) string { return fmt.Sprintf(`{"id":%d}`, id) }
	var want []cdcFact
	for i := 1; i <= 300; i++ {
		want = append(want, cdcFact{"read", ta, key(i), fmt.Sprintf("v%d", i)})
	}
	conf := strings.Replace(d.pipeline("after", 3, []string{a}, "batch_size: 50\nmax_in_flight: 4"),
		"checkpoint_interval: 100ms", "checkpoint_interval: 1h", 1)

	st := startStream(t, env(t, n.log), conf)
	cdcWaitCount(t, n.log, "after", 300, time.Minute)
	for i := 301; i <= 360; i++ {
		d.exec(`INSERT INTO `+a+` VALUES ($1, $2)`, i, fmt.Sprintf("v%d", i))
		want = append(want, cdcFact{"insert", ta, key(i), fmt.Sprintf("v%d", i)})
	}
	cdcWaitCount(t, n.log, "after", 360, time.Minute)
	cdcCrash(t, n, st)
	b, ok := n.log.Checkpoint("source/" + d.sourceID)
	require.True(t, ok)
	c, err := decodeCDCCheckpoint(b)
	require.NoError(t, err)
	require.False(t, c.Acked.Stream, "the checkpoint is still in the snapshot: %s", b)

	// While the source is down: new rows, and changes to rows read by the
	// snapshot and to rows streamed.
	for i := 361; i <= 380; i++ {
		d.exec(`INSERT INTO `+a+` VALUES ($1, $2)`, i, fmt.Sprintf("v%d", i))
		want = append(want, cdcFact{"insert", ta, key(i), fmt.Sprintf("v%d", i)})
	}
	d.exec(`UPDATE ` + a + ` SET v = 'u5' WHERE id = 5`)
	d.exec(`DELETE FROM ` + a + ` WHERE id = 6`)
	d.exec(`UPDATE ` + a + ` SET v = 'u320' WHERE id = 320`)
	want = append(want, cdcFact{"update", ta, key(5), "u5"}, cdcFact{"delete", ta, key(6), ""},
		cdcFact{"update", ta, key(320), "u320"})

	st = startStream(t, env(t, n.log), conf)
	// Until the last change is stored (or 20 s): the check says what is
	// missing.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if slices.ContainsFunc(cdcEvents(t, n.log, "after"), func(e cdcEvent) bool { return e.Op == "update" && e.key == key(320) }) {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // nothing more comes
	st.stop(t, 5*time.Second)
	cdcCheckFacts(t, cdcEvents(t, n.log, "after"), want)
}

// TestPostgresCDCSlotBehindStoredIntegration: the slot's confirmed flush
// LSN follows what the topic stores, and after the node is closed under a
// busy stream (its writes and acknowledgements fail) it is not past any
// change the topic lacks; a restart then brings the rest, once.
func TestPostgresCDCSlotBehindStoredIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	tbl := d.table("lag")
	d.exec(`CREATE TABLE ` + tbl + ` (id int PRIMARY KEY, v text)`)
	conf := d.pipeline("lag", 2, []string{tbl}, "snapshot: false\nbatch_size: 20\nmax_in_flight: 2")
	st := startStream(t, env(t, n.log), conf)
	d.waitSlot()
	start := d.confirmed()

	// The slot moves once the changes are stored, to no further than the
	// end of what is stored.
	for i := range 5 {
		d.exec(`INSERT INTO `+tbl+` SELECT g, 'v' || g FROM generate_series($1::int, $1::int + 9) g`, i*10)
	}
	cdcWaitCount(t, n.log, "lag", 50, 30*time.Second)
	var lastCommit pglogrepl.LSN
	for _, e := range cdcEvents(t, n.log, "lag") {
		lastCommit = max(lastCommit, e.commitLSN(t))
	}
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if c := d.confirmed(); c <= lastCommit {
			return fmt.Errorf("slot at %s, last stored commit %s (start %s)", c, lastCommit, start)
		}
		return nil
	})

	// A busy stream; the node closes under it.
	const total = 50 + 200*10
	writer := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(context.Background(), d.dsn)
		if err != nil {
			writer <- err
			return
		}
		defer conn.Close(context.Background())
		for i := range 200 {
			if _, err := conn.Exec(context.Background(), `INSERT INTO `+tbl+` SELECT g, 'w' || g FROM generate_series($1::int, $1::int + 9) g`, 1000+i*10); err != nil {
				writer <- err
				return
			}
		}
		writer <- nil
	}()
	cdcWaitCount(t, n.log, "lag", 600, time.Minute)
	n.close(t)
	require.NoError(t, <-writer)
	time.Sleep(300 * time.Millisecond) // status updates go on while the source fails
	st.stop(t, time.Second)
	slotAt := d.confirmed()
	n.open(t)
	stored := map[string]bool{}
	for _, e := range cdcEvents(t, n.log, "lag") {
		stored[e.key] = true
	}
	require.Less(t, len(stored), total, "the node closed in the middle of the stream")

	st = startStream(t, env(t, n.log), conf)
	cdcWaitCount(t, n.log, "lag", total, time.Minute)
	st.stop(t, 5*time.Second)
	events := cdcEvents(t, n.log, "lag")
	var want []cdcFact
	for i := range 50 {
		want = append(want, cdcFact{"insert", "public." + tbl, fmt.Sprintf(`{"id":%d}`, i), fmt.Sprintf("v%d", i)})
	}
	for i := 1000; i < 3000; i++ {
		want = append(want, cdcFact{"insert", "public." + tbl, fmt.Sprintf(`{"id":%d}`, i), fmt.Sprintf("w%d", i)})
	}
	cdcCheckFacts(t, events, want)
	later := 0
	for _, e := range events {
		if !stored[e.key] {
			later++
			require.GreaterOrEqual(t, e.commitLSN(t), slotAt, "the slot was confirmed past %s, which the topic did not have", e.raw)
		}
	}
	require.Positive(t, later)
}

// TestPostgresCDCWriterAcrossCrashesIntegration: a writer commits inserts,
// updates and deletes (some several to a transaction) while the stream is
// stopped or crashed and restarted several times: each change arrives
// once, each key's changes in commit order.
func TestPostgresCDCWriterAcrossCrashesIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	tbl := d.table("w")
	d.exec(`CREATE TABLE ` + tbl + ` (id int PRIMARY KEY, seq bigint, pad text)`)
	d.exec(`ALTER TABLE ` + tbl + ` REPLICA IDENTITY FULL`)
	conf := d.pipeline("w", 3, []string{tbl}, "snapshot: false\nbatch_size: 25\nmax_in_flight: 3")

	type op struct {
		op  string
		id  int
		seq int64
	}
	var (
		mu      sync.Mutex
		ops     []op
		stop    = make(chan struct{})
		stopped = make(chan error, 1)
	)
	st := startStream(t, env(t, n.log), conf)
	d.waitSlot()
	go func() {
		stopped <- func() error {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, d.dsn)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			r := rand.New(rand.NewPCG(1, 2))
			exists := map[int]int64{}
			var seq int64
			for {
				select {
				case <-stop:
					return nil
				default:
				}
				tx, err := conn.Begin(ctx)
				if err != nil {
					return err
				}
				var batch []op
				for range 1 + r.IntN(3) {
					id := r.IntN(30)
					seq++
					var o op
					switch cur, ok := exists[id]; {
					case !ok:
						o = op{"insert", id, seq}
						_, err = tx.Exec(ctx, `INSERT INTO `+tbl+` VALUES ($1, $2, repeat('x', 50))`, id, seq)
						exists[id] = seq
					case r.IntN(5) == 0:
						o = op{"delete", id, cur}
						_, err = tx.Exec(ctx, `DELETE FROM `+tbl+` WHERE id = $1`, id)
						delete(exists, id)
					default:
						o = op{"update", id, seq}
						_, err = tx.Exec(ctx, `UPDATE `+tbl+` SET seq = $2 WHERE id = $1`, id, seq)
						exists[id] = seq
					}
					if err != nil {
						return err
					}
					batch = append(batch, o)
				}
				if err := tx.Commit(ctx); err != nil {
					return err
				}
				mu.Lock()
				ops = append(ops, batch...)
				mu.Unlock()
			}
		}()
	}()
	for i, how := range []string{"crash", "stop", "crash", "crash"} {
		cdcWaitCount(t, n.log, "w", (i+1)*400, time.Minute)
		if how == "crash" {
			cdcCrash(t, n, st)
		} else {
			st.stop(t, time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // changes while the source is down
		st = startStream(t, env(t, n.log), conf)
	}
	cdcWaitCount(t, n.log, "w", 2000, time.Minute)
	close(stop)
	require.NoError(t, <-stopped)
	mu.Lock()
	all := slices.Clone(ops)
	mu.Unlock()
	cdcWaitCount(t, n.log, "w", len(all), time.Minute)
	time.Sleep(300 * time.Millisecond)
	st.stop(t, 5*time.Second)

	events := cdcEvents(t, n.log, "w")
	seqOf := func(e cdcEvent) int64 {
		v, err := e.row()["seq"].(json.Number).Int64()
		require.NoError(t, err)
		return v
	}
	got := map[op]int{}
	perKey := map[string][]op{}
	for _, e := range events {
		id, err := e.row()["id"].(json.Number).Int64()
		require.NoError(t, err)
		o := op{e.Op, int(id), seqOf(e)}
		got[o]++
		perKey[e.key] = append(perKey[e.key], o)
	}
	wantKey := map[string][]op{}
	for _, o := range all {
		require.Equal(t, 1, got[o], "%+v", o)
		k := fmt.Sprintf(`{"id":%d}`, o.id)
		wantKey[k] = append(wantKey[k], o)
	}
	require.Len(t, events, len(all))
	for k, w := range wantKey {
		require.Equal(t, w, perKey[k], "changes of %s", k)
	}
}

// BenchmarkPostgresCDC moves b.N rows into a topic and reports the rate
// beside a bare reader of the same rows in the same run. "stream": b.N
// inserted rows (1000 to a transaction) streamed from a slot (changes/s),
// and a pglogrepl reader decoding the same changes from a slot of its own
// (raw-changes/s). "snapshot": b.N rows read by the snapshot (rows/s), and
// a cursor reading them in pages of the same size (raw-rows/s).
func BenchmarkPostgresCDC(b *testing.B) {
	b.Run("stream", func(b *testing.B) {
		d, n, tbl := cdcBenchTable(b)
		d.exec(`CREATE PUBLICATION ` + d.slot + ` FOR TABLE ` + tbl)
		d.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, d.slot)
		d.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, d.slot+"_raw")
		cdcBenchRows(b, d, tbl)
		e := env(b, n.log)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		st := startStream(b, e, d.pipeline("bench", 1, []string{tbl}, "snapshot: false"))
		cdcWaitCount(b, n.log, "bench", b.N, 10*time.Minute)
		samsa := time.Since(start)
		b.StopTimer()
		st.stop(b, 5*time.Second)
		raw := cdcRawRead(b, d, b.N)
		b.ReportMetric(float64(b.N)/samsa.Seconds(), "changes/s")
		b.ReportMetric(float64(b.N)/raw.Seconds(), "raw-changes/s")
	})
	b.Run("snapshot", func(b *testing.B) {
		d, n, tbl := cdcBenchTable(b)
		cdcBenchRows(b, d, tbl)
		e := env(b, n.log)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		st := startStream(b, e, d.pipeline("bench", 1, []string{tbl}, ""))
		cdcWaitCount(b, n.log, "bench", b.N, 10*time.Minute)
		samsa := time.Since(start)
		b.StopTimer()
		st.stop(b, 5*time.Second)
		raw := cdcRawSnapshot(b, d, tbl, b.N)
		b.ReportMetric(float64(b.N)/samsa.Seconds(), "rows/s")
		b.ReportMetric(float64(b.N)/raw.Seconds(), "raw-rows/s")
	})
}

// cdcBenchTable makes the benchmark's table and node, its topic created
// (not timed).
func cdcBenchTable(b *testing.B) (*cdcDB, *node, string) {
	d := newCDCDB(b)
	n := newNode(b)
	tbl := d.table("bench")
	d.exec(`CREATE TABLE ` + tbl + ` (id bigint PRIMARY KEY, v text, n int, at timestamptz)`)
	require.NoError(b, n.log.CreateTopic(ctxT(b, time.Minute), replog.TopicSpec{Name: "bench", Partitions: 1, ReplicationFactor: 1}, false))
	return d, n, tbl
}

// cdcBenchRows inserts b.N rows, 1000 to a transaction.
func cdcBenchRows(b *testing.B, d *cdcDB, tbl string) {
	for i := 0; i < b.N; i += 1000 {
		d.exec(`INSERT INTO `+tbl+` SELECT g, 'value-' || g, g % 1000, now() FROM generate_series($1::bigint, $2::bigint) g`, i, min(i+1000, b.N)-1)
	}
}

// cdcRawSnapshot reads the n rows of tbl with a cursor in a REPEATABLE
// READ transaction, 1024 rows to a fetch, as text, and returns the time
// it took.
func cdcRawSnapshot(b *testing.B, d *cdcDB, tbl string, n int) time.Duration {
	b.Helper()
	ctx := ctxT(b, 10*time.Minute)
	start := time.Now()
	conn, err := pgconn.Connect(ctx, d.dsn)
	require.NoError(b, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; DECLARE c NO SCROLL CURSOR FOR SELECT * FROM "+tbl+" ORDER BY id").ReadAll()
	require.NoError(b, err)
	got := 0
	for got < n {
		res, err := conn.Exec(ctx, "FETCH FORWARD 1024 FROM c").ReadAll()
		require.NoError(b, err)
		require.NotEmpty(b, res[0].Rows)
		got += len(res[0].Rows)
	}
	return time.Since(start)
}

// cdcRawRead reads n inserts from the test's raw slot with pglogrepl,
// decoding each tuple's values as text, and returns the time it took.
func cdcRawRead(b *testing.B, d *cdcDB, n int) time.Duration {
	b.Helper()
	cfg, err := pgconn.ParseConfig(d.dsn)
	require.NoError(b, err)
	cfg.RuntimeParams["replication"] = "database"
	ctx := ctxT(b, 10*time.Minute)
	start := time.Now()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	require.NoError(b, err)
	defer conn.Close(context.Background())
	require.NoError(b, pglogrepl.StartReplication(ctx, conn, d.slot+"_raw", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + d.slot + "'"}}))
	got, bytes := 0, 0
	for got < n {
		msg, err := conn.ReceiveMessage(ctx)
		require.NoError(b, err)
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		x, err := pglogrepl.ParseXLogData(cd.Data[1:])
		require.NoError(b, err)
		m, err := pglogrepl.Parse(x.WALData)
		require.NoError(b, err)
		if ins, ok := m.(*pglogrepl.InsertMessage); ok {
			for _, c := range ins.Tuple.Columns {
				bytes += len(string(c.Data))
			}
			got++
		}
	}
	return time.Since(start)
}

// TestPostgresCDCConnectionLossIntegration cuts the connections to
// PostgreSQL (and refuses new ones for a while) in the middle of the
// snapshot and twice while streaming, while a writer changes rows already
// read and rows beyond the snapshot: the input reconnects, and each key's
// events are a read of one of its states (or none) followed by exactly
// the changes after that state, in order.
func TestPostgresCDCConnectionLossIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	u, err := url.Parse(d.dsn)
	if err != nil || u.Host == "" {
		t.Skipf("SAMSA_TEST_POSTGRES is not a URL with a host (%q): skipping the connection loss test", d.dsn)
	}
	proxy := newTCPProxy(t, "127.0.0.1:0", u.Host)
	u.Host = proxy.ln.Addr().String()
	d.dsn = u.String() // the input's; the test's own connection is direct
	tbl := d.table("loss")
	d.exec(`CREATE TABLE ` + tbl + ` (id int PRIMARY KEY, seq bigint)`)
	d.exec(`ALTER TABLE ` + tbl + ` REPLICA IDENTITY FULL`)
	d.exec(`INSERT INTO ` + tbl + ` SELECT g, 0 FROM generate_series(1, 3000) g`)
	conf := d.pipeline("loss", 2, []string{tbl}, "batch_size: 10\nmax_in_flight: 2")

	var (
		mu   sync.Mutex
		ops  = map[int][]cdcOp{} // per key, in commit order
		stop = make(chan struct{})
		done = make(chan error, 1)
	)
	st := startStream(t, env(t, n.log), conf)
	cdcWaitCount(t, n.log, "loss", 200, time.Minute) // the slot exists: the writer's changes are kept
	go func() {
		done <- func() error {
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, cdcTestDSN(t))
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			r := rand.New(rand.NewPCG(3, 4))
			exists := map[int]bool{}
			for i := 1; i <= 100; i++ {
				exists[i] = true
			}
			var seq int64
			for {
				select {
				case <-stop:
					return nil
				case <-time.After(time.Millisecond):
				}
				id := 1 + r.IntN(150) // rows read long before a cut, and rows past the snapshot
				if id > 100 {
					id += 10000
				}
				seq++
				var o cdcOp
				switch {
				case !exists[id]:
					o = cdcOp{"insert", seq}
					_, err = conn.Exec(ctx, `INSERT INTO `+tbl+` VALUES ($1, $2)`, id, seq)
					exists[id] = true
				case r.IntN(4) == 0:
					o = cdcOp{"delete", seq}
					_, err = conn.Exec(ctx, `DELETE FROM `+tbl+` WHERE id = $1`, id)
					exists[id] = false
				default:
					o = cdcOp{"update", seq}
					_, err = conn.Exec(ctx, `UPDATE `+tbl+` SET seq = $2 WHERE id = $1`, id, seq)
				}
				if err != nil {
					return err
				}
				mu.Lock()
				ops[id] = append(ops[id], o)
				mu.Unlock()
			}
		}()
	}()
	cdcWaitCount(t, n.log, "loss", 600, time.Minute)
	require.Less(t, countTopic(t, n.log, "loss"), 2500, "the cut is in the middle of the snapshot")
	proxy.cut(time.Second)
	for _, at := range []int{3500, 4000} {
		cdcWaitCount(t, n.log, "loss", at, time.Minute)
		proxy.cut(500 * time.Millisecond)
	}
	cdcWaitCount(t, n.log, "loss", 4500, time.Minute)
	close(stop)
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	want := 0
	for _, o := range ops {
		want += len(o)
	}
	checkFor(t, time.Minute, 50*time.Millisecond, func() error {
		events := cdcEvents(t, n.log, "loss")
		got := map[int][]cdcEvent{}
		for _, e := range events {
			id, err := e.row()["id"].(json.Number).Int64()
			if err != nil {
				return err
			}
			got[int(id)] = append(got[int(id)], e)
		}
		for id := 1; id <= 3000 || id <= 10050; id++ {
			if id > 3000 && id <= 10000 {
				continue
			}
			if err := cdcCheckHistory(id, got[id], ops[id], id <= 3000); err != nil {
				return err
			}
		}
		return nil
	})
	st.stop(t, 5*time.Second)
	t.Logf("%d changes by the writer", want)
}

// cdcOp is a change a test's writer committed: the op and the seq it wrote.
type cdcOp struct {
	op  string
	seq int64
}

// cdcCheckHistory checks a key's events against the changes committed to
// it: a read of the row as it was after some change (or initially, when
// initial), then exactly the changes after that one; or, without a read,
// exactly the changes after a point where the row did not exist.
func cdcCheckHistory(id int, events []cdcEvent, ops []cdcOp, initial bool) error {
	seqOf := func(e cdcEvent) int64 {
		v, _ := e.row()["seq"].(json.Number).Int64()
		return v
	}
	from := -1 // the index of the change the stream starts after
	rest := events
	if len(events) > 0 && events[0].Op == "read" {
		s := seqOf(events[0])
		rest = events[1:]
		switch {
		case s == 0 && initial:
			from = -1
		default:
			from = slices.IndexFunc(ops, func(o cdcOp) bool { return o.seq == s && o.op != "delete" })
			if from < 0 {
				return fmt.Errorf("row %d read with seq %d, which no change wrote", id, s)
			}
		}
		from++
	} else {
		from = len(ops) - len(rest)
		if from < 0 {
			return fmt.Errorf("row %d: %d events, %d changes", id, len(rest), len(ops))
		}
		if from == 0 && initial || from > 0 && ops[from-1].op != "delete" {
			return fmt.Errorf("row %d: no read, and its stream starts at change %d where the row exists", id, from)
		}
	}
	if len(rest) != len(ops)-from {
		return fmt.Errorf("row %d: %d changes after its read, want %d (%v)", id, len(rest), len(ops)-from, ops)
	}
	for i, e := range rest {
		o := ops[from+i]
		if e.Op != o.op || seqOf(e) != o.seq && o.op != "delete" {
			return fmt.Errorf("row %d: event %d is %s %d, want %s %d", id, i, e.Op, seqOf(e), o.op, o.seq)
		}
	}
	return nil
}

// TestCDCPositionOrder: encoded snapshot keys sort as the tuples do, and
// stream positions after every snapshot position, by commit LSN then index.
func TestCDCPositionOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	type tuple struct {
		n int64
		s string
	}
	orders := []cdcOrder{cdcOrderInt, cdcOrderText}
	var ts []tuple
	for range 2000 {
		s := make([]byte, r.IntN(4))
		for i := range s {
			s[i] = "\x00\x01a\xffb"[r.IntN(5)]
		}
		ts = append(ts, tuple{r.Int64N(7) - 3, string(s)})
	}
	pos := func(table int, x tuple) []byte {
		p, err := cdcSnapshotPos(nil, table, orders, [][]byte{[]byte(fmt.Sprint(x.n)), []byte(x.s)})
		require.NoError(t, err)
		return p
	}
	for range 5000 {
		a, b := ts[r.IntN(len(ts))], ts[r.IntN(len(ts))]
		want := cmpInt(a.n, b.n)
		if want == 0 {
			want = strings.Compare(a.s, b.s)
		}
		require.Equal(t, want, bytesCompare(pos(1, a), pos(1, b)), "%+v %+v", a, b)
		require.Equal(t, -1, bytesCompare(pos(0, a), pos(1, b)))
	}
	uuid := func(s string) []byte {
		p, err := cdcAppendKeyPos(nil, cdcOrderUUID, []byte(s))
		require.NoError(t, err)
		return p
	}
	require.Equal(t, -1, bytesCompare(uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12")))
	last := pos(1<<31, tuple{1 << 62, "zzz"})
	s1, s2, s3 := cdcStreamPos(nil, 0x100, 5), cdcStreamPos(nil, 0x101, 0), cdcStreamPos(nil, 0x101, 1)
	require.Equal(t, -1, bytesCompare(last, s1))
	require.Equal(t, -1, bytesCompare(s1, s2))
	require.Equal(t, -1, bytesCompare(s2, s3))
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func bytesCompare(a, b []byte) int { return strings.Compare(string(a), string(b)) }

// TestCDCTxSnapshotSees: visibility of transactions in a snapshot, with
// 32-bit xids across an epoch boundary.
func TestCDCTxSnapshotSees(t *testing.T) {
	s, err := parseCDCTxSnapshot("100:110:103,105")
	require.NoError(t, err)
	for xid, want := range map[uint32]bool{99: true, 100: true, 103: false, 104: true, 105: false, 109: true, 110: false, 200: false} {
		require.Equal(t, want, s.sees(xid), "xid %d", xid)
	}
	epoch := uint64(1) << 32
	s = cdcTxSnapshot{Xmin: epoch - 5, Xmax: epoch + 5, Xip: []uint64{epoch + 1}}
	require.True(t, s.sees(uint32(0xFFFFFFF0))) // epoch 0, below xmin
	require.True(t, s.sees(uint32(0xFFFFFFFD))) // epoch 0, in range
	require.False(t, s.sees(1))                 // epoch 1, running
	require.True(t, s.sees(2))                  // epoch 1, committed
	require.False(t, s.sees(6))                 // epoch 1, after xmax
	_, err = parseCDCTxSnapshot("1:2")
	require.Error(t, err)
}

// TestCDCValues: text forms become typed JSON.
func TestCDCValues(t *testing.T) {
	v := newCDCValues()
	for _, c := range []struct {
		oid  uint32
		in   string
		want string
	}{
		{pgtype.Int8OID, "-42", "-42"},
		{pgtype.Float8OID, "1.5e+100", "1.5e+100"},
		{pgtype.Float8OID, "NaN", `"NaN"`},
		{pgtype.NumericOID, "1.50", `"1.50"`},
		{pgtype.BoolOID, "f", "false"},
		{pgtype.TextOID, "a\"b\\c\n\x01\xff", `"a\"b\\c\n\u0001\ufffd"`},
		{pgtype.ByteaOID, `\x00ff`, `"AP8="`},
		{pgtype.TimestamptzOID, "2024-01-02 03:04:05.5+00", `"2024-01-02T03:04:05.5Z"`},
		{pgtype.TimestamptzOID, "infinity", `"infinity"`},
		{pgtype.TimestampOID, "2024-01-02 03:04:05", `"2024-01-02T03:04:05Z"`},
		{pgtype.DateOID, "2024-01-02", `"2024-01-02"`},
		{pgtype.JSONBOID, `{"a": 1}`, `{"a": 1}`},
		{pgtype.TextArrayOID, `{a,"b c",NULL}`, `["a","b c",null]`},
		{pgtype.NumericArrayOID, `{1.10,2}`, `["1.10","2"]`},
		{pgtype.DateArrayOID, `{2024-01-02}`, `["2024-01-02"]`},
		{pgtype.UUIDArrayOID, `{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}`, `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`},
		{99999, "custom", `"custom"`},
	} {
		require.Equal(t, c.want, string(v.appendJSON(nil, c.oid, []byte(c.in))), "%d %q", c.oid, c.in)
	}
	require.Equal(t, "null", string(v.appendJSON(nil, pgtype.TextOID, nil)))
}

// TestCDCCheckpointRoundTrip: the checkpoint encodes and decodes, LSNs in
// PostgreSQL's form.
func TestCDCCheckpointRoundTrip(t *testing.T) {
	c := cdcCheckpoint{Slot: "s", Acked: cdcMark{Table: 1, Key: []string{"7", "x"}}, Snapshot: &cdcSnapState{
		Tables: []string{"public.a", "public.b"}, Issued: []byte{0, 1, 2}, RetireAt: cdcLSN(0x16B3748),
		Segments: []cdcSegment{{Snap: cdcTxSnapshot{Xmin: 1, Xmax: 3, Xip: []uint64{2}}}, {Start: []byte{0, 1}, Snap: cdcTxSnapshot{Xmin: 5, Xmax: 5}}},
	}}
	b, err := c.encode()
	require.NoError(t, err)
	require.Contains(t, string(b), `"retire_at":"0/16B3748"`)
	got, err := decodeCDCCheckpoint(b)
	require.NoError(t, err)
	require.Equal(t, c, got)
	seg := got.Snapshot.segment([]byte{0, 1, 5})
	require.Equal(t, uint64(5), seg.Snap.Xmin)
	seg = got.Snapshot.segment([]byte{0, 1})
	require.Equal(t, uint64(1), seg.Snap.Xmin)
	require.Equal(t, "samsa_pipeline_orders_source", cdcDefaultName("pipeline.orders.source"))
	long := cdcDefaultName(strings.Repeat("x", 100))
	require.Len(t, long, 63)
	require.Regexp(t, cdcSlotName, long)
}

// cdcInput builds the input from YAML fields, against node n.
func cdcInput(t *testing.T, l *replog.Log, yaml string) (*pgcdcInput, error) {
	t.Helper()
	conf, err := postgresCDCInputSpec().ParseYAML(yaml, nil)
	require.NoError(t, err)
	return newPostgresCDCInput(conf, Deps{Log: l, Logger: quietLogger()})
}

// TestCDCConfigErrors: bad fields are refused, naming the field.
func TestCDCConfigErrors(t *testing.T) {
	for yaml, want := range map[string]string{
		"dsn: postgres://x/y\ntables: []\nsource_id: s":                    "tables: at least one",
		"dsn: postgres://x/y\ntables: [t]\nsource_id: ''":                  "source_id: required",
		"dsn: postgres://x/y\ntables: [t]\nsource_id: s\nslot: Bad-Name":   "slot: \"Bad-Name\"",
		"dsn: postgres://x/y\ntables: [t]\nsource_id: s\nbatch_size: 0":    "batch_size: must be at least 1",
		"dsn: 'host=x port=notaport'\ntables: [t]\nsource_id: s":           "dsn:",
		"dsn: postgres://x/y\ntables: [t]\nsource_id: s\nmax_in_flight: 0": "max_in_flight: must be at least 1",
	} {
		_, err := cdcInput(t, nil, yaml)
		require.ErrorContains(t, err, want, yaml)
	}
}

// TestPostgresCDCConnectErrorsIntegration: Connect fails with an error
// naming the problem when the database is unreachable, a table is missing,
// a table lacks the primary key the snapshot reads by, or has no replica
// identity at all; the input then retries (Benthos calls Connect again).
func TestPostgresCDCConnectErrorsIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	nopk, fullnopk, nothing := d.table("nopk"), d.table("fullnopk"), d.table("nothing")
	d.exec(`CREATE TABLE ` + nopk + ` (a int, b text)`)
	d.exec(`CREATE TABLE ` + fullnopk + ` (a int, b text)`)
	d.exec(`ALTER TABLE ` + fullnopk + ` REPLICA IDENTITY FULL`)
	d.exec(`CREATE TABLE ` + nothing + ` (a int PRIMARY KEY)`)
	d.exec(`ALTER TABLE ` + nothing + ` REPLICA IDENTITY NOTHING`)
	closed := freeAddr(t)
	for _, c := range []struct{ dsn, tables, extra, want string }{
		{"postgres://postgres@" + closed + "/test?sslmode=disable&connect_timeout=2", d.table("x"), "", "connecting to PostgreSQL"},
		{d.dsn, d.table("missing"), "", "tables: no table"},
		{d.dsn, fullnopk, "", "has no primary key, which the snapshot reads it by"},
		{d.dsn, nopk, "snapshot: false", "no primary key or replica identity"},
		{d.dsn, nothing, "snapshot: false", "no primary key or replica identity"},
	} {
		in, err := cdcInput(t, n.log, fmt.Sprintf("dsn: %q\ntables: [%s]\nsource_id: %q\n%s", c.dsn, c.tables, d.sourceID, c.extra))
		require.NoError(t, err)
		err = in.Connect(ctxT(t, 10*time.Second))
		require.ErrorContains(t, err, c.want)
		require.NoError(t, in.Close(ctxT(t, 5*time.Second)))
	}
	var slots int
	require.NoError(t, d.conn.QueryRow(ctxT(t, 5*time.Second), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, d.slot).Scan(&slots))
	require.Zero(t, slots, "no slot for a source that never connected")
}

// cdcReplay applies a one-partition topic's events in order to an empty
// table (by the "id" column) and returns its rows: id → v.
func cdcReplay(t *testing.T, events []cdcEvent, table string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, e := range events {
		if e.Table != table {
			continue
		}
		switch e.Op {
		case "truncate":
			clear(rows)
		case "delete":
			delete(rows, fmt.Sprint(e.Before["id"]))
		default:
			rows[fmt.Sprint(e.After["id"])] = fmt.Sprint(e.After["v"])
		}
	}
	return rows
}

// cdcRows reads a table's rows: id → v.
func (d *cdcDB) rows(table string) map[string]string {
	d.t.Helper()
	rs, err := d.conn.Query(ctxT(d.t, 10*time.Second), `SELECT id::text, v FROM `+table)
	require.NoError(d.t, err)
	out := map[string]string{}
	for rs.Next() {
		var id, v string
		require.NoError(d.t, rs.Scan(&id, &v))
		out[id] = v
	}
	require.NoError(d.t, rs.Err())
	return out
}

// TestPostgresCDCTruncateDuringRestartedSnapshotIntegration: the node
// crashes in the middle of the snapshot; while it is down the table is
// truncated and rows are inserted, some above the rows read (which the
// restarted snapshot's new segment reads) and one among them. The
// truncate is emitted in stream order, after every read, and the rows
// inserted after it come after it: replaying the topic gives the table.
func TestPostgresCDCTruncateDuringRestartedSnapshotIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	a, other := d.table("a"), d.table("o")
	d.exec(`CREATE TABLE ` + a + ` (id int PRIMARY KEY, v text)`)
	d.exec(`CREATE TABLE ` + other + ` (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO ` + a + ` SELECT i, 'v' || i FROM generate_series(1, 2000) i`)
	ta := "public." + a
	conf := d.pipeline("trunc", 1, []string{a, other}, "batch_size: 25\nmax_in_flight: 4")
	st := startStream(t, env(t, n.log), conf)
	cdcWaitCount(t, n.log, "trunc", 600, time.Minute)
	cdcCrash(t, n, st)
	before := countTopic(t, n.log, "trunc")
	require.Less(t, before, 2000, "the crash is in the middle of the snapshot")

	d.exec(`TRUNCATE ` + a)
	d.exec(`INSERT INTO ` + a + ` SELECT i, 'n' || i FROM generate_series(5000, 5009) i`)
	d.exec(`INSERT INTO ` + a + ` VALUES (1, 'again')`)
	d.exec(`INSERT INTO ` + other + ` VALUES (1, 'o')`)

	st = startStream(t, env(t, n.log), conf)
	want := d.rows(a)
	// Until the topic replayed is the table (or a minute): the checks
	// below say what differs.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if reflect.DeepEqual(want, cdcReplay(t, cdcEvents(t, n.log, "trunc"), ta)) {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // nothing more comes
	st.stop(t, 5*time.Second)

	events := cdcEvents(t, n.log, "trunc")
	var truncs []cdcEvent
	for _, e := range events {
		if e.Op == "truncate" {
			truncs = append(truncs, e)
		}
	}
	require.Len(t, truncs, 1)
	require.Equal(t, ta, truncs[0].Table)
	require.Equal(t, `"`+ta+`"`, truncs[0].key)
	require.NotNil(t, truncs[0].CommitLSN)
	require.Equal(t, want, cdcReplay(t, events, ta), "the topic replayed is the table")
	seen := map[string]int{}
	for _, e := range events {
		if e.Table == ta {
			seen[e.Op+" "+e.key]++
		}
	}
	for k, c := range seen {
		if strings.HasPrefix(k, "read ") {
			require.Equal(t, 1, c, "%s read %d times", k, c)
		}
	}
	require.Equal(t, 1, seen[`insert {"id":1}`])
	require.Equal(t, 1, seen[`insert {"id":5000}`], "rows inserted after the truncate come after it")
}

// TestPostgresCDCAddedTableIntegration: a source streams table A; while it
// is stopped, rows go into table B, which is then added to tables. B's
// rows are read (in pages, with a crash in the middle and changes to rows
// read and not read while it is down) while A's changes go on, and every
// row of B and every change of both arrives exactly once, in order per key.
func TestPostgresCDCAddedTableIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	a, b := d.table("a"), d.table("b")
	d.exec(`CREATE TABLE ` + a + ` (id int PRIMARY KEY, v text)`)
	d.exec(`CREATE TABLE ` + b + ` (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO ` + a + ` SELECT i, 'v' || i FROM generate_series(1, 50) i`)
	ta, tb := "public."+a, "public."+b
	key := func(id int) string { return fmt.Sprintf(`{"id":%d}`, id) }
	var want []cdcFact
	for i := 1; i <= 50; i++ {
		want = append(want, cdcFact{"read", ta, key(i), fmt.Sprintf("v%d", i)})
	}
	extra := "batch_size: 25\nmax_in_flight: 4"
	st := startStream(t, env(t, n.log), d.pipeline("added", 3, []string{a}, extra))
	cdcWaitCount(t, n.log, "added", 50, time.Minute)
	d.exec(`INSERT INTO ` + a + ` VALUES (51, 'v51')`)
	want = append(want, cdcFact{"insert", ta, key(51), "v51"})
	cdcWaitCount(t, n.log, "added", 51, time.Minute)
	st.stop(t, 5*time.Second)

	// While stopped: B's rows, and a change to A.
	for i := 0; i < 4; i++ {
		d.exec(`INSERT INTO `+b+` SELECT g, 'b' || g FROM generate_series($1::int, $1::int + 499) g`, 1+i*500)
	}
	d.exec(`UPDATE ` + a + ` SET v = 'u5' WHERE id = 5`)
	want = append(want, cdcFact{"update", ta, key(5), "u5"})

	conf := d.pipeline("added", 3, []string{a, b}, extra)
	st = startStream(t, env(t, n.log), conf)
	checkFor(t, time.Minute, 5*time.Millisecond, func() error {
		if got := countTopic(t, n.log, "added"); got < 52+500 {
			return fmt.Errorf("%d records", got)
		}
		return nil
	})
	cdcCrash(t, n, st)
	got := countTopic(t, n.log, "added")
	require.Less(t, got, 52+2000, "the crash is in the middle of B's reads")
	have := map[string]bool{}
	for _, e := range cdcEvents(t, n.log, "added") {
		if e.Table == tb {
			have[e.key] = true
		}
	}
	require.True(t, have[key(1)] && have[key(2)], "B's first rows are stored before the crash")

	// While down: changes to B's rows read and not read, and to A.
	d.exec(`UPDATE ` + b + ` SET v = 'u1' WHERE id = 1`)
	d.exec(`DELETE FROM ` + b + ` WHERE id = 2`)
	d.exec(`UPDATE ` + b + ` SET v = 'u1990' WHERE id = 1990`)
	d.exec(`INSERT INTO ` + b + ` VALUES (2001, 'new')`)
	d.exec(`INSERT INTO ` + a + ` VALUES (52, 'v52')`)
	for i := 1; i <= 2000; i++ {
		v := fmt.Sprintf("b%d", i)
		if i == 1990 {
			v = "u1990" // changed before it is read
		}
		if i != 2 || have[key(2)] {
			want = append(want, cdcFact{"read", tb, key(i), v})
		}
	}
	want = append(want, cdcFact{"read", tb, key(2001), "new"}, cdcFact{"update", tb, key(1), "u1"},
		cdcFact{"delete", tb, key(2), ""}, cdcFact{"insert", ta, key(52), "v52"})

	st = startStream(t, env(t, n.log), conf)
	cdcWaitCount(t, n.log, "added", len(want), time.Minute)
	// Changes to both once B is read.
	d.exec(`INSERT INTO ` + a + ` VALUES (53, 'v53')`)
	d.exec(`UPDATE ` + b + ` SET v = 'u3' WHERE id = 3`)
	d.exec(`INSERT INTO ` + b + ` VALUES (3000, 'x')`)
	want = append(want, cdcFact{"insert", ta, key(53), "v53"}, cdcFact{"update", tb, key(3), "u3"},
		cdcFact{"insert", tb, key(3000), "x"})
	cdcWaitCount(t, n.log, "added", len(want), time.Minute)
	time.Sleep(500 * time.Millisecond) // nothing more comes
	st.stop(t, 5*time.Second)
	cdcCheckFacts(t, cdcEvents(t, n.log, "added"), want)

	var inPub int
	require.NoError(t, d.conn.QueryRow(ctxT(t, 5*time.Second), `SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND tablename = $2`, d.slot, b).Scan(&inPub))
	require.Equal(t, 1, inPub)
}

// cdcPubTables lists the tables of a publication, by name.
func (d *cdcDB) pubTables(pub string) []string {
	d.t.Helper()
	rows, err := d.conn.Query(ctxT(d.t, 5*time.Second), `SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, pub)
	require.NoError(d.t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(d.t, err)
	return names
}

// TestPostgresCDCTablesChangedIntegration changes the tables of a source
// without a snapshot: a table added goes into the publication and is
// streamed from then on (its rows and changes from before are not read); a
// table removed leaves the publication the source created, and none of its
// changes are emitted, not even those made before the restart. A
// publication the source did not create keeps every table.
func TestPostgresCDCTablesChangedIntegration(t *testing.T) {
	d := newCDCDB(t)
	n := newNode(t)
	a, b := d.table("a"), d.table("b")
	d.exec(`CREATE TABLE ` + a + ` (id int PRIMARY KEY, v text)`)
	d.exec(`CREATE TABLE ` + b + ` (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO ` + a + ` VALUES (1, 'a1')`)
	d.exec(`INSERT INTO ` + b + ` SELECT i, 'b' || i FROM generate_series(1, 10) i`)
	ta, tb := "public."+a, "public."+b
	key := func(id int) string { return fmt.Sprintf(`{"id":%d}`, id) }

	st := startStream(t, env(t, n.log), d.pipeline("chg", 2, []string{a}, "snapshot: false"))
	d.waitSlot()
	require.Equal(t, []string{a}, d.pubTables(d.slot))
	d.exec(`INSERT INTO ` + a + ` VALUES (2, 'a2')`)
	d.exec(`INSERT INTO ` + b + ` VALUES (11, 'b11')`) // not published
	want := []cdcFact{{"insert", ta, key(2), "a2"}}
	cdcWaitCount(t, n.log, "chg", len(want), time.Minute)
	st.stop(t, 5*time.Second)

	// While stopped: A still in the publication, B not yet.
	d.exec(`INSERT INTO ` + a + ` VALUES (3, 'a3')`)
	d.exec(`UPDATE ` + b + ` SET v = 'u1' WHERE id = 1`)

	st = startStream(t, env(t, n.log), d.pipeline("chg", 2, []string{b}, "snapshot: false"))
	checkFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if got := d.pubTables(d.slot); !slices.Equal(got, []string{b}) {
			return fmt.Errorf("publication holds %v", got)
		}
		return nil
	})
	d.exec(`INSERT INTO ` + a + ` VALUES (4, 'a4')`)
	d.exec(`INSERT INTO ` + b + ` VALUES (12, 'b12')`)
	d.exec(`UPDATE ` + b + ` SET v = 'u2' WHERE id = 2`)
	d.exec(`DELETE FROM ` + b + ` WHERE id = 3`)
	want = append(want, cdcFact{"insert", tb, key(12), "b12"}, cdcFact{"update", tb, key(2), "u2"}, cdcFact{"delete", tb, key(3), ""})
	cdcWaitCount(t, n.log, "chg", len(want), time.Minute)
	time.Sleep(500 * time.Millisecond) // nothing more comes
	st.stop(t, 5*time.Second)
	cdcCheckFacts(t, cdcEvents(t, n.log, "chg"), want)

	// A publication of someone else's keeps the tables the source lacks;
	// one marked as the source's does not.
	own := d.slot + "_own"
	d.exec(`CREATE PUBLICATION ` + own + ` FOR TABLE ` + a + `, ` + b)
	t.Cleanup(func() { _, _ = d.conn.Exec(context.Background(), `DROP PUBLICATION IF EXISTS `+own) })
	cfg, err := cdcConnConfig(d.dsn, false)
	require.NoError(t, err)
	conn, err := pgconn.ConnectConfig(ctxT(t, 10*time.Second), cfg)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	tables, err := cdcResolveTables(ctxT(t, 10*time.Second), conn, []string{b})
	require.NoError(t, err)
	dropped, err := cdcEnsurePublication(ctxT(t, 10*time.Second), conn, own, d.sourceID, tables)
	require.NoError(t, err)
	require.Empty(t, dropped)
	require.Equal(t, []string{a, b}, d.pubTables(own))
	d.exec(`COMMENT ON PUBLICATION ` + own + ` IS ` + cdcQuoteLiteral(cdcPublicationComment("another source")))
	dropped, err = cdcEnsurePublication(ctxT(t, 10*time.Second), conn, own, d.sourceID, tables)
	require.NoError(t, err)
	require.Empty(t, dropped, "another source's publication")
	d.exec(`COMMENT ON PUBLICATION ` + own + ` IS ` + cdcQuoteLiteral(cdcPublicationComment(d.sourceID)))
	dropped, err = cdcEnsurePublication(ctxT(t, 10*time.Second), conn, own, d.sourceID, tables)
	require.NoError(t, err)
	require.Equal(t, []string{"public." + a}, dropped)
	require.Equal(t, []string{b}, d.pubTables(own))
}
