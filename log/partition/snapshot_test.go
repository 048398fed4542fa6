package partition

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSnapshotRestore(t *testing.T) {
	src := open(t, t.TempDir())
	defer src.Close()
	for i := uint64(1); i <= 120; i++ {
		_, err := src.Apply(i, entry(plain, producerBatch(t, 9, 0, int32(i-1)*3, 3)))
		require.NoError(t, err)
	}
	_, err := src.Apply(121, entry(Meta{Kind: KindDeleteRecords, DeleteBefore: 40}, nil))
	require.NoError(t, err)
	snap, err := src.Snapshot()
	require.NoError(t, err)
	want := stored(t, src)

	// Retention and appends carry on while the snapshot is streamed.
	_, err = src.Apply(122, entry(Meta{Kind: KindDeleteRecords, DeleteBefore: 300}, nil))
	require.NoError(t, err)
	_, err = src.Apply(123, entry(plain, producerBatch(t, 9, 0, 360, 3)))
	require.NoError(t, err)
	var stream bytes.Buffer
	_, err = snap.WriteTo(&stream, nil, nil)
	require.NoError(t, err)
	snap.Release()

	parent := t.TempDir()
	dir := filepath.Join(parent, "p")
	old := open(t, dir) // a stale replica that the snapshot replaces
	_, err = old.Apply(1, entry(plain, producerBatch(t, -1, -1, -1, 1)))
	require.NoError(t, err)
	require.NoError(t, old.Close())

	applied, err := Restore(dir, bytes.NewReader(stream.Bytes()), nil, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(121), applied)
	dst := open(t, dir)
	defer dst.Close()
	require.Equal(t, uint64(121), dst.AppliedIndex())
	require.Equal(t, int64(40), dst.Log().StartOffset())
	require.Equal(t, want, stored(t, dst), "the restored log is the snapshot's, byte for byte")
	// The producer state came along: the next entry Raft delivers applies as
	// it did on the source.
	res, err := dst.Apply(122, entry(Meta{Kind: KindDeleteRecords, DeleteBefore: 300}, nil))
	require.NoError(t, err)
	require.NoError(t, res.Err)
	res, err = dst.Apply(123, entry(plain, producerBatch(t, 9, 0, 360, 3)))
	require.NoError(t, err)
	require.Equal(t, int64(360), res.BaseOffset)
	require.True(t, bytes.Equal(stored(t, src), stored(t, dst)))
	entries, _ := os.ReadDir(parent)
	require.Len(t, entries, 1, "no .restore or .old left behind")

	t.Run("a damaged stream changes nothing", func(t *testing.T) {
		for _, cut := range []int{0, 5, 30, stream.Len() / 2, stream.Len() - 1} {
			_, err := Restore(dir, bytes.NewReader(stream.Bytes()[:cut]), nil, nil)
			require.ErrorIs(t, err, ErrSnapshot, "cut at %d", cut)
		}
		flipped := append([]byte(nil), stream.Bytes()...)
		flipped[len(flipped)/2] ^= 1
		_, err := Restore(dir, bytes.NewReader(flipped), nil, nil)
		require.ErrorIs(t, err, ErrSnapshot)
		require.NoError(t, dst.Close())
		again := open(t, dir)
		defer again.Close()
		require.Equal(t, uint64(123), again.AppliedIndex())
	})
	t.Run("stop", func(t *testing.T) {
		stop := make(chan struct{})
		close(stop)
		errStop := errors.New("stopped")
		_, err := Restore(filepath.Join(parent, "q"), bytes.NewReader(stream.Bytes()), stop, errStop)
		require.ErrorIs(t, err, errStop)
	})
}

func TestRestoreInterruptedMidSwap(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "p")
	p := open(t, dir)
	_, err := p.Apply(1, entry(plain, producerBatch(t, -1, -1, -1, 2)))
	require.NoError(t, err)
	require.NoError(t, p.Close())
	// A crash between moving the old partition aside and moving the new
	// one in: the old one must come back.
	require.NoError(t, os.Rename(dir, dir+".old"))
	require.NoError(t, os.MkdirAll(dir+".restore", 0o755))
	p = open(t, dir)
	defer p.Close()
	require.Equal(t, uint64(1), p.AppliedIndex())
	require.Equal(t, int64(2), p.Log().EndOffset())
	require.NoDirExists(t, dir+".restore")
	require.NoDirExists(t, dir+".old")
}
