package connectors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
)

// Positions of the samsa_postgres_cdc input (metadata samsa_position),
// compared with bytes.Compare:
//
//	phase  bytes                                          record
//	0x00   table (uint32 BE, its index in the snapshot's   a snapshot row ("read")
//	       list), then each primary key value (cdcAppendKeyPos)
//	0x01   commit LSN (uint64 BE), then the change's       a streamed change
//	       index in its transaction (uint32 BE)
//
// The snapshot reads each table in the order of these bytes, and the stream
// delivers transactions in commit order, so positions increase in the
// order records are emitted, snapshot rows first.
const (
	cdcPhaseSnapshot byte = 0x00
	cdcPhaseStream   byte = 0x01
)

// cdcSnapshotPos appends the position of a snapshot row: keys are the text
// forms of its primary key values, orders how each is ordered.
func cdcSnapshotPos(dst []byte, table int, orders []cdcOrder, keys [][]byte) ([]byte, error) {
	dst = append(dst, cdcPhaseSnapshot)
	dst = binary.BigEndian.AppendUint32(dst, uint32(table))
	for i, o := range orders {
		var err error
		if dst, err = cdcAppendKeyPos(dst, o, keys[i]); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// cdcSnapshotPosPrefix is the position every row of table is above, and
// every row of the tables before it below.
func cdcSnapshotPosPrefix(table int) []byte {
	return binary.BigEndian.AppendUint32([]byte{cdcPhaseSnapshot}, uint32(table))
}

// cdcStreamPos appends the position of a streamed change.
func cdcStreamPos(dst []byte, commit pglogrepl.LSN, index uint32) []byte {
	dst = append(dst, cdcPhaseStream)
	dst = binary.BigEndian.AppendUint64(dst, uint64(commit))
	return binary.BigEndian.AppendUint32(dst, index)
}

// cdcLSN is an LSN written in PostgreSQL's form ("16/B374D848") in JSON.
type cdcLSN pglogrepl.LSN

func (l cdcLSN) MarshalText() ([]byte, error) { return []byte(pglogrepl.LSN(l).String()), nil }

func (l *cdcLSN) UnmarshalText(b []byte) error {
	v, err := pglogrepl.ParseLSN(string(b))
	*l = cdcLSN(v)
	return err
}

// cdcMark is where the input stands: the records before it are the ones
// emitted, and reading again from it emits the rest.
type cdcMark struct {
	// Stream: the snapshot is over (or off) and changes are streamed.
	Stream bool `json:"stream"`
	// Table is the index, in the snapshot's list, of the table read next.
	// While streaming, with late tables (cdcSnapState.Late), Table and Key
	// are the progress of the late reads, inserted in the stream after
	// LSN: Table below the number of tables means some are still to read.
	Table int `json:"table,omitempty"`
	// Key holds the text forms of the primary key of the last row read
	// of Table; none: Table is read from its start.
	Key []string `json:"key,omitempty"`
	// LSN is where streaming resumes: the end of the last transaction
	// whose changes are all before the mark. 0: the slot's confirmed
	// position.
	LSN cdcLSN `json:"lsn,omitempty"`
}

func (m cdcMark) String() string {
	if m.Stream {
		return "stream " + pglogrepl.LSN(m.LSN).String()
	}
	return fmt.Sprintf("snapshot table %d after %q", m.Table, m.Key)
}

// cdcTxSnapshot is a transaction snapshot as txid_current_snapshot gives
// it: the transactions it sees are those below Xmin and those below Xmax
// not in Xip. Transaction ids are 64 bits wide (epoch and xid).
type cdcTxSnapshot struct {
	Xmin uint64   `json:"xmin"`
	Xmax uint64   `json:"xmax"`
	Xip  []uint64 `json:"xip,omitempty"`
}

// parseCDCTxSnapshot parses txid_current_snapshot's text ("10:20:12,15").
func parseCDCTxSnapshot(s string) (cdcTxSnapshot, error) {
	var snap cdcTxSnapshot
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return snap, fmt.Errorf("transaction snapshot %q", s)
	}
	var err error
	if snap.Xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return snap, fmt.Errorf("transaction snapshot %q: %w", s, err)
	}
	if snap.Xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return snap, fmt.Errorf("transaction snapshot %q: %w", s, err)
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return snap, fmt.Errorf("transaction snapshot %q: %w", s, err)
			}
			snap.Xip = append(snap.Xip, v)
		}
	}
	return snap, nil
}

// sees reports whether the snapshot sees (the commit of) transaction xid,
// as pgoutput gives it: 32 bits, taken as the 64-bit id nearest to Xmax.
func (s cdcTxSnapshot) sees(xid uint32) bool {
	x := uint64(int64(s.Xmax) + int64(int32(xid-uint32(s.Xmax))))
	switch {
	case x < s.Xmin:
		return true
	case x >= s.Xmax:
		return false
	}
	return !slices.Contains(s.Xip, x)
}

// cdcSegment is a part of the snapshot read in one transaction snapshot:
// the rows whose positions are above Start (all of them for the first),
// up to the next segment's Start.
type cdcSegment struct {
	Start []byte        `json:"start,omitempty"`
	Snap  cdcTxSnapshot `json:"snap"`
}

