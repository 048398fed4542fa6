package transforms

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// toNative turns a decoded JSON value (as Benthos decodes it: maps, slices,
// json.Number; or the Go scalars a Bloblang mapping leaves) into goavro's
// native form for t, checking it on the way. The rules, which are how a
// person writes JSON rather than Avro's JSON encoding:
//
//   - null, boolean, string: the JSON value of that type.
//   - int, long: a JSON number with an integral value (3, -7, 3.0, 1e3) in
//     range; 3.5 and 2^31 for an int are errors. Logical types on them
//     (date, time-millis, time-micros, timestamp-millis, timestamp-micros)
//     take the same integral number: days, ms, µs since the epoch or midnight.
//   - float, double: any JSON number (float within float32's range).
//   - bytes, fixed: a JSON string, taken as its UTF-8 bytes; a fixed's must
//     have exactly its size.
//   - decimal (bytes or fixed): a JSON number or a string of one ("12.30"),
//     with at most scale fractional digits and precision digits in all.
//   - enum: a JSON string that is one of its symbols.
//   - array: a JSON array; map: a JSON object, each value of the value type.
//   - record: a JSON object. A missing field takes the schema's default;
//     without one, a missing field whose type admits null is null, and any
//     other is an error. A key the record has no field for is an error
//     (goavro would drop it silently; a validator should not).
//   - union: the plain value, or null. The branch is the first one, in
//     schema order, whose JSON type matches and whose conversion succeeds;
//     5 in ["null","int","double"] is an int, 5.5 a double, 3e9 in
//     ["int","long"] a long.
func toNative(t *avroType, v any) (any, *recordError) {
	switch t.kind {
	case kindNull:
		if v == nil {
			return nil, nil
		}
	case kindBoolean:
		if _, ok := v.(bool); ok {
			return v, nil // v itself: boxing the value again would allocate
		}
	case kindInt, kindLong:
		return toInteger(t, v)
	case kindFloat, kindDouble:
		return toFloat(t, v)
	case kindString:
		if _, ok := v.(string); ok {
			return v, nil
		}
	case kindBytes, kindFixed:
		if t.logical == "decimal" {
			return toDecimal(t, v)
		}
		s, ok := v.(string)
		if !ok {
			break
		}
		if t.kind == kindFixed && len(s) != t.size {
			return nil, mismatch(t, v, fmt.Sprintf(" (%d bytes)", len(s)))
		}
		return v, nil // goavro takes a string for bytes and fixed
	case kindEnum:
		s, ok := v.(string)
		if !ok {
			break
		}
		if _, ok := t.symbolSet[s]; !ok {
			return nil, &recordError{msg: "expected one of " + quoteList(t.symbols) + " (" + t.String() + "), got " + describe(v)}
		}
		return v, nil
	case kindArray:
		return toArray(t, v)
	case kindMap:
		return toMap(t, v)
	case kindRecord:
		return toRecord(t, v)
	case kindUnion:
		return toUnion(t, v)
	}
	return nil, mismatch(t, v, "")
}

func toInteger(t *avroType, v any) (any, *recordError) {
	n, state := integral(v)
	switch {
	case state == notNumber || state == fractional:
		return nil, mismatch(t, v, "")
	case state == outOfRange || t.kind == kindInt && (n < math.MinInt32 || n > math.MaxInt32):
		return nil, mismatch(t, v, " (out of range)")
	case t.kind == kindInt:
		return int32(n), nil
	}
	return n, nil
}

func toFloat(t *avroType, v any) (any, *recordError) {
	f, ok, inRange := float(v)
	switch {
	case !ok:
		return nil, mismatch(t, v, "")
	case !inRange || t.kind == kindFloat && math.Abs(f) > math.MaxFloat32:
		return nil, mismatch(t, v, " (out of range)")
	case t.kind == kindFloat:
		return float32(f), nil
	}
	return f, nil
}

