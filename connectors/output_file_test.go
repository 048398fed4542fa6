package connectors

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readLines returns the lines of the rotated files of path, oldest first,
// then of path itself, and how many files there were.
func readLines(t *testing.T, path string) (lines []string, files int) {
	t.Helper()
	o := &fileOutput{path: path}
	rotated, err := o.rotatedFiles()
	require.NoError(t, err)
	for _, f := range append(rotated, path) {
		fh, err := os.Open(f)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		files++
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		fh.Close()
	}
	return lines, files
}

// TestFileOutputRotatesBySize writes numbered lines through a stream in
// small batches: every rotated file stays within rotate_size, and the
// files read oldest first hold every line once, in order; max_files
// deletes the oldest.
func TestFileOutputRotatesBySize(t *testing.T) {
	for _, keep := range []int{0, 3} {
		t.Run(fmt.Sprintf("max_files=%d", keep), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out", "lines.txt")
			st := startStream(t, env(t, newNode(t).log), fmt.Sprintf(`
input:
  generate: {count: 2000, interval: "", batch_size: 10, mapping: 'root = "line %%06d".format(counter())'}
output:
  samsa_file: {path: %q, rotate_size: 4KiB, max_files: %d}
`, path, keep))
			st.wait(t, time.Minute)
			require.NoError(t, st.err)

			o := &fileOutput{path: path}
			rotated, err := o.rotatedFiles()
			require.NoError(t, err)
			for _, f := range rotated {
				fi, err := os.Stat(f)
				require.NoError(t, err)
				require.LessOrEqual(t, fi.Size(), int64(4096), f)
				require.Greater(t, fi.Size(), int64(4096-10*12), "%s: rotated before it was full", f)
			}
			lines, files := readLines(t, path)
			if keep > 0 {
				require.Equal(t, keep+1, files)
			} else {
				require.Greater(t, files, 5)
				require.Len(t, lines, 2000)
			}
			first := 2000 - len(lines) + 1
			for i, l := range lines {
				require.Equal(t, fmt.Sprintf("line %06d", first+i), l)
			}
		})
	}
}

// TestFileOutputRotatesByTime: with rotate_interval, a file is closed and
// renamed once it is that old, even while nothing more is written.
func TestFileOutputRotatesByTime(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ticks.jsonl")
	// One message at once, then nothing for an hour.
	startStream(t, env(t, newNode(t).log), fmt.Sprintf(`
input:
  generate: {interval: 1h, mapping: 'root.n = counter()'}
output:
  samsa_file: {path: %q, rotate_interval: 300ms}
`, path))
	o := &fileOutput{path: path}
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		rotated, err := o.rotatedFiles()
		if err != nil || len(rotated) == 0 {
			return fmt.Errorf("not rotated yet (%v)", err)
		}
		return nil
	})
	lines, files := readLines(t, path)
	require.Equal(t, 2, files, "the rotated file and the new, empty one")
	require.Equal(t, []string{`{"n":1}`}, lines)
}
