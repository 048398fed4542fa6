package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// cdcItem is what the streamer hands to ReadBatch: a change, or only a
// new resume point (a commit, or a keepalive between transactions).
type cdcItem struct {
	msg    *service.Message // nil: no record
	resume pglogrepl.LSN    // streaming again from here emits what follows this item
	// pause: the late tables are read here, before anything that follows
	// (see cdcPause).
	pause bool
	// trunc: msg is a truncate after which its table's changes are no
	// longer checked against the snapshot's segments.
	trunc *cdcTruncated
}

// cdcPause is where the stream pauses for the late tables' reads: before
// the first transaction that the reading transaction's snapshot did not
// see. Every change streamed before it was seen, so the reads hold it
// (and their rows' changes are dropped); every change after it comes
// after the reads. Until is the WAL insert position taken after that
// snapshot: a transaction that commits at or past it, or a keepalive
// past it, is a pause point as well, so that the reads are not held back
// when no change comes. Anything a former run emitted committed long
// before the snapshot was taken, so the pause is after it.
type cdcPause struct {
	snap  cdcTxSnapshot
	until pglogrepl.LSN
}

// cdcStreamer owns one replication session: it receives pgoutput messages,
// decodes them into items and sends standby status updates every
// status_interval (and when the server asks), with the flush position the
// input's acknowledged mark allows. It stops on the first error.
type cdcStreamer struct {
	conn     *pgconn.PgConn
	items    chan cdcItem
	done     chan struct{} // closed when run returns
	err      error         // why run returned (read after done)
	cancel   context.CancelFunc
	start    pglogrepl.LSN
	interval time.Duration
	flushed  func() pglogrepl.LSN // the acknowledged resume LSN (0: none yet)
	logger   *slog.Logger
	dec      cdcDecoder
}

// cdcStreamConfig is what a streamer needs from the input.
type cdcStreamConfig struct {
	dsn, slot, pub string
	start          pglogrepl.LSN
	interval       time.Duration
	buffer         int
	tables         []*cdcTable
	snap           *cdcSnapState // a copy; nil: no snapshot filtering
	pause          *cdcPause     // nil: no late tables to read
	retireAt       *atomic.Uint64
	srcMeta        any
	flushed        func() pglogrepl.LSN
	logger         *slog.Logger
}

// startCDCStream opens a replication session and starts streaming from
// c.start; ctx bounds the start only, parent the streamer's life.
func startCDCStream(ctx, parent context.Context, c cdcStreamConfig) (*cdcStreamer, error) {
	cfg, err := cdcConnConfig(c.dsn, true)
	if err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting for replication: %w", err)
	}
	args := []string{"proto_version '1'", "publication_names " + cdcQuoteLiteral(c.pub)}
	if err := pglogrepl.StartReplication(ctx, conn, c.slot, c.start, pglogrepl.StartReplicationOptions{PluginArgs: args}); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("%s %q: starting replication at %s: %w", cdcFieldSlot, c.slot, c.start, err)
	}
	s := &cdcStreamer{conn: conn, items: make(chan cdcItem, c.buffer), done: make(chan struct{}),
		start: c.start, interval: c.interval, flushed: c.flushed, logger: c.logger}
	s.dec = cdcDecoder{vals: newCDCValues(), rels: map[uint32]*cdcRelation{}, tables: map[string]*cdcTable{},
		snap: c.snap, retireAt: c.retireAt, srcMeta: c.srcMeta, lastEnd: c.start, pause: c.pause}
	for _, t := range c.tables {
		s.dec.tables[t.name] = t
	}
	if c.snap != nil {
		s.dec.snapIdx = map[string]int{}
		for i, name := range c.snap.Tables {
			s.dec.snapIdx[name] = i // a table added again is read at its last index
		}
	}
	var sctx context.Context
	sctx, s.cancel = context.WithCancel(parent)
	go s.run(sctx)
	return s, nil
}

// stop ends the session and waits for the streamer.
func (s *cdcStreamer) stop() {
	s.cancel()
	<-s.done
}

