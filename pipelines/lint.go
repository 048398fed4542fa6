package pipelines

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"gopkg.in/yaml.v3"
)

// Lint checks a pipeline file the way running it would, and reports every
// problem at once: the format (Parse), then Benthos's own linter on each
// raw Benthos part, then — if all that passed — it builds every component
// without running it, since Benthos finds some mistakes (a schema file
// that is missing, a regular expression that does not compile) only then.
// Without a log (offline), a schema named by subject is not checked.
func (env *Environment) Lint(file string, data []byte) (*Pipeline, error) {
	return env.LintIn(file, "", data)
}

// LintIn is Lint with relative paths resolved in dir (default: the
// file's folder).
func (env *Environment) LintIn(file, dir string, data []byte) (*Pipeline, error) {
	p, problems := parse(file, data)
	if p == nil {
		return nil, problems
	}
	if dir != "" {
		p.Dir = dir
	}
	l := &linter{env: env, file: file}
	if p.Source.Benthos != nil {
		l.lint("input", "source.benthos", p.Source.Benthos)
	}
	if c := p.Source.Connector; c != nil {
		l.lint("input", "source."+c.Kind, connectorComponent(p))
	}
	for i, n := range p.Transform {
		l.lint("processor", fmt.Sprintf("transform[%d]", i), n)
	}
	for i, s := range p.Sinks {
		if s.Output != nil {
			l.lint("output", fmt.Sprintf("sinks[%d]", i), s.Output)
		}
	}
	for _, c := range p.Caches {
		l.lint("cache", "caches."+c.Name, c.Cache)
	}
	// A mistake the format check found (bad Bloblang) is not repeated.
	for _, lp := range l.problems {
		if !slices.ContainsFunc(problems, func(fp Problem) bool {
			return fp.Line == lp.Line && strings.HasPrefix(fp.Field, lp.Field)
		}) {
			problems = append(problems, lp)
		}
	}
	if len(problems) == 0 {
		problems = l.build(p)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return a.Line - b.Line })
		return nil, problems
	}
	return p, nil
}

// benthosWrapping is how Benthos wraps a component's construction error;
// the file, line and field already say where.
var benthosWrapping = regexp.MustCompile(`(processor \d+: )?failed to init \w+ <[^>]*> path [^ ]*: `)

type linter struct {
	env      *Environment
	file     string
	problems Problems
}

// lint runs Benthos's linter on one component and reports each finding
// at its line in the pipeline file.
func (l *linter) lint(kind, field string, n *yaml.Node) {
	b, err := yaml.Marshal(n)
	if err != nil {
		l.problems = append(l.problems, Problem{File: l.file, Line: n.Line, Field: field, Msg: err.Error()})
		return
	}
	lints, err := l.env.NewComponentConfigLinter().LintYAML(kind, b)
	if err != nil {
		l.problems = append(l.problems, Problem{File: l.file, Line: n.Line, Field: field, Msg: "Benthos: " + oneLine(err)})
		return
	}
	var copied yaml.Node
	_ = yaml.Unmarshal(b, &copied)
	at, lines := map[[2]int]int{}, map[int]int{}
	if len(copied.Content) == 1 {
		mapLines(copied.Content[0], n, at, lines)
	}
	for _, li := range lints {
		line, ok := at[[2]int{li.Line, li.Column}]
		if !ok {
			if line, ok = lines[li.Line]; !ok {
				line = n.Line
			}
		}
		l.problems = append(l.problems, Problem{File: l.file, Line: line, Field: field, Msg: "Benthos: " + li.What})
	}
}

// mapLines maps the positions of a re-encoded component to the lines of
// the same nodes in the file (the two trees have the same shape): by line
// and column, and by line alone to the deepest node on it.
func mapLines(copied, orig *yaml.Node, at map[[2]int]int, lines map[int]int) {
	at[[2]int{copied.Line, copied.Column}] = orig.Line
	lines[copied.Line] = orig.Line
	for i := range min(len(copied.Content), len(orig.Content)) {
		mapLines(copied.Content[i], orig.Content[i], at, lines)
	}
}