// cdcSnapState is the snapshot's progress beyond the acknowledged mark.
type cdcSnapState struct {
	// Tables are the tables the snapshot reads, in order ("schema.name").
	Tables []string `json:"tables"`
	// Issued is the highest position emitted (stored before the records
	// that carry it are emitted): rows above it were never emitted.
	Issued []byte `json:"issued,omitempty"`
	// Segments, in order of Start. Streamed changes that a row's
	// segment saw are already in its read, and are dropped.
	Segments []cdcSegment `json:"segments"`
	// Read: every table was read to its end, and this was stored before
	// the stream began. The topic may then hold streamed changes, whose
	// positions are above every snapshot row's, so a row read now could
	// not be stored: a restart before the acknowledged mark reaches the
	// stream reads again only the rows up to Issued, in a transaction
	// that is no segment. A row above Issued was in no segment's snapshot,
	// and the stream brings it.
	Read bool `json:"read,omitempty"`
	// RetireAt, once known, is an LSN beyond which no transaction that a
	// segment saw commits: from there on changes are not filtered, and
	// once the acknowledged mark passes it the segments are forgotten.
	RetireAt cdcLSN `json:"retire_at,omitempty"`
	// Late, if not 0, is the index of the first late table: one added to
	// tables once the snapshot was read (or the stream may have stored
	// changes). Late tables are read at a pause of the stream, under
	// their own source id (cdcLateSource), so that their positions are
	// not below the stream's; the acknowledged mark's Table and Key are
	// their progress.
	Late int `json:"late,omitempty"`
	// LateDone: the late tables before it were read to their end, and
	// this was stored before the stream went on past them; a restart
	// reads those again only up to Issued, as Read does for the others.
	LateDone int `json:"late_done,omitempty"`
	// Off are the tables of Tables removed from tables since: their
	// changes are not emitted, and a table added again is read again, at
	// a new index.
	Off []string `json:"off,omitempty"`
	// Truncated are the truncates emitted while segments filtered: from
	// each on, its table's changes are no longer checked against the
	// segments (see cdcDecoder.truncate).
	Truncated []cdcTruncated `json:"truncated,omitempty"`
}

// cdcTruncated is a truncate of the snapshot's table Table, committed at
// commit LSN At.
type cdcTruncated struct {
	Table int    `json:"table"`
	At    cdcLSN `json:"at"`
}

// captured returns the names of the tables read or being read, those
// removed since left out.
func (s *cdcSnapState) captured() map[string]bool {
	m := map[string]bool{}
	for _, t := range s.Tables {
		m[t] = true
	}
	for _, t := range s.Off {
		delete(m, t)
	}
	return m
}

// index returns the index at which table name is read (its last), -1 if
// none.
func (s *cdcSnapState) index(name string) int {
	for i := len(s.Tables) - 1; i >= 0; i-- {
		if s.Tables[i] == name {
			return i
		}
	}
	return -1
}

// latePending reports whether late tables remain to be read at mark.
func (s *cdcSnapState) latePending(mark cdcMark) bool {
	return s != nil && s.Late > 0 && mark.Stream && mark.Table < len(s.Tables)
}

// filtering reports whether changes may still be checked against segments.
func (s *cdcSnapState) filtering() bool { return s != nil && len(s.Segments) > 0 }

// segment returns the segment holding snapshot position pos, nil if none
// does (the segments of rows read before were forgotten).
func (s *cdcSnapState) segment(pos []byte) *cdcSegment {
	for i := len(s.Segments) - 1; i >= 0; i-- {
		if string(s.Segments[i].Start) < string(pos) {
			return &s.Segments[i]
		}
	}
	return nil
}

func (s *cdcSnapState) clone() *cdcSnapState {
	if s == nil {
		return nil
	}
	c := *s
	c.Tables = slices.Clone(s.Tables)
	c.Issued = slices.Clone(s.Issued)
	c.Segments = slices.Clone(s.Segments)
	c.Off = slices.Clone(s.Off)
	c.Truncated = slices.Clone(s.Truncated)
	return &c
}

// cdcCheckpointVersion is the version of cdcCheckpoint's encoding.
const cdcCheckpointVersion = 1

// cdcCheckpoint is what the input stores under "source/<source_id>", as
// JSON:
//
//	field     meaning
//	version   1
//	slot      the replication slot streamed from
//	acked     the mark (cdcMark) below which every record is acknowledged:
//	          {stream, table, key} during the snapshot, {stream: true, lsn} after
//	snapshot  while the snapshot runs and until its transactions are past:
//	          {tables, issued, segments, read, retire_at} (cdcSnapState)
type cdcCheckpoint struct {
	Version  int           `json:"version"`
	Slot     string        `json:"slot"`
	Acked    cdcMark       `json:"acked"`
	Snapshot *cdcSnapState `json:"snapshot,omitempty"`
}

func (c *cdcCheckpoint) encode() ([]byte, error) {
	c.Version = cdcCheckpointVersion
	return json.Marshal(c)
}

func decodeCDCCheckpoint(b []byte) (cdcCheckpoint, error) {
	var c cdcCheckpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("connectors: postgres cdc checkpoint: %w", err)
	}
	if c.Version != cdcCheckpointVersion {
		return c, fmt.Errorf("connectors: postgres cdc checkpoint version %d, this build reads %d", c.Version, cdcCheckpointVersion)
	}
	return c, nil
}