func (s *cdcStreamer) run(ctx context.Context) {
	defer close(s.done)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if !s.conn.IsClosed() {
			_ = s.sendStatus(cctx) // the slot learns the last acknowledged position
		}
		s.conn.Close(cctx)
	}()
	next := time.Now()
	for {
		if !time.Now().Before(next) {
			if err := s.sendStatus(ctx); err != nil {
				s.err = err
				return
			}
			next = time.Now().Add(s.interval)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		raw, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				s.err = ctx.Err()
				return
			}
			if pgconn.Timeout(err) {
				continue
			}
			s.err = fmt.Errorf("replication: %w", err)
			return
		}
		switch m := raw.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					s.err = err
					return
				}
				if k.ReplyRequested {
					next = time.Time{}
				}
				if err := s.dec.keepalive(k.ServerWALEnd, func(it cdcItem) error { return s.send(ctx, it, &next) }); err != nil {
					s.err = err
					return
				}
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					s.err = err
					return
				}
				if err := s.dec.decode(x.WALStart, x.WALData, func(it cdcItem) error { return s.send(ctx, it, &next) }); err != nil {
					s.err = err
					return
				}
			}
		case *pgproto3.ErrorResponse:
			s.err = fmt.Errorf("replication: %w", pgconn.ErrorResponseToPgError(m))
			return
		case *pgproto3.CopyDone:
			s.err = errors.New("replication: the server ended the stream")
			return
		}
	}
}

