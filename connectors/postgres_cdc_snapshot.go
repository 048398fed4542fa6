package connectors

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// cdcCursor is the name of the snapshot's cursor.
const cdcCursor = "samsa_cdc_snapshot"

// cdcSnapReader reads the snapshot in one REPEATABLE READ transaction (so
// one transaction snapshot), each table through a cursor ordered by its
// primary key, a page (batch_size rows) at a time.
type cdcSnapReader struct {
	conn   *pgconn.PgConn
	vals   *cdcValues
	snap   cdcTxSnapshot
	lsn    pglogrepl.LSN // the WAL insert position when the snapshot was taken
	at     time.Time     // the transaction's now()
	broken bool          // a statement failed: the transaction is unusable

	// limited: only rows at or below upTo are read of the tables before
	// limitEnd (they were read to their end before, see cdcSnapState.Read
	// and LateDone).
	limited  bool
	upTo     []byte
	limitEnd int
	// until is the WAL insert position right after the snapshot was taken
	// (see cdcPause).
	until pglogrepl.LSN

	table  int       // the table read, as an index in the snapshot's list
	after  []string  // the key after which it is read; nil: from its start
	cursor *cdcTable // the table of the open cursor; nil: none open
	buf    []byte
}

// openCDCSnapshot begins the snapshot's transaction, in the snapshot the
// slot's creation exported if there is one.
func openCDCSnapshot(ctx context.Context, dsn string, export *cdcExport) (*cdcSnapReader, error) {
	cfg, err := cdcConnConfig(dsn, false)
	if err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting for the snapshot: %w", err)
	}
	r := &cdcSnapReader{conn: conn, vals: newCDCValues()}
	begin := "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	if export != nil {
		begin += "; SET TRANSACTION SNAPSHOT " + cdcQuoteLiteral(export.name)
	}
	if _, err := conn.Exec(ctx, begin).ReadAll(); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	rows, err := cdcQuery(ctx, conn, `SELECT txid_current_snapshot()::text, (extract(epoch from now()) * 1000000)::int8, pg_current_wal_lsn()::text, pg_current_wal_insert_lsn()::text`)
	if err == nil && len(rows) != 1 {
		err = fmt.Errorf("no snapshot")
	}
	if err == nil {
		r.snap, err = parseCDCTxSnapshot(string(rows[0][0]))
	}
	if err == nil {
		var us int64
		us, err = strconv.ParseInt(string(rows[0][1]), 10, 64)
		r.at = time.UnixMicro(us).UTC()
	}
	if err == nil {
		r.until, err = pglogrepl.ParseLSN(string(rows[0][3]))
	}
	switch {
	case err == nil && export != nil:
		r.lsn = export.lsn
	case err == nil:
		r.lsn, err = pglogrepl.ParseLSN(string(rows[0][2]))
	}
	if err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return r, nil
}

func (r *cdcSnapReader) alive() bool { return r != nil && !r.broken && !r.conn.IsClosed() }

func (r *cdcSnapReader) close() {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r.conn.Close(ctx)
}

// seek positions the reader after key in table (nil: its start); the
// cursor is declared by the next fetch.
func (r *cdcSnapReader) seek(ctx context.Context, table int, key []string) error {
	if err := r.closeCursor(ctx); err != nil {
		return err
	}
	r.table, r.after = table, key
	return nil
}

func (r *cdcSnapReader) closeCursor(ctx context.Context) error {
	if r.cursor == nil {
		return nil
	}
	r.cursor = nil
	if _, err := r.conn.Exec(ctx, "CLOSE "+cdcCursor).ReadAll(); err != nil {
		r.broken = true
		return fmt.Errorf("snapshot: closing the cursor: %w", err)
	}
	return nil
}

