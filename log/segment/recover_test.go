package segment

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
)

// crash abandons the log as a killed process would: descriptors closed,
// no index flush, no clean marker. Bytes already written stay (they are in
// the page cache), exactly as after SIGKILL.
func (l *Log) crash() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.segs {
		s.mu.Lock()
		s.offsets.close()
		s.times.close()
		s.mu.Unlock()
		s.f.Close()
	}
	l.segs, l.closed = nil, true
	l.dirf.Close()
}

func segFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	require.NoError(t, err)
	return m
}

func appendTo(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(b)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func fill(t *testing.T, l *Log, n int) []byte {
	t.Helper()
	var all []byte
	for i := 0; i < n; i++ {
		all = append(all, appendBatch(t, l, spec{records: 3, ts: int64(1000 + i), value: 80})...)
	}
	return all
}

var small = Config{SegmentBytes: 3000, IndexIntervalBytes: 300}

func TestCleanReopenTrustsIndexes(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, small, NoCheckpoint)
	all := fill(t, l, 40)
	require.NoError(t, l.Close())
	require.FileExists(t, filepath.Join(dir, cleanMarker))

	l = openLog(t, dir, small, NoCheckpoint)
	defer l.Close()
	require.NoFileExists(t, filepath.Join(dir, cleanMarker), "the marker is consumed at open")
	for _, s := range l.segs {
		require.False(t, s.rebuilt, "%s rebuilt after a clean close", s.path)
	}
	require.Equal(t, int64(120), l.EndOffset())
	require.Equal(t, all, readBytes(t, l, 0, 1<<30))
	off, _, found, err := l.OffsetForTime(1039)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, int64(113), off) // batch 37 holds 1037..1039
	// Appends continue the run of offsets and the indexes.
	all = append(all, fill(t, l, 5)...)
	require.Equal(t, all, readBytes(t, l, 0, 1<<30))
}

func TestRecoverTornTail(t *testing.T) {
	good := makeBatch(t, 0, spec{records: 2, ts: 1, value: 40})
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	tails := map[string][]byte{
		"partial header":     good[:30],
		"partial batch":      good[:len(good)-5],
		"zeros":              make([]byte, 4096),
		"crc mismatch":       badCRC,
		"garbage":            []byte("this is not a record batch, not at all, no"),
		"length too large":   append(append([]byte(nil), good[:8]...), 0x7f, 0xff, 0xff, 0xff),
		"valid but replayed": good, // a well-formed batch whose offsets do not continue
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, small, NoCheckpoint)
			all := fill(t, l, 25)
			end := l.EndOffset()
			l.crash()
			logs := segFiles(t, dir, logSuffix)
			appendTo(t, logs[len(logs)-1], tail)

			l = openLog(t, dir, small, NoCheckpoint)
			defer l.Close()
			require.Equal(t, end, l.EndOffset())
			require.Equal(t, all, readBytes(t, l, 0, 1<<30))
			all = append(all, fill(t, l, 3)...)
			require.Equal(t, all, readBytes(t, l, 0, 1<<30))
		})
	}
}

func TestRecoverToCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, small, NoCheckpoint)
	durable := fill(t, l, 20)
	require.NoError(t, l.Sync())
	cp := l.EndOffset()
	fill(t, l, 30) // unsynced: Raft would re-apply it
	require.Greater(t, l.EndOffset(), cp)
	l.crash()

	l = openLog(t, dir, small, OpenOptions{Checkpoint: cp})
	require.Equal(t, cp, l.EndOffset())
	require.Equal(t, durable, readBytes(t, l, 0, 1<<30))
	for _, p := range segFiles(t, dir, logSuffix) {
		base := filepath.Base(p)
		require.LessOrEqual(t, base, segmentName(cp)+logSuffix, "segments after the checkpoint are gone")
	}
	require.NoError(t, l.Close())

	t.Run("beyond the data is corruption", func(t *testing.T) {
		_, err := Open(dir, testConfig(small), OpenOptions{Checkpoint: cp + 100})
		require.ErrorIs(t, err, ErrCorrupt)
	})
	t.Run("inside a batch is corruption", func(t *testing.T) {
		_, err := Open(dir, testConfig(small), OpenOptions{Checkpoint: cp - 1})
		require.ErrorIs(t, err, ErrCorrupt)
	})
	t.Run("at a segment base", func(t *testing.T) {
		l := openLog(t, dir, small, NoCheckpoint)
		second := l.segs[1].base
		l.crash()
		l = openLog(t, dir, small, OpenOptions{Checkpoint: second})
		defer l.Close()
		require.Equal(t, second, l.EndOffset())
		require.Equal(t, seq(0, second), offsetsOf(t, readBytes(t, l, 0, 1<<30)))
	})
}

