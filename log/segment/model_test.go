package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/internal/tmpdir"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
)

// model is what the log should hold: its batches in order and its bounds.
type model struct {
	batches [][]byte
	hdrs    []batch.Header
	start   int64
	end     int64
}

func (m *model) append(b []byte) {
	h, _ := batch.ParseHeader(b)
	m.batches = append(m.batches, b)
	m.hdrs = append(m.hdrs, h)
	m.end = h.NextOffset()
}

// truncate drops batches at or after offset (a boundary).
func (m *model) truncate(offset int64) {
	for len(m.hdrs) > 0 && m.hdrs[len(m.hdrs)-1].BaseOffset >= offset {
		m.batches, m.hdrs = m.batches[:len(m.batches)-1], m.hdrs[:len(m.hdrs)-1]
	}
	m.end = offset
	m.start = min(m.start, offset)
}

// read is the greedy rule Read must follow.
func (m *model) read(offset int64, maxBytes int) []byte {
	var out []byte
	for i, h := range m.hdrs {
		if h.LastOffset() < offset {
			continue
		}
		if len(out) > 0 && len(out)+len(m.batches[i]) > maxBytes {
			break
		}
		out = append(out, m.batches[i]...)
		if len(out) >= maxBytes {
			break
		}
	}
	return out
}

// offsetForTime is the first record at or after start with timestamp ≥ ts.
func (m *model) offsetForTime(ts int64) (int64, bool) {
	for i, h := range m.hdrs {
		if h.LastOffset() < m.start {
			continue
		}
		it := batch.NewIterator(m.batches[i])
		for it.Next() {
			if r := it.Record(); r.Offset >= m.start && r.Timestamp >= ts {
				return r.Offset, true
			}
		}
	}
	return 0, false
}

// boundary returns a random batch base at or after from, or end.
func (m *model) boundary(r *rand.Rand, from int64) int64 {
	var cands []int64
	for _, h := range m.hdrs {
		if h.BaseOffset >= from {
			cands = append(cands, h.BaseOffset)
		}
	}
	cands = append(cands, m.end)
	return cands[r.IntN(len(cands))]
}

