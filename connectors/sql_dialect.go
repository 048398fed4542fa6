package connectors

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// The databases of the samsa_sql input and output.
const (
	sqlPostgres = "postgres"
	sqlMySQL    = "mysql"
	sqlSQLite   = "sqlite"
)

// sqlBusyTimeout is the SQLite busy timeout set when the DSN sets none.
const sqlBusyTimeout = "5000"

// sqlConnectTimeout bounds a connection check.
const sqlConnectTimeout = 10 * time.Second

// openSQL opens a pool for one of the drivers. MySQL connections always
// parse DATE and DATETIME into times (parseTime) and log to logger (nil:
// the driver's own logger); SQLite connections wait up to 5s for a lock
// unless the DSN says otherwise.
func openSQL(driver, dsn string, logger *slog.Logger) (*sql.DB, error) {
	switch driver {
	case sqlPostgres:
		return sql.Open("pgx", dsn)
	case sqlMySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		cfg.ParseTime = true
		if logger != nil {
			cfg.Logger = mysqlLogger{logger}
		}
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, err
		}
		return sql.OpenDB(c), nil
	case sqlSQLite:
		if !strings.Contains(dsn, "busy_timeout") && !strings.Contains(dsn, "_timeout=") {
			sep := "?"
			if strings.Contains(dsn, "?") {
				sep = "&"
			}
			dsn += sep + "_busy_timeout=" + sqlBusyTimeout
		}
		return sql.Open("sqlite", dsn)
	}
	return nil, fmt.Errorf("unknown driver %q", driver)
}

// mysqlLogger passes the MySQL driver's messages (connections it drops)
// to the component's logger.
type mysqlLogger struct{ l *slog.Logger }

func (m mysqlLogger) Print(v ...any) {
	m.l.Warn("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...)))
}

// pingSQL checks that the database answers.
func pingSQL(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, sqlConnectTimeout)
	defer cancel()
	return db.PingContext(ctx)
}

// connectionLost reports whether err says the database went away (so the
// component should connect again) rather than that a statement failed.
func connectionLost(err error) bool {
	var ne net.Error
	return errors.Is(err, sql.ErrConnDone) || errors.Is(err, mysql.ErrInvalidConn) || errors.As(err, &ne)
}

// quoteIdent quotes an identifier for the driver; a dot separates a
// schema (or database) from a table.
func quoteIdent(driver, name string) string {
	parts := strings.Split(name, ".")
	q, esc := `"`, `""`
	if driver == sqlMySQL {
		q, esc = "`", "``"
	}
	for i, p := range parts {
		parts[i] = q + strings.ReplaceAll(p, q, esc) + q
	}
	return strings.Join(parts, ".")
}

// placeholder is the driver's n-th (from 1) statement parameter.
func placeholder(driver string, n int) string {
	if driver == sqlPostgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// sqlType is how a column's values are written as JSON (and, in the
// output, how JSON values are turned back into the column's).
type sqlType uint8

const (
	typeAny     sqlType = iota // as the driver's Go value says
	typeText                   // text the driver returns as bytes (MySQL)
	typeBytes                  // binary: base64
	typeDecimal                // NUMERIC, DECIMAL: an exact string
	typeJSON                   // a JSON document, embedded as it is
	typeDate                   // a date: YYYY-MM-DD
	typeTime                   // a timestamp: RFC 3339
	typeFloat32                // REAL/FLOAT4: the shortest float32 digits
	typeBool                   // SQLite BOOLEAN: 0/1 as false/true
	typeBit                    // MySQL BIT: an unsigned number
	typeUint                   // MySQL BIGINT UNSIGNED: may come as text
	typeFloat                  // a double (output side)
	typeInt                    // an integer (output side)
)

// columnType maps a driver's database type name (sql.ColumnType's
// DatabaseTypeName) to how its values are written.
func columnType(driver, dbType string) sqlType {
	t := strings.ToUpper(dbType)
	switch driver {
	case sqlPostgres:
		switch t {
		case "NUMERIC":
			return typeDecimal
		case "JSON", "JSONB":
			return typeJSON
		case "DATE":
			return typeDate
		case "TIMESTAMP", "TIMESTAMPTZ":
			return typeTime
		case "FLOAT4":
			return typeFloat32
		case "FLOAT8":
			return typeFloat
		case "BYTEA":
			return typeBytes
		case "INT2", "INT4", "INT8":
			return typeInt
		}
	case sqlMySQL:
		switch t {
		case "DECIMAL":
			return typeDecimal
		case "JSON":
			return typeJSON
		case "DATE":
			return typeDate
		case "DATETIME", "TIMESTAMP":
			return typeTime
		case "FLOAT":
			return typeFloat32
		case "DOUBLE":
			return typeFloat
		case "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "BINARY", "VARBINARY", "GEOMETRY":
			return typeBytes
		case "BIT":
			return typeBit
		case "UNSIGNED BIGINT":
			return typeUint
		case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR",
			"UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT":
			return typeInt
		}
		return typeText
	case sqlSQLite:
		switch {
		case t == "DATE":
			return typeDate
		case t == "DATETIME" || t == "TIMESTAMP":
			return typeTime
		case t == "BOOLEAN" || t == "BOOL":
			return typeBool
		case t == "JSON" || t == "JSONB":
			return typeJSON
		case strings.Contains(t, "INT"):
			return typeInt
		case strings.Contains(t, "CHAR") || strings.Contains(t, "CLOB") || strings.Contains(t, "TEXT"):
			return typeText
		case strings.Contains(t, "BLOB"):
			return typeBytes
		case strings.Contains(t, "REAL") || strings.Contains(t, "FLOA") || strings.Contains(t, "DOUB"):
			return typeFloat
		case strings.Contains(t, "DEC") || strings.Contains(t, "NUM"):
			return typeDecimal
		}
	}
	return typeAny
}

// orderKind is what a cursor or key column holds, for ordering.
type orderKind uint8

const (
	orderInt  orderKind = iota + 1 // integers: the lag watches for gaps
	orderTime                      // timestamps and dates: the lag is a time window
	orderText                      // text, compared as bytes
	orderBytes
)

// orderKindOf says whether a column of the database type can be a cursor
// or key column, and as what. binColl reports text that must be compared
// under a binary collation to order as bytes.
func orderKindOf(driver, dbType string) (k orderKind, binColl bool, ok bool) {
	t := strings.ToUpper(dbType)
	switch driver {
	case sqlPostgres:
		switch t {
		case "INT2", "INT4", "INT8":
			return orderInt, false, true
		case "DATE", "TIMESTAMP", "TIMESTAMPTZ":
			return orderTime, false, true
		case "TEXT", "VARCHAR", "BPCHAR", "NAME":
			return orderText, true, true
		case "UUID": // its text is hex, ordered as its bytes
			return orderText, false, true
		case "BYTEA":
			return orderBytes, false, true
		}
	case sqlMySQL:
		switch t {
		case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR",
			"UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT", "UNSIGNED BIGINT":
			return orderInt, false, true
		case "DATE", "DATETIME", "TIMESTAMP":
			return orderTime, false, true
		case "CHAR", "VARCHAR", "TEXT", "TINYTEXT", "MEDIUMTEXT", "LONGTEXT":
			return orderText, true, true
		case "BINARY", "VARBINARY", "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB":
			return orderBytes, false, true
		}
	case sqlSQLite:
		switch columnType(driver, t) {
		case typeInt:
			return orderInt, false, true
		case typeDate, typeTime:
			return orderTime, false, true
		case typeText:
			return orderText, true, true
		case typeBytes:
			return orderBytes, false, true
		}
	}
	return 0, false, false
}

// orderExpr is the expression a cursor or key column is compared and
// sorted by: text under a binary collation, so that the database orders
// it as the position's bytes do.
func orderExpr(driver, quoted string, binColl bool) string {
	if !binColl {
		return quoted
	}
	switch driver {
	case sqlPostgres:
		return quoted + ` COLLATE "C"`
	case sqlMySQL:
		return "CAST(" + quoted + " AS BINARY)"
	default:
		return quoted + " COLLATE BINARY"
	}
}

// posValue normalizes a cursor or key value as the driver returns it for
// encoding and as a statement argument: MySQL text arrives as bytes, and
// MySQL BIGINT UNSIGNED above the int64 range as decimal text.
func posValue(kind orderKind, v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, errors.New("NULL")
	case []byte:
		switch kind {
		case orderText:
			return string(v), nil
		case orderInt:
			return strconv.ParseUint(string(v), 10, 64)
		}
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), nil
		}
	case time.Time:
		return v.UTC(), nil
	}
	return v, nil
}

