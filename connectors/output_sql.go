package connectors

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// SQLOutputName is the name of the SQL sink.
const SQLOutputName = "samsa_sql"

// YAML fields of the samsa_sql output besides the input's.
const (
	sqlFieldArgsMapping = "args_mapping"
	sqlFieldBatching    = "batching"
	sqlFieldInit        = "init_statement"
)

// sqlMaxParams bounds the parameters of one statement (SQLite allows
// 32766, PostgreSQL and MySQL 65535).
const sqlMaxParams = 30000

// sqliteTimeLayout is how the output writes times into SQLite: the
// driver's "sqlite" format, which SQLite's date functions read.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// The examples of the spec.
const (
	sqlOutputExample = `
input:
  samsa_topic:
    topic: orders
    group: orders-to-pg
output:
  samsa_sql:
    driver: postgres
    dsn: postgres://postgres@127.0.0.1:5432/reporting?sslmode=disable
    table: orders
    columns: [ id, customer, total, updated_at ]
    key: [ id ]
`
)

func sqlOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Upserts messages into a PostgreSQL, MySQL/MariaDB or SQLite table by key, so that a replayed message changes nothing.").
		Description(`
Each batch is one transaction of multi-row `+"`INSERT ... ON CONFLICT (key) DO UPDATE`"+` (PostgreSQL,
SQLite) or `+"`INSERT ... ON DUPLICATE KEY UPDATE`"+` (MySQL) statements: a row whose key is new is
inserted, one whose key exists gets the message's values. Writing the same messages again leaves
the table as it was, so a sink that replays a topic after a crash is exactly once in effect. The
key columns need a unique index or primary key. Within a batch the last message of a key wins.

Each message gives one row: by default the JSON object's fields named like `+"`columns`"+` (a
missing field is NULL), or the array `+"`args_mapping`"+` makes, one value per column. Values are
converted for the column's type, so that what the `+"`samsa_sql`"+` input wrote goes back as it was:
base64 text into binary columns, RFC 3339 text into timestamp columns, any JSON into JSON columns
as its text; numbers stay exact (integers as integers, other numbers as text unless the column is
a float). A message that cannot be converted fails the whole batch, with the message's index and
the column in the error, and nothing of the batch is written.

With `+"`max_in_flight`"+` above 1, batches are written concurrently and two updates of one key may
land out of order. The DSNs are the input's.`).
		Fields(
			service.NewStringEnumField(sqlFieldDriver, sqlPostgres, sqlMySQL, sqlSQLite).
				Description("The database: `postgres`, `mysql` (MySQL and MariaDB) or `sqlite` (embedded).").
				Default(sqlSQLite),
			service.NewStringField(sqlFieldDSN).
				Description("Where the database is, in the driver's form (see the `samsa_sql` input).").
				Examples("postgres://postgres@127.0.0.1:5432/shop?sslmode=disable", "root@tcp(127.0.0.1:3306)/shop", "./data/shop.db"),
			service.NewStringField(sqlFieldTable).
				Description("The table to write; `schema.table` names another schema.").
				Example("orders"),
			service.NewStringListField(sqlFieldColumns).
				Description("The columns each message writes, in the order of `args_mapping`'s array.").
				Example([]string{"id", "customer", "total", "updated_at"}),
			service.NewStringListField(sqlFieldKey).
				Description("The columns of the table's primary key or unique index that identify a row; they must be among `columns`.").
				Example([]string{"id"}),
			service.NewBloblangField(sqlFieldArgsMapping).
				Description("A Bloblang mapping that makes an array of the row's values, one per column. Default: the message's JSON fields of the columns' names.").
				Example(`root = [ this.id, this.customer.name, this.total, now() ]`).
				Optional(),
			service.NewStringField(sqlFieldInit).
				Description("A statement run once when the output connects, before anything is written: typically `CREATE TABLE IF NOT EXISTS ...`, so the sink makes its own table.").
				Example("CREATE TABLE IF NOT EXISTS latest (device TEXT PRIMARY KEY, ts TEXT, temperature_c REAL)").
				Optional(),
			service.NewBatchPolicyField(sqlFieldBatching).
				Description("How messages are gathered into transactions. When absent: `count: 1024, period: 1ms`."),
			service.NewIntField(sqlFieldMaxInFlight).
				Description("Batches written at once.").
				Default(1).Advanced(),
		).
		Example("Upsert a topic into a table", "Keep a PostgreSQL table of the latest order versions.", sqlOutputExample)
}

