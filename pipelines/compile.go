package pipelines

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Stream is one Benthos stream of a compiled pipeline.
type Stream struct {
	// Name is "source" for the source half and "sink.<name>" for a sink.
	Name string
	// YAML is the stream's Benthos config, for the Environment that has
	// Samsa's plugins (see NewEnvironment).
	YAML string
}

// Component labels: they name the parts in metrics and logs, and the
// status totals count by them.
const (
	labelSource      = "source"
	labelValidate    = "validate"
	labelTransform   = "transform"
	labelTopic       = "topic"
	labelDeadLetters = "dead_letters"
)

// deadLetterCheck routes the records a stage turned into dead letters.
// The metadata may be a bool or a string, depending on who set it.
const deadLetterCheck = `@samsa_dead_letter.or(false).string() == "true"`

// Compile turns a pipeline into Benthos streams: the source half first,
// then one stream per sink.
func Compile(p *Pipeline) ([]Stream, error) {
	src, err := marshal(sourceStream(p))
	if err != nil {
		return nil, err
	}
	out := []Stream{{Name: "source", YAML: src}}
	for _, s := range p.Sinks {
		y, err := marshal(sinkStream(p, s))
		if err != nil {
			return nil, err
		}
		out = append(out, Stream{Name: "sink." + s.Name, YAML: y})
	}
	return out, nil
}

func marshal(v any) (string, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("pipelines: compiling: %w", err)
	}
	return string(b), nil
}

// strict is the error handling of every stream: a record that fails is
// rejected, never written past, and its source sees the nack.
var strict = map[string]any{"strict": true}

// sourceStream is source → stages → switch(dead letters | topic). One
// processing thread keeps the source's order, which the positions that
// make ingest exactly-once rely on.
func sourceStream(p *Pipeline) map[string]any {
	var procs []any
	if v := p.Validate; v != nil {
		avro := map[string]any{"encode": v.Avro.Encode}
		switch {
		case v.Avro.SchemaFile != "":
			avro["schema_file"] = p.resolve(v.Avro.SchemaFile)
		case v.Avro.Schema != "":
			avro["schema"] = v.Avro.Schema
		default:
			avro["subject"] = v.Avro.Subject
			if v.Avro.Version != 0 {
				avro["version"] = v.Avro.Version
			}
		}
		procs = append(procs, stage(labelValidate, v.OnInvalid, []any{map[string]any{"samsa_avro": avro}}))
	}
	if len(p.Transform) > 0 {
		steps := make([]any, len(p.Transform))
		for i, n := range p.Transform {
			steps[i] = n
		}
		procs = append(procs, stage(labelTransform, p.Topic.OnError, steps))
	}
	if procs == nil {
		procs = []any{}
	}
	main := map[string]any{
		"topic":              p.Topic.Name,
		"partitions":         p.Topic.Partitions,
		"replication_factor": p.Topic.ReplicationFactor,
	}
	if key := p.topicKey(); key != "" {
		main["key"] = key
	}
	if len(p.Topic.Configs) > 0 {
		main["configs"] = p.Topic.Configs
	}
	dlq := map[string]any{
		"topic":              p.DeadLetterTopic(),
		"partitions":         1,
		"replication_factor": p.Topic.ReplicationFactor,
		"dead_letter":        true,
	}
	if p.Source.Topic != nil {
		// Topic to topic: each batch is one transaction that writes the
		// records and the dead letters and commits the input's offsets.
		main["transaction"] = map[string]any{
			"id": p.SourceID(), "group": p.SourceID(), "dead_letter_topic": p.DeadLetterTopic(),
		}
		return withCaches(p, map[string]any{
			"input":          sourceInput(p),
			"pipeline":       map[string]any{"threads": 1, "processors": procs},
			"output":         map[string]any{"label": labelTopic, "samsa_topic": main},
			"error_handling": strict,
		})
	}
	return withCaches(p, map[string]any{
		"input":    sourceInput(p),
		"pipeline": map[string]any{"threads": 1, "processors": procs},
		"output": map[string]any{"switch": map[string]any{
			"cases": []any{
				map[string]any{"check": deadLetterCheck, "output": map[string]any{"label": labelDeadLetters, "samsa_topic": dlq}},
				map[string]any{"output": map[string]any{"label": labelTopic, "samsa_topic": main}},
			},
		}},
		"error_handling": strict,
	})
}

// keyedSources derive each record's key (metadata samsa_key): the device
// of an MQTT message, the primary key of a changed row. Their topic is
// keyed by it unless the pipeline says otherwise, so that a device's
// readings and a row's changes stay in order in one partition.
var keyedSources = map[string]bool{"mqtt": true, "postgres_cdc": true}

// topicKey is the topic's key interpolation: the pipeline's, or the
// source's key for a keyed source.
func (p *Pipeline) topicKey() string {
	if p.Topic.Key == "" && p.Source.Connector != nil && keyedSources[p.Source.Connector.Kind] {
		return `${! meta("samsa_key") }`
	}
	return p.Topic.Key
}

// withCaches adds the pipeline's caches to a stream.
func withCaches(p *Pipeline, stream map[string]any) map[string]any {
	if len(p.Caches) > 0 {
		var caches []any
		for _, c := range p.Caches {
			caches = append(caches, withLabel(c.Cache, c.Name, true))
		}
		stream["cache_resources"] = caches
	}
	return stream
}

