package connectors

import (
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// fingerprintLen is how many leading bytes of a file its fingerprint
// covers. A file shorter than this is fingerprinted over what it has, and
// again as it grows, until it reaches this length.
const fingerprintLen = 1024

// fileID identifies a file the source has numbered: its ordinal, and what
// finds it again after a restart or a rename (issue 7's rotation): the
// path it was last seen at, its device and inode, and a hash (FNV-1a 64)
// of its first FPLen bytes, which tells a reused inode from the file that
// had it.
type fileID struct {
	Ordinal uint64 `json:"ordinal"`
	Path    string `json:"path"`
	Dev     uint64 `json:"dev"`
	Inode   uint64 `json:"inode"`
	FPLen   int    `json:"fp_len"`
	FP      uint64 `json:"fp"`
}

// devIno is a file's identity on disk.
type devIno struct{ dev, ino uint64 }

func (id *fileID) devIno() devIno { return devIno{id.Dev, id.Inode} }

// identify stats and fingerprints a file.
func identify(path string, ordinal uint64) (fileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileID{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, err
	}
	id := fileID{Ordinal: ordinal, Path: path}
	id.Dev, id.Inode = devInode(path, fi)
	id.FPLen = int(min(fi.Size(), fingerprintLen))
	if id.FP, err = fingerprint(f, id.FPLen); err != nil {
		return fileID{}, err
	}
	return id, nil
}

// fingerprint hashes the first n bytes of f.
func fingerprint(f *os.File, n int) (uint64, error) {
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && (err != io.EOF) {
		return 0, fmt.Errorf("connectors: fingerprint of %s: %w", f.Name(), err)
	}
	h := fnv.New64a()
	h.Write(buf)
	return h.Sum64(), nil
}

// matches reports whether the file at path is the one id describes: the
// same device and inode, and the same first FPLen bytes.
func (id *fileID) matches(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < int64(id.FPLen) {
		return false
	}
	if dev, ino := devInode(path, fi); dev != id.Dev || ino != id.Inode {
		return false
	}
	fp, err := fingerprint(f, id.FPLen)
	return err == nil && fp == id.FP
}

// statFile is a glob match with its identity on disk.
type statFile struct {
	path string
	size int64
	di   devIno
}

// globFiles returns the regular files matching any of patterns, sorted by
// path, each once.
func globFiles(patterns []string) ([]statFile, error) {
	var paths []string
	for _, p := range patterns {
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("connectors: glob %q: %w", p, err)
		}
		paths = append(paths, m...)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	out := make([]statFile, 0, len(paths))
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue // gone since the glob, or a directory
		}
		dev, ino := devInode(p, fi)
		out = append(out, statFile{path: p, size: fi.Size(), di: devIno{dev, ino}})
	}
	return out, nil
}
