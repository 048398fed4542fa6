package connectors

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
)

// SQLInputName is the name of the SQL source.
const SQLInputName = "samsa_sql"

// YAML fields of the samsa_sql input (driver, dsn, table, columns, key
// and max_in_flight are the output's too).
const (
	sqlFieldDriver             = "driver"
	sqlFieldDSN                = "dsn"
	sqlFieldTable              = "table"
	sqlFieldQuery              = "query"
	sqlFieldColumns            = "columns"
	sqlFieldCursor             = "cursor"
	sqlFieldKey                = "key"
	sqlFieldWhere              = "where"
	sqlFieldLag                = "lag"
	sqlFieldPageSize           = "page_size"
	sqlFieldPollInterval       = "poll_interval"
	sqlFieldMaxInFlight        = "max_in_flight"
	sqlFieldSourceID           = "source_id"
	sqlFieldCheckpointInterval = "checkpoint_interval"
)

// sqlAlias names the table or query in the statements the input makes.
const sqlAlias = "samsa_t"

// The examples of the spec.
const (
	sqlInputExampleByID = `
input:
  samsa_sql:
    driver: postgres
    dsn: postgres://postgres@127.0.0.1:5432/shop?sslmode=disable
    table: orders
    cursor: id
    key: [ id ]
    source_id: shop-orders
`
	sqlInputExampleByTime = `
input:
  samsa_sql:
    driver: mysql
    dsn: shop:secret@tcp(127.0.0.1:3306)/shop
    table: customers
    columns: [ id, name, email, updated_at ]
    cursor: updated_at
    key: [ id ]
    lag: 10s
    source_id: shop-customers
`
)

func sqlInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Polls a PostgreSQL, MySQL/MariaDB or SQLite table (or query) by an ascending cursor into a pipeline exactly once: every row carries its position, and the position below which everything is stored is checkpointed in Samsa's log.").
		Description(`
The input reads the rows of `+"`table`"+` (or of `+"`query`"+`) in the order of the `+"`cursor`"+`
column, an auto-increment id or an updated-at time, then the `+"`key`"+` columns, which break ties
between rows with the same cursor value: `+"`ORDER BY cursor, key LIMIT page_size`"+`, each page
after the last row read, `+"`WHERE (cursor, key) > (last)`"+` (written out with AND/OR on MySQL).
A page is a batch. When a page comes back short the input waits `+"`poll_interval`"+` before
asking again; a row inserted, or updated with a newer cursor, is read on a later poll. Rows whose
cursor is NULL are not read. Text cursor and key columns are compared and sorted as bytes (a
binary collation: `+"`COLLATE \"C\"`"+`, `+"`CAST(... AS BINARY)`"+`, `+"`COLLATE BINARY`"+`), so an index
on them under another collation is not used for the ordering; integer and time columns use theirs.
(MySQL compares text in the column's character set: keep text keys in utf8mb4, latin1 or ASCII.)
Cursor and key columns must be integers, timestamps or dates, text, UUIDs or binary, NOT NULL
together; another type fails Connect with the column named.

**Late commits.** Cursor values are assigned when a row is written, but the row is visible only
when its transaction commits, so a row can appear behind one that was already read and would be
skipped. `+"`lag`"+` is how long such a transaction may take:
- a time cursor (timestamp, datetime, date) reads only rows with `+"`cursor <= now - lag`"+`, with the
  database's clock (`+"`CURRENT_TIMESTAMP`"+` in PostgreSQL, `+"`NOW(6)`"+` in MySQL, `+"`julianday('now')`"+`
  in SQLite, whose timestamps must be ISO 8601 text in UTC). Every row is late by `+"`lag`"+`.
- an integer cursor is read at once as long as its values follow each other (n, n+1, or equal);
  at a gap (n then n+2) the input stops before the gap and waits until either the missing value
  appears or the row after the gap has been visible for `+"`lag`"+` (then the gap was a rolled back
  transaction, a deleted row or a row that the `+"`where`"+` filters out): a value seen at time T
  was assigned before T, and so was every lower one, whose transactions have committed by
  T + `+"`lag`"+`. This reads the usual case (ids from a sequence, committed in order) at once and
  bounds the rare one by `+"`lag`"+`, where a time window would delay every row. The first row after
  a fresh start (no checkpoint) counts as after a gap. A sequence with a step other than 1 makes
  every row wait.
- text and binary cursors have no lag.

With `+"`lag: 0s`"+` rows are read as soon as they are visible. SQLite has one writer at a time, so
there the lag matters only for values the application assigns out of order.

**Records.** Each row becomes a JSON object of its columns, in the query's order:

| column type | JSON |
|---|---|
| integers | number (MySQL BIT as an unsigned number, BOOLEAN/TINYINT(1) as 0/1) |
| NUMERIC, DECIMAL | string with the exact digits, e.g. "12.50" |
| REAL, DOUBLE, FLOAT | number, shortest digits that read back the same; NaN and infinities as strings |
| BOOLEAN (PostgreSQL; SQLite columns declared BOOLEAN) | true/false |
| text, VARCHAR, CHAR, ENUM, UUID, intervals, arrays, TIME | string (PostgreSQL's text form) |
| BYTEA, BLOB, BINARY, VARBINARY | base64 string |
| DATE | "2006-01-02" |
| TIMESTAMP, TIMESTAMPTZ, DATETIME | RFC 3339 in UTC with 6 (9 if needed) fractional digits; a type without a time zone is taken as UTC |
| JSON, JSONB | the document itself |
| NULL | null |

SQLite columns follow what is stored: integers and reals as numbers, text as strings, blobs as
base64, columns declared DATE/DATETIME/TIMESTAMP as times, DECIMAL/NUMERIC as strings (of what
SQLite stored: an integer or a double). MariaDB's JSON is text, written as a string.

Every message carries metadata `+"`samsa_source`"+` (the `+"`source_id`"+`) and `+"`samsa_position`"+`: the
cursor and key values, encoded so that positions compare as bytes in the order the query sorts
the rows. With a time cursor `+"`samsa_timestamp`"+` is the cursor's time, which becomes the record's
timestamp. Every `+"`checkpoint_interval`"+` and on close the input stores the position of the last
row below which every row it emitted is acknowledged, under `+"`source/<source_id>`"+`; a restart
resumes after it, and the `+"`samsa_topic`"+` output drops the records its partitions already hold,
so each row (each version of a row, with an updated-at cursor) is stored once.

Up to `+"`max_in_flight`"+` pages are in flight. A batch that fails sends the input back to the
acknowledged position (after 50ms, doubling up to 5s while failures go on), and what was read
after the failed batch is not written ahead of it (metadata `+"`samsa_ticket`"+`). An unreachable
database fails Connect (retried with backoff) and reading resumes where it stopped.

DSNs: PostgreSQL `+"`postgres://user:password@host:5432/db?sslmode=disable`"+` (pgx); MySQL/MariaDB
`+"`user:password@tcp(host:3306)/db`"+` (go-sql-driver; `+"`parseTime`"+` is always on, times are read
as UTC: add `+"`time_zone=%27%2B00%3A00%27`"+` for TIMESTAMP columns on a server in another zone);
SQLite a file path or `+"`file:`"+` URI (modernc.org/sqlite; a 5s `+"`_busy_timeout`"+` is added unless
the DSN sets one).`).
		Fields(
			service.NewStringEnumField(sqlFieldDriver, sqlPostgres, sqlMySQL, sqlSQLite).
				Description("The database: `postgres`, `mysql` (MySQL and MariaDB) or `sqlite` (embedded).").
				Default(sqlSQLite),
			service.NewStringField(sqlFieldDSN).
				Description("Where the database is, in the driver's form (see above).").
				Examples("postgres://postgres@127.0.0.1:5432/shop?sslmode=disable", "root@tcp(127.0.0.1:3306)/shop", "./data/shop.db"),
			service.NewStringField(sqlFieldTable).
				Description("The table to read; `schema.table` names another schema. Exactly one of `table` and `query`.").
				Example("orders").Default(""),
			service.NewStringField(sqlFieldQuery).
				Description("A SELECT to read instead of a table, as a derived table: `cursor`, `key`, `columns` and `where` name its output columns.").
				Example("SELECT o.id, o.updated_at, c.name FROM orders o JOIN customers c ON c.id = o.customer_id").
				Default("").Advanced(),
			service.NewStringListField(sqlFieldColumns).
				Description("The columns each record holds, in order. Empty: all of them (`*`).").
				Default([]string{}),
			service.NewStringField(sqlFieldCursor).
				Description("The column rows are read in the order of: an integer (an auto-increment id), a timestamp or date (an updated-at time), or text. Ideally indexed, together with `key`.").
				Examples("id", "updated_at"),
			service.NewStringListField(sqlFieldKey).
				Description("The primary key column(s): the tie-break between rows with the same cursor value. The cursor and key together must be unique and NOT NULL. With a unique cursor, the cursor itself (`[id]`).").
				Example([]string{"id"}),
			service.NewStringField(sqlFieldWhere).
				Description("An extra SQL condition rows must meet, ANDed to the input's own.").
				Example("status <> 'draft'").Default(""),
			service.NewDurationField(sqlFieldLag).
				Description("How long a transaction may take to commit after it wrote its cursor value (see Late commits).").
				Default("5s"),
			service.NewIntField(sqlFieldPageSize).
				Description("Rows per query at most; a page is one batch.").
				Default(1000),
			service.NewDurationField(sqlFieldPollInterval).
				Description("The wait before asking again after a page that was not full.").
				Default("1s"),
			service.NewStringField(sqlFieldSourceID).
				Description("Identifies the source: the key of its checkpoint and the id the partitions fence duplicates by. Keep it stable across restarts and unique per source."),
			service.NewIntField(sqlFieldMaxInFlight).
				Description("Pages read ahead of the oldest one not yet acknowledged.").
				Default(4).Advanced(),
			service.NewDurationField(sqlFieldCheckpointInterval).
				Description("How often the acknowledged position is checkpointed.").
				Default("1s").Advanced(),
		).
		Example("New orders by id", "Read an orders table by its serial id.", sqlInputExampleByID).
		Example("Changes by updated_at", "Read every new version of a row of a MySQL table, ten seconds behind.", sqlInputExampleByTime)
}

