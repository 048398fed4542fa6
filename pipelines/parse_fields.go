package pipelines

import (
	"fmt"
	"math"
	"strings"

	"github.com/samsa-io/samsa/log/meta"
	"gopkg.in/yaml.v3"
)

// The pipeline format, section by section (see the package doc).

func (w *walker) pipeline(n *yaml.Node, p *Pipeline) {
	f := w.fields(n, "", "name", "source", "validate", "transform", "topic", "sinks", "caches")
	if len(f) == 0 && n.Kind == yaml.MappingNode {
		w.fail(n, "", "empty pipeline: it needs at least name, source and topic")
		return
	}
	for _, req := range []string{"name", "source", "topic"} {
		if f[req] == nil && n.Kind == yaml.MappingNode {
			w.fail(n, req, "required")
		}
	}
	if v := f["name"]; v != nil {
		p.Name = w.name(v, "name")
	}
	if v := f["source"]; v != nil {
		w.source(v, &p.Source)
	}
	if v := f["validate"]; v != nil {
		p.Validate = &Validate{}
		w.validate(v, p.Validate)
	}
	if v := f["transform"]; v != nil {
		p.Transform = w.transform(v)
	}
	if v := f["topic"]; v != nil {
		w.topic(v, &p.Topic)
	}
	if v := f["sinks"]; v != nil {
		p.Sinks = w.sinks(v)
	}
	if v := f["caches"]; v != nil {
		p.Caches = w.caches(v)
	}
}

func (w *walker) caches(n *yaml.Node) []Cache {
	if n.Kind != yaml.MappingNode {
		w.fail(n, "caches", "must be a mapping of names to Benthos caches, e.g. seen: {memory: {default_ttl: 24h}}")
		return nil
	}
	var out []Cache
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "caches." + k.Value
		name := w.name(k, field)
		if c := w.component(v, field, "cache"); c != nil {
			out = append(out, Cache{Name: name, Cache: c})
		}
	}
	return out
}

func (w *walker) source(n *yaml.Node, s *Source) {
	kinds := append([]string{"file", "topic"}, ConnectorSources...)
	f := w.fields(n, "source", append(kinds, "benthos")...)
	if n.Kind == yaml.MappingNode && len(f) != 1 {
		w.fail(n, "source", "needs exactly one of %s or benthos, found %d", strings.Join(kinds, ", "), len(f))
	}
	for _, kind := range ConnectorSources {
		v := f[kind]
		if v == nil {
			continue
		}
		field := "source." + kind
		if v.Kind != yaml.MappingNode {
			w.fail(v, field, "must be a mapping of the %s connector's fields", kind)
			continue
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			if k := v.Content[i]; k.Value == "source_id" {
				w.fail(k, field+".source_id", "set by the pipeline (%s); leave it out", "pipeline.<name>.source")
			}
		}
		s.Connector = &ConnectorSource{Kind: kind, Config: v}
	}
	if v := f["file"]; v != nil {
		s.File = &FileSource{Format: "lines", Tail: true}
		ff := w.fields(v, "source.file", "paths", "format", "tail", "batch_size")
		if ff["paths"] == nil && v.Kind == yaml.MappingNode {
			w.fail(v, "source.file.paths", "required: the files to read, as globs")
		} else if ff["paths"] != nil {
			s.File.Paths = w.strings(ff["paths"], "source.file.paths")
		}
		s.File.Format = w.choice(ff["format"], "source.file.format", "lines", "lines", "jsonl", "csv")
		if t := ff["tail"]; t != nil {
			s.File.Tail = w.boolean(t, "source.file.tail")
		}
		if b := ff["batch_size"]; b != nil {
			s.File.BatchSize = int(w.integer(b, "source.file.batch_size", 1, 1<<20))
		}
	}
	if v := f["topic"]; v != nil {
		s.Topic = &TopicSource{}
		tf := w.fields(v, "source.topic", "name", "start")
		if tf["name"] == nil && v.Kind == yaml.MappingNode {
			w.fail(v, "source.topic.name", "required")
		} else if tf["name"] != nil {
			s.Topic.Name = w.topicName(tf["name"], "source.topic.name")
		}
		s.Topic.Start = w.start(tf["start"], "source.topic.start")
	}
	if v := f["benthos"]; v != nil {
		s.Benthos = w.component(v, "source.benthos", "input")
	}
}

