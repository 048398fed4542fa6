package connectors

import (
	"bytes"
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// compareSQLValues orders two values of one column as the source's ORDER
// BY does: numbers by value, times by instant, text and bytes by their
// bytes (the source sorts text under a binary collation).
func compareSQLValues(a, b any) int {
	switch a := a.(type) {
	case int64:
		switch b := b.(type) {
		case int64:
			return cmp.Compare(a, b)
		case uint64:
			if a < 0 {
				return -1
			}
			return cmp.Compare(uint64(a), b)
		}
	case uint64:
		if b, ok := b.(uint64); ok {
			return cmp.Compare(a, b)
		}
		return -compareSQLValues(b, a)
	case time.Time:
		return a.Compare(b.(time.Time))
	case string:
		return bytes.Compare([]byte(a), []byte(b.(string)))
	case []byte:
		return bytes.Compare(a, b.([]byte))
	}
	panic("unexpected value")
}

func compareSQLTuples(a, b []any) int {
	for i := range a {
		if c := compareSQLValues(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// randSQLValue draws a value of a kind, edge values often.
func randSQLValue(r *rand.Rand, kind int) any {
	switch kind {
	case 0: // integers, signed and unsigned beyond int64
		edges := []any{int64(math.MinInt64), int64(math.MinInt64 + 1), int64(-1), int64(0), int64(1), int64(math.MaxInt64), uint64(math.MaxInt64) + 1, uint64(math.MaxUint64)}
		if r.IntN(3) == 0 {
			return edges[r.IntN(len(edges))]
		}
		if r.IntN(10) == 0 {
			return uint64(math.MaxInt64) + 1 + r.Uint64N(1000)
		}
		return r.Int64N(2000) - 1000
	case 1: // times around the epoch and far from it
		secs := []int64{-62135596800, -1, 0, 1, 1700000000, 253402300799}
		s := secs[r.IntN(len(secs))] + r.Int64N(3) - 1
		return time.Unix(s, r.Int64N(3)*int64(time.Millisecond)+r.Int64N(2)).UTC()
	default: // text and bytes over a tiny alphabet with NULs and 0xFF
		alphabet := []byte{0, 1, 'a', 'b', 0xFF}
		b := make([]byte, r.IntN(4))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if kind == 2 {
			return string(b)
		}
		return b
	}
}

// TestSQLPositionOrder checks, over random tuples of every kind of
// column, that positions compare as bytes exactly as the tuples compare
// column by column, and that they decode to the values.
func TestSQLPositionOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	schemas := [][]int{{0}, {1}, {2}, {3}, {0, 0}, {1, 0}, {2, 0}, {2, 2}, {0, 2, 3}, {1, 2, 0}, {3, 3, 3}}
	for _, schema := range schemas {
		tuples := make([][]any, 300)
		for i := range tuples {
			tuples[i] = make([]any, len(schema))
			for j, k := range schema {
				tuples[i][j] = randSQLValue(r, k)
			}
		}
		enc := make([][]byte, len(tuples))
		for i, tu := range tuples {
			var err error
			enc[i], err = encodeSQLPos(nil, tu)
			require.NoError(t, err)
			dec, err := decodeSQLPos(enc[i])
			require.NoError(t, err)
			require.Equal(t, 0, compareSQLTuples(tu, dec), "decode %v", tu)
		}
		for i := range tuples {
			for j := range tuples {
				if want, got := compareSQLTuples(tuples[i], tuples[j]), bytes.Compare(enc[i], enc[j]); want != got {
					t.Fatalf("schema %v: %v vs %v compare %d, their positions %d", schema, tuples[i], tuples[j], want, got)
				}
			}
		}
		// Sorting by position sorts the tuples.
		idx := make([]int, len(tuples))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return bytes.Compare(enc[a], enc[b]) })
		for i := 1; i < len(idx); i++ {
			require.LessOrEqual(t, compareSQLTuples(tuples[idx[i-1]], tuples[idx[i]]), 0)
		}
	}
}

// FuzzSQLPosition checks the order of (int, text, bytes) tuples and that
// decoding arbitrary bytes never panics.
func FuzzSQLPosition(f *testing.F) {
	f.Add(int64(0), "", []byte{}, int64(1), "a", []byte{0})
	f.Add(int64(-1), "a\x00", []byte{0xFF}, int64(-1), "a", []byte{0, 1})
	f.Add(int64(math.MinInt64), "\x00\x01", []byte("ab"), int64(math.MaxInt64), "\x00", []byte("a"))
	f.Fuzz(func(t *testing.T, i1 int64, s1 string, b1 []byte, i2 int64, s2 string, b2 []byte) {
		a, b := []any{i1, s1, b1}, []any{i2, s2, b2}
		ea, err := encodeSQLPos(nil, a)
		require.NoError(t, err)
		eb, err := encodeSQLPos(nil, b)
		require.NoError(t, err)
		require.Equal(t, compareSQLTuples(a, b), bytes.Compare(ea, eb))
		da, err := decodeSQLPos(ea)
		require.NoError(t, err)
		require.Equal(t, 0, compareSQLTuples(a, da))
		_, _ = decodeSQLPos(append([]byte{sqlPosVersion}, b1...))
	})
}

func TestSQLHeadHistory(t *testing.T) {
	var h headHistory
	t0 := time.Now()
	_, ok := h.safe(t0, time.Second)
	require.False(t, ok)
	h.observe(t0, 10)
	h.observe(t0.Add(500*time.Millisecond), 20)
	h.observe(t0.Add(600*time.Millisecond), 15) // lower: ignored
	_, ok = h.safe(t0.Add(900*time.Millisecond), time.Second)
	require.False(t, ok)
	v, ok := h.safe(t0.Add(time.Second), time.Second)
	require.True(t, ok)
	require.Equal(t, int64(10), v)
	v, _ = h.safe(t0.Add(2*time.Second), time.Second)
	require.Equal(t, int64(20), v)
	require.Len(t, h.obs, 1)

	require.True(t, passesGap(int64(4), int64(5), 0, false))
	require.True(t, passesGap(int64(5), int64(5), 0, false))
	require.False(t, passesGap(int64(4), int64(6), 0, false))
	require.True(t, passesGap(int64(4), int64(6), 6, true))
	require.False(t, passesGap(nil, int64(1), 0, false))
}