// sqlInput is the samsa_sql input. ReadBatch runs one call at a time and
// owns the read state; acknowledgements, the checkpoint loop and Close
// come from other goroutines and meet under mu.
type sqlInput struct {
	log      *replog.Log
	logger   *slog.Logger
	driver   string
	dsn      string
	sourceID string
	srcMeta  any // sourceID, boxed once for every message's metadata
	ckKey    string
	from     string   // the FROM item: the quoted table or the query, aliased
	columns  []string // empty: all
	cursor   string
	keys     []string // the tie-break columns, without the cursor
	where    string
	lag      time.Duration
	pageSize int
	poll     time.Duration
	ckEvery  time.Duration
	inFlight int
	fl       inflight[[]byte] // positions: the last row of a batch

	readMu   sync.Mutex // held by Connect and ReadBatch; Close takes it to close the pool
	db       *sql.DB
	q        sqlQueries // built by the first Connect that reaches the table
	kinds    []orderKind
	readPos  []byte // the position of the last row issued; nil: from the start
	nextPoll time.Time
	heads    headHistory
	names    []string // the record columns of the last page
	prefixes [][]byte // `"name":` of each, with the separator before it
	slabHint int

	wake   chan struct{} // a generation was killed
	done   chan struct{} // closed by Close
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	close1 sync.Once

	mu struct {
		sync.Mutex
		loaded bool // the checkpoint is loaded and the checkpoint loop runs
	}

	ckMu   sync.Mutex // one checkpoint write at a time, in order
	stored []byte     // the checkpoint last stored (under ckMu)
}

// sqlQueries are the input's statements.
type sqlQueries struct {
	first  string // the first page, without a position
	after  string // a page after a position
	argIdx []int  // the position value each parameter of after takes
	head   string // the highest cursor value
}

