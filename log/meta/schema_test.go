package meta

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRegisterSchema(t *testing.T) {
	const a, b, c = `{"type":"string"}`, `{"type":"long"}`, `{"type":"int"}`
	s := NewState()
	steps := []struct {
		subject, schema string
		id, version     uint64
		changes         bool
	}{
		{"plays-value", a, 1, 1, true},
		{"plays-value", a, 1, 1, false},      // identical text: that version, nothing added
		{"plays-value", b, 2, 2, true},       // new text: new id, next version
		{"plays-value", a, 1, 1, false},      // an older version's text is still found
		{"users-value", b, 2, 1, true},       // same text, other subject: same id, its own version 1
		{"users-value", c, 3, 2, true},       // ids are global
		{"plays-value", " " + a, 4, 3, true}, // texts are compared exactly
	}
	for i, st := range steps {
		v := s.Version()
		r := mustApply(t, s, RegisterSchema{Subject: st.subject, Schema: st.schema})
		require.Equal(t, st.id, r.Value, "step %d id", i)
		require.Equal(t, st.version, r.Version, "step %d version", i)
		if st.changes {
			require.Equal(t, v+1, s.Version(), "step %d", i)
		} else {
			require.Equal(t, v, s.Version(), "step %d", i)
		}
	}
	require.Equal(t, []string{"plays-value", "users-value"}, s.Subjects())
	require.Equal(t, []int{1, 2, 3}, s.SchemaVersions("plays-value"))
	got, ok := s.Schema("plays-value", 2)
	require.True(t, ok)
	require.Equal(t, SchemaVersion{Subject: "plays-value", Version: 2, ID: 2, Schema: b}, got)
	got, ok = s.Schema("users-value", LatestVersion)
	require.True(t, ok)
	require.Equal(t, SchemaVersion{Subject: "users-value", Version: 2, ID: 3, Schema: c}, got)
	for _, v := range []int{0, 4, -2} {
		_, ok = s.Schema("plays-value", v)
		require.False(t, ok, "version %d", v)
	}
	_, ok = s.Schema("nope", LatestVersion)
	require.False(t, ok)
	text, ok := s.SchemaByID(3)
	require.True(t, ok)
	require.Equal(t, c, text)
	_, ok = s.SchemaByID(5)
	require.False(t, ok)
	found, ok := s.LookupSchema("users-value", b)
	require.True(t, ok)
	require.Equal(t, SchemaVersion{Subject: "users-value", Version: 1, ID: 2, Schema: b}, found)
	_, ok = s.LookupSchema("users-value", a)
	require.False(t, ok)
}

func TestRegisterSchemaRefused(t *testing.T) {
	cases := map[string]RegisterSchema{
		"empty subject":     {Schema: `"string"`},
		"subject too long":  {Subject: strings.Repeat("s", MaxNameLen+1), Schema: `"string"`},
		"empty schema":      {Subject: "s"},
		"schema over 1 MiB": {Subject: "s", Schema: strings.Repeat(" ", MaxValueBytes+1)},
	}
	for name, cmd := range cases {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, apply(t, NewState(), cmd).Err(), ErrInvalidSchema)
		})
	}
}
