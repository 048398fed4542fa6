package connectors

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSQLSinkInitStatement: the sink makes its own table with
// init_statement, then upserts into it — twice the same records, one row
// each.
func TestSQLSinkInitStatement(t *testing.T) {
	db := filepath.Join(t.TempDir(), "latest.db")
	e := env(t, newNode(t).log)
	for range 2 {
		st := startStream(t, e, fmt.Sprintf(`
input:
  generate: {count: 6, interval: "", mapping: 'root = {"device": "d%%d".format(counter() %% 3), "n": counter()}'}
output:
  samsa_sql:
    dsn: %q
    table: latest
    columns: [device, n]
    key: [device]
    init_statement: CREATE TABLE IF NOT EXISTS latest (device TEXT PRIMARY KEY, n INTEGER)
`, db))
		st.wait(t, time.Minute)
		require.NoError(t, st.err)
	}
	conn, err := sql.Open("sqlite", db)
	require.NoError(t, err)
	defer conn.Close()
	rows, err := conn.Query("SELECT device, n FROM latest ORDER BY device")
	require.NoError(t, err)
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var d string
		var n int
		require.NoError(t, rows.Scan(&d, &n))
		got[d] = n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]int{"d0": 6, "d1": 4, "d2": 5}, got, "the last of each device")
}
