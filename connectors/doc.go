// Package connectors holds Samsa's Benthos plugins: the sources that bring
// records from the outside world into topics and the topic input and output
// that join pipeline streams to the replicated log in-process, without a
// Kafka round trip. Register adds them to an isolated Benthos environment.
//
// # Exactly-once ingest (DESIGN invariant 4)
//
// A source stamps every message with its id and the record's position
// (metadata samsa_source and samsa_position, byte strings ordered by
// bytes.Compare) and checkpoints, in the meta shard, the position below which
// every record it emitted has been acknowledged. The topic output appends a
// partition's records as one batch carrying the source id and the first and
// last positions; the partition stores the highest position of each source
// and answers a batch at or below it as a duplicate. After a restart the
// source re-reads from its checkpoint, and the output, having learned each
// partition's stored position, drops what is already there before it
// appends, so that no batch straddles the stored position.
//
// This holds only if a source's records reach each partition in position
// order. Within one stream they do: one processing thread, one write at a
// time per output, a failed write retried in place. A source keeps a few
// batches in flight (so reading and processing overlap writing); the one
// way a later batch could be stored ahead of an earlier one is that the
// earlier one fails and is read again. So a failure kills the batch's
// generation (metadata samsa_ticket, see MetaTicket): outputs write nothing
// of it, and the source reads again from its acknowledged position.
//
// # Metadata
//
//	key               type    set by          meaning
//	samsa_source      string  sources         the source id
//	samsa_position    []byte  sources         the record's position; later records compare greater
//	samsa_ticket      *ticket sources         the batch's generation: Live() bool, Fail(error) bool
//	samsa_key         string  mqtt, postgres_cdc  the device, or the row's primary key as JSON
//	mqtt_topic, mqtt_qos, mqtt_retained, mqtt_duplicate
//	                  various mqtt            where and how a message arrived; MQTT 5 user
//	                                          properties become string metadata too
//	samsa_timestamp   int64 ms, time.Time or RFC 3339 string
//	                          anyone          the record timestamp the topic output writes
//	samsa_dead_letter bool    transforms      the message is a dead letter
//	samsa_original    []byte  transforms      the record as the source read it
//	samsa_dlq_reason  string  transforms      why it was rejected
//	samsa_dlq_stage   string  transforms      which stage rejected it
//	samsa_dlq_time    string  transforms      when (RFC 3339)
//	kafka_*           various samsa_topic input  where a record came from
//
// Positions: the file source's is 16 bytes, big-endian: the file's ordinal
// (files are numbered in the order they are discovered) and the byte offset
// just after the record's line. The sql source's is a tagged,
// order-preserving encoding of (cursor, key) (sql_position.go); the
// postgres_cdc source's is (phase, snapshot key | commit LSN, index)
// (postgres_cdc_checkpoint.go); the mqtt source's a checkpointed counter
// that follows the clock (input_mqtt.go).
package connectors
