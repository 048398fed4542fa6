package pipelines

import (
	"gopkg.in/yaml.v3"
)

// Pipeline is a parsed pipeline file. Raw Benthos parts (a benthos source,
// transform processors, sink outputs) are kept as YAML nodes, checked by
// Benthos's own linter and compiled as they are.
type Pipeline struct {
	Name      string
	Source    Source
	Validate  *Validate
	Transform []*yaml.Node // each a Benthos processor, e.g. {mapping: '...'}
	Topic     Topic
	Sinks     []Sink
	Caches    []Cache // Benthos caches, for dedupe and cached processors

	File string // the file it came from, for messages
	Dir  string // relative paths (source files, schemas) resolve here
	Raw  []byte // the file's bytes, as stored in the meta shard
}

// Source is where records come from: exactly one field is set.
type Source struct {
	File      *FileSource
	Topic     *TopicSource
	Connector *ConnectorSource
	Benthos   *yaml.Node // one Benthos input, e.g. {generate: {...}}
}

// ConnectorSources are the sources besides file and topic that Samsa's
// connectors offer: source key K runs the Benthos input samsa_K.
var ConnectorSources = []string{"sql", "postgres_cdc", "mqtt"}

// ConnectorSource is one of ConnectorSources. Its fields are the
// connector's own, as written; the pipeline sets source_id.
type ConnectorSource struct {
	Kind   string     // a ConnectorSources entry
	Config *yaml.Node // the connector's fields
}

// Input is the Benthos input a connector source runs.
func (c *ConnectorSource) Input() string { return "samsa_" + c.Kind }

// FileSource reads lines from files (Samsa's samsa_file connector):
// exactly once, resuming from a checkpoint after a restart.
type FileSource struct {
	Paths     []string // globs, relative to the pipeline file
	Format    string   // lines (default) | jsonl | csv
	Tail      bool     // keep following the files (default true)
	BatchSize int      // lines per batch (default: the connector's)
}

// TopicSource reads another topic.
type TopicSource struct {
	Name  string
	Start string // earliest (default) | latest | an RFC 3339 time
}

// Validate checks records before they reach the topic.
type Validate struct {
	Avro      Avro
	OnInvalid string // dead_letter (default) | drop | fail

	line int // where it is in the file
}

// Avro names the schema records must match: exactly one of SchemaFile,
// Schema and Subject.
type Avro struct {
	SchemaFile string // relative to the pipeline file
	Schema     string
	Subject    string
	Version    int  // of Subject; 0 or -1 for the latest
	Encode     bool // store the Avro binary encoding instead of the JSON
}

// Topic is where the pipeline's records are stored.
type Topic struct {
	Name              string
	Partitions        int32  // default 1
	ReplicationFactor int16  // default 1
	Key               string // Bloblang interpolation; empty: no key
	Configs           map[string]string
	OnError           string // dead_letter (default) | drop | fail: a transform that fails
}

// Cache is a named Benthos cache resource, e.g. seen: {memory: {}}.
type Cache struct {
	Name  string
	Cache *yaml.Node
}

// Sink reads the topic and writes elsewhere through a Benthos output.
type Sink struct {
	Name   string
	Start  string     // earliest (default) | latest | RFC 3339
	Output *yaml.Node // one Benthos output, e.g. {file: {path: ...}}
	Line   int
}

// DeadLetterTopic is where the pipeline's invalid records go.
func (p *Pipeline) DeadLetterTopic() string { return p.Topic.Name + ".dlq" }

// Delivery says how the pipeline's source reaches its topic: exactly
// once through positions (Samsa's sources), exactly once through
// transactions (a topic), or at least once (a raw Benthos input, whose
// records carry no position).
func (p *Pipeline) Delivery() string {
	switch {
	case p.Source.Topic != nil:
		return DeliveryTransactions
	case p.Source.Benthos != nil:
		return DeliveryAtLeastOnce
	}
	return DeliveryPositions
}

// Delivery values.
const (
	DeliveryPositions    = "exactly-once (positions)"
	DeliveryTransactions = "exactly-once (transactions)"
	DeliveryAtLeastOnce  = "at-least-once"
)

// SourceID identifies the pipeline's source for positions and checkpoints.
func (p *Pipeline) SourceID() string { return "pipeline." + p.Name + ".source" }

// SinkGroup is the consumer group a sink reads the topic as.
func (p *Pipeline) SinkGroup(sink string) string { return "pipeline." + p.Name + "." + sink }

// transformLine is where the transforms start in the file.
func (p *Pipeline) transformLine() int {
	if len(p.Transform) == 0 {
		return 0
	}
	return p.Transform[0].Line
}
