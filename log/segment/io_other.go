//go:build !linux

package segment

import (
	"io"
	"os"
)

// writeAt writes head then body at off. Off Linux it takes two writes; a
// crash between them leaves a torn batch that recovery cuts off.
func writeAt(f *os.File, head, body []byte, off int64) error {
	if _, err := f.WriteAt(head, off); err != nil {
		return err
	}
	_, err := f.WriteAt(body, off+int64(len(head)))
	return err
}

func fdatasync(f *os.File) error { return f.Sync() }

// startWriteback does nothing off Linux: Sync writes everything.
func startWriteback(f *os.File, off, n int64) {}

// WriteTo sends the section to w with an ordinary copy (sendfile at an
// explicit offset is Linux-only here).
func (s *Section) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, io.NewSectionReader(s.File, s.Pos, s.Len))
}
