package partition

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testConfig() Config {
	return Config{Logger: quiet, Log: segment.Config{SegmentBytes: 4096, IndexIntervalBytes: 256}}
}

func open(t testing.TB, dir string) *Partition {
	t.Helper()
	p, err := Open(dir, testConfig())
	require.NoError(t, err)
	return p
}

// producerBatch builds a batch of n records whose values name their
// sequence numbers, as a producer sends it (base offset 0, epoch -1).
func producerBatch(t testing.TB, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	var b batch.Builder
	b.SetProducer(pid, epoch, seq)
	for i := range n {
		b.Add(batch.Record{Timestamp: 1000 + int64(i), Value: fmt.Appendf(nil, "seq-%d", int(seq)+i)})
	}
	out, err := b.Build(nil)
	require.NoError(t, err)
	return out
}

func entry(m Meta, b []byte) []byte { return AppendEntry(nil, &m, b) }

var plain = Meta{Kind: KindBatch, AppendTime: 5000, LeaderEpoch: 3}

// stored reads the partition's whole log.
func stored(t testing.TB, p *Partition) []byte {
	t.Helper()
	secs, err := p.Log().Read(p.Log().StartOffset(), 1<<30, nil)
	require.NoError(t, err)
	defer segment.Release(secs)
	var out []byte
	for i := range secs {
		out, err = secs[i].AppendTo(out)
		require.NoError(t, err)
	}
	return out
}

func TestApplyPatchesOnlyTheStoredCopy(t *testing.T) {
	p := open(t, t.TempDir())
	defer p.Close()
	b := producerBatch(t, -1, -1, -1, 4)
	orig := append([]byte(nil), b...)
	for i := uint64(1); i <= 3; i++ {
		res, err := p.ApplyBatch(i, &plain, b)
		require.NoError(t, err)
		require.NoError(t, res.Err)
		require.Equal(t, int64(4*(i-1)), res.BaseOffset)
		require.Equal(t, int64(-1), res.LogAppendTime)
	}
	require.Equal(t, orig, b, "the caller's batch is never modified")
	require.Equal(t, uint64(3), p.AppliedIndex())

	all := stored(t, p)
	for i := 0; i < 3; i++ {
		one := all[i*len(b) : (i+1)*len(b)]
		h, err := batch.Validate(one)
		require.NoError(t, err, "the stored batch keeps a valid CRC")
		require.Equal(t, int64(4*i), h.BaseOffset)
		require.Equal(t, int32(3), h.LeaderEpoch)
		require.Equal(t, orig[16:], one[16:], "only the broker's fields differ")
	}
}

func TestApplyLogAppendTime(t *testing.T) {
	p := open(t, t.TempDir())
	defer p.Close()
	m := plain
	m.LogAppendTime = true
	res, err := p.Apply(1, entry(m, producerBatch(t, -1, -1, -1, 3)))
	require.NoError(t, err)
	require.NoError(t, res.Err)
	require.Equal(t, int64(5000), res.LogAppendTime)
	it := batch.NewIterator(stored(t, p))
	n := 0
	for it.Next() {
		require.Equal(t, int64(5000), it.Record().Timestamp)
		n++
	}
	require.NoError(t, it.Err())
	require.Equal(t, 3, n)
}

func TestApplyRefusals(t *testing.T) {
	p := open(t, t.TempDir())
	defer p.Close()
	good := producerBatch(t, -1, -1, -1, 2)
	_, err := p.Apply(1, entry(plain, good))
	require.NoError(t, err)
	before := stored(t, p)

	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 1
	var huge batch.Builder
	huge.Add(batch.Record{Value: make([]byte, MaxBatchBytes)})
	oversized, err := huge.Build(nil)
	require.NoError(t, err)
	control := producerBatch(t, -1, -1, -1, 1)
	control[22] |= 0x20
	binaryCRC(control)
	cases := map[string]struct {
		entry []byte
		want  error
	}{
		"crc mismatch":     {entry(plain, badCRC), ErrCorrupt},
		"oversized":        {entry(plain, oversized), ErrTooLarge},
		"truncated batch":  {entry(plain, good[:len(good)-3]), ErrCorrupt},
		"not a batch":      {entry(plain, []byte("hello")), ErrCorrupt},
		"control batch":    {entry(plain, control), ErrInvalidRecord},
		"garbage entry":    {[]byte{9, 9, 9}, ErrBadEntry},
		"empty entry":      {nil, ErrBadEntry},
		"delete past end":  {entry(Meta{Kind: KindDeleteRecords, DeleteBefore: 99}, nil), segment.ErrOffsetOutOfRange},
		"source too large": {append([]byte{1, 1}, make([]byte, 13)...), ErrBadEntry},
	}
	index := uint64(1)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			index++
			res, err := p.Apply(index, c.entry)
			require.NoError(t, err, "a refusal is not a storage failure")
			require.ErrorIs(t, res.Err, c.want)
			require.Equal(t, index, p.AppliedIndex(), "a refused entry is still applied")
			require.Equal(t, before, stored(t, p), "nothing stored changed")
		})
	}
}

