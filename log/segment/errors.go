package segment

import "errors"

var (
	// ErrOffsetOutOfRange means a read asked for an offset below the log
	// start offset or above the end of the log.
	ErrOffsetOutOfRange = errors.New("segment: offset out of range")
	// ErrCorrupt means bytes on disk are not what the log wrote: a batch
	// that does not parse or fails its CRC where data was trusted, or a
	// recovery point beyond the end of the log.
	ErrCorrupt = errors.New("segment: corrupt")
	// ErrNonMonotonic means an appended batch's base offset is not the log's
	// next offset. Offsets are dense; the caller assigns them.
	ErrNonMonotonic = errors.New("segment: batch offset is not the next offset")
	// ErrClosed means the log was closed.
	ErrClosed = errors.New("segment: log closed")
)
