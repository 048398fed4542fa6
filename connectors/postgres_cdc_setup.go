package connectors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// cdcRuntimeParams are set on every session of the input, the walsender's
// included, so that values have the same text form in the snapshot and in
// the stream, whatever the server's defaults (see cdcValues).
var cdcRuntimeParams = map[string]string{
	"application_name":   "samsa_postgres_cdc",
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
}

// cdcConnectTimeout bounds dialing PostgreSQL when the DSN sets no
// connect_timeout.
const cdcConnectTimeout = 10 * time.Second

// cdcConnConfig parses the DSN into a session config; replication opens a
// logical replication session (replication=database).
func cdcConnConfig(dsn string, replication bool) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cdcFieldDSN, err)
	}
	for k, v := range cdcRuntimeParams {
		if _, set := cfg.RuntimeParams[k]; !set || k != "application_name" {
			cfg.RuntimeParams[k] = v
		}
	}
	if replication {
		cfg.RuntimeParams["replication"] = "database"
	} else {
		delete(cfg.RuntimeParams, "replication")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = cdcConnectTimeout
	}
	return cfg, nil
}

// cdcSlotName matches PostgreSQL's rule for replication slot names.
var cdcSlotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// cdcDefaultName derives the slot and publication name from the source id:
// "samsa_" and the id in lower case with every other character than a-z,
// 0-9 and _ replaced by _, cut to 63 bytes with a hash of the id at the end
// when longer.
func cdcDefaultName(sourceID string) string {
	var b strings.Builder
	b.WriteString("samsa_")
	for _, r := range strings.ToLower(sourceID) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(sourceID))
		name = name[:63-9] + "_" + hex.EncodeToString(sum[:4])
	}
	return name
}

// cdcQuoteIdent quotes an SQL identifier.
func cdcQuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// cdcQuoteLiteral quotes an SQL string literal (standard_conforming_strings).
func cdcQuoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// cdcColumn is a published column of a table.
type cdcColumn struct {
	name  string
	oid   uint32
	typ   string // format_type, for casts
	ident string // quoted
}

// cdcTable is a table of the tables field as the catalog describes it.
type cdcTable struct {
	oid         uint32
	name        string // schema.name, as events carry it
	ident       string // quoted and qualified, for SQL
	partitioned bool
	replIdent   string // pg_class.relreplident: d(efault), n(othing), f(ull), i(ndex)
	cols        []cdcColumn
	pk          []int      // indices in cols of the primary key, in key order
	orders      []cdcOrder // how each pk column is ordered by the snapshot
}

// cdcQuery runs one statement with text parameters and returns its rows as
// text.
func cdcQuery(ctx context.Context, conn *pgconn.PgConn, sql string, args ...string) ([][][]byte, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	res := conn.ExecParams(ctx, sql, params, nil, nil, nil).Read()
	return res.Rows, res.Err
}

