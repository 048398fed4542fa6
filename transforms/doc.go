// Package transforms owns Samsa's Benthos processor plugins for the middle
// of a pipeline: validation of JSON records against an Avro schema
// (samsa_avro) and named stages whose failures become dead letters
// (samsa_stage). Register adds both to an isolated Benthos environment.
//
// A pipeline's validate and transform steps each compile to a samsa_stage
// wrapping the user's processors. The stream runs with
// error_handling.strict, where a failed message is rejected at the output
// and retried by the input forever; the stage is what turns a bad record
// into a dead letter instead (DESIGN Invariant 6), so one record cannot
// stall the pipeline or take other data with it.
//
// # Metadata
//
// Metadata the processors set and read; the topic output decides which of
// them become record headers (samsa_original never should: it is the record
// itself).
//
//	key                type    set by       meaning
//	samsa_original     []byte  samsa_stage  the content the first stage saw (what the source read)
//	samsa_dead_letter  bool    samsa_stage  true on a dead letter; later stages pass it through
//	samsa_dlq_reason   string  samsa_stage  the error text, e.g. field "ms_played": expected long, got string "x"
//	samsa_dlq_stage    string  samsa_stage  the stage's name, e.g. validate
//	samsa_dlq_time     string  samsa_stage  when, RFC 3339 in UTC with milliseconds: 2024-05-01T12:00:00.123Z
//	samsa_schema_id    int64   samsa_avro   the store's schema id, with encode: true and subject only
//
// Structured values are set with MetaSetMut; Bloblang sees them as
// @samsa_dead_letter (a bool) and so on, and string conversions (headers)
// give "true", the decimal id, and the original bytes.
//
// # JSON to Avro
//
// samsa_avro accepts JSON the way a person writes it, not Avro's JSON
// encoding: records are objects, and a union's value is written plainly
// (null, 5, "x", {...}), never as {"long": 5}. The rules are listed in
// avro_json.go and in the processor's documentation.
package transforms
