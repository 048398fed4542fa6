package replog

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	crashDirEnv  = "SAMSA_REPLOG_CRASH_DIR"
	crashAddrEnv = "SAMSA_REPLOG_CRASH_RAFT"
	crashTag     = "SAMSA_REPLOG_CRASH_TAG"
)

// TestCrashChild is the node TestCrash kills: four writers append batches
// of three records with acks=all, and each acknowledged batch is reported
// on stdout, one line per batch.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("started by TestCrash")
	}
	n := newNode(t, dir, 1, map[uint64]string{1: os.Getenv(crashAddrEnv)})
	l := n.open(t)
	ctx := ctxT(t, time.Hour)
	tp := TopicPartition{"crash", 0}
	if _, ok := l.Topic("crash"); !ok {
		require.NoError(t, l.CreateTopic(ctx, TopicSpec{Name: "crash", Partitions: 1, ReplicationFactor: 1,
			Configs: map[string]string{"segment.bytes": "65536"}}, false))
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				prefix := fmt.Sprintf("%s.%d.%d", os.Getenv(crashTag), w, i)
				if _, err := l.Append(ctx, tp, recordBatch(t, -1, 0, prefix, 3, time.Now().UnixMilli()), AppendOptions{Acks: AcksAll}); err != nil {
					continue // not acknowledged: never reported
				}
				out.Lock()
				fmt.Printf("acked %s-0 %s-1 %s-2\n", prefix, prefix, prefix)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrash kills a node that is appending with SIGKILL at random moments.
// After each kill the node restarts on the same directory and every
// record it acknowledged is there exactly once.
func TestCrash(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("this is the child")
	}
	dir, addr := t.TempDir(), freeAddr(t)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acked := map[string]bool{}
	for round := 0; round < 6; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashAddrEnv+"="+addr, fmt.Sprintf("%s=r%d", crashTag, round))
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		lines := make(chan []string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "acked" {
					lines <- f[1:]
				}
			}
		}()
		// Wait for the first acknowledgement, then kill at a random moment.
		first, ok := <-lines
		require.True(t, ok, "round %d: the child exited before appending", round)
		for _, v := range first {
			acked[v] = true
		}
		kill := time.After(time.Duration(100+r.IntN(1500)) * time.Millisecond)
	run:
		for {
			select {
			case vs, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: the child exited on its own", round)
				}
				for _, v := range vs {
					acked[v] = true
				}
			case <-kill:
				break run
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for vs := range lines {
			for _, v := range vs {
				acked[v] = true
			}
		}
		require.Error(t, cmd.Wait())

		// Restart the node here and check.
		n := newNode(t, dir, 1, map[uint64]string{1: addr})
		l := n.open(t)
		tp := TopicPartition{"crash", 0}
		require.Eventually(t, func() bool { _, err := l.Read(tp, 0, 1, nil); return err == nil }, 30*time.Second, 20*time.Millisecond)
		seen := map[string]int{}
		for _, v := range readAll(t, l, tp, 0) {
			seen[v]++
			require.Equal(t, 1, seen[v], "round %d: %s stored twice", round, v)
		}
		for v := range acked {
			require.Equal(t, 1, seen[v], "round %d: acknowledged %s is missing", round, v)
		}
		t.Logf("round %d: %d records acknowledged so far, %d stored", round, len(acked), len(seen))
		n.close(t)
	}
}
