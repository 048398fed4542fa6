package transforms

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"

	"github.com/samsa-io/samsa/log/replog"
)

// playSchema is the quickstart's shape with one of every kind of field.
const playSchema = `{
  "type": "record", "name": "Play", "namespace": "samsa.example",
  "fields": [
    {"name": "user", "type": "string"},
    {"name": "track", "type": "string"},
    {"name": "artist", "type": ["null", "string"], "default": null},
    {"name": "played_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ms_played", "type": "long"},
    {"name": "plays", "type": "int", "default": 1},
    {"name": "skipped", "type": "boolean", "default": false},
    {"name": "rating", "type": ["null", "int", "double"]},
    {"name": "volume", "type": "float", "default": 1.0},
    {"name": "device", "type": ["null", {"type": "record", "name": "Device", "fields": [
      {"name": "os", "type": {"type": "enum", "name": "OS", "symbols": ["IOS", "ANDROID", "WEB"]}},
      {"name": "version", "type": "string"}
    ]}], "default": null},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    {"name": "attrs", "type": {"type": "map", "values": "long"}, "default": {}},
    {"name": "session", "type": ["null", {"type": "fixed", "name": "SessionID", "size": 4}], "default": null},
    {"name": "price", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}], "default": null},
    {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}], "default": null},
    {"name": "at_us", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}], "default": null},
    {"name": "blob", "type": ["null", "bytes"], "default": null},
    {"name": "uuid", "type": ["null", {"type": "string", "logicalType": "uuid"}], "default": null}
  ]
}`

const minimalPlay = `{"user": "ana", "track": "t1", "played_at": 1714560000000, "ms_played": 183000}`

// withPlay is minimalPlay with extra JSON members.
func withPlay(members string) string {
	return strings.TrimSuffix(minimalPlay, "}") + ", " + members + "}"
}

// listSchema is recursive: a record that contains itself.
const listSchema = `{"type": "record", "name": "LongList", "fields": [
  {"name": "value", "type": "long"},
  {"name": "next", "type": ["null", "LongList"], "default": null}
]}`

// eitherSchema has a union of two records.
const eitherSchema = `{"type": "record", "name": "Event", "fields": [
  {"name": "body", "type": [
    {"type": "record", "name": "Click", "fields": [{"name": "x", "type": "int"}, {"name": "y", "type": "int"}]},
    {"type": "record", "name": "Key", "fields": [{"name": "code", "type": "string"}]}
  ]}
]}`

type avroCase struct {
	record string
	err    string // "" for valid
}

