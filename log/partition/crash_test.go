package partition

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
)

const crashChildEnv = "SAMSA_PARTITION_CRASH_DIR"

// crashBatch is the batch the child applies when the log ends at off: its
// records' values name their offsets, so the parent can check every record
// it reads back without knowing where the child stopped.
func crashBatch(t testing.TB, off int64) []byte {
	var b batch.Builder
	for i := range 1 + int(off%7) {
		b.Add(batch.Record{Timestamp: off, Value: fmt.Appendf(nil, "offset-%d", off+int64(i))})
	}
	out, err := b.Build(nil)
	require.NoError(t, err)
	return out
}

// TestCrashChild is the process TestCrash kills: it applies batches
// forever, syncing every ten entries and, after each sync returns,
// reporting the durable end offset on stdout.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("started by TestCrash")
	}
	p := open(t, dir)
	out := bufio.NewWriter(os.Stdout)
	for index := p.AppliedIndex() + 1; ; index++ {
		e := entry(plain, crashBatch(t, p.Log().EndOffset()))
		if index%97 == 0 { // retention now and then: the start offset must persist too
			e = entry(Meta{Kind: KindDeleteRecords, DeleteBefore: p.Log().EndOffset() - 50}, nil)
		}
		if _, err := p.Apply(index, e); err != nil {
			t.Fatal(err)
		}
		if index%10 == 0 {
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(out, "synced %d %d\n", p.Log().EndOffset(), index)
			out.Flush()
		}
	}
}

// TestCrash kills a process that is appending with SIGKILL at random
// moments, 20 times. After each kill the partition reopens at or after the
// last checkpoint the child reported, every record it serves is whole and
// at the offset it was written at, and the child carries on from there.
func TestCrash(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("this is the child")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := 0; round < 20; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		var synced, syncedIndex int64
		reports := make(chan [2]int64)
		go func() {
			defer close(reports)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var end, index int64
				if _, err := fmt.Sscanf(sc.Text(), "synced %d %d", &end, &index); err == nil {
					reports <- [2]int64{end, index}
				}
			}
		}()
		// Let it run until at least one checkpoint is reported, then a
		// random while longer, then kill it mid-stride.
		first := <-reports
		synced, syncedIndex = first[0], first[1]
		deadline := time.After(time.Duration(20+r.IntN(300)) * time.Millisecond)
	wait:
		for {
			select {
			case rep, ok := <-reports:
				if !ok {
					t.Fatalf("round %d: the child exited on its own", round)
				}
				synced, syncedIndex = rep[0], rep[1]
			case <-deadline:
				break wait
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for rep := range reports { // reports written before the kill count too
			synced, syncedIndex = rep[0], rep[1]
		}
		err = cmd.Wait()
		require.Error(t, err, "killed")

		// Reopen as the next process would. (This Partition is then
		// abandoned without Close, so the next child recovers uncleanly.)
		p := open(t, dir)
		require.GreaterOrEqual(t, p.Log().EndOffset(), synced, "round %d: a durable checkpoint was lost", round)
		require.GreaterOrEqual(t, int64(p.AppliedIndex()), syncedIndex, "round %d", round)
		it := batch.NewIterator(stored(t, p))
		next := p.Log().StartOffset()
		for it.Next() {
			rec := it.Record()
			if rec.Offset < p.Log().StartOffset() {
				continue
			}
			require.Equal(t, next, rec.Offset, "round %d: offsets are dense", round)
			require.Equal(t, fmt.Sprintf("offset-%d", rec.Offset), string(rec.Value), "round %d", round)
			next++
		}
		require.NoError(t, it.Err(), "round %d: a torn batch was served", round)
		require.Equal(t, p.Log().EndOffset(), next, "round %d", round)
		t.Logf("round %d: killed after the checkpoint at offset %d; reopened at %d (start %d)", round, synced, next, p.Log().StartOffset())
	}
}
