package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
		snap: c.snap, retireAt: c.retireAt, srcMeta: c.srcMeta, lastEnd: c.start}
	for _, t := range c.tables {
		s.dec.tables[t.name] = t
	}
	if c.snap != nil {
		s.dec.snapIdx = map[string]int{}
		for i, name := range c.snap.Tables {
			s.dec.snapIdx[name] = i
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
				if it, ok := s.dec.keepalive(k.ServerWALEnd); ok {
					if err := s.send(ctx, it, &next); err != nil {
						s.err = err
						return
					}
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

	inTx       bool
	xid        uint32
	commit     pglogrepl.LSN
	commitTime time.Time
	filter     bool   // changes may be in a snapshot segment's reads already
	index      uint32 // of the next change in the transaction
	lastEnd    pglogrepl.LSN
	buf        []byte
}

// keepalive returns an item moving the resume point to the server's WAL
// end, when no transaction is open: everything before it was sent.
func (d *cdcDecoder) keepalive(walEnd pglogrepl.LSN) (cdcItem, bool) {
	if d.inTx || walEnd <= d.lastEnd {
		return cdcItem{}, false
	}
	d.lastEnd = walEnd
	return cdcItem{resume: walEnd}, true
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
		d.inTx, d.xid, d.commit, d.commitTime, d.index = true, m.Xid, m.FinalLSN, m.CommitTime, 0
		retire := pglogrepl.LSN(d.retireAt.Load())
		d.filter = d.snap != nil && len(d.snap.Segments) > 0 && (retire == 0 || m.FinalLSN < retire)
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
	if d.filter && d.readBySnapshot(r, op, old, cur) {
		return nil
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
	if key, ok := d.recordKey(r, keyTup); ok {
		m.MetaSetMut(MetaKey, key)
	}
	return emit(cdcItem{msg: m, resume: d.lastEnd})
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

// readBySnapshot reports whether the open transaction's change is in the
// snapshot's reads already: the segment that read the row (each row, when
// an update moves it to another key) saw the transaction. A truncate is
// dropped only if every segment saw it.
func (d *cdcDecoder) readBySnapshot(r *cdcRelation, op string, old, cur *pglogrepl.TupleData) bool {
	if r.snapIdx < 0 {
		return false
	}
	if op == "truncate" {
		for _, s := range d.snap.Segments {
			if !s.Snap.sees(d.xid) {
				return false
			}
		}
		return true
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
// first; items that only move the resume point are issued done.
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
	var msgs service.MessageBatch
	end := it.resume
	if it.msg != nil {
		msgs = append(msgs, it.msg)
	}
more:
	for len(msgs) < in.batchSize {
		select {
		case it = <-s.items:
			end = it.resume
			if it.msg != nil {
				msgs = append(msgs, it.msg)
			}
		default:
			break more
		}
	}
	ack, tk, ok := in.issue(cdcMark{Stream: true, LSN: cdcLSN(end)}, len(msgs) == 0)
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