func stage(name, onError string, procs []any) map[string]any {
	return map[string]any{"label": name, "samsa_stage": map[string]any{
		"name": name, "on_error": onError, "processors": procs,
	}}
}

func sourceInput(p *Pipeline) any {
	switch s := p.Source; {
	case s.File != nil:
		paths := make([]string, len(s.File.Paths))
		for i, path := range s.File.Paths {
			paths[i] = p.resolve(path)
		}
		f := map[string]any{
			"paths":     paths,
			"format":    s.File.Format,
			"source_id": p.SourceID(),
			"tail":      s.File.Tail,
		}
		if s.File.BatchSize > 0 {
			f["batch_size"] = s.File.BatchSize
		}
		return map[string]any{"label": labelSource, "samsa_file": f}
	case s.Topic != nil:
		return map[string]any{"label": labelSource, "samsa_topic": map[string]any{
			"topic": s.Topic.Name, "group": p.SourceID(), "start": s.Topic.Start, "transactional": true,
		}}
	case s.Connector != nil:
		return withLabel(p.resolvePaths(connectorComponent(p)), labelSource, false)
	default:
		return withLabel(p.resolvePaths(s.Benthos), labelSource, false)
	}
}

// sinkStream reads the topic as the sink's consumer group and writes to
// the sink's output; offsets are committed once the output acknowledges.
func sinkStream(p *Pipeline, s Sink) map[string]any {
	return withCaches(p, map[string]any{
		"input": map[string]any{"samsa_topic": map[string]any{
			"topic": p.Topic.Name, "group": p.SinkGroup(s.Name), "start": s.Start,
		}},
		"output":         p.resolvePaths(s.Output),
		"error_handling": strict,
	})
}

// resolvePaths returns a copy of a raw Benthos component with the paths
// of every file (and samsa_file) input and output and the database of
// every SQLite samsa_sql in it (at any depth: a broker's, a
// switch's) resolved against the pipeline's folder, like the pipeline's
// own paths. Interpolated paths (${! ... }) are left as they are.
func (p *Pipeline) resolvePaths(n *yaml.Node) *yaml.Node {
	if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
		return n
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, child := range n.Content {
		c.Content[i] = p.resolvePaths(child)
	}
	if c.Kind != yaml.MappingNode {
		return &c
	}
	for i := 0; i+1 < len(c.Content); i += 2 {
		f := c.Content[i+1]
		if f.Kind != yaml.MappingNode {
			continue
		}
		switch c.Content[i].Value {
		case "file", "samsa_file":
			for j := 0; j+1 < len(f.Content); j += 2 {
				if k := f.Content[j].Value; k == "path" || k == "paths" {
					f.Content[j+1] = p.resolvePath(f.Content[j+1])
				}
			}
		case "samsa_sql":
			c.Content[i+1] = p.resolveSQLite(f)
		}
	}
	return &c
}

// resolvePath resolves a path scalar, or each of a list of them.
func (p *Pipeline) resolvePath(v *yaml.Node) *yaml.Node {
	c := *v
	switch {
	case v.Kind == yaml.SequenceNode:
		c.Content = make([]*yaml.Node, len(v.Content))
		for i, e := range v.Content {
			c.Content[i] = p.resolvePath(e)
		}
	case v.Kind == yaml.ScalarNode && !strings.HasPrefix(v.Value, "${"):
		c.Value = p.resolve(v.Value)
	}
	return &c
}

// resolveSQLite is a copy of a samsa_sql component's fields with a
// relative SQLite database path (driver sqlite, the default) resolved
// like the pipeline's other paths. DSNs of other drivers, file: URIs and
// :memory: are left as they are.
func (p *Pipeline) resolveSQLite(f *yaml.Node) *yaml.Node {
	driver, dsn := "sqlite", -1
	for j := 0; j+1 < len(f.Content); j += 2 {
		switch f.Content[j].Value {
		case "driver":
			driver = f.Content[j+1].Value
		case "dsn":
			dsn = j + 1
		}
	}
	if driver != "sqlite" || dsn < 0 {
		return f
	}
	v := f.Content[dsn]
	if v.Kind != yaml.ScalarNode || strings.HasPrefix(v.Value, "file:") || strings.HasPrefix(v.Value, ":memory:") {
		return f
	}
	return replaceValue(f, "dsn", p.resolvePath(v))
}

// replaceValue is a copy of mapping n with key's value replaced.
func replaceValue(n *yaml.Node, key string, v *yaml.Node) *yaml.Node {
	c := *n
	c.Content = slices.Clone(n.Content)
	for i := 0; i+1 < len(c.Content); i += 2 {
		if c.Content[i].Value == key {
			c.Content[i+1] = v
		}
	}
	return &c
}

// resolve makes a path in the pipeline file relative to the file's
// directory.
func (p *Pipeline) resolve(path string) string {
	if filepath.IsAbs(path) || p.Dir == "" {
		return path
	}
	return filepath.Join(p.Dir, path)
}

// withLabel is a raw component with a label: unless it has one, or
// always with replace.
func withLabel(n *yaml.Node, label string, replace bool) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "label" {
			if !replace {
				return n
			}
			return replaceValue(n, "label", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: label})
		}
	}
	c := *n
	c.Content = append([]*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "label"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: label},
	}, n.Content...)
	return &c
}
