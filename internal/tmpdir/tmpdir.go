// Package tmpdir gives tests scratch directories on tmpfs, for tests of
// logic where fsync on the real disk costs time and proves nothing (model
// tests, fuzzing). Tests of durability use t.TempDir on the real disk.
package tmpdir

import (
	"os"
	"testing"
)

// Mem returns a new directory under /dev/shm, removed when the test ends,
// or t.TempDir() where the machine has no /dev/shm.
func Mem(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "samsa-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
