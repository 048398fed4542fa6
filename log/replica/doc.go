// Package replica is Samsa's glue to dragonboat: one NodeHost per process,
// one Raft shard per topic-partition whose on-disk state machine is a
// partition.Partition, and the meta shard whose in-memory state machine is
// a meta.State. It turns proposals into pipelined Raft proposals with a
// bounded number in flight, decodes their results, streams partition
// snapshots to replicas that fell behind, and requests snapshots by bytes
// applied so dragonboat's own log stays a short recent window (the records
// themselves live in the partition's segments).
//
// Nothing here speaks Kafka or knows about topics: package replog maps
// topics to shards.
package replica
