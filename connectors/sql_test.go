package connectors

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// The SQL tests run every case on SQLite (a file in a temporary
// directory) in TestSQLSource and TestSQLSink, and on PostgreSQL and
// MySQL/MariaDB in TestSQLSourceIntegration and TestSQLSinkIntegration
// when these variables hold a DSN (skipped when unset, failed with
// SAMSA_TEST_REQUIRE_SERVICES=1).
const (
	envPostgres = "SAMSA_TEST_POSTGRES" // postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	envMySQL    = "SAMSA_TEST_MYSQL"    // root@tcp(127.0.0.1:3306)/test?parseTime=true
)

// sqlDB is one database under test.
type sqlDB struct {
	driver string
	dsn    string
	db     *sql.DB
}

func newSQLiteDB(t testing.TB) *sqlDB {
	t.Helper()
	return openTestDB(t, sqlSQLite, filepath.Join(t.TempDir(), "test.db")+"?_journal_mode=WAL")
}

// serviceDB opens the database of driver named by its variable, or skips.
func serviceDB(t testing.TB, driver string) *sqlDB {
	t.Helper()
	env, example := envPostgres, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	if driver == sqlMySQL {
		env, example = envMySQL, "root@tcp(127.0.0.1:3306)/test?parseTime=true"
	}
	dsn := os.Getenv(env)
	if dsn == "" {
		if os.Getenv("SAMSA_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is not set", env)
		}
		t.Skipf("%s is not set (a DSN such as %s)", env, example)
	}
	return openTestDB(t, driver, dsn)
}

func openTestDB(t testing.TB, driver, dsn string) *sqlDB {
	t.Helper()
	db, err := openSQL(driver, dsn, quietLogger())
	require.NoError(t, err)
	require.NoError(t, pingSQL(context.Background(), db))
	t.Cleanup(func() { db.Close() })
	return &sqlDB{driver: driver, dsn: dsn, db: db}
}

func (d *sqlDB) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	_, err := d.db.Exec(q, args...)
	require.NoError(t, err, q)
}

// newTable creates a uniquely named table from ddl, where TBL stands for
// the name, and drops it at the end of the test.
func (d *sqlDB) newTable(t testing.TB, prefix, ddl string) string {
	t.Helper()
	name := fmt.Sprintf("samsa_%s_%d_%d", prefix, time.Now().UnixNano()%1e9, rand.IntN(1000))
	d.exec(t, strings.ReplaceAll(ddl, "TBL", quoteIdent(d.driver, name)))
	t.Cleanup(func() { d.db.Exec("DROP TABLE IF EXISTS " + quoteIdent(d.driver, name)) })
	return name
}

func (d *sqlDB) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, d.db.QueryRow("SELECT COUNT(*) FROM "+quoteIdent(d.driver, table)).Scan(&n))
	return n
}

// pick returns the driver's variant.
func (d *sqlDB) pick(postgres, mysql, sqlite string) string {
	switch d.driver {
	case sqlPostgres:
		return postgres
	case sqlMySQL:
		return mysql
	}
	return sqlite
}

// inputFields are the samsa_sql fields reading table, plus more.
func (d *sqlDB) inputFields(table, more string) string {
	var lines []string
	for _, l := range strings.Split(more, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return fmt.Sprintf("driver: %s\ndsn: %q\ntable: %s\nsource_id: %s\n%s\n", d.driver, d.dsn, table, table, strings.Join(lines, "\n"))
}

// sourceYAML is a stream from the table into output; more are further
// input fields, one per line.
func (d *sqlDB) sourceYAML(table, more, output string) string {
	fields := strings.ReplaceAll(strings.TrimSpace(d.inputFields(table, more)), "\n", "\n    ")
	return fmt.Sprintf("input:\n  samsa_sql:\n    %s\noutput:\n  %s\n", fields, output)
}

// sqlCase is a test body every driver runs.
type sqlCase struct {
	name string
	run  func(t *testing.T, d *sqlDB)
}

var sqlSourceCases = []sqlCase{
	{"types", testSQLSourceTypes},
	{"text_composite_key", testSQLSourceTextKey},
	{"query", testSQLSourceQuery},
	{"late_commit_id", testSQLSourceLateID},
	{"late_commit_time", testSQLSourceLateTime},
	{"exactly_once_restarts", testSQLSourceExactlyOnce},
	{"unreachable", testSQLSourceUnreachable},
}

var sqlSinkCases = []sqlCase{
	{"upsert_replay", testSQLSinkReplay},
}

func runSQLCases(t *testing.T, cases []sqlCase, drivers ...string) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					if driver == sqlSQLite {
						c.run(t, newSQLiteDB(t))
					} else {
						c.run(t, serviceDB(t, driver))
					}
				})
			}
		})
	}
}

func TestSQLSource(t *testing.T)            { runSQLCases(t, sqlSourceCases, sqlSQLite) }
func TestSQLSourceIntegration(t *testing.T) { runSQLCases(t, sqlSourceCases, sqlPostgres, sqlMySQL) }
func TestSQLSink(t *testing.T)              { runSQLCases(t, sqlSinkCases, sqlSQLite) }
func TestSQLSinkIntegration(t *testing.T)   { runSQLCases(t, sqlSinkCases, sqlPostgres, sqlMySQL) }

