package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/testcluster"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testcluster.RemoveBinary()
	os.Exit(code)
}

// samsaBinary is the samsa binary the end-to-end tests run, built once.
func samsaBinary(t *testing.T) string { return testcluster.Binary(t) }

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// server is a `samsa serve` child process.
type server struct {
	kafka   string
	cmd     *exec.Cmd
	log     *lockedBuffer
	done    chan error
	stopped bool
}

// startServer runs `samsa serve` as README's quickstart does, on free
// ports and a temporary data directory, and waits until its Kafka port
// answers. The test fails if it does not stop cleanly on SIGTERM.
func startServer(t *testing.T, bin string) *server {
	t.Helper()
	s := &server{kafka: freeAddr(t), log: &lockedBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--kafka-addr", s.kafka,
		"--raft-addr", freeAddr(t), "--http-addr", freeAddr(t))
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	require.NoError(t, s.cmd.Start())
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if !s.stopped {
			s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.kafka, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case err := <-s.done:
			s.stopped = true
			t.Fatalf("samsa serve exited before answering: %v\n%s", err, s.log)
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "samsa serve did not answer on %s within 60 s", s.kafka)
	}
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		s.stopped = true
		require.NoError(t, err, "samsa serve should exit 0 on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("samsa serve did not stop within 30 s of SIGTERM")
	}
}

// result is what one CLI run printed and its exit code.
type result struct {
	out, err string
	code     int
}

// samsa runs the CLI against brokers with stdin as its input.
func samsa(t *testing.T, bin, brokers, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "SAMSA_BROKERS="+brokers)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out: out.String(), err: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("samsa %s: %v", strings.Join(args, " "), err)
	}
	require.NoError(t, ctx.Err(), "samsa %s timed out", strings.Join(args, " "))
	return r
}

// ok runs the CLI and requires success.
func ok(t *testing.T, bin, brokers, stdin string, args ...string) result {
	t.Helper()
	r := samsa(t, bin, brokers, stdin, args...)
	require.Equal(t, 0, r.code, "samsa %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.out, r.err)
	return r
}

func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// keyedLines makes n lines key:value over ten keys; each value names its
// key and sequence number, so that order per key can be checked.
func keyedLines(from, n int) (input string, values []string) {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		k := fmt.Sprintf("k%d", i%10)
		v := fmt.Sprintf("%s-%04d", k, i)
		fmt.Fprintf(&b, "%s:%s\n", k, v)
		values = append(values, v)
	}
	return b.String(), values
}

// requireSameRecords checks got against want as sets, and that each key's
// values arrive in the order they were produced.
func requireSameRecords(t *testing.T, want, got []string) {
	t.Helper()
	require.ElementsMatch(t, want, got)
	last := map[string]int{}
	for _, v := range got {
		key, seq, _ := strings.Cut(v, "-")
		n, err := strconv.Atoi(seq)
		require.NoError(t, err, v)
		if prev, seen := last[key]; seen {
			require.Greater(t, n, prev, "records of key %s out of order", key)
		}
		last[key] = n
	}
}

