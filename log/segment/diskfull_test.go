package segment

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDiskFull fills a small tmpfs mounted for the test (needs root, as on
// the project's machines and in CI), with segment and batch sizes chosen so
// the disk fills during a batch write, an index flush at a roll, or both:
// the append that does not fit fails with ENOSPC, leaves no partial batch,
// changes nothing stored, and appends resume once there is room again.
func TestDiskFull(t *testing.T) {
	for _, c := range []struct{ segBytes, value int }{
		{64 << 10, 900}, {16 << 10, 300}, {8 << 10, 2000}, {4 << 10, 100}, {1 << 20, 5000},
	} {
		t.Run(fmt.Sprintf("segment %d value %d", c.segBytes, c.value), func(t *testing.T) {
			diskFull(t, Config{SegmentBytes: int64(c.segBytes), IndexIntervalBytes: 128}, c.value)
		})
	}
}

func diskFull(t *testing.T, cfg Config, value int) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	logDir := filepath.Join(dir, "p")
	l := openLog(t, logDir, cfg, NoCheckpoint)

	var stored []byte
	var err error
	for i := 0; i < 10_000; i++ {
		b := makeBatch(t, l.EndOffset(), spec{records: 4, ts: int64(i), value: value})
		if err = l.Append(b); err != nil {
			break
		}
		stored = append(stored, b...)
	}
	require.Error(t, err, "a 256 KiB disk filled up")
	require.True(t, errors.Is(err, syscall.ENOSPC), "got %v", err)
	end := l.EndOffset()
	require.Equal(t, stored, readBytes(t, l, 0, 1<<30), "nothing stored changed")
	require.ErrorIs(t, l.Append(makeBatch(t, end, spec{records: 4, ts: 1, value: value})), syscall.ENOSPC, "still full")
	require.Equal(t, end, l.EndOffset())

	// Free room by deleting every record, as retention would, and carry on.
	_, err = l.DeleteBefore(end)
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		require.NoError(t, l.Append(makeBatch(t, l.EndOffset(), spec{records: 4, ts: 1, value: value})))
	}
	require.Equal(t, end+12, l.EndOffset())
	require.NoError(t, l.Sync())
	// A crash now recovers every batch that Append accepted.
	start := l.StartOffset()
	l.crash()
	l = openLog(t, logDir, cfg, OpenOptions{Checkpoint: end + 12, StartOffset: start})
	defer l.Close()
	require.Equal(t, start, l.StartOffset())
	require.Equal(t, end, start)
	require.Equal(t, seq(end, end+12), offsetsOf(t, readBytes(t, l, start, 1<<30)))
}
