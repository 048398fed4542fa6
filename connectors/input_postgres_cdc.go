package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
)

// YAML fields of the samsa_postgres_cdc input.
const (
	cdcFieldDSN                = "dsn"
	cdcFieldTables             = "tables"
	cdcFieldPublication        = "publication"
	cdcFieldSlot               = "slot"
	cdcFieldSnapshot           = "snapshot"
	cdcFieldSourceID           = "source_id"
	cdcFieldBatchSize          = "batch_size"
	cdcFieldMaxInFlight        = "max_in_flight"
	cdcFieldCheckpointInterval = "checkpoint_interval"
	cdcFieldStatusInterval     = "status_interval"
)

func postgresCDCInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Streams the changes of PostgreSQL tables (logical replication, pgoutput) into a pipeline exactly once, after an optional snapshot of the rows already there.").
		Description(`
The input creates, if absent, a publication of `+"`tables`"+` (adding the tables it lacks) and a
logical replication slot (plugin `+"`pgoutput`"+`), both named after `+"`source_id`"+` unless set. The
server needs `+"`wal_level = logical`"+`, and the user the REPLICATION attribute (or to be a superuser)
and the right to create the publication.

**Events.** Each message is one JSON event:

`+"```json"+`
{"op": "update", "table": "public.orders",
 "before": {"id": 42}, "after": {"id": 42, "total": "12.50", "paid": true},
 "lsn": "0/16B3748", "commit_lsn": "0/16B3800", "xid": 761, "commit_time": "2024-05-01T10:00:00.123456Z"}
`+"```"+`

`+"`op`"+` is `+"`read`"+` (a snapshot row), `+"`insert`"+`, `+"`update`"+`, `+"`delete`"+` or `+"`truncate`"+` (one per table,
without rows). `+"`after`"+` is the new row (null for a delete). `+"`before`"+` is null for an insert; for an
update or a delete it holds the old key (the replica identity, by default the primary key), or the
whole old row with `+"`ALTER TABLE ... REPLICA IDENTITY FULL`"+`. A large value left unchanged by an
update (TOASTed) is not sent by PostgreSQL: it is left out of `+"`after`"+` unless the table has replica
identity full. `+"`lsn`"+` is the change's own WAL position (for a read, where the snapshot began),
`+"`commit_lsn`"+`, `+"`xid`"+` and `+"`commit_time`"+` are its transaction's (a read has the snapshot's time and
null LSN and xid). Values keep their types: integers and floats are numbers, numeric is an exact
string, bool is a boolean, json and jsonb are embedded, bytea is base64, timestamps are RFC 3339 in
UTC (a timestamp without time zone is taken as UTC), arrays are arrays, NULL is null; dates, uuids,
intervals, enums and other types are their PostgreSQL text.

**Metadata.** `+"`samsa_key`"+` is the primary key as a JSON object (`+"`{\"id\":42}`"+`): key the topic with
`+"`key: '${! meta(\"samsa_key\") }'`"+` so that each row's changes stay in order in one partition (an update
that changes the key is keyed by the new key). `+"`samsa_timestamp`"+` is the commit time.
`+"`samsa_source`"+` and `+"`samsa_position`"+` make the ingest exactly once: positions are (snapshot,
table, key) for reads and (stream, commit LSN, index in the transaction) for changes.

**Snapshot.** With `+"`snapshot: true`"+` the rows there are when the input first starts are read
first, table after table, each in primary key order (text keys bytewise; keys of other types than
integers, uuid, bool, bytea and text by their text form, which a key index cannot serve) in pages of
`+"`batch_size`"+` rows, in one REPEATABLE READ transaction; then changes are streamed. The slot is
created before the snapshot is taken (which, when the input creates the slot, reads the snapshot the
slot exported), so it keeps every transaction that commits after it; a streamed transaction that
the snapshot's transaction saw is dropped for the rows it read, so each row is read once and each
later change streamed once. A restart in the middle of the snapshot goes
on after the last acknowledged key in a new transaction, and each change is then checked against
the transaction that read its row; once the snapshot has been read to its end (and changes may be
stored), a restart reads again only the rows up to the last one read, and the stream brings the
rest. The one case where a change can reach the topic twice: a row
among the last rows read before a crash (at most 2 × `+"`max_in_flight`"+` × `+"`batch_size`"+`), not
stored before it and changed before the restart, is read again with the change in it, and the
change is streamed as well.

**Tables added or removed.** A table added to `+"`tables`"+` while the snapshot is still read is read by
it; one added later is added to the publication and its rows are read (as `+"`read`"+` events, under
the source id `+"`<source_id>#late`"+`) at a pause of the stream, which then goes on: each row once, its
changes after its read. With `+"`snapshot: false`"+` an added table is only added to the publication, at
the next start: its changes are streamed from then on, and its rows and earlier changes are not read.
A table removed from `+"`tables`"+` is no longer emitted, and is dropped from the publication if the
input created it (a publication it found, which may serve others, keeps it); added again, it is read
again.

**Truncates.** A TRUNCATE is one `+"`truncate`"+` event per table, in stream order, keyed by the table's
name as a JSON string. The snapshot's reads of a table come before its truncates; when a restarted
snapshot read part of a table after a truncate, the truncate is still emitted after every read and
the table's later changes are all streamed, so replaying the events gives the table (its rows
inserted after the truncate then come as reads and again as inserts).

**Tables.** A table without a primary key or replica identity is refused: once published, PostgreSQL
would reject its UPDATEs and DELETEs (give it a key, or `+"`REPLICA IDENTITY FULL`"+` and `+"`snapshot: false`"+`).
A partitioned table is published through its root (`+"`publish_via_partition_root`"+`), so its changes carry
its name.

**Acknowledgements.** The slot's confirmed position (what PostgreSQL may discard) moves only to the
end of the last transaction whose changes are all stored in the topic; it is sent every
`+"`status_interval`"+` and when the server asks. The input also checkpoints that position and the
snapshot's progress in Samsa under `+"`source/<source_id>`"+` every `+"`checkpoint_interval`"+` and resumes
from the later of the two. Up to `+"`max_in_flight`"+` batches are in flight; a failed batch sends the
input back to the acknowledged position (the stream is restarted there, PostgreSQL sends the
transactions again, and the topic drops what it holds).

**Removing a source.** Closing the input leaves the slot, so that a restart resumes. A slot keeps
the server's WAL from being removed: when a pipeline is deleted, drop its slot and publication:
`+"`SELECT pg_drop_replication_slot('samsa_pipeline_<name>_source'); DROP PUBLICATION samsa_pipeline_<name>_source;`"+``).
		Fields(
			service.NewStringField(cdcFieldDSN).
				Description("The PostgreSQL connection string, as a URL or key=value pairs.").
				Example("postgres://replicator:secret@db:5432/shop?sslmode=require"),
			service.NewStringListField(cdcFieldTables).
				Description("The tables to capture, optionally schema-qualified (resolved through the search_path). A snapshot needs each to have a primary key.").
				Example([]string{"public.orders", "customers"}),
			service.NewStringField(cdcFieldPublication).
				Description("The publication to stream. Default: `samsa_` and the source id (lower case, other characters than a-z, 0-9 and _ as _). Created for `tables` if absent, with a comment marking it as the source's; tables it lacks are added to it. From a publication the source created, tables no longer in `tables` are dropped; one it found keeps them (it may serve others).").
				Default(""),
			service.NewStringField(cdcFieldSlot).
				Description("The logical replication slot (a-z, 0-9 and _, at most 63). Default: as `publication`. Created with plugin pgoutput if absent, never dropped by the input.").
				Default(""),
			service.NewBoolField(cdcFieldSnapshot).
				Description("Read the rows already in the tables (as `read` events) before streaming changes. Only on the first start: a restart resumes the snapshot or the stream where it was.").
				Default(true),
			service.NewStringField(cdcFieldSourceID).
				Description("Identifies the source: the key of its checkpoint, the id the partitions fence duplicates by and the default slot and publication name. Keep it stable across restarts and unique per source."),
			service.NewIntField(cdcFieldBatchSize).
				Description("Records per batch at most; also the rows of a snapshot page.").
				Default(1024).Advanced(),
			service.NewIntField(cdcFieldMaxInFlight).
				Description("Batches read ahead of the oldest one not yet acknowledged.").
				Default(4).Advanced(),
			service.NewDurationField(cdcFieldCheckpointInterval).
				Description("How often the acknowledged position is checkpointed in Samsa.").
				Default("1s").Advanced(),
			service.NewDurationField(cdcFieldStatusInterval).
				Description("How often the server is told the acknowledged position (standby status update), which lets it discard WAL and keeps the session alive; keep it well below the server's `wal_sender_timeout`.").
				Default("1s").Advanced(),
		).
		Example("Orders into a topic", "Snapshot then stream two tables, keyed by primary key.", `
input:
  samsa_postgres_cdc:
    dsn: postgres://replicator@db:5432/shop
    tables: [ public.orders, public.customers ]
    source_id: shop-cdc
output:
  samsa_topic:
    topic: shop.changes
    partitions: 4
    key: '${! meta("samsa_key") }'
`)
}