func TestAvroValidate(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		cases  []avroCase
	}{
		{"play", playSchema, []avroCase{
			{minimalPlay, ""},
			{withPlay(`"artist": null`), ""},
			{withPlay(`"artist": "Low"`), ""},
			{withPlay(`"rating": null`), ""},
			{withPlay(`"rating": 4`), ""},
			{withPlay(`"rating": 4.5`), ""},
			{withPlay(`"rating": 3e9`), ""}, // too big for the int branch: a double
			{withPlay(`"plays": 3.0`), ""},  // integral
			{withPlay(`"plays": 1e3`), ""},  // integral
			{withPlay(`"volume": 0.25, "skipped": true`), ""},
			{withPlay(`"device": {"os": "WEB", "version": "1.2"}`), ""},
			{withPlay(`"tags": ["a", "b"], "attrs": {"x": 1, "y": -2}`), ""},
			{withPlay(`"session": "abcd", "blob": "anything"`), ""},
			{withPlay(`"price": 12.34`), ""},
			{withPlay(`"price": "-9999.5"`), ""},
			{withPlay(`"day": 19844, "at_us": 1714560000000123`), ""},
			{withPlay(`"uuid": "2d1c6c8e-1b7f-4a57-9c8b-4d0c4e6f8a11"`), ""},

			{`{"user": "ana", "track": "t1", "played_at": 1714560000000, "ms_played": "x"}`, `field "ms_played": expected long, got string "x"`},
			{`{"user": "ana", "track": "t1", "played_at": 1714560000000, "ms_played": 3.5}`, `field "ms_played": expected long, got number 3.5`},
			{`{"user": "ana", "track": "t1", "played_at": 1714560000000, "ms_played": 1e19}`, `field "ms_played": expected long, got number 1e19 (out of range)`},
			{`{"track": "t1", "played_at": 1714560000000, "ms_played": 1}`, `missing required field "user"`},
			{withPlay(`"extra": 1, "another": 2`), `unknown field "another"`},
			{withPlay(`"plays": 3000000000`), `field "plays": expected int, got number 3000000000 (out of range)`},
			{withPlay(`"skipped": null`), `field "skipped": expected boolean, got null`},
			{withPlay(`"volume": 1e39`), `field "volume": expected float, got number 1e39 (out of range)`},
			{withPlay(`"rating": "five"`), `field "rating": expected null or int or double, got string "five"`},
			{withPlay(`"artist": 7`), `field "artist": expected null or string, got number 7`},
			{`{"user": "ana", "track": "t1", "played_at": "2024-05-01T12:00:00Z", "ms_played": 1}`, `field "played_at": expected long (timestamp-millis), got string "2024-05-01T12:00:00Z"`},
			{withPlay(`"device": {"os": "BEOS", "version": "1"}`), `field "device.os": expected one of "IOS", "ANDROID", "WEB" (enum samsa.example.OS), got string "BEOS"`},
			{withPlay(`"device": {"os": "WEB"}`), `missing required field "device.version"`},
			{withPlay(`"device": {"os": "WEB", "version": "1", "model": "x"}`), `unknown field "device.model"`},
			{withPlay(`"device": "phone"`), `field "device": expected null or record samsa.example.Device, got string "phone"`},
			{withPlay(`"tags": ["a", 5]`), `field "tags[1]": expected string, got number 5`},
			{withPlay(`"tags": "a"`), `field "tags": expected array, got string "a"`},
			{withPlay(`"attrs": {"k": "x"}`), `field "attrs[k]": expected long, got string "x"`},
			{withPlay(`"session": "abc"`), `field "session": expected fixed samsa.example.SessionID (4 bytes), got string "abc" (3 bytes)`},
			{withPlay(`"price": 1.234`), `field "price": expected decimal(6,2), got number 1.234 (more than 2 decimal places)`},
			{withPlay(`"price": 12345.6`), `field "price": expected decimal(6,2), got number 12345.6 (more than 6 digits)`},
			{withPlay(`"price": "cheap"`), `field "price": expected decimal(6,2), got string "cheap"`},
			{withPlay(`"day": 1.5`), `field "day": expected int (date), got number 1.5`},
			{`[1, 2]`, `expected record samsa.example.Play, got array`},
			{`"ana"`, `expected record samsa.example.Play, got string "ana"`},
			{`not json`, `not JSON: invalid character 'o' in literal null (expecting 'u')`},
			{`{"user": "ana"`, `not JSON: unexpected EOF`},
			{`{"user": "ana"} {"user": "bo"}`, `not JSON: message contains multiple valid documents`},
			{``, `not JSON: empty message`},
		}},
		{"recursive", listSchema, []avroCase{
			{`{"value": 1}`, ""},
			{`{"value": 1, "next": {"value": 2, "next": {"value": 3, "next": null}}}`, ""},
			{`{"value": 1, "next": {"value": 2, "next": {"value": "three"}}}`, `field "next.next.value": expected long, got string "three"`},
		}},
		{"union of records", eitherSchema, []avroCase{
			{`{"body": {"x": 1, "y": 2}}`, ""},
			{`{"body": {"code": "Enter"}}`, ""},
			{`{"body": {"x": 1}}`, `field "body": expected record Click or record Key, got object (record Click: missing required field "y"; record Key: missing required field "code")`},
			{`{"body": null}`, `field "body": expected record Click or record Key, got null`},
		}},
		{"primitive root", `"long"`, []avroCase{
			{`42`, ""},
			{`"42"`, `expected long, got string "42"`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := newEnv(t, Deps{})
			st := startStream(t, env, nil, false, "samsa_avro:\n  schema: '"+strings.ReplaceAll(tt.schema, "'", "''")+"'")
			for _, c := range tt.cases {
				got, ack := st.one(t, c.record)
				require.NoError(t, ack)
				require.Len(t, got, 1, c.record)
				require.Equal(t, c.record, content(t, got[0]), "encode: false leaves the message as it was")
				if c.err == "" {
					require.NoError(t, got[0].GetError(), c.record)
					continue
				}
				require.Error(t, got[0].GetError(), c.record)
				require.Equal(t, c.err, got[0].GetError().Error(), c.record)
			}
		})
	}
}

