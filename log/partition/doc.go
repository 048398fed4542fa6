// Package partition is the deterministic apply logic of one partition: it
// validates each committed entry, assigns offsets, enforces idempotent
// producers' sequence rules and pipeline sources' position fencing, tracks
// transactions (each producer's open one, the last stable offset, the
// aborted ones), writes transaction markers as control batches, appends to
// the partition's segment log, and keeps the state that must survive (next
// offset, log start offset, producers, source positions, open and aborted
// transactions) in a durable checkpoint.
//
// The decisions live in State, which does no I/O and owns no goroutines, so
// they are tested without a disk or Raft. Partition wraps a State with its
// segment.Log and checkpoint file. Everything a decision depends on travels
// in the entry (the leader's append time, leader epoch, timestamp type,
// source positions), so every replica that applies the same entries reaches
// the same state and stores byte-identical batches (DESIGN invariant 2).
//
// # Entry format (proposed through Raft), big-endian
//
//	offset  size  field
//	     0     1  version (1)
//	     1     1  kind: 1 batch, 2 delete records, 3 transaction marker
//	kind 1 (batch):
//	     2     8  append time, ms (the leader's clock when it proposed)
//	    10     4  leader epoch
//	    14     1  flags: bit 0 = the topic uses LogAppendTime
//	    15     2  source id length n (0 for Kafka producers)
//	    17     n  source id
//	     …     2  first position length, then the position of the batch's first record
//	     …     2  last position length, then the position of its last record
//	     …     …  the RecordBatch, as produced
//	kind 2 (delete records):
//	     2     8  new log start offset
//	kind 3 (transaction marker; the partition builds the control batch,
//	see MarkerBatch):
//	     2     8  append time, ms: the control batch's timestamps
//	    10     4  leader epoch
//	    14     8  producer id
//	    22     2  producer epoch
//	    24     1  flags: bit 0 = commit (else abort)
//	    25     4  coordinator epoch, the EndTxnMarker's value
//
// A marker from an epoch older than its producer's is refused
// (ErrInvalidProducerEpoch); any other is stored, moves the producer to
// its epoch and ends its open transaction here, if any; an abort enters
// the aborted index as (producer id, first offset, marker offset).
//
// # Checkpoint file (checkpoint), big-endian
//
//	offset  size  field
//	     0     8  magic "SAMSACKP"
//	     8     8  applied index: the last Raft entry reflected on disk
//	    16     4  length n of the state that follows
//	    20     n  state (see State.AppendBinary)
//	  20+n     4  CRC-32C of bytes 8 to 20+n
//
// It is replaced atomically (write, fsync, rename, fsync the directory)
// after the segment log is synced, so it never claims more than the disk
// holds.
package partition
