package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFormat(t *testing.T) {
	r := &kgo.Record{
		Topic: "t", Partition: 1, Offset: 42, Key: []byte("k"), Value: []byte("hello"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("x=y")}},
	}
	for _, tc := range []struct {
		format, want string
	}{
		{`%v`, "hello\n"},
		{`%s`, "hello\n"},
		{`%k %v %p %o %T %h`, "k hello 1 42 1700000000123 a=1,b=x=y\n"},
		{`%t[%p]@%o`, "t[1]@42\n"},
		{`%K:%S`, "1:5\n"},
		{`%k\t%v\n`, "k\thello\n"}, // ends in a newline: none added
		{`%v\n\n`, "hello\n\n"},
		{`100%% %v`, "100% hello\n"},
		{`a\\b %v`, `a\b hello` + "\n"},
		{`\r%v`, "\rhello\n"},
		{``, "\n"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			f, err := parseFormat(tc.format)
			require.NoError(t, err)
			var b bytes.Buffer
			f.write(&b, r)
			require.Equal(t, tc.want, b.String())
		})
	}
}

func TestFormatNoKeyNoHeaders(t *testing.T) {
	f, err := parseFormat(`[%k] [%h] %v`)
	require.NoError(t, err)
	var b bytes.Buffer
	f.write(&b, &kgo.Record{Value: []byte("v")})
	require.Equal(t, "[] [] v\n", b.String())
}

func TestFormatErrors(t *testing.T) {
	for _, s := range []string{`%x`, `%`, `%v %`, `\q`, `%v\`} {
		t.Run(s, func(t *testing.T) {
			_, err := parseFormat(s)
			require.Error(t, err)
			require.Contains(t, err.Error(), "--format")
		})
	}
}

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want startOffset
	}{
		{"0", startOffset{n: 0}},
		{"17", startOffset{n: 17}},
		{"-5", startOffset{n: 5, fromEnd: true}},
		{"-0", startOffset{n: 0, fromEnd: true}},
		{" 3 ", startOffset{n: 3}},
	} {
		got, err := parseOffset(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "abc", "1.5", "--3", "end"} {
		_, err := parseOffset(bad)
		require.Error(t, err, bad)
	}
}

func TestOffsetWithin(t *testing.T) {
	for _, tc := range []struct {
		o          startOffset
		start, end int64
		want       int64
	}{
		{startOffset{n: 5}, 0, 10, 5},
		{startOffset{n: 50}, 0, 10, 10}, // past the end: the end
		{startOffset{n: 2}, 4, 10, 4},   // deleted by retention: the start
		{startOffset{n: 3, fromEnd: true}, 0, 10, 7},
		{startOffset{n: 30, fromEnd: true}, 2, 10, 2}, // more than there is: the start
		{startOffset{n: 0, fromEnd: true}, 0, 10, 10},
	} {
		require.Equal(t, tc.want, tc.o.within(tc.start, tc.end), "%+v in [%d,%d)", tc.o, tc.start, tc.end)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"15m", now.Add(-15 * time.Minute)},
		{"2h30m", now.Add(-150 * time.Minute)},
		{"0s", now},
		{"2024-05-01T10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"2024-05-01T10:00:00.250+02:00", time.Date(2024, 5, 1, 8, 0, 0, 250e6, time.UTC)},
	} {
		got, err := parseSince(tc.in, now)
		require.NoError(t, err, tc.in)
		require.True(t, tc.want.Equal(got), "%s: got %s, want %s", tc.in, got, tc.want)
	}
	for _, bad := range []string{"", "yesterday", "-15m", "2024-05-01", "15"} {
		_, err := parseSince(bad, now)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "RFC 3339")
	}
}

func TestConsumeFlagCombinations(t *testing.T) {
	now := time.Now()
	for _, f := range []consumeFlags{
		{fromBeginning: true, offset: "3", partition: -1},
		{offset: "-1", since: "1m", partition: -1},
		{group: "g", partition: 0},
		{format: "%v", printKeys: true, partition: -1},
		{max: -1, partition: -1},
	} {
		_, _, err := f.parse(now)
		require.True(t, isUsage(err), "%+v: %v", f, err)
	}
	s, format, err := (&consumeFlags{since: "1h", printKeys: true, partition: -1}).parse(now)
	require.NoError(t, err)
	require.True(t, s.since.Equal(now.Add(-time.Hour)))
	var b bytes.Buffer
	format.write(&b, &kgo.Record{Key: []byte("k"), Value: []byte("v")})
	require.Equal(t, "k\tv\n", b.String())
}

func TestNearNames(t *testing.T) {
	topics := []string{"MyfirstTopic1", "orders", "orders-dlq", "payments", "x"}
	require.Equal(t, []string{"MyfirstTopic1"}, nearNames("MyFirstTopic1", topics))
	require.Equal(t, []string{"MyfirstTopic1"}, nearNames("MyfirstTopic", topics))
	require.Equal(t, []string{"orders"}, nearNames("ordrs", topics))
	require.Empty(t, nearNames("xylophone", topics))
	require.Equal(t, []string{"orders", "orders-dlq"}, nearNames("order", topics))
	require.Empty(t, nearNames("inventory", topics))
	require.Equal(t, 3, editDistance("kitten", "sitting"))
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"topics", "create", "x", "--partitions", "two"},
		{"topics", "list", "-o", "xml"},
		{"topics", "describe"},
		{"topics", "nosuch"},
		{"consume", "t", "--since", "yesterday"},
		{"groups", "reset", "g", "--topic", "t"},
		{"bench", "produce", "--compression", "brotli"},
		{"produce", "t", "--header", "novalue"},
		{"topics", "list", "--timeout", "0s"},
	} {
		root := newRoot()
		root.SetArgs(args)
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		err := root.Execute()
		require.True(t, isUsage(err), "%v: %v", args, err)
	}
}