// TestAvroEncode checks that encode: true gives Avro binary that goavro
// decodes to the record, with defaults filled in and unions resolved.
func TestAvroEncode(t *testing.T) {
	env, _ := newEnv(t, Deps{})
	st := startStream(t, env, nil, false, "samsa_avro:\n  schema: '"+playSchema+"'\n  encode: true")
	codec, err := goavro.NewCodec(playSchema)
	require.NoError(t, err)

	record := withPlay(`"artist": "Low", "rating": 4.5, "device": {"os": "IOS", "version": "17"}, "tags": ["x"], "attrs": {"a": 7}, "session": "abcd", "price": "12.30", "day": 19844`)
	got, ack := st.one(t, record)
	require.NoError(t, ack)
	require.Len(t, got, 1)
	require.NoError(t, got[0].GetError())
	_, ok := got[0].MetaGet(MetaSchemaID)
	require.False(t, ok, "an inline schema has no id")

	native, rest, err := codec.NativeFromBinary([]byte(content(t, got[0])))
	require.NoError(t, err)
	require.Empty(t, rest, "plain binary: no container, nothing after the record")
	rec := native.(map[string]any)
	require.Equal(t, "ana", rec["user"])
	require.Equal(t, int64(183000), rec["ms_played"])
	require.Equal(t, time.UnixMilli(1714560000000).UTC(), rec["played_at"])
	require.Equal(t, map[string]any{"string": "Low"}, rec["artist"])
	require.Equal(t, map[string]any{"double": 4.5}, rec["rating"])
	require.Equal(t, int32(1), rec["plays"], "default")
	require.Equal(t, false, rec["skipped"], "default")
	require.Equal(t, float32(1), rec["volume"], "default")
	require.Equal(t, map[string]any{"samsa.example.Device": map[string]any{"os": "IOS", "version": "17"}}, rec["device"])
	require.Equal(t, []any{"x"}, rec["tags"])
	require.Equal(t, map[string]any{"a": int64(7)}, rec["attrs"])
	require.Equal(t, map[string]any{"samsa.example.SessionID": []byte("abcd")}, rec["session"])
	require.Equal(t, 0, big.NewRat(1230, 100).Cmp(rec["price"].(map[string]any)["bytes.decimal"].(*big.Rat)))
	require.Equal(t, map[string]any{"int.date": time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}, rec["day"])
	require.Nil(t, rec["at_us"])

	// Absent optional fields without a default are null; defaults fill the rest.
	got, ack = st.one(t, minimalPlay)
	require.NoError(t, ack)
	require.NoError(t, got[0].GetError())
	native, _, err = codec.NativeFromBinary([]byte(content(t, got[0])))
	require.NoError(t, err)
	rec = native.(map[string]any)
	require.Nil(t, rec["rating"])
	require.Nil(t, rec["artist"])
	require.Equal(t, []any{}, rec["tags"])

	// A record that fails is left as it was.
	got, _ = st.one(t, `{"user": 1}`)
	require.EqualError(t, got[0].GetError(), `field "user": expected string, got number 1`)
	require.Equal(t, `{"user": 1}`, content(t, got[0]))
}

func TestAvroSchemaFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "long_list.avsc")
	require.NoError(t, os.WriteFile(path, []byte(listSchema), 0o644))
	env, _ := newEnv(t, Deps{})
	st := startStream(t, env, nil, false, fmt.Sprintf("samsa_avro: {schema_file: %q}", path))
	got, _ := st.one(t, `{"value": 1, "next": {"value": 2}}`)
	require.NoError(t, got[0].GetError())
	got, _ = st.one(t, `{"value": true}`)
	require.EqualError(t, got[0].GetError(), `field "value": expected long, got boolean true`)
}

