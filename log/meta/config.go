package meta

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Names of the topic configs Samsa implements.
const (
	ConfigRetentionMs          = "retention.ms"
	ConfigRetentionBytes       = "retention.bytes"
	ConfigSegmentBytes         = "segment.bytes"
	ConfigSegmentMs            = "segment.ms"
	ConfigCleanupPolicy        = "cleanup.policy"
	ConfigMaxMessageBytes      = "max.message.bytes"
	ConfigMessageTimestampType = "message.timestamp.type"
	ConfigIndexIntervalBytes   = "index.interval.bytes"
)

// ConfigType is a config's type as Kafka's DescribeConfigs (v3+) reports it.
type ConfigType int8

// Kafka's config types, with its numbers.
const (
	ConfigBoolean ConfigType = 1
	ConfigString  ConfigType = 2
	ConfigInt     ConfigType = 3
	ConfigLong    ConfigType = 5
	ConfigDouble  ConfigType = 6
	ConfigList    ConfigType = 7
)

// ConfigEntry is one topic config as DescribeConfigs shows it.
type ConfigEntry struct {
	Name  string
	Value string
	// Default is true when the topic does not set the key, so Value is the
	// default (Kafka's is_default, config source DEFAULT_CONFIG).
	Default bool
	Type    ConfigType
	// NoEffect marks a config Samsa accepts for compatibility but ignores.
	NoEffect bool
	Doc      string
}

// configDef is one row of the config table.
type configDef struct {
	name     string
	def      string
	typ      ConfigType
	check    func(v string) string // "" if v is acceptable, else why not
	noEffect bool
	doc      string
}

const maxLong = "9223372036854775807"

// configs is the one table of topic configs: validation, DescribeConfigs
// and LogSettingsOf all read it. Sorted by name.
var configs = []configDef{
	{"cleanup.policy", "delete", ConfigList, checkCleanupPolicy, false, "What happens to old segments: only delete; compaction is not supported yet."},
	{"compression.type", "producer", ConfigString, checkCompression, true, "Only producer: batches are stored exactly as produced, never recompressed."},
	{"delete.retention.ms", "86400000", ConfigLong, longAtLeast(0), true, "Tombstone retention for compacted topics; no compaction, no effect."},
	{"file.delete.delay.ms", "60000", ConfigLong, longAtLeast(0), true, "Delay before deleting a removed segment's file; files go when no read holds them."},
	{"flush.messages", maxLong, ConfigLong, longAtLeast(1), true, "Forced fsync interval in messages; Raft fsyncs every committed entry."},
	{"flush.ms", maxLong, ConfigLong, longAtLeast(0), true, "Forced fsync interval in ms; Raft fsyncs every committed entry."},
	{"follower.replication.throttled.replicas", "", ConfigList, checkThrottled, true, "Replication throttling is Kafka's; Raft replication is not throttled."},
	{"index.interval.bytes", "4096", ConfigInt, intIn(0, math.MaxInt32), false, "Bytes of batches between offset and time index entries."},
	{"leader.replication.throttled.replicas", "", ConfigList, checkThrottled, true, "Replication throttling is Kafka's; Raft replication is not throttled."},
	{"local.retention.bytes", "-2", ConfigLong, longAtLeast(-2), true, "Tiered storage's local retention; no tiered storage."},
	{"local.retention.ms", "-2", ConfigLong, longAtLeast(-2), true, "Tiered storage's local retention; no tiered storage."},
	{"max.compaction.lag.ms", maxLong, ConfigLong, longAtLeast(1), true, "Compaction setting; no compaction, no effect."},
	{"max.message.bytes", "1048588", ConfigInt, checkMaxMessageBytes, false, "Largest record batch accepted, in bytes; at most 64 MiB, the storage engine's limit."},
	{"message.downconversion.enable", "true", ConfigBoolean, checkBool, true, "Down-conversion for old consumers; batches are always served as stored."},
	{"message.timestamp.after.max.ms", maxLong, ConfigLong, longAtLeast(0), true, "Timestamp skew check; not enforced."},
	{"message.timestamp.before.max.ms", maxLong, ConfigLong, longAtLeast(0), true, "Timestamp skew check; not enforced."},
	{"message.timestamp.difference.max.ms", maxLong, ConfigLong, longAtLeast(0), true, "Timestamp skew check (deprecated in Kafka); not enforced."},
	{"message.timestamp.type", "CreateTime", ConfigString, oneOf("CreateTime", "LogAppendTime"), false, "Whose timestamp records carry: the producer's (CreateTime) or the broker's (LogAppendTime)."},
	{"min.cleanable.dirty.ratio", "0.5", ConfigDouble, checkRatio, true, "Compaction setting; no compaction, no effect."},
	{"min.compaction.lag.ms", "0", ConfigLong, longAtLeast(0), true, "Compaction setting; no compaction, no effect."},
	{"min.insync.replicas", "1", ConfigInt, intIn(1, math.MaxInt32), true, "A Raft majority acknowledges every write; acks=all always means a quorum."},
	{"preallocate", "false", ConfigBoolean, checkBool, true, "File preallocation; segments grow as written."},
	{"remote.storage.enable", "false", ConfigBoolean, onlyFalse("tiered storage is not supported"), true, "Tiered storage; not supported, false only."},
	{"retention.bytes", "-1", ConfigLong, longAtLeast(-1), false, "Oldest segments are deleted while the partition is larger than this; -1 means no limit."},
	{"retention.ms", "604800000", ConfigLong, longAtLeast(-1), false, "Segments older than this many ms are deleted; -1 keeps data forever."},
	{"segment.bytes", "1073741824", ConfigInt, intIn(14, math.MaxInt32), false, "Size in bytes at which a segment file is rolled."},
	{"segment.index.bytes", "10485760", ConfigInt, intIn(4, math.MaxInt32), true, "Index files are sized by their entries, not preallocated."},
	{"segment.jitter.ms", "0", ConfigLong, longAtLeast(0), true, "Segment roll jitter; segments roll at segment.ms exactly."},
	{"segment.ms", "604800000", ConfigLong, longAtLeast(1), false, "A segment is rolled once its batches span this many ms."},
	{"unclean.leader.election.enable", "false", ConfigBoolean, onlyFalse("Raft never elects a replica that lacks committed data"), true, "Raft never elects a replica without committed data; false only."},
}

