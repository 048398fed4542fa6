// Package replog is the replicated, partitioned log as the rest of Samsa
// sees it: topics and their configs, appends and reads of partitions,
// offsets by time, consumer-group offsets and producer ids. Underneath,
// every partition is a Raft shard (package replica) and the metadata lives
// in the meta shard (package meta); replog keeps a view of that metadata,
// starts and stops this node's replicas as it changes, checks batches on
// the leader before proposing them, and applies retention.
//
// Errors are this package's sentinels (errors.go), one per Kafka error
// code the Kafka layer answers with.
package replog
