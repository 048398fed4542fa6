package connectors

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// PositionLen is the size of a file source's position.
const PositionLen = 16

// filePos is a file source's position: a file's ordinal and a byte offset
// in it. Encoded (16 bytes, big-endian, ordinal first) positions sort as the
// source reads: files in ordinal order, lines in offset order.
type filePos struct {
	Ordinal uint64 `json:"ordinal"`
	Offset  int64  `json:"offset"`
}

// appendTo appends the 16-byte encoding of p.
func (p filePos) appendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, p.Ordinal)
	return binary.BigEndian.AppendUint64(dst, uint64(p.Offset))
}

func (p filePos) String() string { return fmt.Sprintf("%d:%d", p.Ordinal, p.Offset) }

// parseFilePos decodes a file source's position.
func parseFilePos(b []byte) (filePos, error) {
	if len(b) != PositionLen {
		return filePos{}, fmt.Errorf("connectors: a file position has %d bytes, not %d", PositionLen, len(b))
	}
	return filePos{Ordinal: binary.BigEndian.Uint64(b), Offset: int64(binary.BigEndian.Uint64(b[8:]))}, nil
}

// positionAtOrBelow reports whether pos is at or below stored: a record
// the partition already holds.
func positionAtOrBelow(pos, stored []byte) bool {
	return stored != nil && bytes.Compare(pos, stored) <= 0
}