func newSQLInput(conf *service.ParsedConfig, deps Deps) (*sqlInput, error) {
	in := &sqlInput{log: deps.Log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	var err error
	str := func(f string, dst *string) {
		if err == nil {
			*dst, err = conf.FieldString(f)
		}
	}
	var table, query string
	str(sqlFieldDriver, &in.driver)
	str(sqlFieldDSN, &in.dsn)
	str(sqlFieldTable, &table)
	str(sqlFieldQuery, &query)
	str(sqlFieldCursor, &in.cursor)
	str(sqlFieldWhere, &in.where)
	str(sqlFieldSourceID, &in.sourceID)
	if err != nil {
		return nil, err
	}
	if in.columns, err = conf.FieldStringList(sqlFieldColumns); err != nil {
		return nil, err
	}
	if in.keys, err = conf.FieldStringList(sqlFieldKey); err != nil {
		return nil, err
	}
	if in.lag, err = conf.FieldDuration(sqlFieldLag); err != nil {
		return nil, err
	}
	if in.poll, err = conf.FieldDuration(sqlFieldPollInterval); err != nil {
		return nil, err
	}
	if in.ckEvery, err = conf.FieldDuration(sqlFieldCheckpointInterval); err != nil {
		return nil, err
	}
	if in.pageSize, err = conf.FieldInt(sqlFieldPageSize); err != nil {
		return nil, err
	}
	if in.inFlight, err = conf.FieldInt(sqlFieldMaxInFlight); err != nil {
		return nil, err
	}
	var problems []string
	switch {
	case in.dsn == "":
		problems = append(problems, sqlFieldDSN+": required")
	case (table == "") == (query == ""):
		problems = append(problems, sqlFieldTable+", "+sqlFieldQuery+": exactly one is required")
	}
	if in.cursor == "" {
		problems = append(problems, sqlFieldCursor+": required")
	}
	if len(in.keys) == 0 {
		problems = append(problems, sqlFieldKey+": at least one column is required (the cursor itself if it is unique)")
	}
	if slices.Contains(in.keys, "") || slices.Contains(in.columns, "") {
		problems = append(problems, sqlFieldKey+", "+sqlFieldColumns+": empty column name")
	}
	if in.sourceID == "" {
		problems = append(problems, sqlFieldSourceID+": required")
	}
	if in.lag < 0 {
		problems = append(problems, sqlFieldLag+": must not be negative")
	}
	if in.poll <= 0 {
		problems = append(problems, sqlFieldPollInterval+": must be positive")
	}
	if in.ckEvery <= 0 {
		problems = append(problems, sqlFieldCheckpointInterval+": must be positive")
	}
	if in.pageSize < 1 {
		problems = append(problems, sqlFieldPageSize+": must be at least 1")
	}
	if in.inFlight < 1 {
		problems = append(problems, sqlFieldMaxInFlight+": must be at least 1")
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	in.keys = slices.DeleteFunc(slices.Clone(in.keys), func(k string) bool { return k == in.cursor })
	if table != "" {
		in.from = quoteIdent(in.driver, table) + " AS " + sqlAlias
	} else {
		in.from = "(" + query + ") AS " + sqlAlias
	}
	in.fl.init(&in.mu.Mutex, in.wake, in.done)
	in.srcMeta = in.sourceID
	in.ckKey = "source/" + in.sourceID
	in.logger = deps.Logger.With("input", SQLInputName, "source", in.sourceID)
	in.ctx, in.cancel = context.WithCancel(context.Background())
	return in, nil
}

// Connect opens the pool and checks that the database answers; the first
// time it reaches the table it learns the cursor's and key's types,
// builds the queries and loads the checkpoint.
func (in *sqlInput) Connect(ctx context.Context) error {
	in.readMu.Lock()
	defer in.readMu.Unlock()
	if in.db == nil {
		db, err := openSQL(in.driver, in.dsn, in.logger)
		if err != nil {
			return fmt.Errorf("%s: %w", sqlFieldDSN, err)
		}
		in.db = db
	}
	if err := pingSQL(ctx, in.db); err != nil {
		return fmt.Errorf("connecting to %s: %w", in.driver, err)
	}
	if in.q.first == "" {
		if err := in.prepare(ctx); err != nil {
			return err
		}
	}
	in.mu.Lock()
	loaded := in.mu.loaded
	in.mu.Unlock()
	if loaded {
		return nil
	}
	var acked []byte
	if b, ok := in.log.Checkpoint(in.ckKey); ok {
		c, err := decodeSQLCheckpoint(b)
		if err != nil {
			return fmt.Errorf("%s: %w", in.ckKey, err)
		}
		if c.Cursor != in.cursor || !slices.Equal(c.Key, in.keys) {
			return fmt.Errorf("%s: the checkpoint is of cursor %q and key %q, not %q and %q: use another %s to read from the start",
				in.ckKey, c.Cursor, c.Key, in.cursor, in.keys, sqlFieldSourceID)
		}
		if c.Acked != nil {
			if vals, _ := decodeSQLPos(c.Acked); len(vals) != 1+len(in.keys) {
				return fmt.Errorf("%s: the checkpoint's position has %d values, not %d", in.ckKey, len(vals), 1+len(in.keys))
			}
		}
		acked = c.Acked
		in.ckMu.Lock()
		in.stored = b
		in.ckMu.Unlock()
	}
	in.readPos = acked
	in.mu.Lock()
	in.fl.setAckedLocked(acked)
	in.mu.loaded = true
	in.mu.Unlock()
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		storeEvery(in.ctx, in.done, in.ckEvery, in.logger, in.storeCheckpoint)
	}()
	in.logger.Info("sql source connected", "driver", in.driver, "resume", acked != nil)
	return nil
}

// prepare learns the types of the cursor and key columns (and that the
// table and columns exist) and builds the queries.
func (in *sqlInput) prepare(ctx context.Context) error {
	posCols := append([]string{in.cursor}, in.keys...)
	quoted := make([]string, len(posCols))
	for i, c := range posCols {
		quoted[i] = quoteIdent(in.driver, c)
	}
	recSel := sqlAlias + ".*"
	if len(in.columns) > 0 {
		cols := make([]string, len(in.columns))
		for i, c := range in.columns {
			cols[i] = quoteIdent(in.driver, c)
		}
		recSel = strings.Join(cols, ", ")
	}
	ctx, cancel := context.WithTimeout(ctx, sqlConnectTimeout)
	defer cancel()
	rows, err := in.db.QueryContext(ctx, "SELECT "+strings.Join(quoted, ", ")+", "+recSel+" FROM "+in.from+" WHERE 1=0")
	if err != nil {
		return fmt.Errorf("reading %s: %w", in.from, err)
	}
	cts, err := rows.ColumnTypes()
	rows.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", in.from, err)
	}
	kinds := make([]orderKind, len(posCols))
	exprs := make([]string, len(posCols))
	sel := make([]string, len(posCols))
	for i, c := range posCols {
		k, bin, ok := orderKindOf(in.driver, cts[i].DatabaseTypeName())
		if !ok {
			field := sqlFieldKey
			if i == 0 {
				field = sqlFieldCursor
			}
			return fmt.Errorf("%s: column %q is of type %q, which cannot order rows (integers, timestamps, dates, text or bytes can)", field, c, cts[i].DatabaseTypeName())
		}
		kinds[i], exprs[i], sel[i] = k, orderExpr(in.driver, quoted[i], bin), quoted[i]
		if in.driver == sqlSQLite {
			sel[i] = "+" + quoted[i] // the stored value, not a time the driver parsed
		}
	}
	in.kinds = kinds

	base := "SELECT " + strings.Join(sel, ", ") + ", " + recSel + " FROM " + in.from + " WHERE "
	conds := []string{quoted[0] + " IS NOT NULL"}
	if in.where != "" {
		conds = append(conds, "("+in.where+")")
	}
	if kinds[0] == orderTime && in.lag > 0 {
		conds = append(conds, in.lagCondition(quoted[0]))
	}
	order := " ORDER BY " + strings.Join(exprs, ", ") + " LIMIT " + strconv.Itoa(in.pageSize)
	after, argIdx := afterCondition(in.driver, exprs)
	in.q = sqlQueries{
		first:  base + strings.Join(conds, " AND ") + order,
		after:  base + strings.Join(append(conds, after), " AND ") + order,
		argIdx: argIdx,
		head:   "SELECT MAX(" + quoted[0] + ") FROM " + in.from,
	}
	if in.where != "" {
		in.q.head += " WHERE (" + in.where + ")"
	}
	return nil
}