// typesTable creates a table with a column of every common type and rows
// 1 (values), 2 (NULLs) and 3..extra+2 (copies of 1), and returns the
// JSON each row must become.
func typesTable(t *testing.T, d *sqlDB, extra int) (table string, want map[int64]string) {
	t.Helper()
	const txt = "h\u00e9llo \"q\"\n\\\t\x01 \u2603"
	var ddl, row, null, want1 string
	switch d.driver {
	case sqlPostgres:
		ddl = `CREATE TABLE TBL (id bigint PRIMARY KEY, i integer, bi bigint, si smallint, num numeric(30,10),
			r real, d double precision, b boolean, txt text, vc varchar(20), bin bytea, dt date,
			ts timestamp(6), tstz timestamptz, js jsonb, j json, u uuid)`
		row = `(ID, -42, 9007199254740993, 7, 12345678901234567890.1234567890, 0.1, 1.0000000000000002, true, $1, 'abc',
			'\x00ff10', '2024-02-29', '2024-03-01 12:34:56.123456', '2024-03-01 12:34:56.5+02',
			'{"a": [1, 2.5, "x"], "b": null}', '{"z":1,"a":2}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')`
		null = `(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`
		want1 = `{"id":ID,"i":-42,"bi":9007199254740993,"si":7,"num":"12345678901234567890.1234567890","r":0.1,
			"d":1.0000000000000002,"b":true,"txt":TXT,"vc":"abc","bin":"AP8Q","dt":"2024-02-29",
			"ts":"2024-03-01T12:34:56.123456Z","tstz":"2024-03-01T10:34:56.500000Z",
			"js":{"a":[1,2.5,"x"],"b":null},"j":{"z":1,"a":2},"u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}`
	case sqlMySQL:
		ddl = `CREATE TABLE TBL (id BIGINT PRIMARY KEY, i INT, bi BIGINT, si SMALLINT, ubi BIGINT UNSIGNED,
			num DECIMAL(30,10), r FLOAT, d DOUBLE, b BOOLEAN, txt TEXT, vc VARCHAR(20), bin VARBINARY(10),
			dt DATE, ts DATETIME(6), tsz TIMESTAMP(6) NULL, js JSON, bits BIT(8))`
		row = `(ID, -42, 9007199254740993, 7, 18446744073709551615, 12345678901234567890.1234567890, 0.1,
			1.0000000000000002, TRUE, ?, 'abc', X'00FF10', '2024-02-29', '2024-03-01 12:34:56.123456',
			'2024-03-01 12:34:56.5', '{"a": [1, 2.5, "x"], "b": null}', b'10000001')`
		null = `(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`
		js := `{"a":[1,2.5,"x"],"b":null}`
		var version string
		require.NoError(t, d.db.QueryRow("SELECT VERSION()").Scan(&version))
		if strings.Contains(version, "MariaDB") { // JSON is LONGTEXT there
			js = `"{\"a\": [1, 2.5, \"x\"], \"b\": null}"`
		}
		want1 = `{"id":ID,"i":-42,"bi":9007199254740993,"si":7,"ubi":18446744073709551615,
			"num":"12345678901234567890.1234567890","r":0.1,"d":1.0000000000000002,"b":1,"txt":TXT,"vc":"abc",
			"bin":"AP8Q","dt":"2024-02-29","ts":"2024-03-01T12:34:56.123456Z","tsz":"2024-03-01T12:34:56.500000Z",
			"js":` + js + `,"bits":129}`
	default:
		ddl = `CREATE TABLE TBL (id INTEGER PRIMARY KEY, i INTEGER, bi BIGINT, num DECIMAL(10,2), r REAL,
			d DOUBLE, b BOOLEAN, txt TEXT, vc VARCHAR(20), bin BLOB, dt DATE, ts DATETIME, js JSON)`
		row = `(ID, -42, 9007199254740993, '12.50', 0.1, 1.0000000000000002, 1, ?, 'abc', X'00FF10',
			'2024-02-29', '2024-03-01 12:34:56.123456', '{"a": [1, 2.5, "x"], "b": null}')`
		null = `(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`
		want1 = `{"id":ID,"i":-42,"bi":9007199254740993,"num":"12.5","r":0.1,"d":1.0000000000000002,"b":true,
			"txt":TXT,"vc":"abc","bin":"AP8Q","dt":"2024-02-29","ts":"2024-03-01T12:34:56.123456Z",
			"js":{"a":[1,2.5,"x"],"b":null}}`
	}
	table = d.newTable(t, "types", ddl)
	q := "INSERT INTO " + quoteIdent(d.driver, table) + " VALUES "
	d.exec(t, q+strings.Replace(row, "ID", "1", 1), txt)
	d.exec(t, q+null)
	for id := 3; id < 3+extra; id++ {
		d.exec(t, q+strings.Replace(row, "ID", fmt.Sprint(id), 1), txt)
	}
	txtJSON, err := json.Marshal(txt)
	require.NoError(t, err)
	want = map[int64]string{}
	for id := int64(1); id < int64(3+extra); id++ {
		want[id] = strings.NewReplacer("ID", fmt.Sprint(id), "TXT", string(txtJSON)).Replace(want1)
	}
	var obj map[string]any
	require.NoError(t, json.Unmarshal([]byte(want[1]), &obj))
	for k := range obj {
		obj[k] = nil
	}
	obj["id"] = 2
	b, err := json.Marshal(obj)
	require.NoError(t, err)
	want[2] = string(b)
	return table, want
}

