package transforms

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"

	"github.com/samsa-io/samsa/log/meta"
)

const validateStage = `
samsa_stage:
  name: validate
  on_error: %s
  processors:
    - samsa_avro:
        schema: '{"type": "record", "name": "Play", "fields": [{"name": "user", "type": "string"}, {"name": "ms_played", "type": "long"}]}'
`

func stage(onError string) string {
	return strings.Replace(validateStage, "%s", onError, 1)
}

// requireDeadLetter checks m is the dead letter of original from stage,
// made between before and now.
func requireDeadLetter(t *testing.T, m *service.Message, original, stage, reason string, before time.Time) {
	t.Helper()
	require.NoError(t, m.GetError(), "a dead letter carries no error: strict mode would reject it")
	require.Equal(t, original, content(t, m))
	dl, ok := m.MetaGetMut(MetaDeadLetter)
	require.True(t, ok)
	require.Equal(t, true, dl, "structured bool")
	require.Equal(t, reason, metaString(t, m, MetaDLQReason))
	require.Equal(t, stage, metaString(t, m, MetaDLQStage))
	at := metaString(t, m, MetaDLQTime)
	require.Regexp(t, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`), at)
	when, err := time.Parse(time.RFC3339, at)
	require.NoError(t, err)
	require.False(t, when.Before(before.Truncate(time.Millisecond)), "%s before %s", when, before)
	require.False(t, when.After(time.Now()))
}

func TestStageDeadLetter(t *testing.T) {
	env, out := newEnv(t, Deps{})
	st := startStream(t, env, out, true, stage("dead_letter"))

	got, ack := st.one(t, `{"user": "ana", "ms_played": 1}`)
	require.NoError(t, ack)
	require.Len(t, got, 1)
	require.Equal(t, `{"user": "ana", "ms_played": 1}`, content(t, got[0]))
	_, ok := got[0].MetaGet(MetaDeadLetter)
	require.False(t, ok)
	orig, ok := got[0].MetaGetMut(MetaOriginal)
	require.True(t, ok)
	require.Equal(t, []byte(`{"user": "ana", "ms_played": 1}`), orig, "structured []byte")

	for record, reason := range map[string]string{
		`{"user": "ana", "ms_played": "x"}`: `field "ms_played": expected long, got string "x"`,
		`{"ms_played": 1}`:                  `missing required field "user"`,
		`ana,1`:                             `not JSON: invalid character 'a' looking for beginning of value`,
	} {
		before := time.Now()
		got, ack := st.one(t, record)
		require.NoError(t, ack, "a dead letter is written, so the record is acknowledged")
		require.Len(t, got, 1)
		requireDeadLetter(t, got[0], record, "validate", reason, before)
	}
}

func TestStageDrop(t *testing.T) {
	env, out := newEnv(t, Deps{})
	st := startStream(t, env, out, true, stage("drop"))
	got, ack := st.one(t, `{"user": "ana", "ms_played": "x"}`)
	require.NoError(t, ack, "dropped records are acknowledged")
	require.Empty(t, got)
	got, ack = st.one(t, `{"user": "ana", "ms_played": 1}`)
	require.NoError(t, ack)
	require.Len(t, got, 1)
}

func TestStageFail(t *testing.T) {
	env, out := newEnv(t, Deps{})
	st := startStream(t, env, out, true, stage("fail"))
	got, ack := st.one(t, `{"user": "ana", "ms_played": "x"}`)
	require.ErrorContains(t, ack, `field "ms_played": expected long, got string "x"`, "strict mode rejects it at the output")
	require.Empty(t, got, "never written")
	got, ack = st.one(t, `{"user": "ana", "ms_played": 1}`)
	require.NoError(t, ack)
	require.Len(t, got, 1)
}

// TestStageMappingThrows: a transform that throws becomes a dead letter
// with the original bytes, not what earlier stages made of them.
func TestStageMappingThrows(t *testing.T) {
	env, out := newEnv(t, Deps{})
	st := startStream(t, env, out, true, `
samsa_stage:
  name: enrich
  processors:
    - mapping: |
        root = this
        root.user = this.user.uppercase()
`, `
samsa_stage:
  name: transform
  processors:
    - mapping: |
        root = this
        root.n = this.nope.number()
    - mapping: 'root = if this.exists("n") { this } else { throw("a failed message reached the next child") }'
`,
		`samsa_stage: {name: check, processors: [{mapping: 'root = if this.user == "BAD" { throw("bad user") } else { this }'}]}`,
	)
	before := time.Now()
	got, ack := st.one(t, `{"user": "ana"}`)
	require.NoError(t, ack)
	require.Len(t, got, 1)
	requireDeadLetter(t, got[0], `{"user": "ana"}`, "transform",
		"failed assignment (line 2): expected number value, got null from field `this.nope`", before)

	got, _ = st.one(t, `{"user": "bad", "nope": "7"}`)
	require.Len(t, got, 1)
	requireDeadLetter(t, got[0], `{"user": "bad", "nope": "7"}`, "check", "failed assignment (line 1): bad user", before)

	got, _ = st.one(t, `{"user": "bo", "nope": "7"}`)
	require.Len(t, got, 1)
	require.NoError(t, got[0].GetError())
	require.JSONEq(t, `{"user": "BO", "nope": "7", "n": 7}`, content(t, got[0]))
}

// TestStageFirstFailureWins: a dead letter passes later stages untouched.
func TestStageFirstFailureWins(t *testing.T) {
	env, out := newEnv(t, Deps{})
	st := startStream(t, env, out, true,
		stage("dead_letter"),
		`samsa_stage: {name: transform, processors: [{mapping: 'root = this.ms_played * 2'}]}`,
		`samsa_stage: {name: last, on_error: fail, processors: [{mapping: 'root = throw("no")'}]}`,
	)
	before := time.Now()
	got, ack := st.one(t, `{"user": "ana", "ms_played": "x"}`)
	require.NoError(t, ack)
	require.Len(t, got, 1)
	requireDeadLetter(t, got[0], `{"user": "ana", "ms_played": "x"}`, "validate", `field "ms_played": expected long, got string "x"`, before)
}

// TestStageManyOrNone: children may turn a message into several or none;
// a message yields one dead letter however many of its parts fail.
func TestStageManyOrNone(t *testing.T) {
	env, out := newEnv(t, Deps{})
	st := startStream(t, env, out, true, `
samsa_stage:
  name: split
  processors:
    - unarchive: {format: json_array}
    - mapping: 'root = if this.skip == true { deleted() } else { this }'
    - samsa_avro: {schema: '{"type": "record", "name": "N", "fields": [{"name": "n", "type": "long"}, {"name": "skip", "type": ["null", "boolean"]}]}'}
`)
	got, ack := st.one(t, `[{"n": 1}, {"n": 2, "skip": true}, {"n": 3}]`)
	require.NoError(t, ack)
	require.Len(t, got, 2)
	require.JSONEq(t, `{"n": 1}`, content(t, got[0]))
	require.JSONEq(t, `{"n": 3}`, content(t, got[1]))

	got, ack = st.one(t, `[{"n": 2, "skip": true}]`)
	require.NoError(t, ack, "filtered out: acknowledged")
	require.Empty(t, got)

	before := time.Now()
	record := `[{"n": 1}, {"n": "two"}, {"n": 3}, {"n": "four"}]`
	got, ack = st.one(t, record)
	require.NoError(t, ack)
	require.Len(t, got, 3)
	require.JSONEq(t, `{"n": 1}`, content(t, got[0]))
	requireDeadLetter(t, got[1], record, "split", `field "n": expected long, got string "two"`, before)
	require.JSONEq(t, `{"n": 3}`, content(t, got[2]))
}

func TestStagePanic(t *testing.T) {
	env, out := newEnv(t, Deps{})
	st := startStream(t, env, out, true,
		`samsa_stage: {name: risky, processors: [{mapping: 'root = "changed"'}, {test_panic: {}}]}`)
	before := time.Now()
	got, ack := st.one(t, `{"a": 1}`)
	require.NoError(t, ack)
	require.Len(t, got, 1)
	requireDeadLetter(t, got[0], `{"a": 1}`, "risky", "processor panicked: boom", before)
}

// TestStageEncodedThenFailed: a dead letter after an encoding step carries
// the original JSON and no schema id.
func TestStageEncodedThenFailed(t *testing.T) {
	env, out := newEnv(t, Deps{Schemas: fakeStore{}})
	st := startStream(t, env, out, true, `
samsa_stage:
  name: validate
  processors:
    - samsa_avro: {subject: s, encode: true}
    - mapping: 'root = if content().length() > 3 { throw("too long") } else { content() }'
`)
	before := time.Now()
	got, _ := st.one(t, `"abcd"`)
	require.Len(t, got, 1)
	requireDeadLetter(t, got[0], `"abcd"`, "validate", "failed assignment (line 1): too long", before)
	_, ok := got[0].MetaGet(MetaSchemaID)
	require.False(t, ok)

	got, _ = st.one(t, `"ab"`)
	require.Len(t, got, 1)
	require.Equal(t, "\x04ab", content(t, got[0]))
	require.Equal(t, "7", metaString(t, got[0], MetaSchemaID))
}

// TestStageGenerate: a stream configured in YAML, strict, whose generated
// records all fail a stage, delivers them as dead letters and finishes.
func TestStageGenerate(t *testing.T) {
	env, _ := newEnv(t, Deps{})
	b := env.NewStreamBuilder()
	b.SetLogger(quietLogger())
	// The YAML's output is drop, fanned out beside the consumer func: a
	// config without one would write to stdout.
	require.NoError(t, b.SetYAML(`
error_handling: {strict: true}
input:
  generate: {count: 5, interval: "", mapping: 'root = "line %d".format(counter())'}
pipeline:
  processors:
    - samsa_stage:
        name: parse
        processors:
          - mapping: 'root = this.number()'
output:
  drop: {}
`))
	var mu sync.Mutex
	var got []*service.Message
	require.NoError(t, b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.Copy())
		return nil
	}))
	s, err := b.Build()
	require.NoError(t, err)
	before := time.Now()
	require.NoError(t, s.Run(ctxT(t, 10*time.Second)))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 5)
	for _, m := range got {
		line := content(t, m)
		require.Regexp(t, `^line \d$`, line)
		reason := metaString(t, m, MetaDLQReason)
		require.Contains(t, reason, "unable to reference message as structured")
		requireDeadLetter(t, m, line, "parse", reason, before)
	}
}

// TestStageLint: the spec refuses what the constructor would.
func TestStageLint(t *testing.T) {
	env, _ := newEnv(t, Deps{})
	require.ErrorContains(t, env.NewStreamBuilder().AddProcessorYAML(`samsa_stage: {name: x, on_error: retry, processors: []}`), "retry")
	require.ErrorContains(t, env.NewStreamBuilder().AddProcessorYAML(`samsa_stage: {processors: []}`), "name")
	require.ErrorContains(t, env.NewStreamBuilder().AddProcessorYAML(`samsa_stage: {name: x, processors: [{nope: {}}]}`), "nope")
}

// fakeStore is a schema store with one subject, s, a string at id 7.
type fakeStore struct{}

func (fakeStore) Schema(subject string, version int) (meta.SchemaVersion, error) {
	if subject != "s" {
		return meta.SchemaVersion{}, errors.New("no such subject")
	}
	return meta.SchemaVersion{Subject: "s", Version: 1, ID: 7, Schema: `"string"`}, nil
}