// binaryCRC recomputes a batch's CRC after a test edits it.
func binaryCRC(b []byte) {
	c := batch.Checksum(b)
	b[17], b[18], b[19], b[20] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
}

func TestRestartFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir)
	src := Meta{Kind: KindBatch, AppendTime: 5000, Source: "sql:orders", SourceFirst: []byte{0, 1}, SourceLast: []byte{0, 3}}
	apply := func(p *Partition, i uint64, e []byte) Result {
		res, err := p.Apply(i, e)
		require.NoError(t, err)
		return res
	}
	require.NoError(t, apply(p, 1, entry(plain, producerBatch(t, 42, 0, 0, 3))).Err)
	require.NoError(t, apply(p, 2, entry(src, producerBatch(t, -1, -1, -1, 3))).Err)
	require.NoError(t, p.Sync())
	durable := stored(t, p)
	// Applied but never synced: gone after a crash, for Raft to apply again.
	require.NoError(t, apply(p, 3, entry(plain, producerBatch(t, 42, 0, 3, 2))).Err)
	require.Equal(t, int64(8), p.Log().EndOffset())

	q := open(t, dir) // p is abandoned, as a killed process would leave it
	defer q.Close()
	require.Equal(t, uint64(2), q.AppliedIndex())
	require.Equal(t, int64(6), q.Log().EndOffset())
	require.Equal(t, durable, stored(t, q))

	// Raft re-applies entry 3; then the state carried in the checkpoint
	// still recognises retries.
	res := apply(q, 3, entry(plain, producerBatch(t, 42, 0, 3, 2)))
	require.NoError(t, res.Err)
	require.Equal(t, int64(6), res.BaseOffset)
	res = apply(q, 4, entry(plain, producerBatch(t, 42, 0, 0, 3)))
	require.True(t, res.Duplicate)
	require.Equal(t, int64(0), res.BaseOffset)
	res = apply(q, 5, entry(src, producerBatch(t, -1, -1, -1, 3)))
	require.True(t, res.Duplicate, "a source re-sending after a restart is fenced")
	pos, last, ok := q.SourcePosition("sql:orders")
	require.True(t, ok)
	require.Equal(t, []byte{0, 3}, pos)
	require.Equal(t, int64(5), last)
}

func TestCleanCloseKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir)
	for i := uint64(1); i <= 20; i++ {
		_, err := p.Apply(i, entry(plain, producerBatch(t, 1, 0, int32(i-1)*5, 5)))
		require.NoError(t, err)
	}
	all := stored(t, p)
	require.NoError(t, p.Close())
	p = open(t, dir)
	defer p.Close()
	require.Equal(t, uint64(20), p.AppliedIndex())
	require.Equal(t, all, stored(t, p))
}

func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir)
	for i := uint64(1); i <= 100; i++ {
		_, err := p.Apply(i, entry(plain, producerBatch(t, -1, -1, -1, 5)))
		require.NoError(t, err)
	}
	require.Greater(t, p.Log().Segments(), 2)
	res, err := p.Apply(101, entry(Meta{Kind: KindDeleteRecords, DeleteBefore: 123}, nil))
	require.NoError(t, err)
	require.NoError(t, res.Err)
	require.Equal(t, int64(123), res.LogStartOffset)
	_, err = p.Log().Read(122, 10, nil)
	require.ErrorIs(t, err, segment.ErrOffsetOutOfRange)
	require.NoError(t, p.Close())

	p = open(t, dir)
	defer p.Close()
	require.Equal(t, int64(123), p.Log().StartOffset(), "the start offset is in the checkpoint")
	h, err := batch.ParseHeader(stored(t, p))
	require.NoError(t, err)
	require.Equal(t, int64(120), h.BaseOffset)
}

func TestEntryRoundTrip(t *testing.T) {
	b := producerBatch(t, -1, -1, -1, 1)
	for _, m := range []Meta{
		plain,
		{Kind: KindBatch, AppendTime: -1, LeaderEpoch: -1, LogAppendTime: true},
		{Kind: KindBatch, Source: "mqtt:sensors", SourceFirst: []byte("a"), SourceLast: bytes.Repeat([]byte{0xff}, MaxPositionLen)},
		{Kind: KindDeleteRecords, DeleteBefore: 1 << 40},
	} {
		var want []byte
		if m.Kind == KindBatch {
			want = b
		}
		got, gotBatch, err := DecodeEntry(AppendEntry(nil, &m, want))
		require.NoError(t, err)
		require.Equal(t, m, got)
		require.Equal(t, want, gotBatch)
	}
}