// sqlOutput is the samsa_sql output. Benthos may call WriteBatch
// concurrently (max_in_flight); mu guards the pool and what Connect
// learned.
type sqlOutput struct {
	logger  *slog.Logger
	driver  string
	dsn     string
	table   string
	columns []string
	keys    []string
	keyIdx  []int
	args    *bloblang.Executor // nil: the JSON fields
	init    string             // init_statement, run by Connect

	mu    sync.RWMutex
	db    *sql.DB
	types []sqlType // of each column
	stmts map[int]string
}

func newSQLOutput(conf *service.ParsedConfig, deps Deps) (*sqlOutput, service.BatchPolicy, int, error) {
	o := &sqlOutput{stmts: map[int]string{}}
	policy := defaultBatchPolicy
	var err error
	if o.driver, err = conf.FieldString(sqlFieldDriver); err != nil {
		return nil, policy, 0, err
	}
	if o.dsn, err = conf.FieldString(sqlFieldDSN); err != nil {
		return nil, policy, 0, err
	}
	if o.table, err = conf.FieldString(sqlFieldTable); err != nil {
		return nil, policy, 0, err
	}
	if o.columns, err = conf.FieldStringList(sqlFieldColumns); err != nil {
		return nil, policy, 0, err
	}
	if o.keys, err = conf.FieldStringList(sqlFieldKey); err != nil {
		return nil, policy, 0, err
	}
	if conf.Contains(sqlFieldArgsMapping) {
		if o.args, err = conf.FieldBloblang(sqlFieldArgsMapping); err != nil {
			return nil, policy, 0, err
		}
	}
	if conf.Contains(sqlFieldInit) {
		if o.init, err = conf.FieldString(sqlFieldInit); err != nil {
			return nil, policy, 0, err
		}
	}
	if conf.Contains(sqlFieldBatching) {
		if policy, err = conf.FieldBatchPolicy(sqlFieldBatching); err != nil {
			return nil, policy, 0, err
		}
	}
	inFlight, err := conf.FieldInt(sqlFieldMaxInFlight)
	if err != nil {
		return nil, policy, 0, err
	}
	var problems []string
	if o.dsn == "" {
		problems = append(problems, sqlFieldDSN+": required")
	}
	if o.table == "" {
		problems = append(problems, sqlFieldTable+": required")
	}
	if len(o.columns) == 0 || slices.Contains(o.columns, "") {
		problems = append(problems, sqlFieldColumns+": at least one column, none empty")
	}
	if len(o.keys) == 0 {
		problems = append(problems, sqlFieldKey+": at least one column is required")
	}
	for _, k := range o.keys {
		i := slices.Index(o.columns, k)
		if i < 0 {
			problems = append(problems, fmt.Sprintf("%s: column %q is not among %s", sqlFieldKey, k, sqlFieldColumns))
		}
		o.keyIdx = append(o.keyIdx, i)
	}
	if inFlight < 1 {
		problems = append(problems, sqlFieldMaxInFlight+": must be at least 1")
	}
	if len(problems) > 0 {
		return nil, policy, 0, errors.New(strings.Join(problems, "; "))
	}
	o.logger = deps.Logger.With("output", SQLOutputName, "table", o.table)
	return o, policy, inFlight, nil
}

