package connectors

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
)

// cdcValues turns values in PostgreSQL's text form (what pgoutput sends and
// what the snapshot reads) into JSON, by the column's type OID:
//
//	type                          JSON
//	int2, int4, int8, oid         number
//	float4, float8                number; NaN and ±Infinity as strings
//	numeric                       string, exact ("12.50", "NaN")
//	bool                          true / false
//	json, jsonb                   the document itself
//	bytea                         string, base64
//	timestamptz, timestamp        string, RFC 3339 in UTC ("infinity" as is);
//	                              a timestamp without time zone is taken as UTC
//	date, time, interval, uuid,   string, PostgreSQL's text form
//	text, enums, domains, others
//	arrays of the above           arrays (a form pgx cannot decode: the text form)
//	NULL                          null
//
// The sessions run with TimeZone UTC and DateStyle ISO (see cdcRuntimeParams)
// so that the text forms do not depend on the server's settings. Not safe for
// concurrent use: each goroutine has its own.
type cdcValues struct {
	m *pgtype.Map
}

func newCDCValues() *cdcValues { return &cdcValues{m: pgtype.NewMap()} }

// appendJSON appends the JSON of the text value src of type oid; src nil is
// NULL.
func (v *cdcValues) appendJSON(dst []byte, oid uint32, src []byte) []byte {
	if src == nil {
		return append(dst, "null"...)
	}
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID:
		if cdcIsInteger(src) {
			return append(dst, src...)
		}
	case pgtype.Float4OID, pgtype.Float8OID:
		if f, err := strconv.ParseFloat(string(src), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return strconv.AppendFloat(dst, f, 'g', -1, 64)
		}
	case pgtype.BoolOID:
		switch string(src) {
		case "t":
			return append(dst, "true"...)
		case "f":
			return append(dst, "false"...)
		}
	case pgtype.JSONOID, pgtype.JSONBOID:
		if json.Valid(src) {
			return append(dst, src...)
		}
	case pgtype.ByteaOID:
		if b, err := cdcDecodeBytea(src); err == nil {
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, b)
			return append(dst, '"')
		}
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		if b, ok := cdcAppendISOTime(dst, oid, src); ok {
			return b
		}
		if typ, ok := v.m.TypeForOID(oid); ok {
			if x, err := typ.Codec.DecodeValue(v.m, oid, pgtype.TextFormatCode, src); err == nil {
				return cdcAppendAny(dst, x, oid)
			}
		}
	default:
		if typ, ok := v.m.TypeForOID(oid); ok {
			if ac, ok := typ.Codec.(*pgtype.ArrayCodec); ok {
				if x, err := ac.DecodeValue(v.m, oid, pgtype.TextFormatCode, src); err == nil {
					return cdcAppendAny(dst, x, ac.ElementType.OID)
				}
			}
		}
	}
	return cdcAppendString(dst, src)
}

// cdcAppendISOTime is the fast way for the common timestamps: with
// DateStyle ISO and TimeZone UTC, "2024-01-02 03:04:05.5+00" (or without
// the "+00" for a timestamp without time zone) is RFC 3339 once the space
// is a T and the zone a Z; PostgreSQL drops trailing zeros of the fraction
// as RFC3339Nano does. It reports false for anything else (BC, infinity,
// years past 9999).
func cdcAppendISOTime(dst []byte, oid uint32, src []byte) ([]byte, bool) {
	if oid == pgtype.TimestamptzOID {
		if len(src) < 3 || string(src[len(src)-3:]) != "+00" {
			return dst, false
		}
		src = src[:len(src)-3]
	}
	if len(src) < 19 || len(src) == 20 || len(src) > 26 || src[10] != ' ' || src[4] != '-' || src[7] != '-' || src[13] != ':' || src[16] != ':' {
		return dst, false
	}
	for i, c := range src {
		switch i {
		case 4, 7, 10, 13, 16:
		case 19:
			if c != '.' {
				return dst, false
			}
		default:
			if c < '0' || c > '9' {
				return dst, false
			}
		}
	}
	dst = append(dst, '"')
	dst = append(dst, src[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, src[11:]...)
	return append(dst, 'Z', '"'), true
}

// cdcAppendAny appends the JSON of a value pgx decoded from a column (or
// array element) of type oid.
func cdcAppendAny(dst []byte, x any, oid uint32) []byte {
	switch x := x.(type) {
	case nil:
		return append(dst, "null"...)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = cdcAppendAny(dst, e, oid)
		}
		return append(dst, ']')
	case time.Time:
		if oid == pgtype.DateOID {
			return cdcAppendString(dst, x.AppendFormat(nil, time.DateOnly))
		}
		return cdcAppendString(dst, x.UTC().AppendFormat(nil, time.RFC3339Nano))
	case pgtype.InfinityModifier:
		return cdcAppendString(dst, []byte(x.String()))
	case pgtype.Numeric:
		if s, err := x.Value(); err == nil {
			if s, ok := s.(string); ok {
				return cdcAppendString(dst, []byte(s))
			}
		}
	case [16]byte:
		var b [36]byte
		hex.Encode(b[0:8], x[0:4])
		b[8] = '-'
		hex.Encode(b[9:13], x[4:6])
		b[13] = '-'
		hex.Encode(b[14:18], x[6:8])
		b[18] = '-'
		hex.Encode(b[19:23], x[8:10])
		b[23] = '-'
		hex.Encode(b[24:], x[10:])
		return cdcAppendString(dst, b[:])
	case float32:
		return cdcAppendAny(dst, float64(x), oid)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return cdcAppendString(dst, []byte(strconv.FormatFloat(x, 'g', -1, 64)))
		}
	case string:
		return cdcAppendString(dst, []byte(x))
	}
	b, err := json.Marshal(x)
	if err != nil {
		return cdcAppendString(dst, fmt.Append(nil, x))
	}
	return append(dst, b...)
}