// configIndex returns the row for name, or nil.
func configIndex(name string) *configDef {
	i, found := slices.BinarySearchFunc(configs, name, func(d configDef, n string) int { return strings.Compare(d.name, n) })
	if !found {
		return nil
	}
	return &configs[i]
}

// ConfigDefault returns a known config's default, as Kafka shows it.
func ConfigDefault(name string) (string, bool) {
	if d := configIndex(name); d != nil {
		return d.def, true
	}
	return "", false
}

// ValidateConfigs checks every key of set, in name order, and reports the
// first problem with each: unknown names and refused values, each wrapping
// ErrInvalidConfig.
func ValidateConfigs(set map[string]string) error {
	var errs []error
	for _, name := range sortedKeys(set) {
		if err := validateConfig(name, set[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validateConfig(name, value string) error {
	d := configIndex(name)
	if d == nil {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, name)
	}
	if why := d.check(value); why != "" {
		return fmt.Errorf("%w: %s=%q: %s", ErrInvalidConfig, name, value, why)
	}
	return nil
}

// DescribeConfigs lists every known config, sorted by name, with the value
// in set or else the default.
func DescribeConfigs(set map[string]string) []ConfigEntry {
	out := make([]ConfigEntry, len(configs))
	for i, d := range configs {
		v, ok := set[d.name]
		if !ok {
			v = d.def
		}
		out[i] = ConfigEntry{Name: d.name, Value: v, Default: !ok, Type: d.typ, NoEffect: d.noEffect, Doc: d.doc}
	}
	return out
}

// LogSettings are the configs the storage layer acts on, with defaults
// applied and parsed.
type LogSettings struct {
	RetentionMs        int64 // -1 keeps data forever
	RetentionBytes     int64 // -1 means no limit
	SegmentBytes       int64
	SegmentMs          int64
	IndexIntervalBytes int32
	MaxMessageBytes    int32 // at most partition.MaxBatchBytes
	LogAppendTime      bool  // message.timestamp.type=LogAppendTime
}

// LogSettingsOf parses the storage configs in cfgs (a topic's explicitly
// set configs), taking the default for any that is unset or, which
// validation prevents, does not parse.
func LogSettingsOf(cfgs map[string]string) LogSettings {
	return LogSettings{
		RetentionMs:        configInt(cfgs, ConfigRetentionMs),
		RetentionBytes:     configInt(cfgs, ConfigRetentionBytes),
		SegmentBytes:       configInt(cfgs, ConfigSegmentBytes),
		SegmentMs:          configInt(cfgs, ConfigSegmentMs),
		IndexIntervalBytes: int32(configInt(cfgs, ConfigIndexIntervalBytes)),
		MaxMessageBytes:    int32(configInt(cfgs, ConfigMaxMessageBytes)),
		LogAppendTime:      configValue(cfgs, ConfigMessageTimestampType) == "LogAppendTime",
	}
}

// LogSettings returns the topic's storage settings.
func (t Topic) LogSettings() LogSettings { return LogSettingsOf(t.Configs) }

// configValue returns the value of a known config: set and valid, or the default.
func configValue(cfgs map[string]string, name string) string {
	d := configIndex(name)
	if v, ok := cfgs[name]; ok && d.check(v) == "" {
		return v
	}
	return d.def
}

func configInt(cfgs map[string]string, name string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(configValue(cfgs, name)), 10, 64)
	return n
}