// send hands an item to ReadBatch, sending status updates while it waits.
func (s *cdcStreamer) send(ctx context.Context, it cdcItem, next *time.Time) error {
	select {
	case s.items <- it:
		return nil
	default:
	}
	for {
		wait := time.Until(*next)
		t := time.NewTimer(max(wait, 0))
		select {
		case s.items <- it:
			t.Stop()
			return nil
		case <-t.C:
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
			*next = time.Now().Add(s.interval)
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// sendStatus tells the server how far the input's records are stored: the
// slot's confirmed flush LSN moves there, never past a record not stored.
func (s *cdcStreamer) sendStatus(ctx context.Context) error {
	pos := max(s.flushed(), s.start)
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos})
	if err != nil {
		return fmt.Errorf("replication: status update: %w", err)
	}
	return nil
}

// cdcRelation is a table as pgoutput describes it (Relation message).
type cdcRelation struct {
	name    string // schema.name
	cols    []cdcColumn
	ident   []bool     // replica identity columns (the old key)
	key     []int      // the record key: primary key columns, else identity
	orders  []cdcOrder // of key, for snapshot positions
	snapIdx int        // index in the snapshot's tables; -1: not there
	include bool       // one of the tables read
}

// cdcDecoder turns pgoutput messages into items. Transactions arrive whole
// (proto_version 1: no streaming of transactions in progress), in commit
// order.
type cdcDecoder struct {
	vals     *cdcValues
	rels     map[uint32]*cdcRelation
	tables   map[string]*cdcTable
	snap     *cdcSnapState
	snapIdx  map[string]int
	retireAt *atomic.Uint64
	srcMeta  any
	pause    *cdcPause // nil once the pause is sent

	inTx       bool
	xid        uint32
	commit     pglogrepl.LSN
	commitTime time.Time
	filter     bool   // changes may be in a snapshot segment's reads already
	index      uint32 // of the next change in the transaction
	lastEnd    pglogrepl.LSN
	buf        []byte
}

// keepalive emits an item moving the resume point to the server's WAL
// end, when no transaction is open: everything before it was sent.
func (d *cdcDecoder) keepalive(walEnd pglogrepl.LSN, emit func(cdcItem) error) error {
	if d.inTx {
		return nil
	}
	if d.pause != nil && walEnd >= d.pause.until {
		d.pause = nil
		if err := emit(cdcItem{pause: true, resume: d.lastEnd}); err != nil {
			return err
		}
	}
	if walEnd <= d.lastEnd {
		return nil
	}
	d.lastEnd = walEnd
	return emit(cdcItem{resume: walEnd})
}

func (d *cdcDecoder) decode(walStart pglogrepl.LSN, data []byte, emit func(cdcItem) error) error {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("replication: decoding a pgoutput message: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		d.relation(m)
	case *pglogrepl.BeginMessage:
		if d.pause != nil && (m.FinalLSN >= d.pause.until || !d.pause.snap.sees(m.Xid)) {
			d.pause = nil
			if err := emit(cdcItem{pause: true, resume: d.lastEnd}); err != nil {
				return err
			}
		}
		d.inTx, d.xid, d.commit, d.commitTime, d.index = true, m.Xid, m.FinalLSN, m.CommitTime, 0
		retire := pglogrepl.LSN(d.retireAt.Load())
		d.filter = d.snap.filtering() && (retire == 0 || m.FinalLSN < retire)
	case *pglogrepl.CommitMessage:
		d.inTx = false
		d.lastEnd = max(d.lastEnd, m.TransactionEndLSN)
		return emit(cdcItem{resume: d.lastEnd})
	case *pglogrepl.InsertMessage:
		return d.change(emit, "insert", walStart, m.RelationID, nil, 0, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return d.change(emit, "update", walStart, m.RelationID, m.OldTuple, m.OldTupleType, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return d.change(emit, "delete", walStart, m.RelationID, m.OldTuple, m.OldTupleType, nil)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if err := d.change(emit, "truncate", walStart, id, nil, 0, nil); err != nil {
				return err
			}
		}
	case *pglogrepl.TruncateMessageV2:
		for _, id := range m.RelationIDs {
			if err := d.change(emit, "truncate", walStart, id, nil, 0, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *cdcDecoder) relation(m *pglogrepl.RelationMessage) {
	r := &cdcRelation{name: m.Namespace + "." + m.RelationName, snapIdx: -1}
	byName := map[string]int{}
	for i, c := range m.Columns {
		r.cols = append(r.cols, cdcColumn{name: c.Name, oid: c.DataType})
		r.ident = append(r.ident, c.Flags&1 != 0)
		byName[c.Name] = i
	}
	t, ok := d.tables[r.name]
	r.include = ok
	pk := ok && len(t.pk) > 0
	if pk {
		for _, p := range t.pk {
			i, ok := byName[t.cols[p].name]
			if !ok {
				r.key = nil
				break
			}
			r.key = append(r.key, i)
		}
	}
	if r.key == nil && m.ReplicaIdentity != 'f' {
		for i, id := range r.ident {
			if id {
				r.key = append(r.key, i)
			}
		}
	}
	for _, i := range r.key {
		r.orders = append(r.orders, cdcOrderOf(r.cols[i].oid))
	}
	if i, ok := d.snapIdx[r.name]; ok && pk && len(r.key) == len(t.pk) {
		r.snapIdx = i
	}
	d.rels[m.RelationID] = r
}

// change emits one change of the open transaction, unless a snapshot
// segment already read it.
func (d *cdcDecoder) change(emit func(cdcItem) error, op string, walStart pglogrepl.LSN, relID uint32, old *pglogrepl.TupleData, oldType uint8, cur *pglogrepl.TupleData) error {
	index := d.index
	d.index++
	r, ok := d.rels[relID]
	if !ok {
		return fmt.Errorf("replication: a change of relation %d before its description", relID)
	}
	if !r.include || !d.inTx {
		return nil
	}
	var trunc *cdcTruncated
	if d.filter && !d.truncated(r) {
		if op == "truncate" && r.snapIdx >= 0 {
			if d.truncateSeen(r) {
				return nil
			}
			trunc = &cdcTruncated{Table: r.snapIdx, At: cdcLSN(d.commit)}
			d.snap.Truncated = append(d.snap.Truncated, *trunc)
		} else if d.readBySnapshot(r, old, cur) {
			return nil
		}
	}
	b := d.buf[:0]
	b = append(b, `{"op":"`...)
	b = append(b, op...)
	b = append(b, `","table":`...)
	b = cdcAppendString(b, []byte(r.name))
	b = append(b, `,"before":`...)
	switch {
	case old != nil && oldType == pglogrepl.UpdateMessageTupleTypeOld:
		b = d.appendTuple(b, r, old, nil, nil)
	case old != nil:
		b = d.appendTuple(b, r, old, r.ident, nil)
	case op == "update" && len(r.key) > 0:
		b = d.appendTuple(b, r, cur, keyMask(len(r.cols), r.key), nil)
	default:
		b = append(b, "null"...)
	}
	b = append(b, `,"after":`...)
	if cur != nil {
		fill := old
		if oldType != pglogrepl.UpdateMessageTupleTypeOld {
			fill = nil
		}
		b = d.appendTuple(b, r, cur, nil, fill)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"lsn":"`...)
	b = append(b, walStart.String()...)
	b = append(b, `","commit_lsn":"`...)
	b = append(b, d.commit.String()...)
	b = append(b, `","xid":`...)
	b = strconv.AppendUint(b, uint64(d.xid), 10)
	b = append(b, `,"commit_time":"`...)
	b = d.commitTime.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}`...)
	d.buf = b

	m := service.NewMessage(append([]byte(nil), b...))
	m.MetaSetMut(MetaSource, d.srcMeta)
	m.MetaSetMut(MetaPosition, cdcStreamPos(make([]byte, 0, 13), d.commit, index))
	m.MetaSetMut(MetaTimestamp, d.commitTime)
	keyTup := cur
	if op == "delete" {
		keyTup = old
	}
	if op == "truncate" {
		// Every row of the table: keyed by the table, so that its
		// truncates keep their order.
		m.MetaSetMut(MetaKey, string(cdcAppendString(nil, []byte(r.name))))
	} else if key, ok := d.recordKey(r, keyTup); ok {
		m.MetaSetMut(MetaKey, key)
	}
	return emit(cdcItem{msg: m, resume: d.lastEnd, trunc: trunc})
}

func keyMask(n int, key []int) []bool {
	mask := make([]bool, n)
	for _, i := range key {
		mask[i] = true
	}
	return mask
}

// appendTuple appends a row as a JSON object, columns in table order:
// those of only (nil: all), an unchanged TOASTed value taken from fill
// when it has it and left out otherwise.
func (d *cdcDecoder) appendTuple(b []byte, r *cdcRelation, t *pglogrepl.TupleData, only []bool, fill *pglogrepl.TupleData) []byte {
	b = append(b, '{')
	first := true
	for i, c := range t.Columns {
		if i >= len(r.cols) || only != nil && !only[i] {
			continue
		}
		if c.DataType == pglogrepl.TupleDataTypeToast {
			if fill == nil || i >= len(fill.Columns) || fill.Columns[i].DataType != pglogrepl.TupleDataTypeText {
				continue
			}
			c = fill.Columns[i]
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = cdcAppendString(b, []byte(r.cols[i].name))
		b = append(b, ':')
		switch c.DataType {
		case pglogrepl.TupleDataTypeText:
			b = d.vals.appendJSON(b, r.cols[i].oid, c.Data)
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

// recordKey is the record key: the key columns as a JSON object.
func (d *cdcDecoder) recordKey(r *cdcRelation, t *pglogrepl.TupleData) (string, bool) {
	if t == nil || len(r.key) == 0 {
		return "", false
	}
	b := []byte{'{'}
	for n, i := range r.key {
		if i >= len(t.Columns) || t.Columns[i].DataType != pglogrepl.TupleDataTypeText {
			return "", false
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = cdcAppendString(b, []byte(r.cols[i].name))
		b = append(b, ':')
		b = d.vals.appendJSON(b, r.cols[i].oid, t.Columns[i].Data)
	}
	return string(append(b, '}')), true
}

// truncated reports whether a truncate of r's table, emitted at or before
// the open transaction, ended the checks of its changes.
func (d *cdcDecoder) truncated(r *cdcRelation) bool {
	for _, t := range d.snap.Truncated {
		if t.Table == r.snapIdx && pglogrepl.LSN(t.At) <= d.commit {
			return true
		}
	}
	return false
}

// truncateSeen reports whether every segment that read rows of r's table
// saw the open transaction, a truncate: the reads are all after it, the
// rows it removed were never read, and it is dropped like any change the
// reads hold.
//
// Otherwise the truncate is emitted in stream order, after every read of
// the table: a consumer applies it to all of them, those read before it
// (by a segment that did not see it: rows it removed) and those read
// after it, by a later segment (rows inserted since, whose changes that
// segment saw and would drop). So from the truncate on, the table's
// changes are streamed without checks (cdcSnapState.Truncated, stored
// before the acknowledged mark passes it): the rows inserted after it come
// again as inserts. Nothing is lost and the consumer's table ends as
// PostgreSQL's; a row read after the truncate is then doubled by its
// insert.
func (d *cdcDecoder) truncateSeen(r *cdcRelation) bool {
	if r.snapIdx < 0 {
		return false
	}
	lo := cdcSnapshotPosPrefix(r.snapIdx)
	hi := cdcSnapshotPosPrefix(r.snapIdx + 1)
	for i, s := range d.snap.Segments {
		// The segment holds the positions above its Start, up to the next
		// one's Start.
		if string(s.Start) >= string(hi) {
			continue
		}
		if i+1 < len(d.snap.Segments) && string(d.snap.Segments[i+1].Start) <= string(lo) {
			continue
		}
		if !s.Snap.sees(d.xid) {
			return false
		}
	}
	return true
}

// readBySnapshot reports whether the open transaction's change is in the
// snapshot's reads already: the segment that read the row (each row, when
// an update moves it to another key) saw the transaction.
func (d *cdcDecoder) readBySnapshot(r *cdcRelation, old, cur *pglogrepl.TupleData) bool {
	if r.snapIdx < 0 {
		return false
	}
	checked := false
	for _, t := range []*pglogrepl.TupleData{old, cur} {
		if t == nil {
			continue
		}
		keys := make([][]byte, len(r.key))
		for n, i := range r.key {
			if i >= len(t.Columns) || t.Columns[i].DataType != pglogrepl.TupleDataTypeText {
				return false // the key is not known: emit
			}
			keys[n] = t.Columns[i].Data
		}
		pos, err := cdcSnapshotPos(nil, r.snapIdx, r.orders, keys)
		if err != nil {
			return false
		}
		seg := d.snap.segment(pos)
		if seg == nil || !seg.Snap.sees(d.xid) {
			return false
		}
		checked = true
	}
	return checked
}

// readStream returns the changes the streamer has decoded, waiting for the
// first; items that only move the resume point are issued done. At the
// pause, it issues what came before and leaves the rest queued for after
// the late tables' reads.
func (in *pgcdcInput) readStream(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	s := in.str
	var it cdcItem
	select {
	case it = <-s.items:
	case <-s.done:
		select {
		case it = <-s.items:
		default:
			return nil, nil, s.err
		}
	case <-in.wake:
		return nil, nil, errCDCRetry
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if it.pause {
		in.paused, in.pauseLSN = true, it.resume
		return nil, nil, errCDCRetry
	}
	var msgs service.MessageBatch
	var truncs []cdcTruncated
	add := func(it cdcItem) {
		if it.msg != nil {
			msgs = append(msgs, it.msg)
		}
		if it.trunc != nil {
			truncs = append(truncs, *it.trunc)
		}
	}
	end := it.resume
	add(it)
more:
	for len(msgs) < in.batchSize {
		select {
		case it = <-s.items:
			if it.pause {
				in.paused, in.pauseLSN = true, it.resume
				break more
			}
			end = it.resume
			add(it)
		default:
			break more
		}
	}
	if len(truncs) > 0 {
		// Stored with any mark past them (see cdcDecoder.truncateSeen).
		in.mu.Lock()
		if in.mu.snap != nil {
			for _, t := range truncs {
				if !slices.Contains(in.mu.snap.Truncated, t) {
					in.mu.snap.Truncated = append(in.mu.snap.Truncated, t)
				}
			}
		}
		in.mu.Unlock()
	}
	ack, tk, ok := in.fl.issue(cdcMark{Stream: true, LSN: cdcLSN(end), Table: in.lateTbl, Key: in.lateKey}, len(msgs) == 0, nil)
	if !ok {
		return nil, nil, errCDCRetry
	}
	if len(msgs) == 0 {
		return nil, nil, errCDCRetry
	}
	for _, m := range msgs {
		m.MetaSetMut(MetaTicket, tk)
	}
	return msgs, ack, nil
}