// Connect opens the pool, checks that the database answers and learns
// the columns' types.
func (o *sqlOutput) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.db == nil {
		if o.driver == sqlSQLite {
			// A sink makes its database, as the file sink makes its file.
			if err := mkdirSQLite(o.dsn); err != nil {
				return fmt.Errorf("%s: %w", sqlFieldDSN, err)
			}
		}
		db, err := openSQL(o.driver, o.dsn, o.logger)
		if err != nil {
			return fmt.Errorf("%s: %w", sqlFieldDSN, err)
		}
		o.db = db
	}
	if err := pingSQL(ctx, o.db); err != nil {
		return fmt.Errorf("connecting to %s: %w", o.driver, err)
	}
	if o.init != "" {
		ictx, cancel := context.WithTimeout(ctx, sqlConnectTimeout)
		_, err := o.db.ExecContext(ictx, o.init)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", sqlFieldInit, err)
		}
	}
	cols := make([]string, len(o.columns))
	for i, c := range o.columns {
		cols[i] = quoteIdent(o.driver, c)
	}
	ctx, cancel := context.WithTimeout(ctx, sqlConnectTimeout)
	defer cancel()
	rows, err := o.db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+quoteIdent(o.driver, o.table)+" WHERE 1=0")
	if err != nil {
		return fmt.Errorf("%s %q: %w", sqlFieldTable, o.table, err)
	}
	cts, err := rows.ColumnTypes()
	rows.Close()
	if err != nil {
		return fmt.Errorf("%s %q: %w", sqlFieldTable, o.table, err)
	}
	o.types = make([]sqlType, len(cts))
	for i, ct := range cts {
		o.types[i] = columnType(o.driver, ct.DatabaseTypeName())
	}
	return nil
}

// WriteBatch upserts the batch in one transaction.
func (o *sqlOutput) WriteBatch(ctx context.Context, msgs service.MessageBatch) error {
	o.mu.RLock()
	db, types := o.db, o.types
	o.mu.RUnlock()
	if db == nil || types == nil {
		return service.ErrNotConnected
	}
	rows := make([][]any, 0, len(msgs))
	byKey := make(map[string]int, len(msgs))
	var kb strings.Builder
	var exec *service.MessageBatchBloblangExecutor
	if o.args != nil {
		exec = msgs.BloblangExecutor(o.args)
	}
	for i, m := range msgs {
		if !liveTicket(m) {
			continue // its source reads it again
		}
		vals, err := o.row(m, exec, i, types)
		if err != nil {
			return fmt.Errorf("message %d of the batch: %w", i, err)
		}
		kb.Reset()
		for _, k := range o.keyIdx {
			fmt.Fprintf(&kb, "%v\x00", vals[k])
		}
		if j, ok := byKey[kb.String()]; ok {
			rows[j] = vals // the last message of a key wins
			continue
		}
		byKey[kb.String()] = len(rows)
		rows = append(rows, vals)
	}
	if len(rows) == 0 {
		return nil
	}
	if err := o.upsert(ctx, db, rows); err != nil {
		if ctx.Err() == nil && (connectionLost(err) || pingSQL(ctx, db) != nil) {
			o.logger.Warn("database connection lost", "err", err)
			return service.ErrNotConnected
		}
		return fmt.Errorf("upserting into %q: %w", o.table, err)
	}
	return nil
}

// upsert writes rows in one transaction, as few statements as the
// parameter limit allows.
func (o *sqlOutput) upsert(ctx context.Context, db *sql.DB, rows [][]any) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	per := max(1, sqlMaxParams/len(o.columns))
	args := make([]any, 0, min(len(rows), per)*len(o.columns))
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, o.statement(len(chunk)), args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// statement is the upsert of n rows.
func (o *sqlOutput) statement(n int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, ok := o.stmts[n]; ok {
		return s
	}
	var sb strings.Builder
	cols := make([]string, len(o.columns))
	for i, c := range o.columns {
		cols[i] = quoteIdent(o.driver, c)
	}
	sb.WriteString("INSERT INTO " + quoteIdent(o.driver, o.table) + " (" + strings.Join(cols, ", ") + ") VALUES ")
	p := 0
	for r := range n {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range cols {
			if c > 0 {
				sb.WriteString(", ")
			}
			p++
			sb.WriteString(placeholder(o.driver, p))
		}
		sb.WriteByte(')')
	}
	var set []string
	for i, c := range cols {
		if slices.Contains(o.keyIdx, i) {
			continue
		}
		if o.driver == sqlMySQL {
			set = append(set, c+" = VALUES("+c+")")
		} else {
			set = append(set, c+" = excluded."+c)
		}
	}
	if o.driver == sqlMySQL {
		if len(set) == 0 { // every column is the key: nothing to update
			k := cols[o.keyIdx[0]]
			set = []string{k + " = " + k}
		}
		sb.WriteString(" ON DUPLICATE KEY UPDATE " + strings.Join(set, ", "))
	} else {
		keys := make([]string, len(o.keyIdx))
		for i, k := range o.keyIdx {
			keys[i] = cols[k]
		}
		sb.WriteString(" ON CONFLICT (" + strings.Join(keys, ", ") + ") DO ")
		if len(set) == 0 {
			sb.WriteString("NOTHING")
		} else {
			sb.WriteString("UPDATE SET " + strings.Join(set, ", "))
		}
	}
	if len(o.stmts) > 16 {
		clear(o.stmts)
	}
	o.stmts[n] = sb.String()
	return o.stmts[n]
}

