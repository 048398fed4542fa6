// Package segment is the storage engine of one partition: an append-only
// sequence of segment files holding Kafka RecordBatch v2 bytes verbatim, a
// sparse offset index and a time index per segment, recovery of torn tails,
// and retention. It knows nothing of Raft or producers; package partition
// decides what is appended and in which order.
//
// A Log is safe for one writer (Append, Truncate, DeleteBefore, Retain,
// Sync, Close, SetConfig) and any number of concurrent readers (Read,
// OffsetForTime and the offset getters). Readers see only whole batches that
// were appended before the read began.
//
// # Files
//
// A partition directory holds, per segment, three files named by the
// segment's base offset as Kafka names them (20 digits, zero-padded):
//
//	00000000000000000000.log        batches, back to back, exactly as produced
//	00000000000000000000.index      sparse offset index
//	00000000000000000000.timeindex  sparse time index
//	.clean                          present only after a clean Close
//
// # Offset index (.index), 8-byte entries, big-endian
//
//	offset  size  field
//	     0     4  relative offset: batch base offset − segment base offset
//	     4     4  file position of that batch in the .log file
//
// An entry is added for the first batch that starts at least
// IndexIntervalBytes after the previous entry's batch; position 0 is
// implicit. Entries are strictly increasing in both fields.
//
// # Time index (.timeindex), 12-byte entries, big-endian
//
//	offset  size  field
//	     0     8  timestamp: the largest maxTimestamp seen so far in the segment, ms
//	     8     4  relative offset of the batch that first reached that timestamp
//
// An entry is added, at the same interval as the offset index, only when the
// largest timestamp has grown; a last entry is added when the segment is
// rolled or closed, so its final entry holds the segment's largest timestamp.
// Timestamps are strictly increasing.
//
// # Durability and recovery
//
// Append writes without fsync. Sync flushes the segments written since the
// last Sync and their indexes; a caller that records "everything below
// offset N is on disk" (package partition's checkpoint) passes N back to
// Open as the recovery point. Open then cuts the log at N (Raft re-applies
// the rest), checks the batches of the new tail (length, magic, CRC-32C),
// and rebuilds any index that is missing or does not match its log. Without
// a recovery point or a .clean marker, every batch of every segment is
// checked and the log is cut before the first bad one.
//
// Index files are derived data: they are trusted only after a clean close or
// a Sync, and rebuilt from the log otherwise.
package segment
