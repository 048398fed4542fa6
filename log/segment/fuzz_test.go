package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/samsa-io/samsa/internal/tmpdir"
	"github.com/stretchr/testify/require"
)

// FuzzRecover damages a cleanly written log with arbitrary bytes — after
// its newest segment's data, over its indexes, or over the data itself —
// and reopens it without a checkpoint. Recovery must never panic, must keep
// every batch before the damage, and must never serve a batch that fails
// its CRC.
func FuzzRecover(f *testing.F) {
	good := makeBatch(f, 0, spec{records: 3, ts: 1, value: 20})
	f.Add([]byte{}, uint8(0), uint16(0))
	f.Add(good, uint8(0), uint16(0))
	f.Add(good[:40], uint8(0), uint16(0))
	f.Add(make([]byte, 100), uint8(0), uint16(0))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 200}, uint8(0), uint16(0))
	f.Add([]byte("garbage index entries"), uint8(1), uint16(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}, uint8(1), uint16(8))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint8(2), uint16(0))
	f.Add([]byte{0x42}, uint8(3), uint16(300))

	cfg := Config{SegmentBytes: 1500, IndexIntervalBytes: 200}
	f.Fuzz(func(t *testing.T, junk []byte, where uint8, at uint16) {
		dir := tmpdir.Mem(t)
		l := openLog(t, dir, cfg, NoCheckpoint)
		var all [][]byte
		for i := range 12 {
			all = append(all, appendBatch(t, l, spec{records: 1 + i%3, ts: int64(i), value: 40}))
		}
		require.NoError(t, l.Close())
		logs := segFiles(t, dir, logSuffix)
		last := logs[len(logs)-1]
		intact := 0 // batches certain to survive
		switch where % 4 {
		case 0: // junk after the newest segment's data: nothing is lost
			appendTo(t, last, junk)
			intact = len(all)
		case 1: // junk over an offset index
			overwrite(t, segFiles(t, dir, indexSuffix)[0], junk, int64(at))
			intact = len(all)
		case 2: // junk over a time index
			overwrite(t, segFiles(t, dir, timeIndexSuffix)[0], junk, int64(at))
			intact = len(all)
		case 3: // junk over the newest segment's data: its batches from the
			// damage on may go, but every earlier segment's batch stays
			overwrite(t, last, junk, int64(at))
			intact = -1
		}
		var newestBase int64
		_, err := fmt.Sscanf(filepath.Base(last), "%020d.log", &newestBase)
		require.NoError(t, err)
		// An unclean open: the marker would vouch for the damage otherwise.
		require.NoError(t, os.Remove(filepath.Join(dir, cleanMarker)))

		l, err = Open(dir, testConfig(cfg), NoCheckpoint)
		require.NoError(t, err)
		defer l.Close()
		got := readBytes(t, l, 0, 1<<30)
		hs := headers(t, got) // every served batch passes its CRC
		for i, h := range hs {
			require.True(t, i == 0 || hs[i-1].NextOffset() == h.BaseOffset, "offsets are dense")
		}
		if intact >= 0 {
			require.Len(t, hs, intact)
		} else {
			require.GreaterOrEqual(t, l.EndOffset(), newestBase, "batches of older segments survive")
		}
		// Whatever survived is a prefix of what was written, byte for byte
		// but for partitionLeaderEpoch (bytes 12-15): Kafka keeps it outside
		// the CRC so brokers can rewrite it, so damage there is undetectable.
		for _, want := range all[:len(hs)] {
			require.Equal(t, want[:12], got[:12])
			require.Equal(t, want[16:], got[16:len(want)])
			got = got[len(want):]
		}
		// The recovered log takes appends.
		require.NoError(t, l.Append(makeBatch(t, l.EndOffset(), spec{records: 1, ts: 1, value: 1})))
	})
}

func overwrite(t *testing.T, path string, b []byte, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	st, err := f.Stat()
	require.NoError(t, err)
	if st.Size() > 0 {
		at %= st.Size()
	} else {
		at = 0
	}
	_, err = f.WriteAt(b, at)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}
