package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDevCluster runs `samsa dev cluster --nodes 3`, uses it as the README
// says (a topic replicated three times, produce, consume), and stops it
// with Ctrl-C: every node stops gracefully and the command exits 0.
func TestDevCluster(t *testing.T) {
	bin := samsaBinary(t)
	kafka, raft, http := freePorts(t, 3), freePorts(t, 3), freePorts(t, 3)
	cmd := exec.Command(bin, "dev", "cluster", "--nodes", "3", "--data-dir", t.TempDir(),
		"--kafka-port", strconv.Itoa(kafka), "--raft-port", strconv.Itoa(raft), "--http-port", strconv.Itoa(http))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	var waitErr error
	waited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		select {
		case <-waited:
		default:
			cmd.Process.Signal(syscall.SIGINT)
			<-waited
		}
		if t.Failed() {
			t.Logf("samsa dev cluster printed:\n%s", out.String())
		}
	})
	b := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", kafka, kafka+1, kafka+2)
	require.Contains(t, waitOutput(t, &out, "Ctrl-C"), "export SAMSA_BROKERS="+b)

	waitFor(t, 90*time.Second, func() bool {
		r := samsa(t, bin, b, "", "cluster", "health")
		return r.code == 0 && strings.Contains(r.out, "3 broker(s)")
	}, "the cluster did not become healthy:\n%s", out.String())
	ok(t, bin, b, "", "topics", "create", "plays", "--partitions", "3", "--replication-factor", "3")
	input, want := keyedLines(0, 300)
	ok(t, bin, b, input, "produce", "plays", "--key-separator", ":")
	requireSameRecords(t, want, lines(ok(t, bin, b, "", "consume", "plays", "--from-beginning", "--exit").out))

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-waited:
		require.NoError(t, waitErr, "samsa dev cluster exits 0 after Ctrl-C")
	case <-time.After(60 * time.Second):
		t.Fatal("samsa dev cluster did not stop within 60 s of SIGINT")
	}
	require.Contains(t, out.String(), "stopping the cluster")
	require.NotContains(t, out.String(), "the other nodes go on", "no node died on its own")
}

// waitOutput waits until the output holds s, and returns it.
func waitOutput(t *testing.T, out *lockedBuffer, s string) string {
	t.Helper()
	waitFor(t, 30*time.Second, func() bool { return strings.Contains(out.String(), s) }, "no %q in the output", s)
	return out.String()
}

// freePorts finds n consecutive loopback ports that are free now.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(30000)
		var lns []net.Listener
		for i := range n {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return base
		}
	}
	t.Fatal("no free ports")
	return 0
}