// lagCondition keeps rows whose time cursor is at least lag old by the
// database's clock.
func (in *sqlInput) lagCondition(col string) string {
	us := strconv.FormatInt(in.lag.Microseconds(), 10)
	switch in.driver {
	case sqlPostgres:
		return col + " <= CURRENT_TIMESTAMP - interval '" + us + " microseconds'"
	case sqlMySQL:
		return col + " <= NOW(6) - INTERVAL " + us + " MICROSECOND"
	default: // text that does not parse as a time is read, not skipped
		days := strconv.FormatFloat(in.lag.Seconds()/86400, 'g', -1, 64)
		return "IFNULL(julianday(" + col + ") > julianday('now') - " + days + ", 0) = 0"
	}
}

// afterCondition is "(e1, e2, ...) > (p1, p2, ...)" for the driver, and
// which position value each parameter takes. MySQL gets the expanded
// form, e1 >= p AND (e1 > p OR (e1 = p AND (e2 > p ...))), whose first
// term its range optimizer uses.
func afterCondition(driver string, exprs []string) (string, []int) {
	var idx []int
	if driver != sqlMySQL {
		ps := make([]string, len(exprs))
		for i := range exprs {
			ps[i] = placeholder(driver, i+1)
			idx = append(idx, i)
		}
		if len(exprs) == 1 {
			return exprs[0] + " > " + ps[0], idx
		}
		return "(" + strings.Join(exprs, ", ") + ") > (" + strings.Join(ps, ", ") + ")", idx
	}
	var gt func(i int) string
	gt = func(i int) string {
		idx = append(idx, i)
		if i == len(exprs)-1 {
			return exprs[i] + " > ?"
		}
		s := "(" + exprs[i] + " > ? OR (" + exprs[i] + " = ? AND "
		idx = append(idx, i)
		return s + gt(i+1) + "))"
	}
	idx = append(idx, 0)
	s := exprs[0] + " >= ? AND " + gt(0)
	return s, idx
}

