package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
)

const checkpointFile = "checkpoint"

var (
	checkpointMagic = []byte("SAMSACKP")
	castagnoli      = crc32.MakeTable(crc32.Castagnoli)
)

// appendCheckpoint appends the checkpoint file's bytes to dst.
func appendCheckpoint(dst []byte, applied uint64, s *State) ([]byte, error) {
	dst = append(dst, checkpointMagic...)
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, applied)
	dst = append(dst, 0, 0, 0, 0) // state length, filled in below
	n := len(dst)
	dst, err := s.AppendBinary(dst)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(dst[n-4:], uint32(len(dst)-n))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

// parseCheckpoint decodes a checkpoint file into s.
func parseCheckpoint(b []byte, s *State) (applied uint64, err error) {
	const fixed = 8 + 8 + 4 + 4
	if len(b) < fixed || !bytes.Equal(b[:8], checkpointMagic) {
		return 0, fmt.Errorf("%w: %d bytes without the magic", ErrCheckpoint, len(b))
	}
	body, sum := b[8:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return 0, fmt.Errorf("%w: crc %08x, file says %08x", ErrCheckpoint, got, sum)
	}
	applied = binary.BigEndian.Uint64(body)
	if n := binary.BigEndian.Uint32(body[8:]); int(n) != len(body)-12 {
		return 0, fmt.Errorf("%w: state length %d, have %d bytes", ErrCheckpoint, n, len(body)-12)
	}
	return applied, s.UnmarshalBinary(body[12:])
}

// readCheckpoint loads dir's checkpoint into s. found is false when there
// is none (a new partition, or one that never synced).
func readCheckpoint(dir string, s *State) (applied uint64, found bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	applied, err = parseCheckpoint(b, s)
	return applied, err == nil, err
}

// writeCheckpoint replaces dir's checkpoint atomically: a reader after a
// crash finds either the old file or the new one, whole.
func writeCheckpoint(dir string, dirf *os.File, b []byte) error {
	tmp := filepath.Join(dir, checkpointFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointFile)); err != nil {
		return err
	}
	return dirf.Sync()
}