// TestAvroSubject uses a real schema store: a single-node replicated log.
func TestAvroSubject(t *testing.T) {
	ctx := ctxT(t, 60*time.Second)
	l, err := replog.Open(ctx, replog.Config{
		NodeID: 1, DataDir: t.TempDir(), RaftAddr: freeAddr(t), KafkaAddr: "127.0.0.1:9092",
		MinFreeBytes: -1, Logger: quietLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close(ctxT(t, 30*time.Second))) })

	_, err = l.RegisterSchema(ctx, "other-value", `"string"`) // so ids and versions differ
	require.NoError(t, err)
	v1, err := l.RegisterSchema(ctx, "plays-value", listSchema)
	require.NoError(t, err)
	v2, err := l.RegisterSchema(ctx, "plays-value", `{"type": "record", "name": "LongList", "fields": [{"name": "value", "type": "string"}]}`)
	require.NoError(t, err)
	require.Equal(t, 2, v1.ID)
	require.Equal(t, 2, v2.Version)

	env, _ := newEnv(t, Deps{Schemas: l})
	latest := startStream(t, env, nil, false, "samsa_avro: {subject: plays-value, encode: true}")
	first := startStream(t, env, nil, false, "samsa_avro: {subject: plays-value, version: 1, encode: true}")

	got, _ := latest.one(t, `{"value": "x"}`)
	require.NoError(t, got[0].GetError())
	id, ok := got[0].MetaGetMut(MetaSchemaID)
	require.True(t, ok)
	require.Equal(t, int64(v2.ID), id)
	require.Equal(t, fmt.Sprint(v2.ID), metaString(t, got[0], MetaSchemaID))
	got, _ = latest.one(t, `{"value": 1}`)
	require.EqualError(t, got[0].GetError(), `field "value": expected string, got number 1`)

	got, _ = first.one(t, `{"value": 1}`)
	require.NoError(t, got[0].GetError())
	require.Equal(t, fmt.Sprint(v1.ID), metaString(t, got[0], MetaSchemaID))
	codec, err := goavro.NewCodec(listSchema)
	require.NoError(t, err)
	native, _, err := codec.NativeFromBinary([]byte(content(t, got[0])))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"value": int64(1), "next": nil}, native)

	// Construction errors name the subject.
	_, err = newTestAvro(t, "subject: nope", Deps{Schemas: l})
	require.ErrorContains(t, err, `subject "nope": `)
	_, err = newTestAvro(t, "{subject: plays-value, version: 3}", Deps{Schemas: l})
	require.ErrorContains(t, err, `subject "plays-value" version 3: `)
}

// newTestAvro builds a samsa_avro from YAML as a stream would.
func newTestAvro(t testing.TB, yaml string, deps Deps) (*avroProcessor, error) {
	t.Helper()
	conf, err := avroSpec().ParseYAML(yaml, service.NewEnvironment())
	if err != nil {
		return nil, err
	}
	return newAvroProcessor(conf, service.MockResources(), deps)
}

func TestAvroConstructionErrors(t *testing.T) {
	for _, tt := range []struct{ yaml, err string }{
		{`{encode: true}`, "exactly one of schema_file, schema and subject must be set, not 0"},
		{`{schema: '"long"', subject: plays}`, "exactly one of schema_file, schema and subject must be set, not 2"},
		{`{schema: '{"type": "record", "name": "X"}'}`, `schema: invalid Avro schema: Record "X" ought to have fields key`},
		{`{schema: '{"type": "nope"}'}`, `schema: invalid Avro schema: unknown type name: "nope"`},
		{`{schema: 'not json'}`, `schema: invalid Avro schema: cannot unmarshal schema JSON: invalid character 'o' in literal null (expecting 'u')`},
		{`{schema_file: /does/not/exist.avsc}`, `schema_file "/does/not/exist.avsc": open /does/not/exist.avsc: no such file or directory`},
		{`{subject: plays}`, `subject "plays": no schema store here; use schema_file or schema`},
		{`{subject: plays, version: -2}`, `subject "plays" version -2: version must be -1, 0 or a version number`},
	} {
		_, err := newTestAvro(t, tt.yaml, Deps{})
		require.EqualError(t, err, tt.err, tt.yaml)
	}
}

// TestAvroInvalidSchemaStream: a stream with an invalid schema fails to
// start, and lint (the config spec) refuses a missing or doubled source.
func TestAvroInvalidSchemaStream(t *testing.T) {
	env, _ := newEnv(t, Deps{})
	b := env.NewStreamBuilder()
	b.SetStrict(true)
	b.SetLogger(quietLogger())
	require.NoError(t, b.AddProcessorYAML(`samsa_avro: {schema: '{"type": "enum", "name": "E"}'}`))
	require.NoError(t, b.AddInputYAML(`generate: {count: 1, interval: "", mapping: 'root = {}'}`))
	require.NoError(t, b.AddConsumerFunc(func(context.Context, *service.Message) error { return nil }))
	s, err := b.Build()
	require.NoError(t, err)
	err = s.Run(ctxT(t, 10*time.Second))
	require.ErrorContains(t, err, `schema: invalid Avro schema: Enum "E" ought to have symbols key`)

	require.ErrorContains(t, env.NewStreamBuilder().AddProcessorYAML(`samsa_avro: {encode: true}`),
		"exactly one of schema_file, schema and subject must be set")
	require.ErrorContains(t, env.NewStreamBuilder().AddProcessorYAML(`samsa_avro: {schema: '"long"', schema_file: x.avsc}`),
		"exactly one of schema_file, schema and subject must be set")
	require.NoError(t, env.NewStreamBuilder().AddProcessorYAML(`samsa_avro: {subject: plays}`))
}

