package connectors

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// The samsa_postgres_cdc input's acknowledgements, rewinds and checkpoints.

// fail kills the current generation: the input goes back to its
// acknowledged mark.
func (in *pgcdcInput) fail(err error) { in.fl.failCurrent(err) }

// rewindIfFailed, after a failure, stops the stream and the snapshot's
// cursor (its transaction stays, if it is sound), waits (50ms doubling up to
// 5s while failures go on) and returns ErrNotConnected: Connect resumes from
// the acknowledged mark.
func (in *pgcdcInput) rewindIfFailed(ctx context.Context) error {
	why, wait := in.fl.failure()
	if why == nil {
		return nil
	}
	in.mu.Lock()
	acked := in.fl.ackedLocked()
	in.mu.Unlock()
	in.logger.Warn("going back to the acknowledged position", "position", acked.String(), "after", wait, "err", why)
	in.stopStream()
	in.held, in.heldOK, in.paused = nil, false, false
	if in.snapRd != nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := in.snapRd.closeCursor(cctx); err != nil {
			in.closeSnapshot()
		}
		cancel()
	}
	if in.lateRd != nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := in.lateRd.closeCursor(cctx); err != nil {
			in.closeLate()
		}
		cancel()
	}
	err := pause(ctx, wait, nil, nil)
	in.mu.Lock()
	in.fl.rewoundLocked()
	in.mu.connected = false
	in.mu.Unlock()
	if err != nil {
		return err
	}
	return service.ErrNotConnected
}

// cdcRetireEvery is how often, while streaming with a snapshot's segments,
// the input asks the server whether the segments' transactions are past.
const cdcRetireEvery = 5 * time.Second

// retire learns, once every transaction any segment may have seen has
// ended, the WAL position beyond which none commits (RetireAt), and
// forgets the segments when the acknowledged mark passes it.
func (in *pgcdcInput) retire(ctx context.Context) {
	in.mu.Lock()
	snap, acked := in.mu.snap, in.fl.ackedLocked()
	var retireAt pglogrepl.LSN
	var xmax uint64
	if snap != nil {
		retireAt = pglogrepl.LSN(snap.RetireAt)
		for _, s := range snap.Segments {
			xmax = max(xmax, s.Snap.Xmax)
		}
	}
	in.mu.Unlock()
	if snap == nil || !acked.Stream || xmax == 0 {
		return
	}
	if retireAt != 0 {
		if pglogrepl.LSN(acked.LSN) >= retireAt && !snap.latePending(acked) {
			// The tables and the positions issued stay: tables added
			// later are read after them (see cdcSnapState.Late).
			in.mu.Lock()
			if in.mu.snap == snap {
				snap.Segments, snap.Truncated, snap.RetireAt = nil, nil, 0
			}
			in.mu.Unlock()
			in.logger.Debug("snapshot's transactions past; changes no longer checked against it")
		}
		return
	}
	if time.Since(in.retired) < cdcRetireEvery {
		return
	}
	in.retired = time.Now()
	cfg, err := cdcConnConfig(in.dsn, false)
	if err != nil {
		return
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	rows, err := cdcQuery(ctx, conn, `SELECT txid_snapshot_xmin(txid_current_snapshot())::text, pg_current_wal_insert_lsn()::text`)
	if err != nil || len(rows) != 1 {
		return
	}
	xmin, err := strconv.ParseUint(string(rows[0][0]), 10, 64)
	if err != nil || xmin < xmax {
		return // a transaction a segment may not have seen is still running
	}
	lsn, err := pglogrepl.ParseLSN(string(rows[0][1]))
	if err != nil {
		return
	}
	in.mu.Lock()
	if in.mu.snap == snap {
		snap.RetireAt = cdcLSN(lsn)
		in.retireAt.Store(uint64(lsn))
	}
	in.mu.Unlock()
}

// storeCheckpoint stores the acknowledged mark and the snapshot's state if
// they changed since the last store.
func (in *pgcdcInput) storeCheckpoint(ctx context.Context) error {
	in.ckMu.Lock()
	defer in.ckMu.Unlock()
	in.mu.Lock()
	c := cdcCheckpoint{Slot: in.slot, Acked: in.fl.ackedLocked(), Snapshot: in.mu.snap.clone()}
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
