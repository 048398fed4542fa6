package partition

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/samsa-io/samsa/log/segment"
)

// Snapshot stream, big-endian: a partition's whole content, for a replica
// that cannot catch up from the Raft log.
//
//	magic "SAMSASNP" (8) · applied index u64 · state length u32 · state
//	segments u32 · per segment: base offset i64 · length u64 · its .log bytes
//	CRC-32C of everything before it, u32
//
// Index files are not shipped: the receiver rebuilds them when it opens.
var snapshotMagic = []byte("SAMSASNP")

// ErrSnapshot means a snapshot stream is malformed or does not match its CRC.
var ErrSnapshot = errors.New("partition: bad snapshot")

// maxSnapshotState bounds the state section a restore will read.
const maxSnapshotState = 256 << 20

// Snapshot is a point-in-time copy of a partition: its applied index, its
// state, and its segments as they were, kept readable until Release even
// if retention deletes them meanwhile.
type Snapshot struct {
	applied uint64
	state   []byte
	secs    []segment.Section
}

// Snapshot captures the partition now. It must run on the apply
// goroutine (between Applys); the copy can then be written from any
// goroutine while applying continues.
func (p *Partition) Snapshot() (*Snapshot, error) {
	state, err := p.state.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	secs, err := p.log.Snapshot(nil)
	if err != nil {
		return nil, fmt.Errorf("partition: snapshot: %w", err)
	}
	return &Snapshot{applied: p.applied, state: state, secs: secs}, nil
}

// AppliedIndex is the index of the last entry the snapshot reflects.
func (s *Snapshot) AppliedIndex() uint64 { return s.applied }

// Release lets the captured segment files go.
func (s *Snapshot) Release() { segment.Release(s.secs) }

// WriteTo streams the snapshot. It stops with stopErr when stop closes.
func (s *Snapshot) WriteTo(w io.Writer, stop <-chan struct{}, stopErr error) (int64, error) {
	cw := &crcWriter{w: w, h: crc32.New(castagnoli)}
	be := binary.BigEndian
	head := append([]byte(nil), snapshotMagic...)
	head = be.AppendUint64(head, s.applied)
	head = be.AppendUint32(head, uint32(len(s.state)))
	if _, err := cw.Write(head); err != nil {
		return cw.n, err
	}
	if _, err := cw.Write(s.state); err != nil {
		return cw.n, err
	}
	if _, err := cw.Write(be.AppendUint32(nil, uint32(len(s.secs)))); err != nil {
		return cw.n, err
	}
	for i := range s.secs {
		select {
		case <-stop:
			return cw.n, stopErr
		default:
		}
		sec := &s.secs[i]
		var h [16]byte
		be.PutUint64(h[:], uint64(sec.Base()))
		be.PutUint64(h[8:], uint64(sec.Len))
		if _, err := cw.Write(h[:]); err != nil {
			return cw.n, err
		}
		if _, err := io.Copy(cw, io.NewSectionReader(sec.File, sec.Pos, sec.Len)); err != nil {
			return cw.n, err
		}
	}
	_, err := w.Write(be.AppendUint32(nil, cw.h.Sum32()))
	return cw.n + 4, err
}

type crcWriter struct {
	w io.Writer
	h hash.Hash32
	n int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// Restore replaces the partition in dir (which must not be open) with the
// snapshot read from r and returns the snapshot's applied index. It builds
// the new content beside dir and swaps it in only once it is complete and
// durable: a crash midway leaves the old partition as it was. It stops with
// stopErr when stop closes.
func Restore(dir string, r io.Reader, stop <-chan struct{}, stopErr error) (uint64, error) {
	tmp := dir + ".restore"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, err
	}
	applied, err := restoreInto(tmp, r, stop, stopErr)
	if err != nil {
		os.RemoveAll(tmp)
		return 0, err
	}
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return 0, err
	}
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return 0, err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return 0, err
	}
	return applied, os.RemoveAll(old)
}

func restoreInto(dir string, r io.Reader, stop <-chan struct{}, stopErr error) (uint64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	h := crc32.New(castagnoli)
	br := bufio.NewReaderSize(r, 1<<20)
	tr := io.TeeReader(br, h)
	be := binary.BigEndian
	head := make([]byte, len(snapshotMagic)+8+4)
	if _, err := io.ReadFull(tr, head); err != nil {
		return 0, fmt.Errorf("%w: header: %v", ErrSnapshot, err)
	}
	if string(head[:8]) != string(snapshotMagic) {
		return 0, fmt.Errorf("%w: no magic", ErrSnapshot)
	}
	applied := be.Uint64(head[8:])
	n := be.Uint32(head[16:])
	if n > maxSnapshotState {
		return 0, fmt.Errorf("%w: state of %d bytes", ErrSnapshot, n)
	}
	state := make([]byte, n)
	if _, err := io.ReadFull(tr, state); err != nil {
		return 0, fmt.Errorf("%w: state: %v", ErrSnapshot, err)
	}
	var st State
	if err := st.UnmarshalBinary(state); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	var cnt [4]byte
	if _, err := io.ReadFull(tr, cnt[:]); err != nil {
		return 0, fmt.Errorf("%w: segment count: %v", ErrSnapshot, err)
	}
	for i := be.Uint32(cnt[:]); i > 0; i-- {
		select {
		case <-stop:
			return 0, stopErr
		default:
		}
		var sh [16]byte
		if _, err := io.ReadFull(tr, sh[:]); err != nil {
			return 0, fmt.Errorf("%w: segment header: %v", ErrSnapshot, err)
		}
		base, size := int64(be.Uint64(sh[:])), int64(be.Uint64(sh[8:]))
		if base < 0 || size < 0 {
			return 0, fmt.Errorf("%w: segment at %d of %d bytes", ErrSnapshot, base, size)
		}
		if err := writeFile(filepath.Join(dir, segment.FileName(base)), io.LimitReader(tr, size), size); err != nil {
			return 0, fmt.Errorf("%w: segment %d: %w", ErrSnapshot, base, err)
		}
	}
	want := h.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil || be.Uint32(sum[:]) != want {
		return 0, fmt.Errorf("%w: crc mismatch or missing", ErrSnapshot)
	}
	ckpt, err := appendCheckpoint(nil, applied, &st)
	if err != nil {
		return 0, err
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer dirf.Close()
	return applied, writeCheckpoint(dir, dirf, ckpt)
}

// writeFile copies exactly size bytes from r into a new file, durably.
func writeFile(path string, r io.Reader, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("%d of %d bytes", n, size)
	}
	return errors.Join(err, f.Sync(), f.Close())
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// finishRestore tidies up after a Restore that a crash interrupted: a
// half-built copy is dropped, and if the crash fell between moving the old
// partition aside and moving the new one in, the old one comes back (Raft
// then restores the snapshot again).
func finishRestore(dir string) error {
	old := dir + ".old"
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(old); err == nil {
			if err := os.Rename(old, dir); err != nil {
				return err
			}
		}
	}
	return errors.Join(os.RemoveAll(dir+".restore"), os.RemoveAll(old))
}