// fetch returns the next page of table t (the one at r.table), each row
// as the text forms of t.cols; none when the table is finished.
func (r *cdcSnapReader) fetch(ctx context.Context, t *cdcTable, n int) ([][][]byte, error) {
	if r.cursor == nil {
		if err := r.declare(ctx, t); err != nil {
			r.broken = true
			return nil, err
		}
	}
	res, err := r.conn.Exec(ctx, "FETCH FORWARD "+strconv.Itoa(n)+" FROM "+cdcCursor).ReadAll()
	if err != nil {
		r.broken = true
		return nil, fmt.Errorf("snapshot of %s: %w", t.name, err)
	}
	if len(res) != 1 {
		r.broken = true
		return nil, fmt.Errorf("snapshot of %s: %d results to a fetch", t.name, len(res))
	}
	return res[0].Rows, nil
}

// declare opens the cursor over t's rows after r.after, in key order.
func (r *cdcSnapReader) declare(ctx context.Context, t *cdcTable) error {
	var sb strings.Builder
	sb.WriteString("DECLARE " + cdcCursor + " NO SCROLL CURSOR FOR SELECT ")
	for i, c := range t.cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(c.ident)
	}
	sb.WriteString(" FROM " + t.ident)
	exprs := make([]string, len(t.pk))
	for i, p := range t.pk {
		exprs[i] = t.orders[i].expr(t.cols[p].ident)
	}
	var params [][]byte
	if r.after != nil {
		if len(r.after) != len(t.pk) {
			return fmt.Errorf("snapshot of %s: the checkpoint's key has %d values, the primary key %d columns", t.name, len(r.after), len(t.pk))
		}
		ps := make([]string, len(t.pk))
		for i, p := range t.pk {
			ps[i] = t.orders[i].param(i+1, t.cols[p].typ)
			params = append(params, []byte(r.after[i]))
		}
		sb.WriteString(" WHERE (" + strings.Join(exprs, ", ") + ") > (" + strings.Join(ps, ", ") + ")")
	}
	sb.WriteString(" ORDER BY " + strings.Join(exprs, ", "))
	if _, err := r.conn.ExecParams(ctx, sb.String(), params, nil, nil, nil).Close(); err != nil {
		return fmt.Errorf("snapshot of %s: %w", t.name, err)
	}
	r.cursor = t
	return nil
}

// position returns the position of a row of t.
func (r *cdcSnapReader) position(t *cdcTable, row [][]byte) ([]byte, error) {
	if len(row) != len(t.cols) {
		return nil, fmt.Errorf("snapshot of %s: a row of %d columns, want %d", t.name, len(row), len(t.cols))
	}
	keys := make([][]byte, len(t.pk))
	for n, p := range t.pk {
		keys[n] = row[p]
	}
	pos, err := cdcSnapshotPos(make([]byte, 0, 32), r.table, t.orders, keys)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: key: %w", t.name, err)
	}
	return pos, nil
}

// below returns the first rows of t, up to the last at or below upTo, and
// whether a row above it was among them.
func (r *cdcSnapReader) below(t *cdcTable, rows [][][]byte) ([][][]byte, bool, error) {
	for i, row := range rows {
		pos, err := r.position(t, row)
		if err != nil {
			return nil, false, err
		}
		if bytes.Compare(pos, r.upTo) > 0 {
			return rows[:i], true, nil
		}
	}
	return rows, false, nil
}

