package pipelines

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseGood(t *testing.T) {
	p, err := ParseFile("testdata/good.yaml")
	require.NoError(t, err)
	require.Equal(t, "plays", p.Name)
	require.Equal(t, []string{"data/*.jsonl"}, p.Source.File.Paths)
	require.Equal(t, "jsonl", p.Source.File.Format)
	require.True(t, p.Source.File.Tail)
	require.Equal(t, "play.avsc", p.Validate.Avro.SchemaFile)
	require.Len(t, p.Transform, 1)
	require.Equal(t, int32(4), p.Topic.Partitions)
	require.Equal(t, `${! json("user") }`, p.Topic.Key)
	require.Equal(t, "-1", p.Topic.Configs["retention.ms"])
	require.Len(t, p.Sinks, 1)
	require.Equal(t, "archive", p.Sinks[0].Name)
	require.Equal(t, "plays.dlq", p.DeadLetterTopic())
	require.Equal(t, "pipeline.plays.archive", p.SinkGroup("archive"))
}

// TestFiveMistakes is the example: five different mistakes, five
// precise messages, each naming the file, the line and the field.
func TestFiveMistakes(t *testing.T) {
	_, err := ParseFile("testdata/five_mistakes.yaml")
	var ps Problems
	require.True(t, errors.As(err, &ps), "%v", err)
	want := []string{
		`testdata/five_mistakes.yaml:5: source.file.format: must be lines, jsonl or csv, not "xml"`,
		`testdata/five_mistakes.yaml:8: validate.on_invalid: must be dead_letter, drop or fail, not "ignore"`,
		`testdata/five_mistakes.yaml:10: transform[0].mapping: Bloblang:`,
		`testdata/five_mistakes.yaml:13: topic.partitons: unknown field; did you mean "partitions"?`,
		`testdata/five_mistakes.yaml:15: sinks[0]: must be exactly one Benthos output, found 0 keys`,
	}
	require.Len(t, ps, len(want), "%v", err)
	for i, w := range want {
		require.Contains(t, ps[i].Error(), w)
	}

	// Lint, which also runs Benthos's linter, finds the same five: the bad
	// mapping is not reported twice.
	env, err := NewEnvironment(Deps{})
	require.NoError(t, err)
	_, err = env.Lint("testdata/five_mistakes.yaml", mustRead(t, "testdata/five_mistakes.yaml"))
	require.True(t, errors.As(err, &ps), "%v", err)
	require.Len(t, ps, len(want), "%v", err)
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestLint goes past the format: Benthos's linter on the raw parts, each
// finding at its line in the file, then building every component — which
// finds the schema file that is not there.
func TestLint(t *testing.T) {
	env, err := NewEnvironment(Deps{})
	require.NoError(t, err)
	src := `name: lint
source:
  file: {paths: [in.jsonl]}
validate:
  avro: {schema_file: missing.avsc}
transform:
  - dedupe:
      cache: seen
      kee: '${! json("id") }'
topic:
  name: lint
sinks:
  - name: out
    file: {path: out.jsonl, codek: lines}
caches:
  seen: {memory: {}}
`
	_, err = env.Lint("lint.yaml", []byte(src))
	var ps Problems
	require.True(t, errors.As(err, &ps), "%v", err)
	require.Len(t, ps, 3, "%v", err)
	require.Contains(t, ps[0].Error(), "lint.yaml:8: transform[0]: Benthos: field key is required")
	require.Contains(t, ps[1].Error(), "lint.yaml:9: transform[0]: Benthos: field kee not recognised")
	require.Contains(t, ps[2].Error(), "lint.yaml:14: sinks[0]: Benthos: field codek not recognised")

	// Fixed, the linter builds the components: the schema file is missing.
	src = strings.NewReplacer("kee:", "key:", "codek:", "codec:").Replace(src)
	_, err = env.Lint("lint.yaml", []byte(src))
	require.True(t, errors.As(err, &ps), "%v", err)
	require.Len(t, ps, 1, "%v", err)
	require.Contains(t, ps[0].Error(), "lint.yaml:5: validate.avro:")
	require.Contains(t, ps[0].Error(), "missing.avsc")
}

// TestConnectorSource: a connector's fields pass through to its Benthos
// input (samsa_<kind>) with the pipeline's source id; setting source_id
// by hand is a mistake.
func TestConnectorSource(t *testing.T) {
	p, err := Parse("/srv/shop/orders.yaml", []byte(`name: orders
source:
  sql: {driver: sqlite, dsn: shop.db, table: orders, cursor: id}
topic: {name: orders}
sinks:
  - name: copy
    samsa_sql: {dsn: copy.db, table: orders, key: [id]}
  - name: pg
    samsa_sql: {driver: postgres, dsn: "postgres://x@y/z", table: orders, key: [id]}
`))
	require.NoError(t, err)
	require.Equal(t, "sql", p.Source.Connector.Kind)
	streams, err := Compile(p)
	require.NoError(t, err)
	require.Contains(t, streams[0].YAML, "samsa_sql:")
	require.Contains(t, streams[0].YAML, "source_id: pipeline.orders.source")
	require.Contains(t, streams[0].YAML, "table: orders")
	// A relative SQLite database is the pipeline's, like its other paths.
	require.Contains(t, streams[0].YAML, "dsn: /srv/shop/shop.db")
	require.Contains(t, streams[1].YAML, "dsn: /srv/shop/copy.db")
	require.Contains(t, streams[2].YAML, `dsn: "postgres://x@y/z"`)

	_, err = Parse("orders.yaml", []byte(`name: orders
source:
  mqtt: {urls: [tcp://127.0.0.1:1883], source_id: mine}
topic: {name: orders}
`))
	require.ErrorContains(t, err, "orders.yaml:3: source.mqtt.source_id: set by the pipeline")

	// An MQTT or CDC topic is keyed by the source's key unless told.
	p, err = Parse("readings.yaml", []byte(`name: readings
source:
  mqtt: {urls: [tcp://127.0.0.1:1883], topics: [devices/+/readings]}
topic: {name: readings}
`))
	require.NoError(t, err)
	streams, err = Compile(p)
	require.NoError(t, err)
	require.Contains(t, streams[0].YAML, `key: ${! meta("samsa_key") }`)
}
