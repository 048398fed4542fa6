package connectors

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// writeBenchFile writes n JSON lines of 100 bytes (newline included).
func writeBenchFile(b *testing.B, path string, n int) {
	b.Helper()
	f, err := os.Create(path)
	require.NoError(b, err)
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		line := fmt.Sprintf(`{"user":"u%03d","track":"t%07d","ms":%06d,"pad":"`, i%997, i, i%1000000)
		fmt.Fprintf(w, "%s%s\"}\n", line, strings.Repeat("x", 100-len(line)-3))
	}
	require.NoError(b, w.Flush())
	require.NoError(b, f.Close())
}

// BenchmarkFileToTopic moves b.N 100-byte JSON lines from a file into a
// topic (acks=all, fsynced by Raft) and reports records/s. "drop" is the
// file input alone, "benthos-file" Benthos's own file input (lines,
// unbatched, no exactly-once) into drop, and "raw-read" a bufio.Scanner
// reading the same lines — the raw client, for reference; batch-4096
// shows what larger batches buy.
func BenchmarkFileToTopic(b *testing.B) {
	for _, c := range []struct {
		name   string
		input  string
		output string
	}{
		{"1-partition", "samsa", "samsa_topic: {topic: bench}"},
		{"4-partitions-keyed", "samsa", `samsa_topic: {topic: bench, partitions: 4, key: '${! json("user") }'}`},
		{"1-partition-batch-4096", "samsa-4096", "samsa_topic: {topic: bench, batching: {count: 4096, period: 1ms}}"},
		{"drop", "samsa", "drop: {}"},
		{"benthos-file", "benthos", "drop: {}"},
		{"raw-read", "raw", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.input == "raw" {
				benchRawRead(b)
				return
			}
			n := newNode(b)
			dir := b.TempDir()
			path := filepath.Join(dir, "plays.jsonl")
			writeBenchFile(b, path, b.N)
			input := fmt.Sprintf("samsa_file: {paths: [%q], format: jsonl, source_id: bench, tail: false}", path)
			if c.input == "samsa-4096" {
				input = strings.Replace(input, "tail: false", "tail: false, batch_size: 4096", 1)
			}
			if c.input == "benthos" {
				input = fmt.Sprintf("file: {paths: [%q], scanner: {lines: {}}}", path)
			}
			e := env(b, n.log)
			if c.output != "drop: {}" { // the topic's creation and election are not timed
				parts := int32(1)
				if strings.Contains(c.output, "partitions: 4") {
					parts = 4
				}
				require.NoError(b, n.log.CreateTopic(ctxT(b, time.Minute), replog.TopicSpec{Name: "bench", Partitions: parts, ReplicationFactor: 1}, false))
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			st := startStream(b, e, fmt.Sprintf("input:\n  %s\noutput:\n  %s\n", input, c.output))
			st.wait(b, 10*time.Minute)
			elapsed := time.Since(start)
			b.StopTimer()
			if c.output != "drop: {}" {
				require.Equal(b, b.N, countTopic(b, n.log, "bench"))
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}

// benchRawRead reads b.N lines with a bufio.Scanner, as a program reading
// the file without Samsa or Benthos would.
func benchRawRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "plays.jsonl")
	writeBenchFile(b, path, b.N)
	b.ResetTimer()
	start := time.Now()
	f, err := os.Open(path)
	require.NoError(b, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
	}
	elapsed := time.Since(start)
	b.StopTimer()
	require.NoError(b, sc.Err())
	require.Equal(b, b.N, n)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// cpuTime is the process's user plus system CPU time so far, in ns. The
// benchmarks report it per record beside the rate: the rate says how long
// a record took on this machine, cpu-ns what it cost, which other load on
// the machine changes less.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
