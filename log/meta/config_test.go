package meta

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigTable(t *testing.T) {
	require.True(t, slices.IsSortedFunc(configs, func(a, b configDef) int { return strings.Compare(a.name, b.name) }), "configIndex binary-searches the table")
	for _, d := range configs {
		require.NoError(t, validateConfig(d.name, d.def), "the default of %s must pass its validator", d.name)
		require.NotEmpty(t, d.doc, d.name)
		require.NotZero(t, d.typ, d.name)
	}
	v, ok := ConfigDefault("retention.ms")
	require.True(t, ok)
	require.Equal(t, "604800000", v)
	_, ok = ConfigDefault("retention.minutes")
	require.False(t, ok)
}

func TestValidateConfigs(t *testing.T) {
	cases := []struct {
		key  string
		good []string
		bad  []string
	}{
		{"retention.ms", []string{"-1", "0", "604800000", " 5 ", "9223372036854775807"}, []string{"-2", "", "1.5", "1d", "9223372036854775808"}},
		{"retention.bytes", []string{"-1", "0", "1073741824"}, []string{"-2", "x"}},
		{"segment.bytes", []string{"14", "1073741824", "2147483647"}, []string{"13", "2147483648", "-1", "1GiB"}},
		{"segment.ms", []string{"1", "604800000"}, []string{"0", "-1", "x"}},
		{"cleanup.policy", []string{"delete", " delete "}, []string{"compact", "compact,delete", "delete,compact", "", "remove"}},
		{"max.message.bytes", []string{"0", "1048588", "67108864"}, []string{"67108865", "-1", "x"}},
		{"message.timestamp.type", []string{"CreateTime", "LogAppendTime"}, []string{"createtime", "", "AppendTime"}},
		{"index.interval.bytes", []string{"0", "4096"}, []string{"-1", "2147483648"}},
		{"min.insync.replicas", []string{"1", "2"}, []string{"0", "x"}},
		{"unclean.leader.election.enable", []string{"false", "FALSE"}, []string{"true", "True", "no"}},
		{"compression.type", []string{"producer"}, []string{"zstd", "gzip", "lz4", "snappy", "uncompressed", "brotli", ""}},
		{"message.downconversion.enable", []string{"true", "false"}, []string{"yes", ""}},
		{"file.delete.delay.ms", []string{"0", "60000"}, []string{"-1"}},
		{"flush.messages", []string{"1", "9223372036854775807"}, []string{"0"}},
		{"flush.ms", []string{"0", "1000"}, []string{"-1"}},
		{"preallocate", []string{"false", "true"}, []string{"1"}},
		{"segment.index.bytes", []string{"4", "10485760"}, []string{"3"}},
		{"segment.jitter.ms", []string{"0", "100"}, []string{"-1"}},
		{"delete.retention.ms", []string{"0", "86400000"}, []string{"-1"}},
		{"min.compaction.lag.ms", []string{"0"}, []string{"-1"}},
		{"max.compaction.lag.ms", []string{"1"}, []string{"0"}},
		{"min.cleanable.dirty.ratio", []string{"0", "0.5", "1", "1.0"}, []string{"-0.1", "1.1", "NaN", "half"}},
		{"message.timestamp.difference.max.ms", []string{"0"}, []string{"-1"}},
		{"message.timestamp.before.max.ms", []string{"0", "3600000"}, []string{"-1"}},
		{"message.timestamp.after.max.ms", []string{"0", "3600000"}, []string{"-1"}},
		{"follower.replication.throttled.replicas", []string{"", "*", "0:1,1:2", " 0:1 , 2:3 "}, []string{"0", "a:b", "0:1,", "-1:0"}},
		{"leader.replication.throttled.replicas", []string{"", "*", "0:1"}, []string{"all"}},
		{"local.retention.ms", []string{"-2", "-1", "0"}, []string{"-3"}},
		{"local.retention.bytes", []string{"-2", "100"}, []string{"-3"}},
		{"remote.storage.enable", []string{"false"}, []string{"true"}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.key] = true
		for _, v := range c.good {
			require.NoError(t, ValidateConfigs(map[string]string{c.key: v}), "%s=%q", c.key, v)
		}
		for _, v := range c.bad {
			err := ValidateConfigs(map[string]string{c.key: v})
			require.ErrorIs(t, err, ErrInvalidConfig, "%s=%q", c.key, v)
			require.Contains(t, err.Error(), c.key)
		}
	}
	for _, d := range configs {
		require.True(t, covered[d.name], "no cases for %s", d.name)
	}
}

