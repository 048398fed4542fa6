package partition

import "errors"

// Refusals: a batch that gets one of these is not stored and changes
// nothing. Each maps to one Kafka error code (engine/kafka/errors.go).
var (
	// ErrCorrupt means the batch is not a valid RecordBatch v2 (CORRUPT_MESSAGE).
	ErrCorrupt = errors.New("partition: corrupt batch")
	// ErrTooLarge means the batch is larger than MaxBatchBytes
	// (MESSAGE_TOO_LARGE).
	ErrTooLarge = errors.New("partition: batch too large")
	// ErrInvalidRecord means a well-formed batch this partition will not
	// take from a producer, such as a control batch (INVALID_RECORD).
	ErrInvalidRecord = errors.New("partition: invalid record")
	// ErrOutOfOrderSequence means an idempotent producer's batch does not
	// continue its sequence (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("partition: out of order sequence number")
	// ErrInvalidProducerEpoch means the batch comes from an older epoch of
	// its producer, a fenced zombie (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("partition: invalid producer epoch")
	// ErrSourceOverlap means a source batch starts at or below the
	// position this partition already holds for the source but ends above
	// it: the source must drop the records it already wrote and resend.
	ErrSourceOverlap = errors.New("partition: source batch overlaps stored positions")
	// ErrBadEntry means the entry around the batch does not decode.
	ErrBadEntry = errors.New("partition: malformed entry")
)

// ErrCheckpoint means the checkpoint file exists but cannot be trusted.
var ErrCheckpoint = errors.New("partition: bad checkpoint")