// ReadBatch returns the next page of rows once fewer than max_in_flight
// are unacknowledged, reading again from the acknowledged position first
// if a batch failed.
func (in *sqlInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	in.readMu.Lock()
	defer in.readMu.Unlock()
	if err := in.fl.waitRoom(ctx, in.inFlight-1); err != nil {
		return nil, nil, err
	}
	for {
		if err := in.rewindIfFailed(ctx); err != nil {
			return nil, nil, err
		}
		if d := time.Until(in.nextPoll); d > 0 {
			if err := pause(ctx, d, in.wake, in.done); err != nil {
				return nil, nil, err
			}
			continue
		}
		msgs, end, full, err := in.readPage(ctx)
		if err != nil {
			return nil, nil, in.readFailed(ctx, err)
		}
		if !full {
			in.nextPoll = time.Now().Add(in.poll)
		}
		if len(msgs) == 0 {
			continue
		}
		ack, tk, ok := in.fl.issue(end, false, nil)
		if !ok {
			continue // a batch failed meanwhile: these are read again
		}
		for _, m := range msgs {
			m.MetaSetMut(MetaTicket, tk)
		}
		in.readPos = end
		return msgs, ack, nil
	}
}

// readFailed turns a failed read into ErrNotConnected if the database is
// gone (Benthos then connects again, with backoff), or the error.
func (in *sqlInput) readFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if connectionLost(err) || pingSQL(ctx, in.db) != nil {
		in.logger.Warn("database connection lost", "err", err)
		return service.ErrNotConnected
	}
	return fmt.Errorf("reading %s: %w", in.from, err)
}

