package connectors

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// benchSQLPage is the page size of every reader in BenchmarkSQLSource.
const benchSQLPage = 1000

// benchSQLTable creates a table of n rows (id 1..n, user, n, a 60-byte
// payload: records of about 100 bytes of JSON).
func benchSQLTable(b *testing.B, d *sqlDB, n int) string {
	b.Helper()
	table := d.newTable(b, "bench", d.pick(
		`CREATE TABLE TBL (id bigint PRIMARY KEY, "user" text NOT NULL, n integer NOT NULL, payload text NOT NULL)`,
		"CREATE TABLE TBL (id BIGINT PRIMARY KEY, user VARCHAR(10) NOT NULL, n INT NOT NULL, payload VARCHAR(100) NOT NULL)",
		`CREATE TABLE TBL (id INTEGER PRIMARY KEY, "user" TEXT NOT NULL, n INTEGER NOT NULL, payload TEXT NOT NULL)`))
	tx, err := d.db.Begin()
	require.NoError(b, err)
	payload := strings.Repeat("x", 60)
	for start := 1; start <= n; start += 1000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + quoteIdent(d.driver, table) + " VALUES ")
		for id := start; id < start+1000 && id <= n; id++ {
			if id > start {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d, 'u%03d', %d, '%s')", id, id%997, id, payload)
		}
		_, err := tx.Exec(sb.String())
		require.NoError(b, err)
	}
	require.NoError(b, tx.Commit())
	return table
}

// BenchmarkSQLSource reads b.N rows of about 100 bytes by an id cursor,
// 1000 per page, and reports records/s: "raw" is database/sql alone
// running the same keyset query the input runs (cursor, then the
// record's columns) and scanning every value; "input" is the samsa_sql
// input into a counting consumer (JSON, positions, acknowledgements);
// "topic" is the input writing a topic (acks=all, fsynced by Raft).
// SQLite always; PostgreSQL and MySQL when their variables are set.
func BenchmarkSQLSource(b *testing.B) {
	for _, driver := range []string{sqlSQLite, sqlPostgres, sqlMySQL} {
		b.Run(driver, func(b *testing.B) {
			for _, mode := range []string{"raw", "input", "topic"} {
				b.Run(mode, func(b *testing.B) {
					var d *sqlDB
					if driver == sqlSQLite {
						d = newSQLiteDB(b)
					} else {
						d = serviceDB(b, driver)
					}
					table := benchSQLTable(b, d, b.N)
					var elapsed time.Duration
					cpu0 := cpuTime()
					switch mode {
					case "raw":
						b.ReportAllocs()
						b.ResetTimer()
						start := time.Now()
						benchSQLRaw(b, d, table)
						elapsed = time.Since(start)
					case "input":
						elapsed = benchSQLInput(b, d, table)
					case "topic":
						elapsed = benchSQLTopic(b, d, table)
					}
					b.StopTimer()
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
					b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/record")
				})
			}
		})
	}
}

func benchSQLRaw(b *testing.B, d *sqlDB, table string) {
	q := fmt.Sprintf("SELECT id, id, %s, n, payload FROM %s WHERE id > %s ORDER BY id LIMIT %d",
		quoteIdent(d.driver, "user"), quoteIdent(d.driver, table), placeholder(d.driver, 1), benchSQLPage)
	vals := make([]any, 5)
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var last int64
	read := 0
	for {
		rows, err := d.db.Query(q, last)
		require.NoError(b, err)
		n := 0
		for rows.Next() {
			require.NoError(b, rows.Scan(ptrs...))
			last = vals[0].(int64)
			n++
		}
		require.NoError(b, rows.Err())
		rows.Close()
		read += n
		if n < benchSQLPage {
			break
		}
	}
	require.Equal(b, b.N, read)
}

func benchSQLFields(d *sqlDB, table string) string {
	return d.inputFields(table, fmt.Sprintf("cursor: id\nkey: [ id ]\nlag: 0s\npage_size: %d\npoll_interval: 10ms", benchSQLPage))
}

// benchSQLInput times from the stream's start; the node's start is not
// timed.
func benchSQLInput(b *testing.B, d *sqlDB, table string) time.Duration {
	n := newNode(b)
	sb := env(b, n.log).NewStreamBuilder()
	sb.SetLogger(quietLogger())
	require.NoError(b, sb.AddInputYAML("samsa_sql:\n  "+strings.ReplaceAll(strings.TrimSpace(benchSQLFields(d, table)), "\n", "\n  ")))
	var count atomic.Int64
	done := make(chan struct{})
	require.NoError(b, sb.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
		if count.Add(int64(len(batch))) == int64(b.N) {
			close(done)
		}
		return nil
	}))
	s, err := sb.Build()
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { _ = s.Run(context.Background()) }()
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("read %d of %d rows", count.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	require.NoError(b, s.StopWithin(10*time.Second))
	return elapsed
}

// benchSQLTopic times from the stream's start; the node's start and the
// topic's creation and election are not timed.
func benchSQLTopic(b *testing.B, d *sqlDB, table string) time.Duration {
	n := newNode(b)
	require.NoError(b, n.log.CreateTopic(ctxT(b, time.Minute), replog.TopicSpec{Name: table, Partitions: 1, ReplicationFactor: 1}, false))
	e := env(b, n.log)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	st := startStream(b, e, fmt.Sprintf("input:\n  samsa_sql:\n    %s\noutput:\n  samsa_topic: {topic: %s}\n",
		strings.ReplaceAll(strings.TrimSpace(benchSQLFields(d, table)), "\n", "\n    "), table))
	checkFor(b, 10*time.Minute, time.Millisecond, func() error {
		if got := countTopic(b, n.log, table); got < b.N {
			return fmt.Errorf("%d of %d records", got, b.N)
		}
		return nil
	})
	elapsed := time.Since(start)
	b.StopTimer()
	st.stop(b, 10*time.Second)
	return elapsed
}