// decodeJSONNumbers decodes JSON keeping numbers' digits.
func decodeJSONNumbers(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), s)
	return v
}

// recordID is the "id" of a record.
func recordID(t testing.TB, s string) int64 {
	t.Helper()
	var r struct{ ID int64 }
	require.NoError(t, json.Unmarshal([]byte(s), &r), s)
	return r.ID
}

// testSQLSourceTypes reads rows of every common column type, and NULLs,
// into a topic: each column has its JSON type and exact value, columns in
// the table's order, and the partition holds the last row's position.
func testSQLSourceTypes(t *testing.T, d *sqlDB) {
	n := newNode(t)
	table, want := typesTable(t, d, 2)
	// One row per page: all but the first page pass the position as
	// arguments (MySQL's binary protocol, typed values).
	startStream(t, env(t, n.log), d.sourceYAML(table, `
    cursor: id
    key: [ id ]
    page_size: 1
    lag: 200ms
    poll_interval: 20ms`, fmt.Sprintf("samsa_topic: {topic: %s}", table)))
	var got []string
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		var err error
		got, err = tryTopicValues(n.log, table)
		if err == nil && len(got) < len(want) {
			err = fmt.Errorf("%d records", len(got))
		}
		return err
	})
	require.Len(t, got, len(want))
	for i, rec := range got {
		id := int64(i + 1)
		require.Equal(t, decodeJSONNumbers(t, want[id]), decodeJSONNumbers(t, rec), "row %d: %s", id, rec)
		require.True(t, strings.HasPrefix(rec, `{"id":`), "columns in table order: %s", rec)
	}
	pos, _, ok, err := n.log.SourcePosition(replog.TopicPartition{Topic: table, Partition: 0}, table)
	require.NoError(t, err)
	require.True(t, ok)
	last, err := encodeSQLPos(nil, []any{int64(len(want))})
	require.NoError(t, err)
	require.Equal(t, last, pos)
}

// testSQLSourceTextKey reads rows that share one cursor value, told
// apart by a key of text (under a case-insensitive collation where the
// database has one) and an integer, a few per page: every row is read
// once, in the byte order of the text, as the positions say.
func testSQLSourceTextKey(t *testing.T, d *sqlDB) {
	n := newNode(t)
	table := d.newTable(t, "textkey", d.pick(
		"CREATE TABLE TBL (grp int NOT NULL, name text NOT NULL, sub int NOT NULL, PRIMARY KEY (name, sub))",
		"CREATE TABLE TBL (grp INT NOT NULL, name VARCHAR(20) NOT NULL, sub INT NOT NULL, PRIMARY KEY (name, sub)) DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci",
		"CREATE TABLE TBL (grp INTEGER NOT NULL, name TEXT NOT NULL COLLATE NOCASE, sub INTEGER NOT NULL, PRIMARY KEY (name, sub))"))
	names := []string{"\u00e9", "c ", "a", "B", "", "a\u00e9", "Ab"}
	var want []string
	for _, name := range names {
		for sub := range 3 {
			d.exec(t, "INSERT INTO "+quoteIdent(d.driver, table)+" VALUES (1, "+placeholder(d.driver, 1)+", "+placeholder(d.driver, 2)+")", name, sub)
			want = append(want, fmt.Sprintf("%s/%d", name, sub))
		}
	}
	slices.SortFunc(want, func(a, b string) int { // by name's bytes, then sub
		an, as, _ := strings.Cut(a, "/")
		bn, bs, _ := strings.Cut(b, "/")
		return cmp.Or(strings.Compare(an, bn), strings.Compare(as, bs))
	})
	startStream(t, env(t, n.log), d.sourceYAML(table, `
    cursor: grp
    key: [ name, sub ]
    page_size: 2
    lag: 0s
    poll_interval: 20ms`, fmt.Sprintf("samsa_topic: {topic: %s}", table)))
	var got []string
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		vals, err := tryTopicValues(n.log, table)
		if err != nil {
			return err
		}
		got = got[:0]
		for _, v := range vals {
			var r struct {
				Name string
				Sub  int
			}
			require.NoError(t, json.Unmarshal([]byte(v), &r))
			got = append(got, fmt.Sprintf("%s/%d", r.Name, r.Sub))
		}
		if len(got) < len(want) {
			return fmt.Errorf("%d records", len(got))
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, want, got)
	require.Equal(t, len(want), countTopic(t, n.log, table))
}