// pgcdcInput is the samsa_postgres_cdc input. ReadBatch and Connect run
// one at a time (Benthos calls them from one goroutine) under readMu;
// acknowledgements, the checkpoint loop and Close come from other
// goroutines and meet under mu.
//
// # The snapshot and the stream
//
// The slot is created first: from its consistent point on, every
// transaction that commits is decoded whole, and one that committed before
// it never is. The snapshot is then read in a REPEATABLE READ transaction
// whose snapshot (txid_current_snapshot: xmin, xmax, the transactions in
// progress) is kept in the checkpoint. Every transaction that commits
// after the slot's consistent point is either seen by that snapshot — its
// rows were read with it — or not; the decoder tells which from the
// transaction id of pgoutput's Begin and drops the changes the snapshot
// saw. So a transaction that slipped in between the slot and the snapshot
// is neither lost nor doubled, and the same holds when the slot existed
// before (a restart, a slot made by hand).
//
// What the snapshot must not miss is a transaction that committed before
// the consistent point: PostgreSQL writes a commit to the WAL before it
// makes it visible, so a snapshot taken right after the slot is created
// could, in that moment, still see such a transaction as running. The
// input therefore creates the slot in a replication session that exports
// its snapshot (CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT), the database
// as of the consistent point, and the first snapshot transaction imports
// it (SET TRANSACTION SNAPSHOT). Later transactions, after a restart, are
// begun long after any such commit became visible.
//
// A restart in the middle of the snapshot cannot get that transaction
// back: the rest is read in a new one, a new segment (cdcSegment) whose
// rows start above the highest position ever emitted (cdcSnapState.Issued,
// stored before the records that carry it are emitted). A change is
// checked against the segment of its row, found by the row's snapshot
// position. Rows between the acknowledged key and Issued are read again in
// the new transaction and dropped by the topic if it holds them; the ones
// it did not hold are stored as the new transaction read them, yet checked
// against the old segment, so a change that came between the two is
// streamed once more: never lost, in that narrow case doubled.
//
// Once the last table is read to its end, the checkpoint says so
// (cdcSnapState.Read) before the stream begins: streamed changes have
// positions above every snapshot row's, so once the topic holds some, a
// row read in a new segment would be dropped by the partitions while its
// segment hides its changes from the stream. A restart before the
// acknowledged mark reaches the stream therefore reads again only the
// rows up to Issued, in a transaction that is no segment; rows above it
// were seen by no segment, and the stream brings them.
//
// A truncate (cdcDecoder.truncateSeen) counts every read of its table as
// before it, where the reads of a segment that saw it are after it: it is
// dropped if every segment of the table saw it, and otherwise emitted,
// after which the table's changes are no longer checked. Tables added
// later (postgres_cdc_late.go) are read by segments of their own at a
// pause of the stream.
//
// Once the server's oldest running transaction is past every segment's
// snapshot, the WAL position of that moment (RetireAt) bounds the
// transactions a segment may have seen; changes beyond it are not checked,
// and the segments are forgotten when the acknowledged position passes it
// (before 32-bit transaction ids could wrap around).
type pgcdcInput struct {
	log         *replog.Log
	logger      *slog.Logger
	sourceID    string
	srcMeta     any
	lateMeta    any // the source id of late tables' reads (cdcLateSource)
	ckKey       string
	dsn         string
	tableNames  []string
	pub, slot   string
	snapshotOn  bool
	batchSize   int
	inFlight    int
	ckEvery     time.Duration
	statusEvery time.Duration
	fl          inflight[cdcMark]
	retireAt    atomic.Uint64 // cdcSnapState.RetireAt, for the streamer

	readMu  sync.Mutex
	loaded  bool          // the checkpoint was loaded
	tables  []*cdcTable   // as resolved by the last Connect
	slotLSN pglogrepl.LSN // the slot's confirmed position at the last Connect
	snapRd  *cdcSnapReader
	str     *cdcStreamer
	held    []cdcHeldPage // snapshot pages read, to emit in order
	heldOK  bool          // the checkpoint with held's last position as issued is stored
	lateRd  *cdcSnapReader
	// pubHorizon: every transaction that may have changed a table before
	// the publication had it is below it (the next transaction id after
	// the last Connect ensured the publication).
	pubHorizon uint64
	paused     bool // the stream is at its pause: the late tables are read first
	lateTbl    int  // the late tables' progress, carried by stream marks
	lateKey    []string
	// pauseLSN is the resume point of the stream's last item before the
	// pause.
	pauseLSN pglogrepl.LSN

	wake   chan struct{} // a batch failed
	done   chan struct{} // closed by Close
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	close1 sync.Once

	mu struct {
		sync.Mutex
		connected bool
		closed    bool
		looping   bool          // the checkpoint loop runs
		snap      *cdcSnapState // nil: no snapshot running or to filter by
	}

	ckMu    sync.Mutex
	stored  []byte    // the checkpoint last stored (under ckMu)
	retired time.Time // the last look for the snapshot's end (checkpoint loop)
}