// readPage reads the page after readPos. full reports a page of
// page_size rows that the lag did not cut short: more may follow at once.
func (in *sqlInput) readPage(ctx context.Context) (msgs service.MessageBatch, end []byte, full bool, err error) {
	query, args := in.q.first, []any(nil)
	var prev any // the cursor value of the row before
	if in.readPos != nil {
		vals, err := decodeSQLPos(in.readPos)
		if err != nil {
			return nil, nil, false, err
		}
		for _, i := range in.q.argIdx {
			args = append(args, vals[i])
		}
		query, prev = in.q.after, vals[0]
	}
	rows, err := in.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, false, err
	}
	defer rows.Close()
	if err := in.recordColumns(rows); err != nil {
		return nil, nil, false, err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, nil, false, err
	}
	npos := len(in.kinds)
	types := make([]sqlType, len(cts)-npos)
	for i := range types {
		types[i] = columnType(in.driver, cts[npos+i].DatabaseTypeName())
	}
	vals := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	gate := in.kinds[0] == orderInt && in.lag > 0
	safe, haveSafe := in.heads.safe(time.Now(), in.lag)
	content := make([]byte, 0, max(in.slabHint, 4096))
	var bounds []int
	var pos []byte
	var posEnds []int
	var stamps []time.Time
	n, cut := 0, false
	for rows.Next() {
		n++
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, false, err
		}
		for i := range npos {
			v, err := posValue(in.kinds[i], vals[i])
			if err != nil {
				return nil, nil, false, in.posError(i, err)
			}
			vals[i] = v
		}
		if gate && !passesGap(prev, vals[0], safe, haveSafe) {
			cut = true
			break
		}
		prev = vals[0]
		if pos, err = encodeSQLPos(pos, vals[:npos]); err != nil {
			return nil, nil, false, in.posError(0, err)
		}
		posEnds = append(posEnds, len(pos))
		content = append(content, '{')
		for i, t := range types {
			content = append(content, in.prefixes[i]...)
			content = appendJSONValue(content, t, vals[npos+i])
		}
		content = append(content, '}')
		bounds = append(bounds, len(content))
		if in.kinds[0] == orderTime {
			stamps = append(stamps, cursorTime(vals[0]))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, false, err
	}
	rows.Close()
	if cut {
		if err := in.observeHead(ctx); err != nil {
			return nil, nil, false, err
		}
	}
	in.slabHint = len(content) + len(content)/8
	msgs = make(service.MessageBatch, len(bounds))
	a, p := 0, 0
	for i, b := range bounds {
		m := service.NewMessage(content[a:b:b])
		m.MetaSetMut(MetaSource, in.srcMeta)
		end = pos[p:posEnds[i]:posEnds[i]]
		m.MetaSetMut(MetaPosition, end)
		if stamps != nil && !stamps[i].IsZero() {
			m.MetaSetMut(MetaTimestamp, stamps[i])
		}
		msgs[i] = m
		a, p = b, posEnds[i]
	}
	return msgs, end, n == in.pageSize && !cut, nil
}

func (in *sqlInput) posError(i int, err error) error {
	field, col := sqlFieldCursor, in.cursor
	if i > 0 {
		field, col = sqlFieldKey, in.keys[i-1]
	}
	return fmt.Errorf("%s: column %q: %w (cursor and key columns must be NOT NULL integers, times, text or bytes)", field, col, err)
}

// recordColumns keeps the JSON prefix of each record column of rows.
func (in *sqlInput) recordColumns(rows *sql.Rows) error {
	names, err := rows.Columns()
	if err != nil {
		return err
	}
	names = names[len(in.kinds):]
	if slices.Equal(names, in.names) {
		return nil
	}
	in.names = names
	in.prefixes = make([][]byte, len(names))
	for i, n := range names {
		var b []byte
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONStr(b, n)
		in.prefixes[i] = append(b, ':')
	}
	return nil
}