// testSQLSourceQuery reads a query instead of a table, with columns and
// where naming its output columns.
func testSQLSourceQuery(t *testing.T, d *sqlDB) {
	n := newNode(t)
	rows := lateRows{d, d.newTable(t, "query", d.pick("CREATE TABLE TBL (id bigint PRIMARY KEY, v text)",
		"CREATE TABLE TBL (id BIGINT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE TBL (id INTEGER PRIMARY KEY, v TEXT)"))}
	rows.insert(t, 1, 2, 3, 4, 5, 6)
	fields := fmt.Sprintf(`driver: %s
dsn: %q
query: SELECT id, v, id * 10 AS x FROM %s
columns: [ x, v ]
where: x > 20
cursor: id
key: [ id ]
lag: 0s
page_size: 2
poll_interval: 20ms
source_id: %s`, d.driver, d.dsn, quoteIdent(d.driver, rows.table), rows.table)
	startStream(t, env(t, n.log), fmt.Sprintf("input:\n  samsa_sql:\n    %s\noutput:\n  samsa_topic: {topic: %s}\n",
		strings.ReplaceAll(fields, "\n", "\n    "), rows.table))
	want := []string{`{"x":30,"v":"v3"}`, `{"x":40,"v":"v4"}`, `{"x":50,"v":"v5"}`, `{"x":60,"v":"v6"}`}
	waitValues(t, n.log, rows.table, want)
	rows.insert(t, 7)
	waitValues(t, n.log, rows.table, append(want, `{"x":70,"v":"v7"}`))
}

// lateRows holds a table of (id, v) rows and a way to insert a row whose
// commit comes after a later one's.
type lateRows struct {
	d     *sqlDB
	table string
}

func (l lateRows) insert(t testing.TB, ids ...int) {
	t.Helper()
	for _, id := range ids {
		l.d.exec(t, fmt.Sprintf("INSERT INTO %s (id, v) VALUES (%d, 'v%d')", quoteIdent(l.d.driver, l.table), id, id))
	}
}

// outOfOrder writes row early, then row late in a transaction that
// commits after row late's: on PostgreSQL and MySQL with a transaction
// left open while another connection commits; SQLite has one writer at a
// time, so there the application writes the lower value after the higher.
// insert is the statement with %d for the id. Between the two commits it
// waits for hold.
func outOfOrder(t *testing.T, d *sqlDB, insert string, early, late int, hold time.Duration) {
	t.Helper()
	if d.driver == sqlSQLite {
		d.exec(t, fmt.Sprintf(insert, late))
		time.Sleep(hold)
		d.exec(t, fmt.Sprintf(insert, early))
		return
	}
	tx, err := d.db.Begin()
	require.NoError(t, err)
	_, err = tx.Exec(fmt.Sprintf(insert, early))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	d.exec(t, fmt.Sprintf(insert, late))
	time.Sleep(hold)
	require.NoError(t, tx.Commit())
}

func topicIDs(t testing.TB, l *replog.Log, topic string) []int64 {
	t.Helper()
	vals, err := tryTopicValues(l, topic)
	if err != nil {
		return nil
	}
	ids := make([]int64, len(vals))
	for i, v := range vals {
		ids[i] = recordID(t, v)
	}
	return ids
}

func waitIDs(t testing.TB, l *replog.Log, topic string, want ...int64) {
	t.Helper()
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := topicIDs(t, l, topic); !slices.Equal(got, want) {
			return fmt.Errorf("topic %s holds ids %v, want %v", topic, got, want)
		}
		return nil
	})
}

// testSQLSourceLateID commits id 4 after id 5 (within the lag): the
// integer cursor stops at the gap, so both are read, once and in order.
// Without a lag, 4 is skipped: the control shows the test can fail.
func testSQLSourceLateID(t *testing.T, d *sqlDB) {
	n := newNode(t)
	ddl := d.pick("CREATE TABLE TBL (id bigint PRIMARY KEY, v text)",
		"CREATE TABLE TBL (id BIGINT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE TBL (id INTEGER PRIMARY KEY, v TEXT)")
	for _, lag := range []string{"2s", "0s"} {
		rows := lateRows{d, d.newTable(t, "late", ddl)}
		rows.insert(t, 1, 2, 3)
		startStream(t, env(t, n.log), d.sourceYAML(rows.table, `
    cursor: id
    key: [ id ]
    lag: `+lag+`
    poll_interval: 20ms`, fmt.Sprintf("samsa_topic: {topic: %s}", rows.table)))
		waitIDs(t, n.log, rows.table, 1, 2, 3)
		insert := "INSERT INTO " + quoteIdent(d.driver, rows.table) + " (id, v) VALUES (%d, 'late')"
		outOfOrder(t, d, insert, 4, 5, 600*time.Millisecond)
		if lag == "0s" {
			waitIDs(t, n.log, rows.table, 1, 2, 3, 5)
			time.Sleep(300 * time.Millisecond)
			require.Equal(t, []int64{1, 2, 3, 5}, topicIDs(t, n.log, rows.table), "without a lag the late row is skipped")
			continue
		}
		require.Equal(t, []int64{1, 2, 3}, topicIDs(t, n.log, rows.table), "5 waits behind the gap")
		waitIDs(t, n.log, rows.table, 1, 2, 3, 4, 5)
		rows.insert(t, 6)
		waitIDs(t, n.log, rows.table, 1, 2, 3, 4, 5, 6)
		time.Sleep(200 * time.Millisecond)
		require.Equal(t, []int64{1, 2, 3, 4, 5, 6}, topicIDs(t, n.log, rows.table))
	}
}