// TestAvroUnionNames encodes a value in every kind of union branch: each
// needs the exact key goavro gives the branch, namespaces and logical
// types included, or the encoding fails.
func TestAvroUnionNames(t *testing.T) {
	const schema = `{"type": "record", "name": "Outer", "namespace": "a.b", "fields": [
  {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "int"}]}},
  {"name": "again", "type": ["null", "Inner"]},
  {"name": "full", "type": ["null", "a.b.Inner"]},
  {"name": "other", "type": ["null", {"type": "record", "name": "Other", "namespace": "c", "fields": [
    {"name": "e", "type": ["null", {"type": "enum", "name": "E", "symbols": ["A", "B"]}]}
  ]}]},
  {"name": "dotted", "type": ["null", {"type": "fixed", "name": "x.y.F", "size": 2}]},
  {"name": "money", "type": ["null", {"type": "fixed", "name": "Money", "size": 8, "logicalType": "decimal", "precision": 10, "scale": 2}]},
  {"name": "named_dec", "type": ["null", {"type": "bytes", "name": "Dec", "logicalType": "decimal", "precision": 4, "scale": 1}]},
  {"name": "tm", "type": ["null", {"type": "int", "logicalType": "time-millis"}]},
  {"name": "tu", "type": ["null", {"type": "long", "logicalType": "time-micros"}]},
  {"name": "arr", "type": ["null", {"type": "array", "items": "int"}]},
  {"name": "m", "type": ["null", {"type": "map", "values": "Inner"}]},
  {"name": "odd", "type": ["null", {"type": "int", "logicalType": "timestamp-millis"}]},
  {"name": "f", "type": ["null", "float"]},
  {"name": "b", "type": ["null", "boolean"]}
]}`
	p, err := newTestAvro(t, fmt.Sprintf("{schema: '%s', encode: true}", schema), Deps{})
	require.NoError(t, err)
	record := `{"inner": {"x": 1}, "again": {"x": 2}, "full": {"x": 3}, "other": {"e": "B"}, "dotted": "hi",
		"money": "12345678.90", "named_dec": 123.4, "tm": 1000, "tu": 1000000, "arr": [1, 2], "m": {"k": {"x": 4}},
		"odd": 5, "f": 1.5, "b": true}`
	out, err := p.Process(context.Background(), service.NewMessage([]byte(record)))
	require.NoError(t, err)
	codec, err := goavro.NewCodec(schema)
	require.NoError(t, err)
	b, _ := out[0].AsBytes()
	native, _, err := codec.NativeFromBinary(b)
	require.NoError(t, err)
	rec := native.(map[string]any)
	require.Equal(t, map[string]any{"a.b.Inner": map[string]any{"x": int32(2)}}, rec["again"])
	require.Equal(t, map[string]any{"c.Other": map[string]any{"e": map[string]any{"c.E": "B"}}}, rec["other"])
	require.Equal(t, map[string]any{"x.y.F": []byte("hi")}, rec["dotted"])
	require.Equal(t, 0, big.NewRat(1234567890, 100).Cmp(rec["money"].(map[string]any)["a.b.Money"].(*big.Rat)))
	require.Equal(t, 0, big.NewRat(1234, 10).Cmp(rec["named_dec"].(map[string]any)["a.b.Dec"].(*big.Rat)))
	require.Equal(t, map[string]any{"int.time-millis": time.Second}, rec["tm"])
	require.Equal(t, map[string]any{"int": int32(5)}, rec["odd"])
	require.Equal(t, map[string]any{"map": map[string]any{"k": map[string]any{"x": int32(4)}}}, rec["m"])

	// Errors inside a map inside a union name the whole path.
	_, err = p.Process(context.Background(), service.NewMessage([]byte(`{"inner": {"x": 1}, "m": {"k": {"x": "4"}}}`)))
	require.EqualError(t, err, `field "m[k].x": expected int, got string "4"`)
}
