package connectors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// The SQL source's position is the row's (cursor, key...) values, encoded
// so that bytes.Compare orders positions as the source's ORDER BY orders
// the rows:
//
//	byte 0     sqlPosVersion (1)
//	then, for each column, a tag and its value:
//	0x10 int   8 bytes, big-endian, of the int64 with its sign bit flipped
//	0x11 uint  8 bytes, big-endian: an unsigned value above the int64 range
//	0x20 time  8 bytes seconds since 1970 (sign flipped), 4 bytes nanoseconds
//	0x30 text  the bytes with 0x00 written as 0x00 0xFF, then 0x00 0x01
//	0x31 bytes as text
//
// Sign-flipped big-endian integers compare as the numbers do; the escape
// of text keeps a value that is a prefix of another below it whatever
// follows (the terminator 0x00 0x01 is below any byte but 0x00 and below
// an escaped 0x00), so tuples compare column by column. Text compares as
// its bytes, which is why the source orders text columns by a binary
// collation. The tags' order matches SQLite's order across storage
// classes (integers before text before blobs), for columns that mix them.
const sqlPosVersion = 1

const (
	posTagInt   = 0x10
	posTagUint  = 0x11
	posTagTime  = 0x20
	posTagText  = 0x30
	posTagBytes = 0x31
)

// errPosValue reports a value the position cannot encode.
var errPosValue = errors.New("connectors: a cursor or key value must be an integer, a time, text or bytes")

// appendSQLPos appends the encoding of one column's value. Strings and
// byte slices are encoded alike, apart from their tag.
func appendSQLPos(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case int64:
		dst = append(dst, posTagInt)
		return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63)), nil
	case uint64:
		if v <= math.MaxInt64 {
			return appendSQLPos(dst, int64(v))
		}
		dst = append(dst, posTagUint)
		return binary.BigEndian.AppendUint64(dst, v), nil
	case time.Time:
		dst = append(dst, posTagTime)
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.Unix())^(1<<63))
		return binary.BigEndian.AppendUint32(dst, uint32(v.Nanosecond())), nil
	case string:
		return appendEscaped(append(dst, posTagText), v), nil
	case []byte:
		return appendEscaped(append(dst, posTagBytes), v), nil
	}
	return dst, fmt.Errorf("%w, not %T", errPosValue, v)
}

func appendEscaped[T string | []byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, s[i])
		}
	}
	return append(dst, 0, 1)
}

// encodeSQLPos encodes a row's position from its cursor and key values.
func encodeSQLPos(dst []byte, vals []any) ([]byte, error) {
	dst = append(dst, sqlPosVersion)
	var err error
	for _, v := range vals {
		if dst, err = appendSQLPos(dst, v); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// decodeSQLPos decodes a position into its values: int64, uint64,
// time.Time (UTC), string or []byte.
func decodeSQLPos(b []byte) ([]any, error) {
	if len(b) == 0 || b[0] != sqlPosVersion {
		return nil, fmt.Errorf("connectors: SQL position: unknown version")
	}
	b = b[1:]
	var out []any
	for len(b) > 0 {
		tag := b[0]
		b = b[1:]
		switch tag {
		case posTagInt, posTagUint:
			if len(b) < 8 {
				return nil, errors.New("connectors: SQL position: short integer")
			}
			u := binary.BigEndian.Uint64(b)
			if tag == posTagInt {
				out = append(out, int64(u^(1<<63)))
			} else {
				out = append(out, u)
			}
			b = b[8:]
		case posTagTime:
			if len(b) < 12 {
				return nil, errors.New("connectors: SQL position: short time")
			}
			sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
			out = append(out, time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:]))).UTC())
			b = b[12:]
		case posTagText, posTagBytes:
			var s []byte
			for {
				if len(b) < 2 && (len(b) == 0 || b[0] == 0) {
					return nil, errors.New("connectors: SQL position: unterminated text")
				}
				if b[0] != 0 {
					s = append(s, b[0])
					b = b[1:]
					continue
				}
				if b[1] == 1 {
					b = b[2:]
					break
				}
				if b[1] != 0xFF {
					return nil, errors.New("connectors: SQL position: bad escape")
				}
				s = append(s, 0)
				b = b[2:]
			}
			if tag == posTagText {
				out = append(out, string(s))
			} else {
				out = append(out, bytes.Clone(s))
			}
		default:
			return nil, fmt.Errorf("connectors: SQL position: unknown tag %#x", tag)
		}
	}
	return out, nil
}

// sqlCheckpointVersion is the version of sqlCheckpoint's encoding.
const sqlCheckpointVersion = 1

// sqlCheckpoint is what the SQL source stores under "source/<source_id>",
// as JSON:
//
//	field    meaning
//	version  1
//	cursor   the cursor column, and
//	key      the key columns the position was made of: a checkpoint of
//	         other columns is refused
//	acked    the position (base64) of the last acknowledged row, below
//	         which every row read is stored; absent: from the start
type sqlCheckpoint struct {
	Version int      `json:"version"`
	Cursor  string   `json:"cursor"`
	Key     []string `json:"key"`
	Acked   []byte   `json:"acked,omitempty"`
}

func (c *sqlCheckpoint) encode() ([]byte, error) {
	c.Version = sqlCheckpointVersion
	return json.Marshal(c)
}

func decodeSQLCheckpoint(b []byte) (sqlCheckpoint, error) {
	var c sqlCheckpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("connectors: SQL checkpoint: %w", err)
	}
	if c.Version != sqlCheckpointVersion {
		return c, fmt.Errorf("connectors: SQL checkpoint version %d, this build reads %d", c.Version, sqlCheckpointVersion)
	}
	if c.Acked != nil {
		if _, err := decodeSQLPos(c.Acked); err != nil {
			return c, err
		}
	}
	return c, nil
}