// testSQLSourceLateTime commits a row whose updated-at time is earlier
// than a row committed before it, within the lag: both are read once, in
// time order, and each record's timestamp is its cursor time.
func testSQLSourceLateTime(t *testing.T, d *sqlDB) {
	n := newNode(t)
	table := d.newTable(t, "latets", d.pick(
		"CREATE TABLE TBL (id bigint PRIMARY KEY, ts timestamptz NOT NULL, v text)",
		"CREATE TABLE TBL (id BIGINT PRIMARY KEY, ts DATETIME(6) NOT NULL, v VARCHAR(20))",
		"CREATE TABLE TBL (id INTEGER PRIMARY KEY, ts DATETIME NOT NULL, v TEXT)"))
	startStream(t, env(t, n.log), d.sourceYAML(table, `
    cursor: ts
    key: [ id ]
    lag: 2s
    poll_interval: 20ms`, fmt.Sprintf("samsa_topic: {topic: %s}", table)))
	now := d.pick("CURRENT_TIMESTAMP", "NOW(6)", "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')")
	if d.driver == sqlSQLite {
		// The late row is written second, with a time before the first's.
		d.exec(t, "INSERT INTO "+quoteIdent(d.driver, table)+" VALUES (2, "+strings.ReplaceAll(now, "%%", "%")+", 'b')")
		time.Sleep(500 * time.Millisecond)
		d.exec(t, "INSERT INTO "+quoteIdent(d.driver, table)+" VALUES (1, strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 seconds'), 'a')")
	} else {
		outOfOrder(t, d, "INSERT INTO "+quoteIdent(d.driver, table)+" VALUES (%d, "+now+", 'x')", 1, 2, 500*time.Millisecond)
	}
	waitIDs(t, n.log, table, 1, 2)
	time.Sleep(300 * time.Millisecond)
	recs := readPartition(t, n.log, replog.TopicPartition{Topic: table})
	require.Len(t, recs, 2)
	var prev int64
	for _, r := range recs {
		var row struct{ TS time.Time }
		require.NoError(t, json.Unmarshal([]byte(r.Value), &row))
		require.Equal(t, row.TS.UnixMilli(), r.Timestamp, "the record's timestamp is its cursor time")
		require.Greater(t, r.Timestamp, prev)
		prev = r.Timestamp
	}
}

