// Package pipelines owns Samsa's pipeline files: their format, strict
// parsing with errors that name file, line and field, linting that also
// builds each Benthos component, compilation into Benthos streams in an
// isolated environment, and running them on a node (the Runner: start,
// stop, status, specs kept in the meta shard).
//
// A pipeline is one YAML file:
//
//	name: plays                      # [a-zA-Z0-9._-], at most 200 characters
//	source:                          # exactly one of:
//	  file: {paths: [data/*.jsonl], format: jsonl, tail: true}
//	  # benthos: {generate: {...}}  # any Benthos input (at least once)
//	  # topic: {name: other, start: earliest}
//	  # sql: {...}, postgres_cdc: {...}, mqtt: {...}: the connector's own
//	  #   fields (Benthos input samsa_<kind>); the pipeline sets source_id
//	validate:                        # optional
//	  avro: {schema_file: play.avsc} # or schema: '...' or subject: plays-value
//	  encode: false                  # store Avro binary instead of the JSON
//	  on_invalid: dead_letter        # dead_letter | drop | fail
//	transform:                       # optional: Benthos processors, in order
//	  - mutation: 'root.minutes = this.ms_played / 60000'
//	topic:
//	  name: plays
//	  partitions: 4                  # default 1
//	  replication_factor: 1          # default 1
//	  key: '${! json("user") }'      # optional, Bloblang interpolation; mqtt and
//	                                 # postgres_cdc sources: meta("samsa_key") by default
//	  configs: {retention.ms: "-1"}
//	  on_error: dead_letter          # what a failing transform does
//	sinks:                           # optional: each reads the topic on its own
//	  - name: archive
//	    start: earliest              # earliest | latest | RFC 3339 time
//	    file: {path: out/plays.jsonl, codec: lines}   # any Benthos output
//	caches:                          # optional: Benthos caches, e.g. for dedupe
//	  seen: {memory: {default_ttl: 24h}}
//
// Relative paths — source files, schema files, and the paths of Benthos
// file inputs and outputs — resolve against the pipeline file's folder.
//
// The source half — source, validation, transforms, topic — is one Benthos
// stream: the source stamps each record with its position, validation and
// transforms run in stages that turn failures into dead letters (topic
// <name>.dlq, with the original bytes and why, where and when in headers),
// and the topic output stores batches keyed like Kafka's default
// partitioner. Each sink is another stream reading the topic as consumer
// group pipeline.<name>.<sink>, committing only what the sink acknowledged.
// Every stream runs with error_handling.strict and no buffer: nothing is
// acknowledged before it is stored.
package pipelines
