//go:build unix

package connectors

import (
	"os"
	"syscall"
)

// devInode returns the device and inode of a file, its identity on disk.
func devInode(_ string, fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