// testSQLSourceExactlyOnce reads a table that two goroutines keep
// inserting into while the stream is stopped at once or the node closed
// under it, several times: every row is in the topic exactly once and each
// user's rows in order.
func testSQLSourceExactlyOnce(t *testing.T, d *sqlDB) {
	n := newNode(t)
	table := d.newTable(t, "eo", d.pick(
		`CREATE TABLE TBL (id bigserial PRIMARY KEY, "user" text NOT NULL, n integer NOT NULL)`,
		"CREATE TABLE TBL (id BIGINT AUTO_INCREMENT PRIMARY KEY, user VARCHAR(10) NOT NULL, n INT NOT NULL)",
		`CREATE TABLE TBL (id INTEGER PRIMARY KEY AUTOINCREMENT, "user" TEXT NOT NULL, n INTEGER NOT NULL)`))
	insert := fmt.Sprintf("INSERT INTO %s (%s, n) VALUES ", quoteIdent(d.driver, table), quoteIdent(d.driver, "user"))
	ctx, stopInserts := context.WithCancel(context.Background())
	var inserters sync.WaitGroup
	var inserted atomic.Int64
	for g := range 2 {
		inserters.Add(1)
		go func() {
			defer inserters.Done()
			for k := 0; ctx.Err() == nil; {
				var vals []string
				for range 5 {
					vals = append(vals, fmt.Sprintf("('u%d_%d', %d)", g, k%3, k))
					k++
				}
				// Not cancelled by ctx: a cancelled insert may still commit.
				if _, err := d.db.Exec(insert + strings.Join(vals, ", ")); err != nil {
					t.Errorf("insert: %v", err)
					return
				}
				inserted.Add(5)
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() { stopInserts(); inserters.Wait() })

	conf := d.sourceYAML(table, `
    columns: [ id, user, n ]
    cursor: id
    key: [ id ]
    lag: 1s
    page_size: 100
    poll_interval: 20ms
    checkpoint_interval: 100ms`, fmt.Sprintf(`samsa_topic: {topic: %s, partitions: 3, key: '${! json("user") }'}`, table))
	for _, stop := range []string{"stop", "crash", "stop", "crash"} {
		target := countTopic(t, n.log, table) + 300
		st := startStream(t, env(t, n.log), conf)
		checkFor(t, time.Minute, 5*time.Millisecond, func() error {
			if got := countTopic(t, n.log, table); got < target {
				return fmt.Errorf("%d records, waiting for %d", got, target)
			}
			return nil
		})
		switch stop {
		case "stop":
			st.stop(t, time.Millisecond)
		case "crash":
			n.close(t)
			st.stop(t, time.Second)
			n.open(t)
		}
	}
	stopInserts()
	inserters.Wait()
	total := d.count(t, table)
	require.EqualValues(t, inserted.Load(), total)
	st := startStream(t, env(t, n.log), conf)
	checkFor(t, time.Minute, 20*time.Millisecond, func() error {
		if got := countTopic(t, n.log, table); got < total {
			return fmt.Errorf("%d records, waiting for %d", got, total)
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // nothing more comes
	st.stop(t, 10*time.Second)

	rows, err := d.db.Query(fmt.Sprintf("SELECT id, %s, n FROM %s ORDER BY id", quoteIdent(d.driver, "user"), quoteIdent(d.driver, table)))
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var id int64
		var user string
		var k int
		require.NoError(t, rows.Scan(&id, &user, &k))
		lines = append(lines, fmt.Sprintf(`{"id":%d,"user":%q,"n":%d}`, id, user, k))
	}
	require.NoError(t, rows.Err())
	rows.Close()
	t.Logf("%d rows inserted during 4 interruptions", len(lines))
	checkExactlyOnce(t, n.log, table, 3, lines, true)
}

// withAddr returns the server DSN pointing at addr instead.
func withAddr(t testing.TB, d *sqlDB, addr string) string {
	t.Helper()
	if d.driver == sqlMySQL {
		cfg, err := mysql.ParseDSN(d.dsn)
		require.NoError(t, err)
		cfg.Addr = addr
		return cfg.FormatDSN()
	}
	u, err := url.Parse(d.dsn)
	require.NoError(t, err)
	u.Host = addr
	return u.String()
}

// serverAddr is the host:port a server DSN points at.
func serverAddr(t testing.TB, d *sqlDB) string {
	t.Helper()
	if d.driver == sqlMySQL {
		cfg, err := mysql.ParseDSN(d.dsn)
		require.NoError(t, err)
		return cfg.Addr
	}
	u, err := url.Parse(d.dsn)
	require.NoError(t, err)
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

// proxies are the running proxies by address.
var proxies sync.Map

// proxyClose closes the proxy on addr.
func proxyClose(t testing.TB, addr string) {
	t.Helper()
	p, ok := proxies.LoadAndDelete(addr)
	require.True(t, ok, "no proxy on %s", addr)
	p.(*tcpProxy).close()
}

// startProxy starts a proxy on addr, which proxyClose finds.
func startProxy(t testing.TB, addr, target string) *tcpProxy {
	t.Helper()
	p := newTCPProxy(t, addr, target)
	proxies.Store(addr, p)
	t.Cleanup(func() { proxies.CompareAndDelete(addr, p) })
	return p
}

// testSQLSourceUnreachable starts the source on a database that is not
// there (a server's port with nothing listening; for SQLite a directory
// that does not exist yet): Connect fails, and the stream reads once the
// database is there. A server that goes away mid-stream and comes back is
// read on from where it stopped.
func testSQLSourceUnreachable(t *testing.T, d *sqlDB) {
	n := newNode(t)
	ddl := d.pick("CREATE TABLE TBL (id bigint PRIMARY KEY, v text)",
		"CREATE TABLE TBL (id BIGINT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE TBL (id INTEGER PRIMARY KEY, v TEXT)")
	src := *d
	var rows lateRows
	var appear func()
	var addr string
	if d.driver == sqlSQLite {
		dir := filepath.Join(t.TempDir(), "not-yet")
		src.dsn = filepath.Join(dir, "test.db")
		rows.table = fmt.Sprintf("samsa_unreach_%d", time.Now().UnixNano()%1e9)
		appear = func() {
			require.NoError(t, os.Mkdir(dir, 0o755))
			rows.d = openTestDB(t, sqlSQLite, src.dsn+"?_journal_mode=WAL")
			time.Sleep(300 * time.Millisecond) // the source may connect before the table is there
			rows.d.exec(t, strings.ReplaceAll(ddl, "TBL", rows.table))
			rows.insert(t, 1, 2, 3)
		}
	} else {
		rows = lateRows{d, d.newTable(t, "unreach", ddl)}
		rows.insert(t, 1, 2, 3)
		addr = freeAddr(t)
		src.dsn = withAddr(t, d, addr)
		appear = func() { startProxy(t, addr, serverAddr(t, d)) }
	}
	fields := `
cursor: id
key: [ id ]
lag: 0s
poll_interval: 20ms`

	// Connect itself fails.
	pc, err := sqlInputSpec().ParseYAML(src.inputFields(rows.table, fields), nil)
	require.NoError(t, err)
	in, err := newSQLInput(pc, Deps{Log: n.log, Logger: quietLogger()})
	require.NoError(t, err)
	err = in.Connect(ctxT(t, 20*time.Second))
	require.Error(t, err)
	t.Logf("Connect: %v", err)
	require.NoError(t, in.Close(ctxT(t, 5*time.Second)))

	startStream(t, env(t, n.log), src.sourceYAML(rows.table, fields, fmt.Sprintf("samsa_topic: {topic: %s}", rows.table)))
	time.Sleep(time.Second)
	require.Empty(t, topicIDs(t, n.log, rows.table))
	appear()
	waitIDs(t, n.log, rows.table, 1, 2, 3)
	if d.driver == sqlSQLite {
		return // a file does not go away as a server does
	}

	// The server goes away; rows written meanwhile are read when it is back.
	proxyClose(t, addr)
	rows.insert(t, 4, 5)
	time.Sleep(time.Second)
	require.Equal(t, []int64{1, 2, 3}, topicIDs(t, n.log, rows.table))
	appear()
	waitIDs(t, n.log, rows.table, 1, 2, 3, 4, 5)
}

// tableJSON reads a table's rows, by id, as the source would write them.
func tableJSON(t testing.TB, d *sqlDB, table string) []string {
	t.Helper()
	rows, err := d.db.Query("SELECT * FROM " + quoteIdent(d.driver, table) + " ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	require.NoError(t, err)
	vals := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []string
	for rows.Next() {
		require.NoError(t, rows.Scan(ptrs...))
		b := []byte{'{'}
		for i, ct := range cts {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONStr(b, ct.Name())
			b = append(b, ':')
			b = appendJSONValue(b, columnType(d.driver, ct.DatabaseTypeName()), vals[i])
		}
		out = append(out, string(append(b, '}')))
	}
	require.NoError(t, rows.Err())
	return out
}

// testSQLSinkReplay reads a table of every common type into a topic,
// upserts the topic into a second table of the same columns, and replays
// the topic into it again: the copy equals the original, and the replay
// changes nothing. Then an update and its undo through the output.
func testSQLSinkReplay(t *testing.T, d *sqlDB) {
	n := newNode(t)
	src, want := typesTable(t, d, 50)
	var ddl string
	switch d.driver {
	case sqlPostgres:
		ddl = "CREATE TABLE TBL (LIKE " + quoteIdent(d.driver, src) + " INCLUDING ALL)"
	case sqlMySQL:
		ddl = "CREATE TABLE TBL LIKE " + quoteIdent(d.driver, src)
	default:
		var create string
		require.NoError(t, d.db.QueryRow("SELECT sql FROM sqlite_master WHERE name = ?", src).Scan(&create))
		ddl = strings.Replace(create, quoteIdent(d.driver, src), "TBL", 1)
	}
	dst := d.newTable(t, "sink", ddl)
	topic := src
	startStream(t, env(t, n.log), d.sourceYAML(src, `
    cursor: id
    key: [ id ]
    page_size: 7
    lag: 0s
    poll_interval: 20ms`, fmt.Sprintf("samsa_topic: {topic: %s}", topic)))
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := countTopic(t, n.log, topic); got < len(want) {
			return fmt.Errorf("%d records", got)
		}
		return nil
	})
	rows, err := d.db.Query("SELECT * FROM " + quoteIdent(d.driver, src) + " WHERE 1=0")
	require.NoError(t, err)
	cols, err := rows.Columns()
	require.NoError(t, err)
	rows.Close()

	sink := func(group string) {
		startStream(t, env(t, n.log), fmt.Sprintf(`
input:
  samsa_topic: {topic: %s, group: %s}
output:
  samsa_sql:
    driver: %s
    dsn: %q
    table: %s
    columns: [ %s ]
    key: [ id ]
    batching: {count: 20, period: 5ms}
`, topic, group, d.driver, d.dsn, dst, strings.Join(cols, ", ")))
		_, end, err := n.log.Offsets(replog.TopicPartition{Topic: topic})
		require.NoError(t, err)
		checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			if c, ok := n.log.CommittedOffset(group, replog.TopicPartition{Topic: topic}); !ok || c.Offset < end {
				return fmt.Errorf("group %s has not committed %d yet", group, end)
			}
			return nil
		})
	}
	sink("first")
	original := tableJSON(t, d, src)
	require.Len(t, original, len(want))
	require.Equal(t, original, tableJSON(t, d, dst), "the copy equals the original")
	sink("replay")
	require.Equal(t, len(want), d.count(t, dst))
	require.Equal(t, original, tableJSON(t, d, dst), "the replay changes nothing")

	// An update through the output, then the original record again.
	e := env(t, n.log)
	pc, err := sqlOutputSpec().ParseYAML(fmt.Sprintf("driver: %s\ndsn: %q\ntable: %s\ncolumns: [ %s ]\nkey: [ id ]\n", d.driver, d.dsn, dst, strings.Join(cols, ", ")), e)
	require.NoError(t, err)
	out, _, _, err := newSQLOutput(pc, Deps{Log: n.log, Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, out.Connect(ctxT(t, 10*time.Second)))
	defer out.Close(context.Background())
	rec1 := topicValues(t, n.log, topic)[0]
	changed := strings.Replace(rec1, `"vc":"abc"`, `"vc":"changed"`, 1)
	require.NotEqual(t, rec1, changed)
	require.NoError(t, out.WriteBatch(ctxT(t, 10*time.Second), service.MessageBatch{service.NewMessage([]byte(changed))}))
	require.Equal(t, decodeJSONNumbers(t, changed), decodeJSONNumbers(t, tableJSON(t, d, dst)[0]))
	require.NoError(t, out.WriteBatch(ctxT(t, 10*time.Second), service.MessageBatch{
		service.NewMessage([]byte(changed)), service.NewMessage([]byte(rec1)), // the last of a key wins
	}))
	require.Equal(t, original, tableJSON(t, d, dst))

	// A message that is not a row fails the batch, naming it.
	err = out.WriteBatch(ctxT(t, 10*time.Second), service.MessageBatch{service.NewMessage([]byte(rec1)), service.NewMessage([]byte("not json"))})
	require.ErrorContains(t, err, "message 1")
	require.Equal(t, original, tableJSON(t, d, dst))

	// args_mapping makes the row's values.
	pc, err = sqlOutputSpec().ParseYAML(fmt.Sprintf("driver: %s\ndsn: %q\ntable: %s\ncolumns: [ id, vc, bin ]\nkey: [ id ]\nargs_mapping: 'root = [ this.id, this.vc.uppercase(), content().slice(0, 2) ]'\n",
		d.driver, d.dsn, dst), e)
	require.NoError(t, err)
	mapped, _, _, err := newSQLOutput(pc, Deps{Log: n.log, Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, mapped.Connect(ctxT(t, 10*time.Second)))
	defer mapped.Close(context.Background())
	require.NoError(t, mapped.WriteBatch(ctxT(t, 10*time.Second), service.MessageBatch{service.NewMessage([]byte(rec1))}))
	var vc string
	var bin []byte
	require.NoError(t, d.db.QueryRow("SELECT vc, bin FROM "+quoteIdent(d.driver, dst)+" WHERE id = 1").Scan(&vc, &bin))
	require.Equal(t, "ABC", vc)
	require.Equal(t, []byte(`{"`), bin)
}

// TestSQLConfigErrors checks that bad configs fail with the field named,
// and that a checkpoint of other columns is refused rather than misread.
func TestSQLConfigErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"dsn: x\ncursor: id\nkey: [id]\nsource_id: s", "table, query: exactly one"},
		{"dsn: x\ntable: t\nquery: SELECT 1\ncursor: id\nkey: [id]\nsource_id: s", "table, query: exactly one"},
		{"dsn: x\ntable: t\nkey: [id]\nsource_id: s", "'cursor' is required"},
		{"dsn: x\ntable: t\ncursor: id\nkey: []\nsource_id: s", "key: at least one"},
		{"dsn: x\ntable: t\ncursor: id\nkey: [id]\nsource_id: s\npage_size: 0", "page_size: must be at least 1"},
		{"dsn: x\ntable: t\ncursor: id\nkey: [id]\nsource_id: s\nlag: -1s", "lag: must not be negative"},
	} {
		pc, err := sqlInputSpec().ParseYAML(c.yaml, nil)
		if err == nil {
			_, err = newSQLInput(pc, Deps{Logger: quietLogger()})
		}
		require.ErrorContains(t, err, c.want, c.yaml)
	}
	for _, c := range []struct{ yaml, want string }{
		{"dsn: x\ntable: t\ncolumns: [a, b]\nkey: [c]", `key: column "c" is not among columns`},
		{"dsn: x\ntable: t\ncolumns: []\nkey: [c]", "columns: at least one"},
	} {
		pc, err := sqlOutputSpec().ParseYAML(c.yaml, nil)
		if err == nil {
			_, _, _, err = newSQLOutput(pc, Deps{Logger: quietLogger()})
		}
		require.ErrorContains(t, err, c.want, c.yaml)
	}

	n := newNode(t)
	// The specs' examples build (they connect only when run).
	for _, example := range []string{sqlInputExampleByID, sqlInputExampleByTime, sqlOutputExample} {
		if !strings.Contains(example, "output:") {
			example += "output:\n  drop: {}\n"
		}
		sb := env(t, n.log).NewStreamBuilder()
		require.NoError(t, sb.SetYAML(example), example)
		_, err := sb.Build()
		require.NoError(t, err, example)
	}

	d := newSQLiteDB(t)
	table := d.newTable(t, "ck", "CREATE TABLE TBL (id INTEGER PRIMARY KEY, ts DATETIME, f REAL)")
	ck, err := (&sqlCheckpoint{Cursor: "ts", Key: []string{"id"}}).encode()
	require.NoError(t, err)
	require.NoError(t, n.log.PutCheckpoint(ctxT(t, 10*time.Second), "source/"+table, ck))
	connect := func(more string) error {
		pc, err := sqlInputSpec().ParseYAML(d.inputFields(table, more), nil)
		require.NoError(t, err)
		in, err := newSQLInput(pc, Deps{Log: n.log, Logger: quietLogger()})
		require.NoError(t, err)
		defer in.Close(context.Background())
		return in.Connect(ctxT(t, 10*time.Second))
	}
	require.ErrorContains(t, connect("cursor: id\nkey: [id]"), "use another source_id")
	require.ErrorContains(t, connect("cursor: f\nkey: [id]"), `cursor: column "f" is of type "REAL"`)
	require.ErrorContains(t, connect("cursor: nope\nkey: [id]"), "nope")
	require.NoError(t, connect("cursor: ts\nkey: [id]"))
}
