package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func newDev() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "dev",
		Short:   "Tools for trying Samsa on one machine",
		Long:    "Tools for trying Samsa on one machine, such as a local cluster of several nodes.",
		Example: `  samsa dev cluster --nodes 3`,
	})
	cmd.AddCommand(newDevCluster())
	return cmd
}

type devClusterFlags struct {
	nodes                         int
	dataDir                       string
	logLevel                      string
	kafkaPort, raftPort, httpPort int
}

func newDevCluster() *cobra.Command {
	f := &devClusterFlags{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local cluster: several samsa serve nodes on 127.0.0.1",
		Long: `Run a cluster of --nodes samsa serve processes on this machine, each with its own
data directory under --data-dir, as peers of one another. Node i serves Kafka on
127.0.0.1 port --kafka-port+i-1 (9092, 9093, 9094, ...), Raft on --raft-port+i-1
(19092, ...) and metrics on --http-port+i-1 (9644, ...). Their logs are printed prefixed with the
node. Ctrl-C stops them all gracefully; starting again on the same folder brings
the same cluster back. A node that is killed (to watch leaders move) leaves the
others running, and its serve command line is printed to start it again by hand.`,
		Example: `  samsa dev cluster                      # three nodes, data in ./data/cluster
  export SAMSA_BROKERS=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094
  samsa topics create plays --partitions 3 --replication-factor 3`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.nodes < 1 || f.nodes > 9 {
				return usageError{fmt.Errorf("--nodes: %d is outside [1, 9]", f.nodes)}
			}
			return f.run(cmd)
		},
	}
	cmd.Flags().IntVar(&f.nodes, "nodes", 3, "how many nodes (1 to 9)")
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "./data/cluster", "folder of the nodes' data directories (node1, node2, ...)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "warn", "the nodes' log level: debug, info, warn or error")
	cmd.Flags().IntVar(&f.kafkaPort, "kafka-port", 9092, "node 1's Kafka port; node i's is this plus i-1")
	cmd.Flags().IntVar(&f.raftPort, "raft-port", 19092, "node 1's Raft port; node i's is this plus i-1")
	cmd.Flags().IntVar(&f.httpPort, "http-port", 9644, "node 1's metrics port; node i's is this plus i-1")
	return cmd
}

// devNode is one node of a local cluster: its serve command line.
type devNode struct {
	id   int
	args []string
}

func (f *devClusterFlags) run(cmd *cobra.Command) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var peers, brokers []string
	for i := range f.nodes {
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d", i+1, f.raftPort+i))
		brokers = append(brokers, fmt.Sprintf("127.0.0.1:%d", f.kafkaPort+i))
	}
	nodes := make([]devNode, f.nodes)
	out := cmd.ErrOrStderr()
	for i := range nodes {
		id := i + 1
		nodes[i] = devNode{id: id, args: []string{"serve",
			"--node-id", strconv.Itoa(id), "--peers", strings.Join(peers, ","),
			"--data-dir", filepath.Join(f.dataDir, fmt.Sprintf("node%d", id)),
			"--kafka-addr", brokers[i], "--raft-addr", fmt.Sprintf("127.0.0.1:%d", f.raftPort+i),
			"--http-addr", fmt.Sprintf("127.0.0.1:%d", f.httpPort+i), "--log-level", f.logLevel}}
		fmt.Fprintf(out, "node %d: samsa %s\n", id, strings.Join(nodes[i].args, " "))
	}
	fmt.Fprintf(out, "\nKafka brokers: %s\n  export SAMSA_BROKERS=%s\nCtrl-C stops the cluster.\n\n", strings.Join(brokers, ","), strings.Join(brokers, ","))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	procs := make([]*exec.Cmd, len(nodes))
	for i, n := range nodes {
		c := exec.Command(self, n.args...)
		pw := prefixLines(out, fmt.Sprintf("[node %d] ", n.id))
		c.Stdout, c.Stderr = pw, pw
		// Its own process group: Ctrl-C reaches only this process, which
		// then stops each node with one SIGTERM (a second one would kill).
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			stopAll(procs[:i])
			wg.Wait()
			return fmt.Errorf("starting node %d: %w", n.id, err)
		}
		procs[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Wait()
			pw.Close()
			if ctx.Err() == nil { // not asked to stop: say so, the others go on
				fmt.Fprintf(out, "node %d exited (%s); the other nodes go on. Start it again with:\n  samsa %s\n", n.id, exitText(err), strings.Join(n.args, " "))
				mu.Lock()
				failed = append(failed, fmt.Errorf("node %d exited: %s", n.id, exitText(err)))
				mu.Unlock()
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping the cluster")
	case <-allDone:
	}
	stop()
	kill := stopAll(procs)
	wg.Wait()
	kill.Stop()
	return errors.Join(failed...)
}

// exitText describes a child's exit: its error, or "exit status 0".
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// stopAll sends SIGTERM to every process (one that already ended ignores
// it) and returns the timer that sends SIGKILL 40 s later: stop it once
// they all ended.
func stopAll(procs []*exec.Cmd) *time.Timer {
	for _, c := range procs {
		if c != nil {
			c.Process.Signal(syscall.SIGTERM)
		}
	}
	return time.AfterFunc(40*time.Second, func() {
		for _, c := range procs {
			if c != nil {
				c.Process.Kill()
			}
		}
	})
}

// prefixLines returns a writer that copies whole lines to w, each
// prefixed; Close flushes a last partial line.
func prefixLines(w io.Writer, prefix string) io.WriteCloser {
	r, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			io.WriteString(w, prefix+sc.Text()+"\n") // one write a line
		}
		io.Copy(io.Discard, r)
	}()
	return pw
}
