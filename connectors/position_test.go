package connectors

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Encoded positions sort as (ordinal, offset) and decode back.
func TestFilePosOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func() filePos {
		return filePos{Ordinal: rng.Uint64N(4), Offset: rng.Int64N(1 << 40)}
	}
	for range 10000 {
		a, b := pick(), pick()
		ea, eb := a.appendTo(nil), b.appendTo(nil)
		require.Len(t, ea, PositionLen)
		want := 0
		switch {
		case a.Ordinal < b.Ordinal || a.Ordinal == b.Ordinal && a.Offset < b.Offset:
			want = -1
		case a != b:
			want = 1
		}
		require.Equal(t, want, bytes.Compare(ea, eb), "%v vs %v", a, b)
		back, err := parseFilePos(ea)
		require.NoError(t, err)
		require.Equal(t, a, back)
	}
	_, err := parseFilePos([]byte{1, 2})
	require.Error(t, err)
}

// appendJSONString writes what encoding/json reads back as the same string
// as encoding/json does (each invalid UTF-8 byte as U+FFFD).
func TestAppendJSONString(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"a", "\"", "\\", "\n", "\r", "\t", "\x00", "\x1f", "é", "€", "😀", "\xff", "\u2028", "/", "<"}
	for range 5000 {
		var sb strings.Builder
		for range rng.IntN(12) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		in := sb.String()
		out := appendJSONString(nil, []byte(in), false)
		var back string
		require.NoError(t, json.Unmarshal(out, &back), "%q → %s", in, out)
		std, err := json.Marshal(in)
		require.NoError(t, err)
		var want string
		require.NoError(t, json.Unmarshal(std, &want))
		require.Equal(t, want, back, "%q → %s", in, out)
	}
	require.Equal(t, `"say \"hi\""`, string(appendJSONString(nil, []byte(`say ""hi""`), true)))
}

// splitCSV agrees with encoding/csv on well-formed records.
func TestSplitCSV(t *testing.T) {
	for _, rec := range []string{
		`a,b,c`, `"a,1",b`, `"say ""hi""",x`, `,,`, `""`, `a,""`, "\"two\nlines\",z", `x,"",y`, `"a"`,
	} {
		r := csv.NewReader(strings.NewReader(rec))
		want, err := r.Read()
		require.NoError(t, err, rec)
		fields, ok := splitCSV([]byte(rec), nil)
		require.True(t, ok, rec)
		var got []string
		for _, f := range fields {
			v := string(f.raw)
			if f.quoted {
				v = strings.ReplaceAll(v, `""`, `"`)
			}
			got = append(got, v)
		}
		require.Equal(t, want, got, rec)
	}
	for _, bad := range []string{`"open`, `"a"b,c`} {
		_, ok := splitCSV([]byte(bad), nil)
		require.False(t, ok, bad)
	}
	require.Equal(t, 5, csvRecordEnd([]byte("a,b,c\nd")))
	require.Equal(t, 11, csvRecordEnd([]byte("\"a\nb\",\"c\"\"\"\nx")))
	require.Equal(t, -1, csvRecordEnd([]byte("\"a\nb")))
}