// toDecimal reads a decimal as goavro's *big.Rat, refusing what would lose
// digits (goavro truncates to the scale silently).
func toDecimal(t *avroType, v any) (any, *recordError) {
	var text string
	switch n := v.(type) {
	case string:
		text = n
	case json.Number:
		text = string(n)
	default:
		f, ok, _ := float(v)
		if !ok {
			return nil, mismatch(t, v, "")
		}
		text = strconv.FormatFloat(f, 'f', -1, 64)
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok || len(text) > 400 { // SetString accepts 1e1000000: refuse huge exponents early
		return nil, mismatch(t, v, "")
	}
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(t.scale)))
	if !scaled.IsInt() {
		return nil, mismatch(t, v, fmt.Sprintf(" (more than %d decimal places)", t.scale))
	}
	if new(big.Int).Abs(scaled.Num()).Cmp(pow10(t.precision)) >= 0 {
		return nil, mismatch(t, v, fmt.Sprintf(" (more than %d digits)", t.precision))
	}
	return r, nil
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

func toArray(t *avroType, v any) (any, *recordError) {
	in, ok := v.([]any)
	if !ok {
		return nil, mismatch(t, v, "")
	}
	out := make([]any, len(in))
	for i, e := range in {
		n, err := toNative(t.items, e)
		if err != nil {
			return nil, err.within("[" + strconv.Itoa(i) + "]")
		}
		out[i] = n
	}
	return out, nil
}

func toMap(t *avroType, v any) (any, *recordError) {
	in, ok := v.(map[string]any)
	if !ok {
		return nil, mismatch(t, v, "")
	}
	out := make(map[string]any, len(in))
	for k, e := range in {
		n, err := toNative(t.values, e)
		if err != nil {
			return nil, err.within("[" + k + "]")
		}
		out[k] = n
	}
	return out, nil
}

func toRecord(t *avroType, v any) (any, *recordError) {
	in, ok := v.(map[string]any)
	if !ok {
		return nil, mismatch(t, v, "")
	}
	out := make(map[string]any, len(t.fields))
	seen := 0
	for i := range t.fields {
		f := &t.fields[i]
		e, present := in[f.name]
		if !present {
			switch {
			case f.hasDefault: // goavro fills it in
			case f.typ.optional():
				out[f.name] = nil
			default:
				return nil, &recordError{path: []string{f.name}, missing: true}
			}
			continue
		}
		seen++
		n, err := toNative(f.typ, e)
		if err != nil {
			return nil, err.within(f.name)
		}
		out[f.name] = n
	}
	if seen < len(in) {
		return nil, unknownField(t, in)
	}
	return out, nil
}

// unknownField reports the first key, in sorted order, that t has no field
// for, so the same record always gets the same error.
func unknownField(t *avroType, in map[string]any) *recordError {
	var unknown []string
	for k := range in {
		if !slices.ContainsFunc(t.fields, func(f avroField) bool { return f.name == k }) {
			unknown = append(unknown, k)
		}
	}
	return &recordError{path: []string{slices.Min(unknown)}, unknown: true}
}

func toUnion(t *avroType, v any) (any, *recordError) {
	if v == nil {
		if t.hasNull {
			return nil, nil
		}
		return nil, mismatch(t, v, "")
	}
	kind := jsonKindOf(v)
	var errs []*recordError
	var tried []*avroType
	for _, b := range t.branches {
		if !accepts(b, kind) {
			continue
		}
		n, err := toNative(b, v)
		if err == nil {
			return map[string]any{b.name: n}, nil
		}
		errs = append(errs, err)
		tried = append(tried, b)
	}
	switch len(errs) {
	case 0:
		return nil, mismatch(t, v, "")
	case 1:
		return nil, errs[0] // the only branch it could be: its own error is the precise one
	}
	var sb strings.Builder
	sb.WriteString(" (")
	for i, err := range errs {
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(tried[i].String() + ": " + err.Error())
	}
	sb.WriteString(")")
	return nil, mismatch(t, v, sb.String())
}

// jsonKind is the JSON type of a decoded value.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBoolean
	jsonNumber
	jsonString
	jsonObject
	jsonArray
	jsonOther
)

func jsonKindOf(v any) jsonKind {
	switch v.(type) {
	case nil:
		return jsonNull
	case bool:
		return jsonBoolean
	case string:
		return jsonString
	case map[string]any:
		return jsonObject
	case []any:
		return jsonArray
	}
	if _, ok, _ := float(v); ok {
		return jsonNumber
	}
	return jsonOther
}

// accepts says whether a value of JSON kind k could be of type t, to pick
// the union branches worth trying.
func accepts(t *avroType, k jsonKind) bool {
	switch t.kind {
	case kindNull:
		return k == jsonNull
	case kindBoolean:
		return k == jsonBoolean
	case kindInt, kindLong, kindFloat, kindDouble:
		return k == jsonNumber
	case kindBytes, kindFixed:
		return k == jsonString || t.logical == "decimal" && k == jsonNumber
	case kindString, kindEnum:
		return k == jsonString
	case kindArray:
		return k == jsonArray
	case kindMap, kindRecord:
		return k == jsonObject
	}
	return false
}

