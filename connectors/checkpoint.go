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