// cdcHeldPage is a snapshot page read and not emitted yet.
type cdcHeldPage struct {
	msgs service.MessageBatch
	end  cdcMark
}

func newPostgresCDCInput(conf *service.ParsedConfig, deps Deps) (*pgcdcInput, error) {
	in := &pgcdcInput{log: deps.Log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	var err error
	if in.dsn, err = conf.FieldString(cdcFieldDSN); err != nil {
		return nil, err
	}
	if in.tableNames, err = conf.FieldStringList(cdcFieldTables); err != nil {
		return nil, err
	}
	if in.pub, err = conf.FieldString(cdcFieldPublication); err != nil {
		return nil, err
	}
	if in.slot, err = conf.FieldString(cdcFieldSlot); err != nil {
		return nil, err
	}
	if in.snapshotOn, err = conf.FieldBool(cdcFieldSnapshot); err != nil {
		return nil, err
	}
	if in.sourceID, err = conf.FieldString(cdcFieldSourceID); err != nil {
		return nil, err
	}
	if in.batchSize, err = conf.FieldInt(cdcFieldBatchSize); err != nil {
		return nil, err
	}
	if in.inFlight, err = conf.FieldInt(cdcFieldMaxInFlight); err != nil {
		return nil, err
	}
	if in.ckEvery, err = conf.FieldDuration(cdcFieldCheckpointInterval); err != nil {
		return nil, err
	}
	if in.statusEvery, err = conf.FieldDuration(cdcFieldStatusInterval); err != nil {
		return nil, err
	}
	switch {
	case in.dsn == "":
		return nil, fmt.Errorf("%s: required", cdcFieldDSN)
	case len(in.tableNames) == 0:
		return nil, fmt.Errorf("%s: at least one table is required", cdcFieldTables)
	case in.sourceID == "":
		return nil, fmt.Errorf("%s: required", cdcFieldSourceID)
	case in.batchSize < 1:
		return nil, fmt.Errorf("%s: must be at least 1", cdcFieldBatchSize)
	case in.inFlight < 1:
		return nil, fmt.Errorf("%s: must be at least 1", cdcFieldMaxInFlight)
	case in.ckEvery <= 0:
		return nil, fmt.Errorf("%s: must be positive", cdcFieldCheckpointInterval)
	case in.statusEvery <= 0:
		return nil, fmt.Errorf("%s: must be positive", cdcFieldStatusInterval)
	}
	if _, err := cdcConnConfig(in.dsn, false); err != nil {
		return nil, err
	}
	if in.pub == "" {
		in.pub = cdcDefaultName(in.sourceID)
	}
	if in.slot == "" {
		in.slot = cdcDefaultName(in.sourceID)
	}
	if !cdcSlotName.MatchString(in.slot) {
		return nil, fmt.Errorf("%s: %q: a slot name has 1 to 63 characters among a-z, 0-9 and _", cdcFieldSlot, in.slot)
	}
	in.fl.init(&in.mu.Mutex, in.wake, in.done)
	in.srcMeta = in.sourceID
	in.lateMeta = cdcLateSource(in.sourceID)
	in.ckKey = "source/" + in.sourceID
	in.logger = deps.Logger.With("input", PostgresCDCInputName, "source", in.sourceID)
	in.ctx, in.cancel = context.WithCancel(context.Background())
	return in, nil
}

// Connect checks the tables, creates the publication and the slot if
// needed, loads the checkpoint (once) and resumes from the acknowledged
// mark: the snapshot in a transaction (the same one after a rewind, if it
// is still open), or the stream at the later of the mark and the slot's
// confirmed position.
func (in *pgcdcInput) Connect(ctx context.Context) error {
	in.readMu.Lock()
	defer in.readMu.Unlock()
	in.mu.Lock()
	connected := in.mu.connected
	in.mu.Unlock()
	if connected {
		return nil
	}
	select {
	case <-in.done:
		return service.ErrEndOfInput
	default:
	}
	cfg, err := cdcConnConfig(in.dsn, false)
	if err != nil {
		return err
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	tables, err := cdcResolveTables(ctx, conn, in.tableNames)
	if err != nil {
		return err
	}
	if in.snapshotOn {
		for _, t := range tables {
			if len(t.pk) == 0 {
				return fmt.Errorf("%s: %s has no primary key, which the snapshot reads it by (add one, or set %s: false)", cdcFieldTables, t.name, cdcFieldSnapshot)
			}
		}
	}
	dropped, err := cdcEnsurePublication(ctx, conn, in.pub, in.sourceID, tables)
	if err != nil {
		return err
	}
	if len(dropped) > 0 {
		in.logger.Info("tables no longer in tables dropped from the publication", "publication", in.pub, "tables", strings.Join(dropped, ", "))
	}
	// A transaction running now may have changed a table just added to
	// the publication before it was: its changes are not streamed, so a
	// late table's reads wait for it (see openLate).
	horizon, err := cdcQuery(ctx, conn, `SELECT txid_snapshot_xmax(txid_current_snapshot())::text`)
	if err != nil || len(horizon) != 1 {
		return fmt.Errorf("reading the transaction horizon: %w", err)
	}
	if in.pubHorizon, err = strconv.ParseUint(string(horizon[0][0]), 10, 64); err != nil {
		return fmt.Errorf("reading the transaction horizon: %w", err)
	}
	slotLSN, export, err := cdcEnsureSlot(ctx, conn, in.dsn, in.slot)
	if err != nil {
		return err
	}
	defer export.close() // once the snapshot, if one begins, has imported it
	created := export != nil
	if created {
		in.logger.Info("replication slot created", "slot", in.slot, "lsn", slotLSN.String())
	}
	if !in.loaded {
		if err := in.load(created); err != nil {
			return err
		}
	}
	in.reconcile(tables)
	in.tables, in.slotLSN = tables, slotLSN
	if err := in.establish(ctx, export); err != nil {
		return err
	}
	in.mu.Lock()
	if in.mu.closed {
		in.mu.Unlock()
		in.stopStream()
		in.closeSnapshot()
		in.closeLate()
		return service.ErrEndOfInput
	}
	in.mu.connected = true
	if !in.mu.looping {
		in.mu.looping = true
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			// Each round also forgets the snapshot's segments once the
			// stream is past them.
			storeEvery(in.ctx, in.done, in.ckEvery, in.logger, func(ctx context.Context) error {
				in.retire(ctx)
				return in.storeCheckpoint(ctx)
			})
		}()
	}
	mark := in.fl.ackedLocked()
	in.mu.Unlock()
	in.logger.Info("postgres cdc source connected", "slot", in.slot, "publication", in.pub, "resume", mark.String())
	return nil
}

// load reads the checkpoint.
func (in *pgcdcInput) load(slotCreated bool) error {
	b, ok := in.log.Checkpoint(in.ckKey)
	if ok {
		c, err := decodeCDCCheckpoint(b)
		if err != nil {
			return fmt.Errorf("%s: %w", in.ckKey, err)
		}
		if c.Slot != "" && c.Slot != in.slot {
			in.logger.Warn("the checkpoint is of another slot; resuming at its position in this one", "checkpoint_slot", c.Slot, "slot", in.slot)
		}
		if slotCreated && (c.Acked.Stream || c.Snapshot != nil) {
			in.logger.Error("the replication slot was gone and is created anew: the changes committed since the checkpoint and before now are lost", "slot", in.slot, "checkpoint", c.Acked.String())
		}
		in.mu.Lock()
		in.fl.setAckedLocked(c.Acked)
		in.mu.snap = c.Snapshot
		in.mu.Unlock()
		if c.Snapshot != nil {
			in.retireAt.Store(uint64(c.Snapshot.RetireAt))
		}
		in.ckMu.Lock()
		in.stored = b
		in.ckMu.Unlock()
	}
	in.loaded = true
	return nil
}

// establish starts reading from the acknowledged mark; a new snapshot
// transaction imports export, the snapshot of a slot just created, if
// there is one.
func (in *pgcdcInput) establish(ctx context.Context, export *cdcExport) error {
	in.mu.Lock()
	mark := in.fl.ackedLocked()
	if !mark.Stream && !in.snapshotOn {
		if in.mu.snap != nil {
			in.logger.Warn("snapshot turned off: the rest of it is not read", "at", mark.String())
		}
		mark = cdcMark{Stream: true}
		in.fl.setAckedLocked(mark)
	}
	if !mark.Stream && in.mu.snap == nil {
		names := make([]string, len(in.tables))
		for i, t := range in.tables {
			names[i] = t.name
		}
		in.mu.snap = &cdcSnapState{Tables: names}
	}
	in.mu.Unlock()
	if mark.Stream {
		in.closeSnapshot()
		return in.startStream(ctx, max(pglogrepl.LSN(mark.LSN), in.slotLSN), mark)
	}
	if !in.snapRd.alive() {
		in.closeSnapshot()
		r, err := openCDCSnapshot(ctx, in.dsn, export)
		if err != nil {
			return err
		}
		in.mu.Lock()
		read := in.mu.snap.Read
		if read {
			// The snapshot was read to its end before: this transaction
			// reads again up to Issued only, rows the segments' changes are
			// checked against already (see cdcSnapState.Read).
			r.limited, r.upTo, r.limitEnd = true, slices.Clone(in.mu.snap.Issued), math.MaxInt
		} else {
			// The segment is stored before any of its rows is emitted:
			// after a crash, changes are filtered by the transaction that
			// read them.
			in.mu.snap.Segments = append(in.mu.snap.Segments, cdcSegment{Start: slices.Clone(in.mu.snap.Issued), Snap: r.snap})
		}
		in.mu.Unlock()
		if err := in.storeCheckpoint(ctx); err != nil {
			r.close()
			return err
		}
		in.snapRd = r
		in.logger.Info("snapshot transaction begun", "at", mark.String(), "snapshot", fmt.Sprintf("%d:%d", r.snap.Xmin, r.snap.Xmax), "read_again_only", read)
	}
	return in.snapRd.seek(ctx, mark.Table, mark.Key)
}

// startStream starts streaming at start, mark being the acknowledged
// mark there: if late tables remain to be read from it, the stream pauses
// for them.
func (in *pgcdcInput) startStream(ctx context.Context, start pglogrepl.LSN, mark cdcMark) error {
	in.paused, in.lateTbl, in.lateKey = false, mark.Table, mark.Key
	in.mu.Lock()
	pending := in.mu.snap.latePending(mark)
	in.mu.Unlock()
	var pause *cdcPause
	if pending {
		var err error
		if pause, err = in.openLate(ctx, mark); err != nil {
			return err
		}
	} else {
		in.closeLate()
	}
	in.mu.Lock()
	snap := in.mu.snap.clone()
	in.mu.Unlock()
	s, err := startCDCStream(ctx, in.ctx, cdcStreamConfig{
		dsn: in.dsn, slot: in.slot, pub: in.pub, start: start, interval: in.statusEvery,
		buffer: 2 * in.batchSize, tables: in.tables, snap: snap, retireAt: &in.retireAt,
		srcMeta: in.srcMeta, flushed: in.flushed, logger: in.logger, pause: pause,
	})
	if err != nil {
		return err
	}
	in.str = s
	in.logger.Debug("streaming", "from", start.String())
	return nil
}

// flushed is the LSN the slot may confirm: the acknowledged resume point.
func (in *pgcdcInput) flushed() pglogrepl.LSN {
	in.mu.Lock()
	defer in.mu.Unlock()
	mark := in.fl.ackedLocked()
	if !mark.Stream {
		return 0
	}
	return pglogrepl.LSN(mark.LSN)
}

func (in *pgcdcInput) stopStream() {
	if in.str != nil {
		in.str.stop()
		in.str = nil
	}
}

func (in *pgcdcInput) closeSnapshot() {
	if in.snapRd != nil {
		in.snapRd.close()
		in.snapRd = nil
	}
}

func (in *pgcdcInput) closeLate() {
	if in.lateRd != nil {
		in.lateRd.close()
		in.lateRd = nil
	}
}

// ReadBatch returns the next batch once fewer than max_in_flight are
// unacknowledged: a snapshot page, or the changes streamed so far (up to
// batch_size). After a failure it reports ErrNotConnected, so that Connect
// resumes from the acknowledged mark.
func (in *pgcdcInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	in.readMu.Lock()
	defer in.readMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(in.ctx, cancel)()
	if err := in.fl.waitRoom(ctx, in.inFlight-1); err != nil {
		return nil, nil, err
	}
	for {
		if err := in.rewindIfFailed(ctx); err != nil {
			return nil, nil, err
		}
		in.mu.Lock()
		connected, acked := in.mu.connected, in.fl.ackedLocked()
		in.mu.Unlock()
		if !connected {
			return nil, nil, service.ErrNotConnected
		}
		if acked.Stream && in.snapRd != nil {
			in.closeSnapshot() // everything it read is stored
		}
		var msgs service.MessageBatch
		var ack service.AckFunc
		var err error
		switch {
		case len(in.held) > 0:
			msgs, ack, err = in.emitHeld(ctx)
		case in.str != nil && in.paused && in.lateRd != nil:
			msgs, ack, err = in.readLate(ctx)
		case in.str != nil:
			msgs, ack, err = in.readStream(ctx)
		case in.snapRd != nil:
			msgs, ack, err = in.readSnapshot(ctx)
		default:
			in.fail(errors.New("nothing to read from"))
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if errors.Is(err, errCDCRetry) {
				continue
			}
			in.fail(err)
			continue
		}
		if len(msgs) > 0 {
			return msgs, ack, nil
		}
	}
}

// errCDCRetry: nothing to return yet, read on.
var errCDCRetry = errors.New("retry")

// Close stops streaming (the slot learns the acknowledged position last),
// ends the snapshot's transaction and stores a last checkpoint. The slot
// and the publication stay.
func (in *pgcdcInput) Close(ctx context.Context) error {
	var err error
	in.close1.Do(func() {
		in.mu.Lock()
		in.mu.closed = true
		in.mu.Unlock()
		close(in.done)
		in.cancel()
		in.wg.Wait()
		in.readMu.Lock()
		in.stopStream()
		in.closeSnapshot()
		in.closeLate()
		in.readMu.Unlock()
		in.mu.Lock()
		connected := in.mu.looping
		in.mu.Unlock()
		if connected {
			err = in.storeCheckpoint(ctx)
		}
	})
	return err
}