func TestConfigMessages(t *testing.T) {
	cases := []struct {
		key, value, says string
	}{
		{"cleanup.policy", "compact", "compaction is not supported yet"},
		{"cleanup.policy", "compact,delete", "compaction is not supported yet"},
		{"max.message.bytes", "100000000", "64 MiB"},
		{"unclean.leader.election.enable", "true", "Raft never elects"},
		{"compression.type", "zstd", "never recompresses"},
		{"retention.ms", "-5", "at least -1"},
		{"no.such.config", "1", `unknown topic config "no.such.config"`},
	}
	for _, c := range cases {
		err := ValidateConfigs(map[string]string{c.key: c.value})
		require.ErrorIs(t, err, ErrInvalidConfig)
		require.Contains(t, err.Error(), c.says)
	}
}

// TestValidateConfigsReportsEveryKey: one error per bad key, in name order.
func TestValidateConfigsReportsEveryKey(t *testing.T) {
	err := ValidateConfigs(map[string]string{"segment.ms": "0", "retention.ms": "x", "zzz": "1", "retention.bytes": "5"})
	require.ErrorIs(t, err, ErrInvalidConfig)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3)
	require.Contains(t, lines[0], "retention.ms")
	require.Contains(t, lines[1], "segment.ms")
	require.Contains(t, lines[2], "zzz")
	require.NoError(t, ValidateConfigs(nil))
}

func TestDescribeConfigs(t *testing.T) {
	entries := DescribeConfigs(map[string]string{"retention.ms": "-1", "cleanup.policy": "delete"})
	require.Len(t, entries, len(configs))
	require.True(t, slices.IsSortedFunc(entries, func(a, b ConfigEntry) int { return strings.Compare(a.Name, b.Name) }))
	byName := map[string]ConfigEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	require.Equal(t, ConfigEntry{Name: "retention.ms", Value: "-1", Type: ConfigLong, Doc: byName["retention.ms"].Doc}, byName["retention.ms"])
	require.False(t, byName["cleanup.policy"].Default, "set explicitly, even to the default value")
	require.Equal(t, ConfigEntry{Name: "segment.bytes", Value: "1073741824", Default: true, Type: ConfigInt, Doc: byName["segment.bytes"].Doc}, byName["segment.bytes"])
	require.True(t, byName["min.insync.replicas"].NoEffect)
	require.False(t, byName["max.message.bytes"].NoEffect)
}

func TestLogSettings(t *testing.T) {
	require.Equal(t, LogSettings{
		RetentionMs: 604800000, RetentionBytes: -1, SegmentBytes: 1 << 30, SegmentMs: 604800000,
		IndexIntervalBytes: 4096, MaxMessageBytes: 1048588,
	}, LogSettingsOf(nil))
	require.Equal(t, LogSettings{
		RetentionMs: -1, RetentionBytes: 1000, SegmentBytes: 1 << 20, SegmentMs: 60000,
		IndexIntervalBytes: 0, MaxMessageBytes: 64 << 20, LogAppendTime: true,
	}, Topic{Configs: map[string]string{
		"retention.ms": "-1", "retention.bytes": " 1000", "segment.bytes": "1048576", "segment.ms": "60000",
		"index.interval.bytes": "0", "max.message.bytes": "67108864", "message.timestamp.type": "LogAppendTime",
		"retention.minutes": "5", // unknown: ignored here, refused by validation
	}}.LogSettings())
	// A value validation would refuse (it cannot be stored) falls back to the default.
	require.Equal(t, int64(1<<30), LogSettingsOf(map[string]string{"segment.bytes": "1"}).SegmentBytes)
}