// page turns rows of t into read events; it returns them with the key of
// the last row.
func (r *cdcSnapReader) page(t *cdcTable, rows [][][]byte, srcMeta any) (service.MessageBatch, []string, error) {
	msgs := make(service.MessageBatch, 0, len(rows))
	var last []string
	head := append(append([]byte(`{"op":"read","table":`), cdcAppendString(nil, []byte(t.name))...), `,"before":null,"after":`...)
	tail := fmt.Appendf(nil, `,"lsn":"%s","commit_lsn":null,"xid":null,"commit_time":"%s"}`, r.lsn, r.at.Format(time.RFC3339Nano))
	for _, row := range rows {
		pos, err := r.position(t, row)
		if err != nil {
			return nil, nil, err
		}
		b := append(r.buf[:0], head...)
		b = append(b, '{')
		for i, c := range t.cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = cdcAppendString(b, []byte(c.name))
			b = append(b, ':')
			b = r.vals.appendJSON(b, c.oid, row[i])
		}
		b = append(b, '}')
		b = append(b, tail...)
		r.buf = b

		k := []byte{'{'}
		for n, p := range t.pk {
			if n > 0 {
				k = append(k, ',')
			}
			k = cdcAppendString(k, []byte(t.cols[p].name))
			k = append(k, ':')
			k = r.vals.appendJSON(k, t.cols[p].oid, row[p])
		}
		k = append(k, '}')
		m := service.NewMessage(append([]byte(nil), b...))
		m.MetaSetMut(MetaSource, srcMeta)
		m.MetaSetMut(MetaPosition, pos)
		m.MetaSetMut(MetaTimestamp, r.at)
		m.MetaSetMut(MetaKey, string(k))
		msgs = append(msgs, m)
	}
	if n := len(rows); n > 0 {
		last = make([]string, len(t.pk))
		for i, p := range t.pk {
			last[i] = string(rows[n-1][p])
		}
	}
	return msgs, last, nil
}

// readSnapshot reads the next snapshot page, or moves to the next table, or
// from the last table to the stream.
func (in *pgcdcInput) readSnapshot(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	return in.readPages(ctx, in.snapRd, false)
}

// readLate reads the next page of the late tables, at the stream's pause,
// or ends the pause after the last.
func (in *pgcdcInput) readLate(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	return in.readPages(ctx, in.lateRd, true)
}

// pageMark is the mark after the rows read up to key (nil: none) of
// table: of the snapshot, or of the late tables at the stream's pause.
func (in *pgcdcInput) pageMark(late bool, table int, key []string) cdcMark {
	if late {
		return cdcMark{Stream: true, LSN: cdcLSN(in.pauseLSN), Table: table, Key: key}
	}
	return cdcMark{Table: table, Key: key}
}

// readPages reads the next page of r: the snapshot's, or (late) the late
// tables'.
func (in *pgcdcInput) readPages(ctx context.Context, r *cdcSnapReader, late bool) (service.MessageBatch, service.AckFunc, error) {
	in.mu.Lock()
	tables := in.mu.snap.Tables
	end := len(tables)
	if !late && in.mu.snap.Late > 0 {
		end = in.mu.snap.Late
	}
	in.mu.Unlock()
	if r.table >= end {
		if late {
			return in.endLate(ctx)
		}
		return in.endSnapshot(ctx)
	}
	t := in.table(tables[r.table])
	if t != nil && slices.Index(tables[r.table+1:], tables[r.table]) >= 0 {
		t = nil // removed and added again: read at its last index
	}
	var rows [][][]byte
	if t != nil {
		// max_in_flight pages at a time, under one checkpoint write.
		var err error
		if rows, err = r.fetch(ctx, t, in.batchSize*in.inFlight); err != nil {
			return nil, nil, err
		}
	} else {
		in.logger.Debug("a table of the snapshot is no longer in tables; skipping it", "table", tables[r.table])
	}
	if r.limited && t != nil && r.table < r.limitEnd {
		var past bool
		var err error
		if rows, past, err = r.below(t, rows); err != nil {
			return nil, nil, err
		}
		if len(rows) == 0 && past {
			// The rest is above upTo: the stream brings it.
			if err := r.seek(ctx, max(r.limitEnd, r.table+1), nil); err != nil {
				return nil, nil, err
			}
			return nil, nil, errCDCRetry
		}
	}
	if len(rows) == 0 {
		if err := r.seek(ctx, r.table+1, nil); err != nil {
			return nil, nil, err
		}
		if _, _, ok := in.fl.issue(in.pageMark(late, r.table, nil), true, nil); !ok {
			return nil, nil, errCDCRetry
		}
		return nil, nil, errCDCRetry
	}
	// The checkpoint with the last row's position as issued is written
	// while the pages are made.
	pos, err := r.position(t, rows[len(rows)-1])
	if err != nil {
		return nil, nil, err
	}
	in.mu.Lock()
	if bytes.Compare(pos, in.mu.snap.Issued) > 0 {
		in.mu.snap.Issued = pos
	}
	in.mu.Unlock()
	stored := make(chan error, 1)
	go func() { stored <- in.storeCheckpoint(ctx) }()
	src := in.srcMeta
	if late {
		src = in.lateMeta
	}
	for len(rows) > 0 {
		page := rows[:min(len(rows), in.batchSize)]
		rows = rows[len(page):]
		msgs, last, err := r.page(t, page, src)
		if err != nil {
			<-stored
			in.held = nil
			return nil, nil, err
		}
		r.after = last
		in.held = append(in.held, cdcHeldPage{msgs: msgs, end: in.pageMark(late, r.table, last)})
	}
	in.heldOK = <-stored == nil
	return in.emitHeld(ctx)
}