// row makes message m, the batch's i-th, into the row's values: by
// args_mapping if exec is not nil, else from its JSON fields.
func (o *sqlOutput) row(m *service.Message, exec *service.MessageBatchBloblangExecutor, i int, types []sqlType) ([]any, error) {
	vals := make([]any, len(o.columns))
	if exec != nil {
		res, err := exec.Query(i)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sqlFieldArgsMapping, err)
		}
		var v any
		if res != nil {
			if v, err = res.AsStructured(); err != nil {
				return nil, fmt.Errorf("%s: %w", sqlFieldArgsMapping, err)
			}
		}
		arr, ok := v.([]any)
		if !ok || len(arr) != len(o.columns) {
			return nil, fmt.Errorf("%s: made %T, not an array of %d values (one per column)", sqlFieldArgsMapping, v, len(o.columns))
		}
		for j, a := range arr {
			if vals[j], err = o.convert(types[j], a); err != nil {
				return nil, fmt.Errorf("column %q: %w", o.columns[j], err)
			}
		}
		return vals, nil
	}
	b, err := m.AsBytes()
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	for j, c := range o.columns {
		raw, ok := obj[c]
		if !ok || string(raw) == "null" {
			if slices.Contains(o.keyIdx, j) {
				return nil, fmt.Errorf("key column %q: no value", c)
			}
			continue
		}
		if types[j] == typeJSON {
			vals[j] = string(raw) // the document as it was
			continue
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("column %q: %w", c, err)
		}
		if vals[j], err = o.convert(types[j], v); err != nil {
			return nil, fmt.Errorf("column %q: %w", c, err)
		}
	}
	return vals, nil
}

// convert turns a JSON or Bloblang value into a statement argument for a
// column of type t.
func (o *sqlOutput) convert(t sqlType, v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, int64, []byte:
		return v, nil
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, nil
		}
		if t == typeFloat || t == typeFloat32 {
			return v.Float64()
		}
		return v.String(), nil // exact: the database parses it
	case float64:
		return v, nil
	case int:
		return int64(v), nil
	case uint64:
		return v, nil
	case time.Time:
		return o.timeArg(v), nil
	case string:
		switch t {
		case typeTime:
			if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return o.timeArg(ts), nil
			}
		case typeBytes:
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("binary column: not base64: %w", err)
			}
			return b, nil
		case typeJSON:
			b, err := json.Marshal(v)
			return string(b), err
		}
		return v, nil
	}
	b, err := json.Marshal(v) // objects and arrays, as JSON text
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// timeArg is a time as the driver should get it: SQLite stores text.
func (o *sqlOutput) timeArg(t time.Time) any {
	if o.driver == sqlSQLite {
		return t.UTC().Format(sqliteTimeLayout)
	}
	return t.UTC()
}

// Close closes the pool.
func (o *sqlOutput) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.db == nil {
		return nil
	}
	err := o.db.Close()
	o.db = nil
	return err
}

// mkdirSQLite creates the folder of a SQLite database given as a path
// (not a file: URI or :memory:).
func mkdirSQLite(dsn string) error {
	if strings.HasPrefix(dsn, "file:") || strings.HasPrefix(dsn, ":memory:") {
		return nil
	}
	path, _, _ := strings.Cut(dsn, "?")
	return os.MkdirAll(filepath.Dir(path), 0o755)
}
