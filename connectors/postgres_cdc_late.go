package connectors

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Late tables: tables added to the samsa_postgres_cdc input's tables once
// its snapshot was read.
//
// Connect adds them to the publication (cdcEnsurePublication), which
// streams their changes from then on; the rows they held before are read
// by a snapshot transaction of their own (a segment, as a restarted
// snapshot's), at a pause of the stream (cdcPause): the stream's items
// stay queued while the pages are read and emitted, and go on after the
// last. The reads carry their own source id (cdcLateSource) with
// snapshot positions (the table's index in cdcSnapState.Tables, the key):
// under the stream's source, any position the reads could take would be
// below changes the topic may already hold from the stream and be
// dropped. Per key the order is kept: a row's read comes before every
// change its transaction did not see, and the changes it saw are dropped,
// as for any segment. The acknowledged mark stays in the stream (at the
// pause) with the reads' progress in Table and Key; a restart, or a
// rewind, goes back to the stream there, pauses again and reads on,
// in a new segment (or, once read to the end, LateDone, only up to
// Issued as after the snapshot).
//
// A table removed from tables is no longer emitted, and leaves the
// publication if the input created it (one it found may be shared and
// keeps it, see cdcEnsurePublication); added again, it is read again, at a
// new index.
//
// Without a snapshot (snapshot: false) an added table is only added to the
// publication: its changes are streamed from then on (pgoutput decides by
// the publication as it was when each change was written), and its rows
// and earlier changes are not read.

// cdcLateSource is the source id of the late tables' reads.
func cdcLateSource(sourceID string) string { return sourceID + "#late" }

// reconcile compares the tables with those the checkpoint's snapshot
// reads or read: removed ones are set aside (Off), added ones are read by
// the snapshot if it is still reading, or else as late tables. Without a
// snapshot (snapshot: false) added tables are only streamed.
func (in *pgcdcInput) reconcile(tables []*cdcTable) {
	if !in.snapshotOn {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	s, mark := in.mu.snap, in.fl.ackedLocked()
	names := make([]string, len(tables))
	conf := map[string]bool{}
	for i, t := range tables {
		names[i] = t.name
		conf[t.name] = true
	}
	if s == nil {
		if mark.Stream {
			// A checkpoint of a snapshot long over, from before late
			// tables: its tables are taken as read.
			in.mu.snap = &cdcSnapState{Tables: names}
		}
		return
	}
	captured := s.captured()
	for _, name := range s.Tables {
		if captured[name] && !conf[name] && !slices.Contains(s.Off, name) {
			s.Off = append(s.Off, name)
			in.logger.Info("a table was removed from tables: its changes are no longer emitted", "table", name)
		}
	}
	var added []string
	for _, name := range names {
		if !captured[name] {
			added = append(added, name)
		}
	}
	if len(added) == 0 {
		return
	}
	s.Off = slices.DeleteFunc(s.Off, func(n string) bool { return slices.Contains(added, n) })
	if !mark.Stream && !s.Read && s.Late == 0 {
		s.Tables = append(s.Tables, added...)
		in.logger.Info("tables added: the snapshot reads them", "tables", strings.Join(added, ", "))
		return
	}
	if mark.Stream && !s.latePending(mark) {
		// The late reads begin with the added tables.
		mark.Table, mark.Key = len(s.Tables), nil
		in.fl.setAckedLocked(mark)
	}
	if s.Late == 0 {
		s.Late = len(s.Tables)
	}
	s.Tables = append(s.Tables, added...)
	in.logger.Info("tables added: their rows are read at a pause of the stream", "tables", strings.Join(added, ", "))
}

// openLate begins (or, after a rewind, keeps) the transaction that reads
// the late tables from mark, and returns where the stream pauses for it.
// A new transaction is a segment for the tables not read to their end
// before (LateDone), stored before the stream starts.
func (in *pgcdcInput) openLate(ctx context.Context, mark cdcMark) (*cdcPause, error) {
	if !in.lateRd.alive() {
		in.closeLate()
		r, err := in.openLateSnapshot(ctx)
		if err != nil {
			return nil, err
		}
		in.mu.Lock()
		s := in.mu.snap
		r.limitEnd = s.LateDone
		if mark.Table < s.LateDone {
			r.limited, r.upTo = true, slices.Clone(s.Issued)
		}
		segment := s.LateDone < len(s.Tables)
		if segment {
			start := slices.Clone(s.Issued)
			if p := cdcSnapshotPosPrefix(s.LateDone); string(p) > string(start) {
				start = p
			}
			s.Segments = append(s.Segments, cdcSegment{Start: start, Snap: r.snap})
			// Transactions the new segment saw may commit past it.
			s.RetireAt = 0
			in.retireAt.Store(0)
		}
		in.mu.Unlock()
		if err := in.storeCheckpoint(ctx); err != nil {
			r.close()
			return nil, err
		}
		in.lateRd = r
		in.logger.Info("late tables' transaction begun", "at", mark.String(),
			"snapshot", fmt.Sprintf("%d:%d", r.snap.Xmin, r.snap.Xmax), "segment", segment)
	}
	if err := in.lateRd.seek(ctx, mark.Table, mark.Key); err != nil {
		return nil, err
	}
	return &cdcPause{snap: in.lateRd.snap, until: in.lateRd.until}, nil
}

// openLateSnapshot begins a snapshot transaction that sees every
// transaction below pubHorizon: one that changed a late table before the
// publication had it is not streamed, so the reads must hold its changes.
// Like the creation of a slot, it waits for those running to end.
func (in *pgcdcInput) openLateSnapshot(ctx context.Context) (*cdcSnapReader, error) {
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		r, err := openCDCSnapshot(ctx, in.dsn, nil)
		if err != nil {
			return nil, err
		}
		if r.snap.Xmin >= in.pubHorizon {
			return r, nil
		}
		r.close()
		in.logger.Debug("the late tables' reads wait for transactions running when the publication was checked", "xmin", r.snap.Xmin, "horizon", in.pubHorizon)
		if err := pause(ctx, wait, nil, nil); err != nil {
			return nil, err
		}
	}
}