// cursorTime is a time cursor's value as a time; zero if it is text that
// does not parse.
func cursorTime(v any) time.Time {
	switch v := v.(type) {
	case time.Time:
		return v
	case string:
		t, _ := parseSQLiteTime(v)
		return t
	}
	return time.Time{}
}

// passesGap reports whether an integer cursor value c may be read after
// prev (nil: nothing read yet): it follows prev without a gap, or it is
// at or below the highest value seen at least lag ago.
func passesGap(prev, c any, safe int64, haveSafe bool) bool {
	ci, ok := c.(int64)
	if !ok {
		return true // above the int64 range: no gap check
	}
	if p, ok := prev.(int64); ok && (ci == p || p < math.MaxInt64 && ci == p+1) {
		return true
	}
	return haveSafe && ci <= safe
}

// observeHead records the highest cursor value there is now.
func (in *sqlInput) observeHead(ctx context.Context) error {
	var v any
	if err := in.db.QueryRowContext(ctx, in.q.head).Scan(&v); err != nil {
		return err
	}
	v, err := posValue(orderInt, v)
	if err != nil {
		return nil // an empty table
	}
	if c, ok := v.(int64); ok {
		in.heads.observe(time.Now(), c)
	}
	return nil
}

// headHistory remembers when the highest integer cursor value was seen,
// for the lag's gap rule: a value visible at time T was assigned before
// T, and so was every lower one, whose transactions have committed by
// T + lag.
type headHistory struct {
	obs []headObs // v and t increasing
}

type headObs struct {
	t time.Time
	v int64
}

func (h *headHistory) observe(t time.Time, v int64) {
	if n := len(h.obs); n > 0 && h.obs[n-1].v >= v {
		return
	}
	h.obs = append(h.obs, headObs{t, v})
}

// safe returns the highest value seen at or before now - lag.
func (h *headHistory) safe(now time.Time, lag time.Duration) (int64, bool) {
	limit := now.Add(-lag)
	i := -1
	for j := range h.obs {
		if h.obs[j].t.After(limit) {
			break
		}
		i = j
	}
	if i < 0 {
		return 0, false
	}
	v := h.obs[i].v
	h.obs = append(h.obs[:0], h.obs[i:]...)
	return v, true
}

// rewindIfFailed reads again from the acknowledged position if a batch
// failed, after a wait that grows while failures go on.
func (in *sqlInput) rewindIfFailed(ctx context.Context) error {
	pos, rewound, err := in.fl.rewindIfFailed(ctx, in.logger, "a batch failed; reading again from the acknowledged position")
	if err != nil || !rewound {
		return err
	}
	in.readPos, in.nextPoll = pos, time.Time{}
	return nil
}

// storeCheckpoint stores the acknowledged position if it changed since
// the last store.
func (in *sqlInput) storeCheckpoint(ctx context.Context) error {
	in.ckMu.Lock()
	defer in.ckMu.Unlock()
	in.mu.Lock()
	c := sqlCheckpoint{Cursor: in.cursor, Key: in.keys, Acked: in.fl.ackedLocked()}
	in.mu.Unlock()
	b, err := c.encode()
	if err != nil {
		return err
	}
	if bytes.Equal(b, in.stored) {
		return nil
	}
	if err := in.log.PutCheckpoint(ctx, in.ckKey, b); err != nil {
		return fmt.Errorf("connectors: %s: storing the checkpoint: %w", in.sourceID, err)
	}
	in.stored = b
	return nil
}

// Close stores a last checkpoint and closes the pool.
func (in *sqlInput) Close(ctx context.Context) error {
	var err error
	in.close1.Do(func() {
		close(in.done)
		in.cancel()
		in.wg.Wait()
		in.mu.Lock()
		loaded := in.mu.loaded
		in.mu.Unlock()
		if loaded {
			err = in.storeCheckpoint(ctx)
		}
		in.readMu.Lock()
		if in.db != nil {
			if cerr := in.db.Close(); err == nil {
				err = cerr
			}
			in.db = nil
		}
		in.readMu.Unlock()
	})
	return err
}
