package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// writeAt writes head then body at off in one pwritev(2): the partition's
// patched header copy and the caller's untouched batch go to disk without
// being joined in memory, and without allocating.
func writeAt(f *os.File, head, body []byte, off int64) error {
	if len(body) == 0 {
		_, err := f.WriteAt(head, off)
		return err
	}
	var iov [2]unix.Iovec
	iov[0].Base, iov[1].Base = &head[0], &body[0]
	iov[0].SetLen(len(head))
	iov[1].SetLen(len(body))
	fd := f.Fd()
	for {
		n, _, errno := unix.Syscall6(unix.SYS_PWRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), 2, uintptr(off), 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			return &os.PathError{Op: "pwritev", Path: f.Name(), Err: errno}
		case int(n) < len(head)+len(body):
			// A short write (the disk filled up mid-way): finish or fail
			// with the ordinary path, which reports the error.
			rest := append(append([]byte(nil), head...), body...)[n:]
			_, err := f.WriteAt(rest, off+int64(n))
			return err
		}
		return nil
	}
}

// fdatasync flushes a file's data and the metadata needed to read it back.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// startWriteback asks the kernel to start writing n bytes of f from off
// to disk and returns without waiting (sync_file_range(2) with
// SYNC_FILE_RANGE_WRITE). It guarantees nothing; errors are left to the
// fdatasync that does.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// WriteTo sends the section to w. When w is a socket (a *net.TCPConn or
// *net.UnixConn) the kernel copies the bytes from the page cache with
// sendfile(2) at an explicit file offset, so many senders share one file
// descriptor without seeking it; other writers get an ordinary copy.
func (s *Section) WriteTo(w io.Writer) (int64, error) {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return io.Copy(w, io.NewSectionReader(s.File, s.Pos, s.Len))
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	src := int(s.File.Fd())
	off, remain := s.Pos, s.Len
	var werr error
	err = rc.Write(func(dst uintptr) bool {
		for remain > 0 {
			n, err := unix.Sendfile(int(dst), src, &off, int(min(remain, 1<<30)))
			if n > 0 {
				remain -= int64(n)
			}
			switch {
			case err == unix.EAGAIN:
				return false // wait until the socket can take more
			case err == unix.EINTR:
				continue
			case err != nil:
				werr = err
				return true
			case n == 0:
				werr = fmt.Errorf("segment: sendfile: %w: file ended %d bytes early", io.ErrUnexpectedEOF, remain)
				return true
			}
		}
		return true
	})
	written := s.Len - remain
	if err = errors.Join(err, werr); err != nil {
		return written, &os.PathError{Op: "sendfile", Path: s.File.Name(), Err: err}
	}
	return written, nil
}