func groupLag(t *testing.T, bin, brokers, group string) groupDescription {
	t.Helper()
	var d groupDescription
	r := ok(t, bin, brokers, "", "groups", "describe", group, "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.out), &d), r.out)
	return d
}

// TestQuickstart runs the tutorial path of README's quickstart against a
// real `samsa serve`: topics, console producer and consumer, a consumer
// group's lag and reset, replay by time, and the errors a newcomer meets.
func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := samsaBinary(t)
	srv := startServer(t, bin)
	b := srv.kafka
	const topic = "MyfirstTopic1"

	r := ok(t, bin, b, "", "topics", "create", topic, "--partitions", "2", "--replication-factor", "1")
	require.Contains(t, r.out, "created topic "+topic)

	var listed []topicSummary
	r = ok(t, bin, b, "", "topics", "list", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.out), &listed), r.out)
	require.Contains(t, listed, topicSummary{Name: topic, Partitions: 2, ReplicationFactor: 1})
	require.Contains(t, ok(t, bin, b, "", "topics", "list").out, topic)

	input, want := keyedLines(0, 100)
	r = ok(t, bin, b, input, "produce", topic, "--key-separator", ":")
	require.Contains(t, r.err, "produced 100 records")

	var desc topicDescription
	r = ok(t, bin, b, "", "topics", "describe", topic, "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.out), &desc), r.out)
	require.Len(t, desc.Partitions, 2)
	var total int64
	for _, p := range desc.Partitions {
		require.Positive(t, p.Leader, "partition %d has no leader", p.Partition)
		total += p.End - p.Start
	}
	require.EqualValues(t, 100, total)
	require.NotEmpty(t, desc.Configs)
	require.Contains(t, ok(t, bin, b, "", "topics", "describe", topic).out, "retention.ms")

	got := lines(ok(t, bin, b, "", "consume", topic, "--from-beginning", "--exit").out)
	requireSameRecords(t, want, got)

	// A group reads everything once; a second run has nothing new.
	got = lines(ok(t, bin, b, "", "consume", topic, "--group", "g", "--from-beginning", "--exit").out)
	requireSameRecords(t, want, got)
	require.Empty(t, ok(t, bin, b, "", "consume", topic, "--group", "g", "--exit").out)
	d := groupLag(t, bin, b, "g")
	require.Zero(t, d.TotalLag)
	require.Len(t, d.Partitions, 2)

	more, wantMore := keyedLines(100, 10)
	ok(t, bin, b, more, "produce", topic, "--key-separator", ":")
	d = groupLag(t, bin, b, "g")
	require.EqualValues(t, 10, d.TotalLag)
	var sum int64
	for _, p := range d.Partitions {
		sum += p.Lag
	}
	require.EqualValues(t, 10, sum)

	r = ok(t, bin, b, "", "groups", "reset", "g", "--topic", topic, "--to-earliest")
	require.Contains(t, r.out, "→")
	got = lines(ok(t, bin, b, "", "consume", topic, "--group", "g", "--exit").out)
	requireSameRecords(t, append(slices.Clone(want), wantMore...), got)
	require.Zero(t, groupLag(t, bin, b, "g").TotalLag)

	// Replay by time: only the batch written after the moment asked for.
	first, _ := keyedLines(200, 5)
	ok(t, bin, b, first, "produce", topic, "--key-separator", ":")
	between := time.Now()
	time.Sleep(1500 * time.Millisecond)
	second, wantSecond := keyedLines(300, 5)
	ok(t, bin, b, second, "produce", topic, "--key-separator", ":")
	got = lines(ok(t, bin, b, "", "consume", topic, "--since", between.Format(time.RFC3339Nano), "--exit").out)
	requireSameRecords(t, wantSecond, got)

	// Ctrl-C: an interrupted group consumer commits what it printed and
	// exits 0.
	all := len(want) + len(wantMore) + 10
	c := exec.Command(bin, "consume", topic, "--group", "interrupted", "--from-beginning")
	c.Env = append(os.Environ(), "SAMSA_BROKERS="+b)
	var cout lockedBuffer
	var cerr bytes.Buffer
	c.Stdout, c.Stderr = &cout, &cerr
	require.NoError(t, c.Start())
	waitFor(t, 20*time.Second, func() bool { return strings.Count(cout.String(), "\n") == all },
		"the interrupted consumer should print %d records", all)
	require.NoError(t, c.Process.Signal(os.Interrupt))
	require.NoError(t, c.Wait(), "consume should exit 0 on SIGINT: %s", &cerr)
	require.Zero(t, groupLag(t, bin, b, "interrupted").TotalLag)

	// What samsa wrote, kcat reads (when it is installed).
	if kcat, err := exec.LookPath("kcat"); err == nil {
		out, err := exec.Command(kcat, "-b", b, "-C", "-t", topic, "-e", "-q", "-f", "%s\n").Output()
		require.NoError(t, err)
		require.Len(t, lines(string(out)), all)
	} else {
		t.Log("kcat is not installed: skipping its check")
	}

	// Delete, on a topic of its own.
	ok(t, bin, b, "", "topics", "create", "scratch")
	require.Contains(t, ok(t, bin, b, "", "topics", "delete", "scratch").out, "deleted topic scratch")
	require.NotContains(t, ok(t, bin, b, "", "topics", "list").out, "scratch")

	// The errors a newcomer meets.
	r = samsa(t, bin, b, "", "topics", "describe", "MyFirstTopic1")
	require.Equal(t, 1, r.code, r.err)
	require.Contains(t, r.err, `did you mean "MyfirstTopic1"?`)
	for _, args := range [][]string{
		{"topics", "create", "x", "--partitions", "two"},
		{"consume", topic, "--offset", "abc"},
		{"consume", topic, "--format", "%x"},
		{"produce", topic, "--acks", "2"},
		{"topics", "list", "-o", "xml"},
		{"topics", "describe"},
	} {
		r = samsa(t, bin, b, "", args...)
		require.Equal(t, 2, r.code, "samsa %s: %s", strings.Join(args, " "), r.err)
	}
	nobody := freeAddr(t)
	r = samsa(t, bin, b, "", "topics", "list", "--brokers", nobody)
	require.Equal(t, 1, r.code, r.err)
	require.Contains(t, r.err, nobody)
	require.Contains(t, r.err, "samsa serve")

	ok(t, bin, b, "", "cluster", "health")
	var info clusterInfo
	r = ok(t, bin, b, "", "cluster", "info", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.out), &info), r.out)
	require.Len(t, info.Brokers, 1)
	require.Equal(t, b, info.Brokers[0].Address)
	require.NotEmpty(t, info.Brokers[0].APIs)

	srv.stop(t)
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, total time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(total)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(msg, args...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a buffer a child process writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
