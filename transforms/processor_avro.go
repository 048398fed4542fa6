package transforms

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/linkedin/goavro/v2"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/samsa-io/samsa/log/meta"
)

// samsa_avro's YAML fields.
const (
	avroFieldSchemaFile = "schema_file"
	avroFieldSchema     = "schema"
	avroFieldSubject    = "subject"
	avroFieldVersion    = "version"
	avroFieldEncode     = "encode"
)

func avroSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Categories("Parsing").
		Summary("Checks that each message is a JSON record matching an Avro schema, and optionally replaces it with its Avro binary encoding.").
		Description(`
The schema comes from exactly one of `+"`schema_file`, `schema` and `subject`"+`. It is compiled once, when the processor is built, so an invalid schema or an unknown subject is a configuration error that lint reports.

A message must be JSON written the way a person writes it, not Avro's JSON encoding:

- records are objects; a missing field takes the schema's default, a missing field whose type admits null (a union with "null") is null, any other missing field is an error, and a key the record has no field for is an error;
- a union's value is written plainly, `+"`5`"+` or `+"`null`"+`, never `+"`{\"long\": 5}`"+`: the branch is the first, in schema order, that the value fits;
- int and long take integral numbers in range (`+"`3`, `3.0`"+` and `+"`1e3`"+` are integral, `+"`3.5`"+` is not), and so do the logical types on them (date in days, time-millis, time-micros, timestamp-millis and timestamp-micros since the epoch);
- float and double take any number; boolean, string and null their JSON types; an enum a string that is one of its symbols;
- bytes and fixed take a string, as its UTF-8 bytes (a fixed's must have exactly its size); a decimal takes a number or a numeric string with at most scale decimal places and precision digits;
- arrays and maps take arrays and objects whose elements match.

A message that is not JSON, or does not match, fails with an error naming the field and what was expected, such as `+"`field \"ms_played\": expected long, got string \"x\"`, `missing required field \"user\"` or `not JSON: invalid character 'x' looking for beginning of value`"+`. Inside a `+"`samsa_stage`"+` that error becomes the dead letter's reason.

With `+"`encode: true`"+` the message becomes the plain Avro binary encoding of the record (no container, no schema-id prefix), and with a `+"`subject`"+` the metadata `+"`samsa_schema_id`"+` holds the schema's id in the store.`).
		Fields(
			service.NewStringField(avroFieldSchemaFile).
				Description("Path of an Avro schema file (.avsc), read when the processor is built; relative paths are resolved by the environment's file system (by default from the working directory).").
				Optional().
				Example("schemas/play.avsc"),
			service.NewStringField(avroFieldSchema).
				Description("The Avro schema itself, as JSON text.").
				Optional().
				Example(`{"type": "record", "name": "Play", "fields": [{"name": "user", "type": "string"}, {"name": "ms_played", "type": "long"}]}`),
			service.NewStringField(avroFieldSubject).
				Description("A subject in Samsa's schema store; the schema is looked up when the processor is built, so a version registered later applies from the pipeline's next start.").
				Optional().
				Example("plays-value"),
			service.NewIntField(avroFieldVersion).
				Description("The version of `subject` to use; -1 or 0 for the newest. Ignored without `subject`.").
				Default(meta.LatestVersion).
				Example(3),
			service.NewBoolField(avroFieldEncode).
				Description("Replace each valid message with its Avro binary encoding. When false the message is left as it was.").
				Default(false),
		).
		LintRule(`root = if [this.schema_file, this.schema, this.subject].filter(v -> v != null).length() != 1 { ["exactly one of schema_file, schema and subject must be set"] }`).
		Example("Validate against a schema file", "Messages that are not plays fail, with the reason in their error.", `
pipeline:
  processors:
    - samsa_avro:
        schema_file: schemas/play.avsc
`).
		Example("Encode with a registered schema", "Valid messages become Avro binary and carry the schema id in samsa_schema_id.", `
pipeline:
  processors:
    - samsa_avro:
        subject: plays-value
        encode: true
`)
}

// avroProcessor is samsa_avro: one schema, compiled once, shared by every
// pipeline thread (goavro codecs are safe for concurrent use).
type avroProcessor struct {
	codec    *goavro.Codec
	root     *avroType
	encode   bool
	schemaID int // from the store; 0 otherwise
}