// appendJSONValue appends a column value as JSON (see the input's
// description for the mapping).
func appendJSONValue(b []byte, t sqlType, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case int64:
		switch t {
		case typeBool:
			return strconv.AppendBool(b, v != 0)
		case typeDecimal:
			b = append(b, '"')
			return append(strconv.AppendInt(b, v, 10), '"')
		}
		return strconv.AppendInt(b, v, 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case float32:
		return appendJSONFloat(b, float64(v), 32)
	case float64:
		switch t {
		case typeFloat32:
			return appendJSONFloat(b, v, 32)
		case typeDecimal:
			b = append(b, '"')
			return append(strconv.AppendFloat(b, v, 'g', -1, 64), '"')
		}
		return appendJSONFloat(b, v, 64)
	case time.Time:
		v = v.UTC()
		b = append(b, '"')
		switch {
		case t == typeDate:
			b = v.AppendFormat(b, time.DateOnly)
		case v.Nanosecond()%1000 != 0:
			b = v.AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00")
		default:
			b = v.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		}
		return append(b, '"')
	case string:
		if t == typeJSON && jsonValid(v) {
			return append(b, v...)
		}
		return appendJSONStr(b, v)
	case []byte:
		switch t {
		case typeBytes:
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, v)
			return append(b, '"')
		case typeJSON:
			if jsonValid(v) {
				return append(b, v...)
			}
		case typeBit:
			var n uint64
			for _, c := range v {
				n = n<<8 | uint64(c)
			}
			return strconv.AppendUint(b, n, 10)
		case typeUint:
			if _, err := strconv.ParseUint(string(v), 10, 64); err == nil {
				return append(b, v...)
			}
		case typeAny:
			if !utf8.Valid(v) {
				b = append(b, '"')
				b = base64.StdEncoding.AppendEncode(b, v)
				return append(b, '"')
			}
		}
		return appendJSONString(b, v, false)
	}
	return appendJSONStr(b, fmt.Sprint(v))
}

// appendJSONFloat writes a float as encoding/json does; NaN and the
// infinities, which JSON has no numbers for, as strings.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' { // 1e-07 → 1e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONStr is appendJSONString for a string, without copying it.
func appendJSONStr(b []byte, s string) []byte {
	return appendJSONString(b, unsafe.Slice(unsafe.StringData(s), len(s)), false)
}

// jsonValid reports whether v is one JSON document.
func jsonValid[T string | []byte](v T) bool { return json.Valid([]byte(v)) }

// sqliteTimeLayouts are the text timestamps SQLite's date functions and
// the driver read.
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseSQLiteTime reads a timestamp stored as text in SQLite (UTC when it
// has no offset).
func parseSQLiteTime(s string) (time.Time, bool) {
	for _, l := range sqliteTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