func TestRecoverRebuildsIndexes(t *testing.T) {
	damage := map[string]func(t *testing.T, dir string){
		"missing offset index": func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(segFiles(t, dir, indexSuffix)[0]))
		},
		"missing time index": func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(segFiles(t, dir, timeIndexSuffix)[1]))
		},
		"garbage offset index": func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(segFiles(t, dir, indexSuffix)[0], []byte("0123456789abcdefghijklmnopqrstuv"), 0o644))
		},
		"torn entry": func(t *testing.T, dir string) {
			appendTo(t, segFiles(t, dir, timeIndexSuffix)[0], []byte{1, 2, 3})
		},
		"entry past the log": func(t *testing.T, dir string) {
			var e [offsetEntryLen]byte
			putOffsetEntry(e[:], 1000, 1<<20)
			appendTo(t, segFiles(t, dir, indexSuffix)[0], e[:])
		},
		"entry at a wrong batch": func(t *testing.T, dir string) {
			p := segFiles(t, dir, indexSuffix)[0]
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b[len(b)-5]++ // shift the last entry's position by 256 bytes
			require.NoError(t, os.WriteFile(p, b, 0o644))
		},
	}
	for name, f := range damage {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, small, NoCheckpoint)
			all := fill(t, l, 40)
			require.NoError(t, l.Close())
			f(t, dir)
			l = openLog(t, dir, small, NoCheckpoint)
			defer l.Close()
			rebuilt := 0
			for _, s := range l.segs {
				if s.rebuilt {
					rebuilt++
				}
			}
			require.Equal(t, 1, rebuilt)
			require.Equal(t, all, readBytes(t, l, 0, 1<<30))
			for off := int64(0); off < l.EndOffset(); off += 7 {
				hs := headers(t, readBytes(t, l, off, 1))
				require.Equal(t, off/3*3, hs[0].BaseOffset)
			}
			off, _, found, err := l.OffsetForTime(1020)
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, int64(56), off) // batch 18 holds 1018..1020
		})
	}
}

func TestRecoverTornSealedSegment(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, small, NoCheckpoint)
	fill(t, l, 40)
	l.crash()
	logs := segFiles(t, dir, logSuffix)
	require.Greater(t, len(logs), 3)
	// The second segment lost its last 10 bytes (rolled but never synced).
	st, err := os.Stat(logs[1])
	require.NoError(t, err)
	require.NoError(t, os.Truncate(logs[1], st.Size()-10))

	l = openLog(t, dir, small, NoCheckpoint)
	defer l.Close()
	require.Equal(t, 2, l.Segments(), "segments after the tear are dropped")
	end := l.EndOffset()
	require.Equal(t, seq(0, end), offsetsOf(t, readBytes(t, l, 0, 1<<30)))
	require.Len(t, segFiles(t, dir, logSuffix), 2)
}

func TestRecoverKeepsStartOffset(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, small, NoCheckpoint)
	fill(t, l, 40)
	_, err := l.DeleteBefore(50)
	require.NoError(t, err)
	require.NoError(t, l.Sync())
	cp, start := l.EndOffset(), l.StartOffset()
	l.crash()

	l = openLog(t, dir, small, OpenOptions{Checkpoint: cp, StartOffset: start})
	defer l.Close()
	require.Equal(t, int64(50), l.StartOffset())
	_, err = l.Read(49, 10, nil)
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.Equal(t, seq(48, cp), offsetsOf(t, readBytes(t, l, 50, 1<<30)))
}

func TestRecoverRemovesOrphans(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, small, NoCheckpoint)
	fill(t, l, 5)
	require.NoError(t, l.Close())
	orphan := filepath.Join(dir, segmentName(999)+indexSuffix)
	require.NoError(t, os.WriteFile(orphan, []byte{1, 2, 3, 4, 5, 6, 7, 8}, 0o644))
	other := filepath.Join(dir, "checkpoint")
	require.NoError(t, os.WriteFile(other, []byte("not ours"), 0o644))
	l = openLog(t, dir, small, NoCheckpoint)
	defer l.Close()
	require.NoFileExists(t, orphan)
	require.FileExists(t, other, "files of other owners are left alone")
}

func TestEmptyLogWithCheckpoint(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir, testConfig(small), OpenOptions{Checkpoint: 10})
	require.ErrorIs(t, err, ErrCorrupt, "a checkpoint promises data that is not there")

	l := openLog(t, dir, small, OpenOptions{Checkpoint: 10, StartOffset: 10})
	defer l.Close()
	require.Equal(t, int64(10), l.StartOffset())
	require.Equal(t, int64(10), l.EndOffset())
	b := makeBatch(t, 10, spec{records: 1, ts: 1, value: 1})
	require.NoError(t, l.Append(b))
	_ = batch.HeaderLen
}