// build constructs every component of the compiled pipeline, without
// running any, and closes them again.
func (l *linter) build(p *Pipeline) Problems {
	var problems Problems
	fail := func(line int, field string, err error) {
		msg := benthosWrapping.ReplaceAllString(oneLine(err), "")
		problems = append(problems, Problem{File: l.file, Line: line, Field: field, Msg: msg})
	}
	src := sourceStream(p)
	procs := src["pipeline"].(map[string]any)["processors"].([]any)
	for _, proc := range procs {
		st := proc.(map[string]any)
		field, line := "transform", p.transformLine()
		if st["label"] == labelValidate {
			field, line = "validate.avro", p.Validate.line
			if p.Validate.Avro.Subject != "" && l.env.deps.Log == nil {
				continue // no schema store to look the subject up in
			}
		}
		if err := l.buildOne(p, "processor", proc); err != nil {
			fail(line, field, err)
		}
	}
	if p.Source.Benthos != nil {
		if err := l.buildOne(p, "input", p.Source.Benthos); err != nil {
			fail(p.Source.Benthos.Line, "source.benthos", err)
		}
	}
	if c := p.Source.Connector; c != nil {
		if err := l.buildOne(p, "input", sourceInput(p)); err != nil {
			fail(c.Config.Line, "source."+c.Kind, err)
		}
	}
	for i, s := range p.Sinks {
		if err := l.buildOne(p, "output", s.Output); err != nil {
			fail(s.Line, fmt.Sprintf("sinks[%d]", i), err)
		}
	}
	return problems
}

// buildOne builds one component from its config, with the pipeline's
// caches beside it (a dedupe needs its cache), suspended: nothing
// connects or reads.
func (l *linter) buildOne(p *Pipeline, kind string, conf any) error {
	rb := l.env.NewResourceBuilder()
	rb.SetLogger(slog.New(slog.DiscardHandler))
	if err := rb.SetMetricsYAML("none: {}"); err != nil {
		return err
	}
	for _, c := range p.Caches {
		b, err := yaml.Marshal(withLabel(c.Cache, c.Name, true))
		if err != nil {
			return err
		}
		if err := rb.AddCacheYAML(string(b)); err != nil {
			return err
		}
	}
	b, err := yaml.Marshal(conf)
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return err
	}
	if b, err = yaml.Marshal(withLabel(n.Content[0], "lint", true)); err != nil {
		return err
	}
	switch kind {
	case "input":
		err = rb.AddInputYAML(string(b))
	case "processor":
		err = rb.AddProcessorYAML(string(b))
	default:
		err = rb.AddOutputYAML(string(b))
	}
	if err != nil {
		return err
	}
	res, closeFn, err := rb.BuildSuspended()
	if err != nil {
		return err
	}
	defer func() {
		closed, cancel := context.WithCancel(context.Background())
		cancel() // nothing started: close without waiting
		_ = closeFn(closed)
	}()
	// Resources are built on first access.
	ctx := context.Background()
	switch kind {
	case "input":
		return res.AccessInput(ctx, "lint", func(*service.ResourceInput) {})
	case "processor":
		return res.AccessProcessor(ctx, "lint", func(*service.ResourceProcessor) {})
	}
	return res.AccessOutput(ctx, "lint", func(*service.ResourceOutput) {})
}

// connectorComponent is the pipeline's connector source as the Benthos
// input it runs ({samsa_<kind>: fields}, with source_id), its nodes
// keeping their lines in the file.
func connectorComponent(p *Pipeline) *yaml.Node {
	c := p.Source.Connector
	conf := *c.Config
	conf.Content = append(slices.Clip(conf.Content),
		&yaml.Node{Kind: yaml.ScalarNode, Value: "source_id", Line: c.Config.Line},
		&yaml.Node{Kind: yaml.ScalarNode, Value: p.SourceID(), Line: c.Config.Line})
	return &yaml.Node{Kind: yaml.MappingNode, Line: c.Config.Line, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: c.Input(), Line: c.Config.Line}, &conf,
	}}
}
