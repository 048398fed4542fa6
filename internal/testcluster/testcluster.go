// Package testcluster runs a cluster of real `samsa serve` processes on
// loopback ports for tests, and lets a test do to any node what happens to
// machines: SIGKILL it, pause it (SIGSTOP, SIGCONT), stop it gracefully,
// start it again on the same data directory and ports.
package testcluster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary builds cmd/samsa once per test binary and returns its path. A
// package that calls it removes the build in its TestMain with
// RemoveBinary.
func Binary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		if binary.dir, binary.err = os.MkdirTemp("", "samsa-bin-"); binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "samsa")
		out, err := exec.Command("go", "build", "-o", binary.path, "github.com/samsa-io/samsa/cmd/samsa").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// RemoveBinary deletes what Binary built; call it from TestMain after
// m.Run.
func RemoveBinary() {
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
}

// Cluster is n `samsa serve` processes that are each other's peers.
type Cluster struct {
	Nodes []*Node
	net   *isolatedNet // StartIsolated's network, or nil
}

// Node is one `samsa serve` process, restartable on the same data
// directory and addresses.
type Node struct {
	ID                            uint64
	Dir                           string
	KafkaAddr, RaftAddr, HTTPAddr string
	t                             testing.TB
	bin, peers                    string
	extra                         []string
	ns                            string // the node's network namespace, if it has one

	mu     sync.Mutex
	cmd    *exec.Cmd
	waited chan struct{}
	paused bool
}

// Start starts a cluster of n nodes, every one a peer of the meta shard
// (up to the first three, as the node chooses), with extra flags added to
// each node's command line. The nodes are stopped when the test ends.
func Start(t testing.TB, n int, extra ...string) *Cluster {
	t.Helper()
	return start(t, n, func(int) (kafka, raft, http, ns string) {
		return freeAddr(t), freeAddr(t), freeAddr(t), ""
	}, nil, extra)
}

// start builds n nodes with the addresses addrs gives node i (1-based),
// runs cleanup after they stopped when the test ends, and starts them.
func start(t testing.TB, n int, addrs func(i int) (kafka, raft, http, ns string), cleanup func(), extra []string) *Cluster {
	bin := Binary(t)
	root := t.TempDir()
	c := &Cluster{}
	var peers []string
	for i := 1; i <= n; i++ {
		kafka, raft, http, ns := addrs(i)
		nd := &Node{ID: uint64(i), Dir: filepath.Join(root, fmt.Sprintf("n%d", i)),
			KafkaAddr: kafka, RaftAddr: raft, HTTPAddr: http, ns: ns, t: t, bin: bin, extra: extra}
		c.Nodes = append(c.Nodes, nd)
		peers = append(peers, fmt.Sprintf("%d=%s", i, nd.RaftAddr))
	}
	for _, nd := range c.Nodes {
		nd.peers = strings.Join(peers, ",")
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			for _, nd := range c.Nodes {
				t.Logf("node %d's log (last lines):\n%s", nd.ID, tail(nd.Dir+".log", 40))
			}
		}
		if cleanup != nil {
			cleanup()
		}
	})
	for _, nd := range c.Nodes {
		nd.Start()
	}
	return c
}

// Join starts one more node, the next id, with `--join`: it waits until
// a member adds it (`samsa cluster add-node ID --raft-addr RaftAddr`).
// Only for clusters made by Start.
func (c *Cluster) Join(t testing.TB) *Node {
	t.Helper()
	first := c.Nodes[0]
	id := uint64(len(c.Nodes) + 1)
	nd := &Node{ID: id, Dir: filepath.Join(filepath.Dir(first.Dir), fmt.Sprintf("n%d", id)),
		KafkaAddr: freeAddr(t), RaftAddr: freeAddr(t), HTTPAddr: freeAddr(t), t: t, bin: first.bin,
		peers: first.peers, extra: append(slices.Clone(first.extra), "--join")}
	c.Nodes = append(c.Nodes, nd)
	nd.Start()
	return nd
}

// Brokers is every node's Kafka address.
func (c *Cluster) Brokers() []string {
	out := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		out[i] = nd.KafkaAddr
	}
	return out
}

// Node returns the node with the given id.
func (c *Cluster) Node(id int32) *Node { return c.Nodes[id-1] }

// Stop stops every node that still runs: resumed if paused, then SIGTERM,
// then SIGKILL after 30 s.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, nd := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nd.Stop() }()
	}
	wg.Wait()
}

// Start starts the node's process; it must not be running.
func (n *Node) Start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() {
		n.t.Fatalf("node %d: already running", n.ID)
	}
	args := append([]string{"serve", "--node-id", strconv.FormatUint(n.ID, 10), "--peers", n.peers,
		"--data-dir", n.Dir, "--kafka-addr", n.KafkaAddr, "--raft-addr", n.RaftAddr,
		"--http-addr", n.HTTPAddr, "--log-level", "warn"}, n.extra...)
	logf, err := os.OpenFile(n.Dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatalf("node %d: %v", n.ID, err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "--- %s: starting\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, args...)
	if n.ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", n.ns, n.bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("node %d: %v", n.ID, err)
	}
	n.cmd, n.waited, n.paused = cmd, make(chan struct{}), false
	go func(w chan struct{}) { cmd.Wait(); close(w) }(n.waited)
}

// Running reports whether the process runs (paused counts as running).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

func (n *Node) runningLocked() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.waited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (n *Node) Kill() { n.signalAndWait(syscall.SIGKILL, 0) }

// Stop resumes the node if paused and stops it gracefully (SIGTERM), with
// SIGKILL after 30 s. It does nothing to a node that is not running.
func (n *Node) Stop() { n.signalAndWait(syscall.SIGTERM, 30*time.Second) }

func (n *Node) signalAndWait(sig syscall.Signal, grace time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return
	}
	if n.paused {
		n.cmd.Process.Signal(syscall.SIGCONT)
		n.paused = false
	}
	n.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-n.waited:
			return
		case <-time.After(grace):
			n.t.Logf("node %d: still running %v after %v; killing it", n.ID, grace, sig)
			n.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	<-n.waited
}

// Pause stops the process with SIGSTOP: it keeps its sockets and state
// but answers nothing, as a machine that hangs.
func (n *Node) Pause() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() && !n.paused {
		n.cmd.Process.Signal(syscall.SIGSTOP)
		n.paused = true
	}
}

// Resume continues a paused process (SIGCONT).
func (n *Node) Resume() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() && n.paused {
		n.cmd.Process.Signal(syscall.SIGCONT)
		n.paused = false
	}
}

// Metric returns the value of a Prometheus sample of the node's /metrics
// whose name and labels match exactly (for example
// `samsa_partition_high_watermark{partition="0",topic="t"}`), and whether
// it was there.
func (n *Node) Metric(ctx context.Context, sample string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTPAddr+"/metrics", nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && name == sample {
			v, err := strconv.ParseFloat(value, 64)
			return v, err == nil, err
		}
	}
	return 0, false, sc.Err()
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
