package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults, as Kafka's.
const (
	DefaultSegmentBytes       = 1 << 30              // segment.bytes: 1 GiB
	DefaultSegmentMs          = 7 * 24 * 3600 * 1000 // segment.ms: 7 days
	DefaultRetentionMs        = 7 * 24 * 3600 * 1000 // retention.ms: 7 days
	DefaultRetentionBytes     = -1                   // retention.bytes: unlimited
	DefaultIndexIntervalBytes = 4096                 // index.interval.bytes

	minSegmentBytes = 14            // Kafka's lower bound for segment.bytes
	maxSegmentBytes = math.MaxInt32 // positions in the offset index are 4 bytes
)

// Config holds the settings of one partition log. A zero field takes the
// default named in its comment; call WithDefaults, then Validate.
type Config struct {
	// SegmentBytes is the size in bytes at which the active segment is rolled
	// (segment.bytes). Default 1 GiB; at most 2 GiB − 1.
	SegmentBytes int64 `yaml:"segment.bytes"`
	// SegmentMs rolls the active segment once the batches it receives are
	// this many milliseconds newer than its first batch (segment.ms, compared
	// on record timestamps as Kafka does). Default 7 days.
	SegmentMs int64 `yaml:"segment.ms"`
	// RetentionMs deletes a segment whose largest timestamp is older than this
	// many milliseconds (retention.ms). −1 keeps data forever. Default 7 days.
	RetentionMs int64 `yaml:"retention.ms"`
	// RetentionBytes deletes the oldest segments while the log is larger than
	// this many bytes (retention.bytes). −1, the default, means no limit.
	RetentionBytes int64 `yaml:"retention.bytes"`
	// IndexIntervalBytes is the spacing, in bytes of batches, between offset
	// and time index entries (index.interval.bytes). Default 4096.
	IndexIntervalBytes int32 `yaml:"index.interval.bytes"`

	// Now is the clock used only for segments whose batches carry no
	// timestamp (retention and segment.ms fall back to file times). Default
	// time.Now.
	Now func() time.Time `yaml:"-"`
	// Logger receives recovery and retention events. Default slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentMs == 0 {
		c.SegmentMs = DefaultSegmentMs
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = DefaultRetentionMs
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = DefaultRetentionBytes
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every out-of-range field at once.
func (c Config) Validate() error {
	var errs []error
	if c.SegmentBytes < minSegmentBytes || c.SegmentBytes > maxSegmentBytes {
		errs = append(errs, fmt.Errorf("segment.bytes: %d is outside [%d, %d]", c.SegmentBytes, minSegmentBytes, maxSegmentBytes))
	}
	if c.SegmentMs < 1 {
		errs = append(errs, fmt.Errorf("segment.ms: %d must be at least 1", c.SegmentMs))
	}
	if c.RetentionMs < -1 {
		errs = append(errs, fmt.Errorf("retention.ms: %d must be -1 (forever) or at least 0", c.RetentionMs))
	}
	if c.RetentionBytes < -1 {
		errs = append(errs, fmt.Errorf("retention.bytes: %d must be -1 (no limit) or at least 0", c.RetentionBytes))
	}
	if c.IndexIntervalBytes < 0 {
		errs = append(errs, fmt.Errorf("index.interval.bytes: %d must be at least 0", c.IndexIntervalBytes))
	}
	return errors.Join(errs...)
}
