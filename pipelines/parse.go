package pipelines

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"gopkg.in/yaml.v3"
)

// Problem is one mistake in a pipeline file, where it is and what is wrong.
type Problem struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	Field string `json:"field,omitempty"` // the path of the field, e.g. source.file.format
	Msg   string `json:"message"`
}

func (p Problem) Error() string {
	if p.Field == "" {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Field, p.Msg)
}

// Problems is every mistake found in a file, in file order.
type Problems []Problem

func (ps Problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// ParseFile reads and parses a pipeline file.
func ParseFile(path string) (*Pipeline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse parses a pipeline strictly: unknown fields, wrong types, missing
// fields and bad Bloblang are all reported, each with file, line and
// field, in one Problems error. Relative paths in the file resolve against
// the file's directory (Pipeline.Dir).
func Parse(file string, data []byte) (*Pipeline, error) {
	p, problems := parse(file, data)
	if len(problems) > 0 {
		return nil, problems
	}
	return p, nil
}

// parse is Parse returning what it could read along with the problems; p
// is nil only when the file is not YAML at all.
func parse(file string, data []byte) (*Pipeline, Problems) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, Problems{{File: file, Line: yamlErrorLine(err), Msg: "not YAML: " + oneLine(err)}}
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		dir = filepath.Dir(file)
	}
	w := &walker{file: file, blobl: bloblangEnv()}
	p := &Pipeline{File: file, Dir: dir, Raw: data}
	w.pipeline(doc.Content[0], p)
	slices.SortStableFunc(w.problems, func(a, b Problem) int { return a.Line - b.Line })
	return p, w.problems
}

// bloblangEnv is the Bloblang every pipeline mapping runs in: pure
// functions only (no env, file, hostname) and no imports, so a mapping
// cannot read the host it runs on.
func bloblangEnv() *bloblang.Environment {
	return bloblang.NewEnvironment().OnlyPure().WithDisabledImports()
}

// walker checks nodes against the pipeline format, collecting problems.
type walker struct {
	file     string
	blobl    *bloblang.Environment
	problems Problems
}

func (w *walker) fail(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	w.problems = append(w.problems, Problem{File: w.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// fields checks that n is a mapping with only known keys and returns its
// values by key. A key the format does not know is a problem, with the
// nearest known key suggested.
func (w *walker) fields(n *yaml.Node, field string, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		w.fail(n, field, "must be a mapping of %s", strings.Join(known, ", "))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := join(field, k.Value)
		switch {
		case !slices.Contains(known, k.Value):
			msg := fmt.Sprintf("unknown field; %s takes %s", orRoot(field), strings.Join(known, ", "))
			if near := nearest(k.Value, known); near != "" {
				msg = fmt.Sprintf("unknown field; did you mean %q?", near)
			}
			w.fail(k, path, "%s", msg)
		case out[k.Value] != nil:
			w.fail(k, path, "given twice")
		default:
			out[k.Value] = v
		}
	}
	return out
}

func (w *walker) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!bool") {
		w.fail(n, field, "must be a string")
		return ""
	}
	return n.Value
}

func (w *walker) integer(n *yaml.Node, field string, lo, hi int64) int64 {
	var v int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		w.fail(n, field, "must be a whole number, not %q", n.Value)
		return 0
	}
	if v < lo || v > hi {
		w.fail(n, field, "%d is outside %d..%d", v, lo, hi)
	}
	return v
}

func (w *walker) boolean(n *yaml.Node, field string) bool {
	var v bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		w.fail(n, field, "must be true or false, not %q", n.Value)
	}
	return v
}

// choice is a string that must be one of allowed; empty n gives def.
func (w *walker) choice(n *yaml.Node, field, def string, allowed ...string) string {
	if n == nil {
		return def
	}
	v := w.str(n, field)
	if v != "" && !slices.Contains(allowed, v) {
		w.fail(n, field, "must be %s, not %q", orList(allowed), v)
	}
	return v
}

// strings is one string or a list of them.
func (w *walker) strings(n *yaml.Node, field string) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{w.str(n, field)}
	}
	if n.Kind != yaml.SequenceNode {
		w.fail(n, field, "must be a string or a list of strings")
		return nil
	}
	var out []string
	for i, c := range n.Content {
		out = append(out, w.str(c, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

// start checks a place to start reading: earliest, latest or a time.
func (w *walker) start(n *yaml.Node, field string) string {
	if n == nil {
		return "earliest"
	}
	v := w.str(n, field)
	if v != "earliest" && v != "latest" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			w.fail(n, field, "must be earliest, latest or an RFC 3339 time such as 2026-11-26T18:00:00Z, not %q", v)
		}
	}
	return v
}

// name checks a pipeline's or sink's name: it becomes part of consumer
// group and checkpoint names.
func (w *walker) name(n *yaml.Node, field string) string {
	v := w.str(n, field)
	if v == "" {
		w.fail(n, field, "must not be empty")
	} else if len(v) > 200 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		w.fail(n, field, "%q must be 1 to 200 of a-z, A-Z, 0-9, '.', '_' and '-'", v)
	}
	return v
}

// component checks a raw Benthos component: a mapping with exactly one
// key, its type (a `label` may come along).
func (w *walker) component(n *yaml.Node, field, what string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		w.fail(n, field, "must be one Benthos %s, e.g. {%s}", what, exampleOf(what))
		return nil
	}
	kinds := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "label" {
			kinds++
		}
	}
	if kinds != 1 {
		w.fail(n, field, "must be exactly one Benthos %s, found %d keys", what, kinds)
		return nil
	}
	return n
}

func exampleOf(what string) string {
	switch what {
	case "processor":
		return "mapping: 'root = this'"
	case "output":
		return "file: {path: out.jsonl}"
	case "cache":
		return "memory: {}"
	}
	return "generate: {mapping: 'root = {}'}"
}

// bloblangMapping checks a mapping's syntax and reports the error at its
// line in the file.
func (w *walker) bloblangMapping(n *yaml.Node, field string) {
	if n.Kind != yaml.ScalarNode {
		return // Benthos's linter reports the type
	}
	if _, err := w.blobl.Parse(n.Value); err != nil {
		w.fail(n, field, "Bloblang: %s", oneLine(err))
	}
}

func (w *walker) interpolation(n *yaml.Node, field string) string {
	v := w.str(n, field)
	if err := w.blobl.CheckInterpolatedString(v); err != nil {
		w.fail(n, field, "Bloblang interpolation: %s", oneLine(err))
	}
	return v
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func orRoot(field string) string {
	if field == "" {
		return "a pipeline"
	}
	return field
}

func orList(vs []string) string {
	if len(vs) == 1 {
		return vs[0]
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

func yamlErrorLine(err error) int {
	var line int
	if _, e := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); e == nil {
		return line
	}
	return 1
}

// nearest is the known name closest to s, if it is close enough to be a
// typo.
func nearest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