func newAvroProcessor(conf *service.ParsedConfig, res *service.Resources, deps Deps) (*avroProcessor, error) {
	var set []string
	for _, f := range []string{avroFieldSchemaFile, avroFieldSchema, avroFieldSubject} {
		if conf.Contains(f) {
			set = append(set, f)
		}
	}
	if len(set) != 1 {
		return nil, fmt.Errorf("exactly one of %s, %s and %s must be set, not %d", avroFieldSchemaFile, avroFieldSchema, avroFieldSubject, len(set))
	}
	p := &avroProcessor{}
	var err error
	if p.encode, err = conf.FieldBool(avroFieldEncode); err != nil {
		return nil, err
	}
	text, source, err := p.schemaText(conf, res, set[0], deps.Schemas)
	if err != nil {
		return nil, err
	}
	if p.codec, err = goavro.NewCodec(text); err != nil {
		return nil, fmt.Errorf("%s: invalid Avro schema: %w", source, err)
	}
	if p.root, err = parseSchema(text); err != nil {
		return nil, fmt.Errorf("%s: invalid Avro schema: %w", source, err)
	}
	return p, nil
}

// schemaText reads the schema from where the config says, and names that
// place for errors.
func (p *avroProcessor) schemaText(conf *service.ParsedConfig, res *service.Resources, field string, store SchemaStore) (text, source string, err error) {
	value, err := conf.FieldString(field)
	if err != nil {
		return "", "", err
	}
	switch field {
	case avroFieldSchema:
		return value, avroFieldSchema, nil
	case avroFieldSchemaFile:
		source = fmt.Sprintf("%s %q", avroFieldSchemaFile, value)
		b, err := service.ReadFile(res.FS(), value)
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", source, err)
		}
		return string(b), source, nil
	}
	version, err := conf.FieldInt(avroFieldVersion)
	if err != nil {
		return "", "", err
	}
	if version == 0 {
		version = meta.LatestVersion
	}
	source = fmt.Sprintf("%s %q", avroFieldSubject, value)
	if version != meta.LatestVersion {
		source = fmt.Sprintf("%s %q version %d", avroFieldSubject, value, version)
	}
	if version < meta.LatestVersion {
		return "", "", fmt.Errorf("%s: %s must be -1, 0 or a version number", source, avroFieldVersion)
	}
	if store == nil {
		return "", "", fmt.Errorf("%s: no schema store here; use %s or %s", source, avroFieldSchemaFile, avroFieldSchema)
	}
	sv, err := store.Schema(value, version)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", source, err)
	}
	p.schemaID = sv.ID
	return sv.Schema, source, nil
}

// encodeBuffers holds scratch buffers for encodings that are only checked,
// not kept.
var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Process checks one message; a returned error marks the message failed
// with exactly that text.
func (p *avroProcessor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	v, err := decoded(msg)
	if err != nil {
		return nil, err
	}
	native, rerr := toNative(p.root, v)
	if rerr != nil {
		return nil, rerr
	}
	if !p.encode {
		bp := encodeBuffers.Get().(*[]byte)
		out, err := p.codec.BinaryFromNative((*bp)[:0], native)
		if cap(out) <= 64<<10 {
			*bp = out[:0]
			encodeBuffers.Put(bp)
		}
		if err != nil {
			return nil, fmt.Errorf("does not match the schema: %w", err)
		}
		return service.MessageBatch{msg}, nil
	}
	size := 128
	if msg.HasBytes() { // the JSON's length bounds the binary's, nearly always
		raw, _ := msg.AsBytes()
		size = len(raw)
	}
	out, err := p.codec.BinaryFromNative(make([]byte, 0, size), native)
	if err != nil {
		return nil, fmt.Errorf("does not match the schema: %w", err)
	}
	msg.SetBytes(out)
	if p.schemaID > 0 {
		msg.MetaSetMut(MetaSchemaID, int64(p.schemaID))
	}
	return service.MessageBatch{msg}, nil
}

// decoded is the message as decoded JSON. Benthos decodes with UseNumber
// and keeps the result with the message, so a mapping after this one does
// not parse it again.
func decoded(msg *service.Message) (any, error) {
	if !msg.HasStructured() {
		if raw, _ := msg.AsBytes(); len(bytes.TrimSpace(raw)) == 0 {
			return nil, errors.New("not JSON: empty message")
		}
	}
	v, err := msg.AsStructured()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return v, nil
}

// Close releases nothing: the processor holds no resources.
func (p *avroProcessor) Close(context.Context) error { return nil }
