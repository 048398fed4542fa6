// Package batch owns Kafka's RecordBatch v2 format: the header view the broker
// reads and patches, validation of untrusted batches, the record codec,
// compression, and a builder for batches made in-process.
//
// A batch is stored and served verbatim, so this package never re-encodes a
// batch it did not build. The header is 61 bytes, all integers big-endian:
//
//	offset  size  field                 owner
//	     0     8  baseOffset            broker (outside CRC)
//	     8     4  batchLength           producer: bytes after this field
//	    12     4  partitionLeaderEpoch  broker (outside CRC)
//	    16     1  magic                 2
//	    17     4  crc                   CRC-32C (Castagnoli) of bytes 21..end
//	    21     2  attributes            bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//	    23     4  lastOffsetDelta       recordCount-1 for a producer's batch
//	    27     8  baseTimestamp         ms
//	    35     8  maxTimestamp          ms (broker-owned under LogAppendTime; inside CRC)
//	    43     8  producerId            -1 when not idempotent
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     …  records               compressed as a whole when codec ≠ 0
//
// Each record is: length varint, attributes int8, timestampDelta varlong,
// offsetDelta varint, key (varint length, -1 = null), value (likewise),
// header count varint, then per header a key (varint length, bytes) and a
// value (varint length, -1 = null). Varints are zig-zag encoded.
package batch
