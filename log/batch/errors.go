package batch

import "errors"

// Errors returned for batches that cannot be stored. They are checked with
// errors.Is; the wrapped message says which field was wrong.
var (
	// ErrCorrupt means the bytes are not a well-formed RecordBatch: too short,
	// a length that disagrees with the buffer, or a record that does not parse.
	ErrCorrupt = errors.New("batch: corrupt")
	// ErrCRC means the CRC-32C over the batch does not match its crc field.
	ErrCRC = errors.New("batch: crc mismatch")
	// ErrMagic means the batch is not magic 2 (v0/v1 message sets are refused).
	ErrMagic = errors.New("batch: unsupported magic")
	// ErrCodec means the attributes name a compression codec this broker does not know.
	ErrCodec = errors.New("batch: unknown compression codec")
	// ErrTooLarge means a batch or its decompressed records exceed the allowed size.
	ErrTooLarge = errors.New("batch: too large")
	// ErrEmpty means a Builder was asked to build a batch with no records,
	// which Kafka's format cannot express (lastOffsetDelta would be -1).
	ErrEmpty = errors.New("batch: no records")
)