func (w *walker) validate(n *yaml.Node, v *Validate) {
	f := w.fields(n, "validate", "avro", "encode", "on_invalid")
	if f["avro"] == nil && n.Kind == yaml.MappingNode {
		w.fail(n, "validate.avro", "required: the Avro schema records must match")
	}
	if a := f["avro"]; a != nil {
		v.line = a.Line
		af := w.fields(a, "validate.avro", "schema_file", "schema", "subject", "version")
		given := 0
		for _, k := range []string{"schema_file", "schema", "subject"} {
			if af[k] != nil {
				given++
			}
		}
		if given != 1 && a.Kind == yaml.MappingNode {
			w.fail(a, "validate.avro", "needs exactly one of schema_file, schema or subject, found %d", given)
		}
		if s := af["schema_file"]; s != nil {
			v.Avro.SchemaFile = w.str(s, "validate.avro.schema_file")
		}
		if s := af["schema"]; s != nil {
			v.Avro.Schema = w.str(s, "validate.avro.schema")
		}
		if s := af["subject"]; s != nil {
			v.Avro.Subject = w.str(s, "validate.avro.subject")
		}
		if s := af["version"]; s != nil {
			v.Avro.Version = int(w.integer(s, "validate.avro.version", -1, math.MaxInt32))
		}
	}
	if e := f["encode"]; e != nil {
		v.Avro.Encode = w.boolean(e, "validate.encode")
	}
	v.OnInvalid = w.choice(f["on_invalid"], "validate.on_invalid", "dead_letter", "dead_letter", "drop", "fail")
}

func (w *walker) transform(n *yaml.Node) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		w.fail(n, "transform", "must be a list of Benthos processors, e.g. - mapping: 'root = this'")
		return nil
	}
	var out []*yaml.Node
	for i, c := range n.Content {
		field := fmt.Sprintf("transform[%d]", i)
		if p := w.component(c, field, "processor"); p != nil {
			for j := 0; j+1 < len(p.Content); j += 2 {
				if k := p.Content[j].Value; k == "mapping" || k == "bloblang" || k == "mutation" {
					w.bloblangMapping(p.Content[j+1], field+"."+k)
				}
			}
			out = append(out, p)
		}
	}
	return out
}

func (w *walker) topic(n *yaml.Node, t *Topic) {
	f := w.fields(n, "topic", "name", "partitions", "replication_factor", "key", "configs", "on_error")
	t.Partitions, t.ReplicationFactor = 1, 1
	if f["name"] == nil && n.Kind == yaml.MappingNode {
		w.fail(n, "topic.name", "required")
	} else if f["name"] != nil {
		t.Name = w.topicName(f["name"], "topic.name")
	}
	if v := f["partitions"]; v != nil {
		t.Partitions = int32(w.integer(v, "topic.partitions", 1, 10_000))
	}
	if v := f["replication_factor"]; v != nil {
		t.ReplicationFactor = int16(w.integer(v, "topic.replication_factor", 1, 7))
	}
	if v := f["key"]; v != nil {
		t.Key = w.interpolation(v, "topic.key")
	}
	if v := f["configs"]; v != nil {
		t.Configs = map[string]string{}
		if v.Kind != yaml.MappingNode {
			w.fail(v, "topic.configs", "must be a mapping of Kafka topic configs, e.g. retention.ms: -1")
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], v.Content[i+1]
			field := "topic.configs." + k.Value
			t.Configs[k.Value] = w.str(val, field)
			if err := meta.ValidateConfigs(map[string]string{k.Value: val.Value}); err != nil {
				w.fail(k, field, "%s", oneLine(err))
			}
		}
	}
	t.OnError = w.choice(f["on_error"], "topic.on_error", "dead_letter", "dead_letter", "drop", "fail")
}

func (w *walker) topicName(n *yaml.Node, field string) string {
	v := w.str(n, field)
	if err := meta.ValidateTopicName(v); err != nil {
		w.fail(n, field, "%s", oneLine(err))
	}
	return v
}

func (w *walker) sinks(n *yaml.Node) []Sink {
	if n.Kind != yaml.SequenceNode {
		w.fail(n, "sinks", "must be a list of sinks, each a name and one Benthos output")
		return nil
	}
	var out []Sink
	seen := map[string]bool{}
	for i, c := range n.Content {
		field := fmt.Sprintf("sinks[%d]", i)
		if c.Kind != yaml.MappingNode {
			w.fail(c, field, "must be a mapping: name, optional start, and one Benthos output")
			continue
		}
		s := Sink{Line: c.Line}
		output := &yaml.Node{Kind: yaml.MappingNode, Line: c.Line, Column: c.Column}
		for j := 0; j+1 < len(c.Content); j += 2 {
			k, v := c.Content[j], c.Content[j+1]
			switch k.Value {
			case "name":
				s.Name = w.name(v, field+".name")
			case "start":
				s.Start = w.start(v, field+".start")
			default:
				output.Content = append(output.Content, k, v)
			}
		}
		if s.Name == "" {
			w.fail(c, field+".name", "required")
		} else if seen[s.Name] {
			w.fail(c, field+".name", "%q is used by another sink", s.Name)
		}
		seen[s.Name] = true
		if s.Start == "" {
			s.Start = "earliest"
		}
		s.Output = w.component(output, field, "output")
		out = append(out, s)
	}
	return out
}