// endSnapshot moves from the snapshot's last table to the stream.
func (in *pgcdcInput) endSnapshot(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	// Before any change is streamed, the checkpoint says the snapshot
	// was read to its end: a restart must not read rows the stream
	// brings (see cdcSnapState.Read).
	in.mu.Lock()
	in.mu.snap.Read = true
	late := in.mu.snap.Late
	in.mu.Unlock()
	if err := in.storeCheckpoint(ctx); err != nil {
		in.logger.Warn("the stream waits for the snapshot's last checkpoint", "err", err)
		if err := pause(ctx, minRewindWait, nil, nil); err != nil {
			return nil, nil, err
		}
		return nil, nil, errCDCRetry
	}
	mark := cdcMark{Stream: true, Table: late}
	if _, _, ok := in.fl.issue(mark, true, nil); !ok {
		return nil, nil, errCDCRetry
	}
	in.logger.Info("snapshot read; streaming changes")
	if err := in.startStream(ctx, in.slotLSN, mark); err != nil {
		return nil, nil, err
	}
	return nil, nil, errCDCRetry
}

// endLate ends the stream's pause once the late tables are read.
func (in *pgcdcInput) endLate(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	// Before the stream goes on, the checkpoint says the late tables were
	// read to their end (see cdcSnapState.LateDone).
	in.mu.Lock()
	n := len(in.mu.snap.Tables)
	in.mu.snap.LateDone = n
	in.mu.Unlock()
	if err := in.storeCheckpoint(ctx); err != nil {
		in.logger.Warn("the stream waits for the late tables' last checkpoint", "err", err)
		if err := pause(ctx, minRewindWait, nil, nil); err != nil {
			return nil, nil, err
		}
		return nil, nil, errCDCRetry
	}
	if _, _, ok := in.fl.issue(cdcMark{Stream: true, LSN: cdcLSN(in.pauseLSN), Table: n}, true, nil); !ok {
		return nil, nil, errCDCRetry
	}
	in.logger.Info("late tables read; streaming on")
	in.closeLate()
	in.paused, in.lateTbl, in.lateKey = false, n, nil
	return nil, nil, errCDCRetry
}

// emitHeld emits the next page read, once the checkpoint with the last
// position read as issued is stored: after a crash, the positions above
// it are known never to have reached the topic.
func (in *pgcdcInput) emitHeld(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if !in.heldOK {
		if err := in.storeCheckpoint(ctx); err != nil {
			in.logger.Warn("snapshot pages wait for their checkpoint", "err", err)
			if err := pause(ctx, minRewindWait, nil, nil); err != nil {
				return nil, nil, err
			}
			return nil, nil, errCDCRetry
		}
		in.heldOK = true
	}
	h := in.held[0]
	in.held = in.held[1:]
	ack, tk, ok := in.fl.issue(h.end, false, nil)
	if !ok {
		return nil, nil, errCDCRetry
	}
	for _, m := range h.msgs {
		m.MetaSetMut(MetaTicket, tk)
	}
	return h.msgs, ack, nil
}

// table returns the resolved table named name, nil if not configured.
func (in *pgcdcInput) table(name string) *cdcTable {
	for _, t := range in.tables {
		if t.name == name {
			return t
		}
	}
	return nil
}