func TestModel(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, uint64(seed), 250) })
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, seed*7919))
	dir := tmpdir.Mem(t)
	cfg := Config{
		SegmentBytes:       int64(400 + r.IntN(6000)),
		IndexIntervalBytes: int32(r.IntN(1500)),
		SegmentMs:          int64(50 + r.IntN(2000)),
		RetentionMs:        -1,
	}
	l := openLog(t, dir, cfg, NoCheckpoint)
	defer func() { l.Close() }()
	var m model
	var cp, cpStart int64 = 0, 0 // last durable checkpoint
	ts := int64(1_000_000)
	trace := []string{}
	fail := func(format string, args ...any) string {
		return fmt.Sprintf("seed %d after %v: ", seed, trace) + fmt.Sprintf(format, args...)
	}

	for step := 0; step < steps; step++ {
		op := r.IntN(100)
		switch {
		case op < 45: // append
			ts += int64(r.IntN(200)) - 40
			b := makeBatch(t, m.end, spec{records: 1 + r.IntN(8), ts: ts, value: r.IntN(300)})
			if r.IntN(10) == 0 {
				batch.SetLogAppendTime(b[:batch.HeaderLen], b[batch.HeaderLen:], ts+int64(r.IntN(50)))
			}
			require.NoError(t, l.Append(b), fail("append"))
			m.append(b)
			trace = append(trace, "a")
		case op < 65: // read
			off := m.start - 1 + r.Int64N(m.end-m.start+3)
			max := r.IntN(3000)
			secs, err := l.Read(off, max, nil)
			if off < m.start || off > m.end {
				require.ErrorIs(t, err, ErrOffsetOutOfRange, fail("read %d of [%d,%d)", off, m.start, m.end))
				continue
			}
			require.NoError(t, err, fail("read %d", off))
			var got []byte
			for i := range secs {
				got, err = secs[i].AppendTo(got)
				require.NoError(t, err)
			}
			Release(secs)
			require.True(t, bytes.Equal(m.read(off, max), got), fail("read %d max %d: %d bytes, want %d", off, max, len(got), len(m.read(off, max))))
		case op < 72: // time lookup
			q := ts - int64(r.IntN(3000)) + 100
			off, _, found, err := l.OffsetForTime(q)
			require.NoError(t, err)
			wantOff, wantFound := m.offsetForTime(q)
			require.Equal(t, wantFound, found, fail("time %d", q))
			if found {
				require.Equal(t, wantOff, off, fail("time %d", q))
			}
		case op < 78: // sync: a durable checkpoint
			require.NoError(t, l.Sync())
			cp, cpStart = l.EndOffset(), l.StartOffset()
			trace = append(trace, fmt.Sprintf("s%d", cp))
		case op < 82: // clean restart
			require.NoError(t, l.Close())
			l = openLog(t, dir, cfg, OpenOptions{Checkpoint: -1, StartOffset: m.start})
			cp, cpStart = l.EndOffset(), l.StartOffset()
			trace = append(trace, "R")
		case op < 86: // crash, then recover to the checkpoint
			l.crash()
			tearTail(t, r, dir, &m, cp)
			l = openLog(t, dir, cfg, OpenOptions{Checkpoint: cp, StartOffset: cpStart})
			m.truncate(cp)
			require.GreaterOrEqual(t, l.StartOffset(), min(cpStart, cp), fail("start after crash"))
			require.LessOrEqual(t, l.StartOffset(), max(m.start, cp), fail("start after crash"))
			m.start = l.StartOffset()
			trace = append(trace, fmt.Sprintf("C%d", cp))
		case op < 88: // crash without a checkpoint: every intact batch survives
			l.crash()
			l = openLog(t, dir, cfg, OpenOptions{Checkpoint: -1, StartOffset: m.start})
			cp, cpStart = l.EndOffset(), l.StartOffset()
			trace = append(trace, "K")
		case op < 92: // truncate
			off := m.boundary(r, m.start)
			require.NoError(t, l.Truncate(off), fail("truncate %d", off))
			m.truncate(off)
			if off <= m.start {
				m.start = off
			}
			cp, cpStart = min(cp, off), min(cpStart, off)
			trace = append(trace, fmt.Sprintf("t%d", off))
		case op < 96: // delete records
			off := m.start + r.Int64N(m.end-m.start+1)
			_, err := l.DeleteBefore(off)
			require.NoError(t, err, fail("delete before %d", off))
			m.start = max(m.start, off)
			trace = append(trace, fmt.Sprintf("d%d", off))
		default: // retention by time
			cfg2 := cfg
			cfg2.RetentionMs = int64(r.IntN(4000))
			require.NoError(t, l.SetConfig(testConfig(cfg2)))
			point := l.RetentionPoint(time.UnixMilli(ts))
			_, err := l.Retain(time.UnixMilli(ts))
			require.NoError(t, err)
			require.NoError(t, l.SetConfig(testConfig(cfg)))
			m.start = max(m.start, point)
			trace = append(trace, fmt.Sprintf("r%d", point))
		}
		require.Equal(t, m.end, l.EndOffset(), fail("end"))
		require.Equal(t, m.start, l.StartOffset(), fail("start"))
	}
	require.True(t, bytes.Equal(m.read(m.start, 1<<30), readBytes(t, l, m.start, 1<<30)), fail("final contents"))
}

// tearTail damages what follows the checkpoint cp as a power cut could:
// garbage or a cut in the newest segment file, never before cp's position.
func tearTail(t *testing.T, r *rand.Rand, dir string, m *model, cp int64) {
	logs := segFiles(t, dir, logSuffix)
	p := logs[len(logs)-1]
	st, err := os.Stat(p)
	require.NoError(t, err)
	var base int64
	_, err = fmt.Sscanf(filepath.Base(p), "%020d.log", &base)
	require.NoError(t, err)
	var durable int64 // bytes of the file below cp
	for i, h := range m.hdrs {
		if h.BaseOffset >= base && h.BaseOffset < cp {
			durable += int64(len(m.batches[i]))
		}
	}
	switch r.IntN(3) {
	case 0:
		if st.Size() > durable {
			require.NoError(t, os.Truncate(p, durable+r.Int64N(st.Size()-durable)))
		}
	case 1:
		junk := make([]byte, r.IntN(200))
		for i := range junk {
			junk[i] = byte(r.Uint32())
		}
		appendTo(t, p, junk)
	}
}
