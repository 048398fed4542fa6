package connectors

import (
	"bytes"
	"context"
	"errors"
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
func (in *pgcdcInput) fail(err error) {
	if !in.gens.failCurrent(err) {
		signal(in.wake)
	}
}

// issue records a batch ending at end, done at once if it has no
// messages, and returns its acknowledgement function and ticket. It
// refuses (ok false) while a failed batch waits to be read again.
func (in *pgcdcInput) issue(end cdcMark, done bool) (ack service.AckFunc, tk *ticket, ok bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.mu.rewind != nil || in.gens.failedLocked() {
		return nil, nil, false
	}
	seq := in.mu.acks.issue(end, done)
	if done {
		return nil, nil, true
	}
	tk = in.gens.issueLocked()
	return func(_ context.Context, err error) error {
		if err != nil {
			tk.Fail(err)
			return nil
		}
		in.mu.Lock()
		if tk.Live() {
			in.mu.acks.ack(seq)
			in.mu.wait = 0
		}
		in.mu.Unlock()
		signal(in.acked)
		return nil
	}, tk, true
}

// killed is the generations' onKill: the batches in flight are forgotten
// and the reader is woken to go back to the acknowledged mark.
func (in *pgcdcInput) killed(gen uint64, err error) {
	in.mu.Lock()
	if in.gens.killedLocked(gen) {
		in.mu.rewind = err
		in.mu.acks.forgetPending()
	}
	in.mu.Unlock()
	signal(in.acked)
	signal(in.wake)
}

// rewindIfFailed, after a failure, stops the stream and the snapshot's
// cursor (its transaction stays, if it is sound), waits (50ms doubling up to
// 5s while failures go on) and returns ErrNotConnected: Connect resumes from
// the acknowledged mark.
func (in *pgcdcInput) rewindIfFailed(ctx context.Context) error {
	in.mu.Lock()
	why, wait := in.mu.rewind, in.mu.wait
	if why == nil && in.gens.failedLocked() {
		why = errors.New("a batch failed") // killed has not run yet
	}
	if why != nil {
		in.mu.wait = min(max(2*wait, minRewindWait), maxRewindWait)
	}
	acked := in.mu.acks.acked
	in.mu.Unlock()
	if why == nil {
		return nil
	}
	in.logger.Warn("going back to the acknowledged position", "position", acked.String(), "after", max(wait, minRewindWait), "err", why)
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
	err := pause(ctx, max(wait, minRewindWait), nil, nil)
	in.mu.Lock()
	in.mu.rewind = nil
	in.gens.rewoundLocked()
	in.mu.acks.forgetPending()
	in.mu.connected = false
	in.mu.Unlock()
	if err != nil {
		return err
	}
	return service.ErrNotConnected
}

// waitRoom waits until at most n batches are unacknowledged, or a batch
// failed.
func (in *pgcdcInput) waitRoom(ctx context.Context, n int) error {
	for {
		in.mu.Lock()
		ok := in.mu.acks.unacked <= n || in.mu.rewind != nil || in.gens.failedLocked()
		in.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-in.acked:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// cdcRetireEvery is how often, while streaming with a snapshot's segments,
// the input asks the server whether the segments' transactions are past.
const cdcRetireEvery = 5 * time.Second

// retire learns, once every transaction any segment may have seen has
// ended, the WAL position beyond which none commits (RetireAt), and
// forgets the segments when the acknowledged mark passes it.
func (in *pgcdcInput) retire(ctx context.Context) {
	in.mu.Lock()
	snap, acked := in.mu.snap, in.mu.acks.acked
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
	c := cdcCheckpoint{Slot: in.slot, Acked: in.mu.acks.acked, Snapshot: in.mu.snap.clone()}
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