type intState uint8

const (
	intOK intState = iota
	notNumber
	fractional
	outOfRange
)

// integral reads v as an int64 if it is a number with an integral value.
func integral(v any) (int64, intState) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err == nil {
			return i, intOK
		}
		if errors.Is(err, strconv.ErrRange) {
			return 0, outOfRange
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, notNumber
		}
		return floatIntegral(f)
	case float64:
		return floatIntegral(n)
	case float32:
		return floatIntegral(float64(n))
	case int:
		return int64(n), intOK
	case int8:
		return int64(n), intOK
	case int16:
		return int64(n), intOK
	case int32:
		return int64(n), intOK
	case int64:
		return n, intOK
	case uint:
		return uintIntegral(uint64(n))
	case uint8:
		return int64(n), intOK
	case uint16:
		return int64(n), intOK
	case uint32:
		return int64(n), intOK
	case uint64:
		return uintIntegral(n)
	}
	return 0, notNumber
}

func floatIntegral(f float64) (int64, intState) {
	switch {
	case math.IsInf(f, 0):
		return 0, outOfRange
	case math.IsNaN(f) || f != math.Trunc(f):
		return 0, fractional
	case f < -(1<<63) || f >= 1<<63:
		return 0, outOfRange
	}
	return int64(f), intOK
}

func uintIntegral(u uint64) (int64, intState) {
	if u > math.MaxInt64 {
		return 0, outOfRange
	}
	return int64(u), intOK
}

// float reads v as a float64: ok if it is a number, inRange if finite.
func float(v any) (f float64, ok, inRange bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return 0, errors.Is(err, strconv.ErrRange), false
		}
		return f, true, true
	case float64:
		return n, true, !math.IsInf(n, 0) && !math.IsNaN(n)
	case float32:
		return float64(n), true, true
	}
	if i, state := integral(v); state == intOK {
		return float64(i), true, true
	} else if state == outOfRange {
		u, _ := v.(uint64) // the only integer type out of int64's range
		return float64(u), true, true
	}
	return 0, false, false
}

// recordError is why a record does not match its schema. Its text names
// the field path: user.address.zip, tags[2], attrs[color].
type recordError struct {
	path    []string // innermost first: segments are added on the way out
	msg     string
	missing bool // a required field is absent
	unknown bool // a key the record has no field for
}

func (e *recordError) within(segment string) *recordError {
	e.path = append(e.path, segment)
	return e
}

func (e *recordError) Path() string {
	var sb strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		s := e.path[i]
		if sb.Len() > 0 && !strings.HasPrefix(s, "[") {
			sb.WriteByte('.')
		}
		sb.WriteString(s)
	}
	return sb.String()
}

func (e *recordError) Error() string {
	p := e.Path()
	switch {
	case e.missing:
		return fmt.Sprintf("missing required field %q", p)
	case e.unknown:
		return fmt.Sprintf("unknown field %q", p)
	case p == "":
		return e.msg
	}
	return fmt.Sprintf("field %q: %s", p, e.msg)
}

func mismatch(t *avroType, v any, detail string) *recordError {
	return &recordError{msg: "expected " + t.String() + ", got " + describe(v) + detail}
}

// describe names a JSON value for an error: null, boolean true, number
// 3.5, string "x" (at most 40 characters of it), object, array.
func describe(v any) string {
	switch n := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean " + strconv.FormatBool(n)
	case string:
		return "string " + strconv.Quote(truncate(n, 40))
	case json.Number:
		return "number " + truncate(string(n), 40)
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	if f, ok, _ := float(v); ok {
		if i, state := integral(v); state == intOK {
			return "number " + strconv.FormatInt(i, 10)
		}
		return "number " + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return fmt.Sprintf("%T", v)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func quoteList(symbols []string) string {
	const most = 10
	q := make([]string, 0, min(len(symbols), most)+1)
	for i, s := range symbols {
		if i == most {
			q = append(q, fmt.Sprintf("... (%d more)", len(symbols)-most))
			break
		}
		q = append(q, strconv.Quote(s))
	}
	return strings.Join(q, ", ")
}