// cdcResolveTables looks the tables up (names resolve as in SQL, through
// the search_path) with their published columns and primary keys.
func cdcResolveTables(ctx context.Context, conn *pgconn.PgConn, names []string) ([]*cdcTable, error) {
	var out []*cdcTable
	seen := map[uint32]bool{}
	for _, name := range names {
		rows, err := cdcQuery(ctx, conn, `SELECT c.oid, n.nspname, c.relname, c.relkind, c.relreplident
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", cdcFieldTables, name, err)
		}
		if len(rows) == 0 {
			return nil, fmt.Errorf("%s: no table %q", cdcFieldTables, name)
		}
		oid, _ := strconv.ParseUint(string(rows[0][0]), 10, 32)
		if kind := string(rows[0][3]); kind != "r" && kind != "p" {
			return nil, fmt.Errorf("%s: %q is not a table", cdcFieldTables, name)
		}
		if seen[uint32(oid)] {
			continue
		}
		seen[uint32(oid)] = true
		t := &cdcTable{oid: uint32(oid), name: string(rows[0][1]) + "." + string(rows[0][2]),
			ident:       cdcQuoteIdent(string(rows[0][1])) + "." + cdcQuoteIdent(string(rows[0][2])),
			partitioned: string(rows[0][3]) == "p", replIdent: string(rows[0][4])}
		cols, err := cdcQuery(ctx, conn, `SELECT a.attname, a.atttypid, format_type(a.atttypid, a.atttypmod), a.attnum
			FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
			ORDER BY a.attnum`, strconv.FormatUint(oid, 10))
		if err != nil {
			return nil, fmt.Errorf("%s: %q: columns: %w", cdcFieldTables, name, err)
		}
		attnum := map[string]int{}
		for i, c := range cols {
			typOID, _ := strconv.ParseUint(string(c[1]), 10, 32)
			t.cols = append(t.cols, cdcColumn{name: string(c[0]), oid: uint32(typOID), typ: string(c[2]), ident: cdcQuoteIdent(string(c[0]))})
			attnum[string(c[3])] = i
		}
		pk, err := cdcQuery(ctx, conn, `SELECT k.attnum FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
			WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`, strconv.FormatUint(oid, 10))
		if err != nil {
			return nil, fmt.Errorf("%s: %q: primary key: %w", cdcFieldTables, name, err)
		}
		for _, k := range pk {
			i, ok := attnum[string(k[0])]
			if !ok {
				t.pk, t.orders = nil, nil
				break
			}
			t.pk = append(t.pk, i)
			t.orders = append(t.orders, cdcOrderOf(t.cols[i].oid))
		}
		// A published table without a replica identity makes PostgreSQL
		// refuse its UPDATEs and DELETEs: do not do that to the application.
		if t.replIdent == "n" || t.replIdent == "d" && len(pk) == 0 {
			return nil, fmt.Errorf("%s: %s has no primary key or replica identity; publishing it would make PostgreSQL reject its updates and deletes (add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL)", cdcFieldTables, t.name, t.ident)
		}
		out = append(out, t)
	}
	return out, nil
}

// cdcPublicationComment marks a publication the input created for source
// id: it manages its tables, adding and dropping them as tables changes.
// The comment is visible to anyone looking (\dRp+ in psql).
func cdcPublicationComment(sourceID string) string {
	return "Created by Samsa for the samsa_postgres_cdc source " + strconv.Quote(sourceID) + ": its tables follow the source's tables."
}

// cdcEnsurePublication creates the publication for the tables, marked as
// the source's, or adds to it those it lacks (a publication FOR ALL TABLES
// has them all). From a publication it created (cdcPublicationComment) it
// also drops the tables that are no longer among tables, and returns
// them; one made by someone else may serve others too, and keeps them.
func cdcEnsurePublication(ctx context.Context, conn *pgconn.PgConn, pub, sourceID string, tables []*cdcTable) (dropped []string, err error) {
	comment := cdcPublicationComment(sourceID)
	rows, err := cdcQuery(ctx, conn, `SELECT puballtables, COALESCE(obj_description(oid, 'pg_publication'), '') FROM pg_publication WHERE pubname = $1`, pub)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", cdcFieldPublication, pub, err)
	}
	idents := make([]string, len(tables))
	for i, t := range tables {
		idents[i] = t.ident
	}
	if len(rows) == 0 {
		sql := "CREATE PUBLICATION " + cdcQuoteIdent(pub) + " FOR TABLE " + strings.Join(idents, ", ")
		if slices.ContainsFunc(tables, func(t *cdcTable) bool { return t.partitioned }) {
			sql += " WITH (publish_via_partition_root = true)" // changes carry the table's name, not a partition's
		}
		// One simple query: one transaction, so the publication is never
		// there without its mark.
		sql += "; COMMENT ON PUBLICATION " + cdcQuoteIdent(pub) + " IS " + cdcQuoteLiteral(comment)
		_, err := conn.Exec(ctx, sql).ReadAll()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: created meanwhile
			return cdcEnsurePublication(ctx, conn, pub, sourceID, tables)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: creating publication %q: %w", cdcFieldPublication, pub, err)
		}
		return nil, nil
	}
	if string(rows[0][0]) == "t" {
		return nil, nil
	}
	managed := string(rows[0][1]) == comment
	have, err := cdcQuery(ctx, conn, `SELECT c.oid, format('%I.%I', n.nspname, c.relname) FROM pg_publication_rel r
		JOIN pg_publication p ON p.oid = r.prpubid JOIN pg_class c ON c.oid = r.prrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1 ORDER BY 2`, pub)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", cdcFieldPublication, pub, err)
	}
	want := map[string]bool{}
	for _, t := range tables {
		want[strconv.FormatUint(uint64(t.oid), 10)] = true
	}
	in := map[string]bool{}
	for _, r := range have {
		in[string(r[0])] = true
		if managed && !want[string(r[0])] {
			dropped = append(dropped, string(r[1]))
		}
	}
	var missing []string
	for _, t := range tables {
		if !in[strconv.FormatUint(uint64(t.oid), 10)] {
			missing = append(missing, t.ident)
		}
	}
	if len(missing) > 0 {
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+cdcQuoteIdent(pub)+" ADD TABLE "+strings.Join(missing, ", ")).ReadAll(); err != nil {
			return nil, fmt.Errorf("%s: adding %s to publication %q: %w", cdcFieldPublication, strings.Join(missing, ", "), pub, err)
		}
	}
	if len(dropped) > 0 {
		if _, err := conn.Exec(ctx, "ALTER PUBLICATION "+cdcQuoteIdent(pub)+" DROP TABLE "+strings.Join(dropped, ", ")).ReadAll(); err != nil {
			return nil, fmt.Errorf("%s: dropping %s from publication %q: %w", cdcFieldPublication, strings.Join(dropped, ", "), pub, err)
		}
	}
	return dropped, nil
}

// cdcExport is the snapshot a slot's creation exported: the database as
// of the slot's consistent point, every transaction that commits before it
// seen and none after. It can be imported while conn, the replication
// session that created the slot, stays open and idle.
type cdcExport struct {
	conn *pgconn.PgConn
	name string        // for SET TRANSACTION SNAPSHOT
	lsn  pglogrepl.LSN // the slot's consistent point
}

func (e *cdcExport) close() {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	e.conn.Close(ctx)
}

// cdcEnsureSlot creates the logical replication slot (pgoutput) if it does
// not exist, and returns its confirmed flush LSN and, if it created it,
// the snapshot the creation exported (the caller closes it). Creating a
// slot waits for the transactions running at that time to end.
func cdcEnsureSlot(ctx context.Context, conn *pgconn.PgConn, dsn, slot string) (pglogrepl.LSN, *cdcExport, error) {
	for range 2 {
		rows, err := cdcQuery(ctx, conn, `SELECT plugin, database = current_database(), COALESCE(confirmed_flush_lsn::text, '0/0')
			FROM pg_replication_slots WHERE slot_name = $1`, slot)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %q: %w", cdcFieldSlot, slot, err)
		}
		if len(rows) > 0 {
			if string(rows[0][0]) != "pgoutput" || string(rows[0][1]) != "t" {
				return 0, nil, fmt.Errorf("%s: slot %q exists but is not a pgoutput slot of this database", cdcFieldSlot, slot)
			}
			lsn, err := pglogrepl.ParseLSN(string(rows[0][2]))
			return lsn, nil, err
		}
		e, err := cdcCreateSlot(ctx, dsn, slot)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // created meanwhile
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("%s: creating replication slot %q: %w", cdcFieldSlot, slot, err)
		}
		return e.lsn, e, nil
	}
	return 0, nil, fmt.Errorf("%s: slot %q", cdcFieldSlot, slot)
}

// cdcCreateSlot creates the slot in a replication session, exporting its
// snapshot.
func cdcCreateSlot(ctx context.Context, dsn, slot string) (*cdcExport, error) {
	cfg, err := cdcConnConfig(dsn, true)
	if err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting for replication: %w", err)
	}
	e := &cdcExport{conn: conn}
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err == nil {
		e.name = res.SnapshotName
		e.lsn, err = pglogrepl.ParseLSN(res.ConsistentPoint)
	}
	if err == nil && e.name == "" {
		err = errors.New("no snapshot exported")
	}
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}
