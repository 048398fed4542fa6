package replog

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// freeSpace refuses writes while the data directory's file system is
// nearly full. A write that reaches the Raft apply path on a full disk
// halts the node; refusing it at the door keeps the node serving reads
// and deletions, which free the space.
type freeSpace struct {
	dir string
	min int64 // bytes; ≤ 0 disables

	mu      sync.Mutex
	checked time.Time
	avail   int64
}

func (f *freeSpace) check() error {
	if f.min <= 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) > 250*time.Millisecond {
		var st syscall.Statfs_t
		if err := syscall.Statfs(f.dir, &st); err == nil {
			f.avail = int64(st.Bavail) * int64(st.Bsize)
		}
		f.checked = time.Now()
	}
	if f.avail < f.min {
		return fmt.Errorf("%w: %s has %d bytes free, writes need at least %d", ErrStorage, f.dir, f.avail, f.min)
	}
	return nil
}