// cdcIsInteger reports whether b is a decimal integer, as JSON writes one.
func cdcIsInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// cdcAppendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func cdcAppendString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// cdcDecodeBytea decodes bytea's hex text form (bytea_output = hex).
func cdcDecodeBytea(src []byte) ([]byte, error) {
	if len(src) < 2 || src[0] != '\\' || src[1] != 'x' {
		return nil, errors.New("bytea is not in hex form")
	}
	b := make([]byte, hex.DecodedLen(len(src)-2))
	_, err := hex.Decode(b, src[2:])
	return b, err
}

// cdcOrder is how a primary key column is ordered by the snapshot, so that
// the encoding of its values (cdcAppendKeyPos) sorts as the snapshot reads:
// numbers, booleans, uuids and bytea in their own order (an index on the key
// serves the snapshot), text and varchar bytewise (COLLATE "C"), any other
// type by its text form, bytewise.
type cdcOrder uint8

const (
	cdcOrderFormat cdcOrder = iota // format('%s', col) COLLATE "C"
	cdcOrderText                   // col COLLATE "C"
	cdcOrderInt
	cdcOrderBool
	cdcOrderUUID
	cdcOrderBytea
)

func cdcOrderOf(oid uint32) cdcOrder {
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return cdcOrderInt
	case pgtype.BoolOID:
		return cdcOrderBool
	case pgtype.UUIDOID:
		return cdcOrderUUID
	case pgtype.ByteaOID:
		return cdcOrderBytea
	case pgtype.TextOID, pgtype.VarcharOID:
		return cdcOrderText
	}
	return cdcOrderFormat
}

// expr is the ordering expression of the quoted column col.
func (o cdcOrder) expr(col string) string {
	switch o {
	case cdcOrderText:
		return col + ` COLLATE "C"`
	case cdcOrderFormat:
		return `format('%s', ` + col + `) COLLATE "C"`
	}
	return col
}

// param is the expression of parameter n (a value's text form) compared
// with expr; typ is the column's type as format_type gives it.
func (o cdcOrder) param(n int, typ string) string {
	switch o {
	case cdcOrderText, cdcOrderFormat:
		return fmt.Sprintf(`$%d::text COLLATE "C"`, n)
	}
	return fmt.Sprintf("$%d::%s", n, typ)
}

// cdcAppendKeyPos appends the order-preserving encoding of a key value in
// text form: 8 bytes big-endian with the sign bit flipped for integers, one
// byte for booleans, 16 for uuids, and for the rest the bytes with 0x00
// escaped as 0x00 0xFF and ended by 0x00 0x01, so that a tuple of values
// compares as its values do, one after the other.
func cdcAppendKeyPos(dst []byte, o cdcOrder, text []byte) ([]byte, error) {
	if text == nil {
		return nil, errors.New("a key value is null")
	}
	switch o {
	case cdcOrderInt:
		n, err := strconv.ParseInt(string(text), 10, 64)
		if err != nil {
			return nil, err
		}
		return binary.BigEndian.AppendUint64(dst, uint64(n)^(1<<63)), nil
	case cdcOrderBool:
		if string(text) == "t" {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case cdcOrderUUID:
		var b [16]byte
		h := make([]byte, 0, 32)
		for _, c := range text {
			if c != '-' && c != '{' && c != '}' {
				h = append(h, c)
			}
		}
		if len(h) != 32 {
			return nil, fmt.Errorf("uuid %q", text)
		}
		if _, err := hex.Decode(b[:], h); err != nil {
			return nil, err
		}
		return append(dst, b[:]...), nil
	case cdcOrderBytea:
		b, err := cdcDecodeBytea(text)
		if err != nil {
			return nil, err
		}
		text = b
	}
	for _, c := range text {
		if c == 0 {
			dst = append(dst, 0, 0xff)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, 0, 1), nil
}
