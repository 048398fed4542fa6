package connectors

import (
	"encoding/json"
	"fmt"
)

// checkpointVersion is the version of fileCheckpoint's encoding.
const checkpointVersion = 1

// fileCheckpoint is what the file source stores in the meta shard under
// "source/<source_id>", as JSON:
//
//	field    meaning
//	version  1
//	acked    {ordinal, offset}: every record before this position is acknowledged,
//	         so stored; the source resumes reading here
//	next     the ordinal the next discovered file gets
//	files    the files known, each {ordinal, path, dev, inode, fp_len, fp}: the
//	         identity that maps ordinals to files across restarts and renames
//
// A file is listed as long as it exists, so that a finished file is not
// discovered again as new.
type fileCheckpoint struct {
	Version int      `json:"version"`
	Acked   filePos  `json:"acked"`
	Next    uint64   `json:"next"`
	Files   []fileID `json:"files"`
}

func (c *fileCheckpoint) encode() ([]byte, error) {
	c.Version = checkpointVersion
	return json.Marshal(c)
}

func decodeFileCheckpoint(b []byte) (fileCheckpoint, error) {
	var c fileCheckpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("connectors: file checkpoint: %w", err)
	}
	if c.Version != checkpointVersion {
		return c, fmt.Errorf("connectors: file checkpoint version %d, this build reads %d", c.Version, checkpointVersion)
	}
	return c, nil
}

// ackTracker turns acknowledgements of batches, which may arrive in any
// order, into the contiguous watermark: the position below which every
// batch is acknowledged. Each batch covers the bytes from the end of the
// previous one to its own end, so a record skipped inside it (a blank line,
// a CSV header) is covered too. Not safe for concurrent use.
type ackTracker struct {
	acked   filePos // the watermark
	base    uint64  // sequence number of pending[0]
	pending []pendingRange
	unacked int
}

type pendingRange struct {
	end  filePos
	done bool
}

// issue records a batch ending at end and returns its sequence number; a
// batch without messages is issued done.
func (t *ackTracker) issue(end filePos, done bool) uint64 {
	seq := t.base + uint64(len(t.pending))
	t.pending = append(t.pending, pendingRange{end: end, done: done})
	if !done {
		t.unacked++
	}
	t.advance()
	return seq
}

// ack marks batch seq acknowledged.
func (t *ackTracker) ack(seq uint64) {
	if seq < t.base || seq-t.base >= uint64(len(t.pending)) {
		return
	}
	p := &t.pending[seq-t.base]
	if p.done {
		return
	}
	p.done = true
	t.unacked--
	t.advance()
}

// forgetPending drops the batches issued and not acknowledged: they will be
// issued again. The watermark stays.
func (t *ackTracker) forgetPending() {
	t.base += uint64(len(t.pending))
	t.pending = t.pending[:0]
	t.unacked = 0
}

func (t *ackTracker) advance() {
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		t.acked = t.pending[n].end
		n++
	}
	if n > 0 {
		t.pending = append(t.pending[:0], t.pending[n:]...)
		t.base += uint64(n)
	}
}
