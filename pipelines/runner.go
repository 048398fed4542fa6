package pipelines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
	"gopkg.in/yaml.v3"
)

// Pipeline states, as status reports them.
const (
	StateRunning   = "running"   // every stream runs
	StateFinished  = "finished"  // the source read everything (tail: false); sinks may still run
	StateStopped   = "stopped"   // stopped on request
	StateFailed    = "failed"    // a stream stopped with an error
	StateElsewhere = "elsewhere" // stored, run by another node
)

// ErrNotFound means no pipeline has the name.
var ErrNotFound = errors.New("no such pipeline")

// Runner runs a node's pipelines. Specs live in the meta shard (Apply,
// Delete), so they survive restarts and every node sees them; each runs on
// the node it was applied to, since its files and devices are there.
type Runner struct {
	env    *Environment
	log    *replog.Log
	logger *slog.Logger

	mu     sync.Mutex
	runs   map[string]*run
	closed bool
}

// NewRunner returns a runner for env, which must have a log.
func NewRunner(env *Environment) *Runner {
	return &Runner{env: env, log: env.deps.Log, logger: env.deps.Logger, runs: map[string]*run{}}
}

// Env is the environment the runner checks and runs pipelines in.
func (r *Runner) Env() *Environment { return r.env }

// stored is a pipeline as the meta shard keeps it.
type stored struct {
	Node uint64 `json:"node"` // the node that runs it
	File string `json:"file"` // for messages
	Dir  string `json:"dir"`  // relative paths resolve here, on that node
	YAML string `json:"yaml"`
}

func decodeStored(spec []byte) (stored, error) {
	var s stored
	err := json.Unmarshal(spec, &s)
	return s, err
}

// Apply checks a pipeline file (as Lint does), stores it and starts it on
// this node, replacing a running pipeline of the same name: the new one
// resumes from the old one's checkpoint, and its sinks from their
// committed offsets. Applying the same file again changes nothing. dir is
// where relative paths in the file resolve (default: the file's).
func (r *Runner) Apply(ctx context.Context, file, dir string, data []byte) (Status, error) {
	p, err := r.env.LintIn(file, dir, data)
	if err != nil {
		return Status{}, err
	}
	spec, err := json.Marshal(stored{Node: r.log.NodeID(), File: file, Dir: p.Dir, YAML: string(data)})
	if err != nil {
		return Status{}, err
	}
	if old, ok := r.log.Pipeline(p.Name); ok && bytes.Equal(old.Spec, spec) {
		if st, ok := r.Status(p.Name); ok && st.State != StateFailed && st.State != StateStopped && st.State != StateElsewhere {
			return st, nil
		}
	}
	version, err := r.log.PutPipeline(ctx, p.Name, spec)
	if err != nil {
		return Status{}, fmt.Errorf("storing pipeline %s: %w", p.Name, err)
	}
	if err := r.start(ctx, p, version); err != nil {
		return Status{}, err
	}
	st, _ := r.Status(p.Name)
	return st, nil
}

// Delete stops a pipeline and removes its spec. Its topics, checkpoint and
// sinks' committed offsets stay: applying it again resumes.
func (r *Runner) Delete(ctx context.Context, name string) error {
	if _, ok := r.log.Pipeline(name); !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err := r.stop(ctx, name); err != nil {
		return err
	}
	if err := r.log.DeletePipeline(ctx, name); err != nil {
		return err
	}
	r.env.metrics.Forget(name)
	return nil
}

// LoadStored starts every stored pipeline that this node runs. A spec that
// no longer checks (a schema file gone) is reported as failed, and the
// others still start.
func (r *Runner) LoadStored(ctx context.Context) error {
	var errs []error
	for _, sp := range r.log.Pipelines() {
		s, err := decodeStored(sp.Spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s: stored spec: %w", sp.Name, err))
			continue
		}
		if s.Node != r.log.NodeID() {
			continue
		}
		p, err := r.env.LintIn(s.File, s.Dir, []byte(s.YAML))
		if err == nil {
			err = r.start(ctx, p, sp.Version)
		}
		if err != nil {
			r.failed(sp.Name, sp.Version, err)
			errs = append(errs, fmt.Errorf("pipeline %s: %w", sp.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Run starts a pipeline without storing it (for tests and benchmarks).
func (r *Runner) Run(ctx context.Context, p *Pipeline) error { return r.start(ctx, p, 0) }

// Close stops every pipeline, gracefully until ctx ends and then at once.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	names := make([]string, 0, len(r.runs))
	for name := range r.runs {
		names = append(names, name)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.stop(ctx, name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run is one pipeline on this node.
type run struct {
	p       *Pipeline
	version uint64
	started time.Time
	streams []*runStream
	err     error // set when it could not start
}

// runStream is one Benthos stream of a run.
type runStream struct {
	name string
	s    *service.Stream
	done chan struct{}

	mu    sync.Mutex
	state string
	err   error
}

func (s *runStream) set(state string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.err = state, err
}

func (s *runStream) get() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.err
}

func (r *Runner) failed(name string, version uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[name] = &run{p: &Pipeline{Name: name}, version: version, started: time.Now(), err: err}
}

// start builds every stream of p and runs them, replacing a run of the
// same name. Nothing runs unless every stream builds.
func (r *Runner) start(ctx context.Context, p *Pipeline, version uint64) error {
	compiled, err := Compile(p)
	if err != nil {
		return err
	}
	streams := make([]*runStream, len(compiled))
	for i, c := range compiled {
		s, err := r.build(p.Name, c)
		if err != nil {
			return fmt.Errorf("pipeline %s: %s stream: %w", p.Name, c.Name, err)
		}
		streams[i] = &runStream{name: c.Name, s: s, done: make(chan struct{}), state: StateRunning}
	}
	if err := r.prepare(ctx, p); err != nil {
		return fmt.Errorf("pipeline %s: %w", p.Name, err)
	}
	if err := r.stop(ctx, p.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("pipelines: the runner is closed")
	}
	run := &run{p: p, version: version, started: time.Now(), streams: streams}
	r.runs[p.Name] = run
	for _, s := range streams {
		go r.runStream(p.Name, s)
	}
	r.logger.Info("pipeline started", "pipeline", p.Name, "version", version, "topic", p.Topic.Name, "sinks", len(p.Sinks))
	return nil
}

// prepare creates the pipeline's topic and dead-letter topic unless they
// exist, so that its sinks find them at once, and checks that a topic
// source's topic exists.
func (r *Runner) prepare(ctx context.Context, p *Pipeline) error {
	if s := p.Source.Topic; s != nil {
		if _, ok := r.log.Topic(s.Name); !ok {
			return fmt.Errorf("source.topic.name: topic %q does not exist", s.Name)
		}
	}
	for _, spec := range []replog.TopicSpec{
		{Name: p.Topic.Name, Partitions: p.Topic.Partitions, ReplicationFactor: p.Topic.ReplicationFactor, Configs: p.Topic.Configs},
		{Name: p.DeadLetterTopic(), Partitions: 1, ReplicationFactor: p.Topic.ReplicationFactor},
	} {
		if _, ok := r.log.Topic(spec.Name); ok {
			continue
		}
		if err := r.log.CreateTopic(ctx, spec, false); err != nil && !errors.Is(err, replog.ErrTopicExists) {
			return fmt.Errorf("creating topic %s: %w", spec.Name, err)
		}
	}
	return nil
}

func (r *Runner) build(name string, c Stream) (*service.Stream, error) {
	b := r.env.NewStreamBuilder()
	if err := b.SetYAML(c.YAML); err != nil {
		return nil, err
	}
	metrics, err := yaml.Marshal(metricsYAML(name, c.Name))
	if err != nil {
		return nil, err
	}
	if err := b.SetMetricsYAML(string(metrics)); err != nil {
		return nil, err
	}
	b.SetStrict(true)
	b.SetLogger(slog.New(benthosLogs{h: r.logger.Handler()}).With("pipeline", name, "stream", c.Name))
	return b.Build()
}

// benthosLogs is the handler of a stream's Benthos logger. Benthos's
// lifecycle chatter (info: "Input type X is now active") goes to debug,
// and so do the warnings and errors of processors inside a stage: each is
// a record that became a dead letter, which the dead-letter topic keeps
// with the reason — a bad batch of input must not flood the node's log.
// Benthos adds a path attribute per nesting level; only the innermost is
// kept, and empty labels are dropped.
type benthosLogs struct {
	h       slog.Handler
	attrs   []slog.Attr // Benthos's, applied at Handle
	inStage bool
}

func (h benthosLogs) level(l slog.Level) slog.Level {
	if l == slog.LevelInfo || h.inStage && l > slog.LevelDebug {
		return slog.LevelDebug
	}
	return l
}

func (h benthosLogs) Enabled(ctx context.Context, l slog.Level) bool {
	return h.h.Enabled(ctx, h.level(l))
}

func (h benthosLogs) Handle(ctx context.Context, rec slog.Record) error {
	rec.Level = h.level(rec.Level)
	if !h.h.Enabled(ctx, rec.Level) {
		return nil
	}
	rec.AddAttrs(dedupAttrs(h.attrs)...)
	return h.h.Handle(ctx, rec)
}

func (h benthosLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	for _, a := range attrs {
		if a.Key == "path" && strings.Contains(a.Value.String(), ".samsa_stage.processors") {
			h.inStage = true
		}
	}
	h.attrs = append(slices.Clip(h.attrs), attrs...)
	return h
}

func (h benthosLogs) WithGroup(name string) slog.Handler {
	return benthosLogs{h: h.h.WithAttrs(dedupAttrs(h.attrs)).WithGroup(name), inStage: h.inStage}
}

// dedupAttrs keeps the last value of each key, in the order keys first
// appear, without empty labels.
func dedupAttrs(attrs []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		if a.Key == "label" && a.Value.String() == "" {
			continue
		}
		if i := slices.IndexFunc(out, func(b slog.Attr) bool { return b.Key == a.Key }); i >= 0 {
			out[i] = a
			continue
		}
		out = append(out, a)
	}
	return out
}

func (r *Runner) runStream(pipeline string, s *runStream) {
	defer close(s.done)
	err := s.s.Run(context.Background())
	switch state, _ := s.get(); {
	case state == StateStopped:
	case err != nil:
		s.set(StateFailed, err)
		r.logger.Error("pipeline stream failed", "pipeline", pipeline, "stream", s.name, "err", err)
	default:
		s.set(StateFinished, nil)
		r.logger.Info("pipeline stream finished", "pipeline", pipeline, "stream", s.name)
	}
}

// stop stops a pipeline's streams, the source first so that what it read
// is stored before the sinks go.
func (r *Runner) stop(ctx context.Context, name string) error {
	r.mu.Lock()
	run := r.runs[name]
	delete(r.runs, name)
	r.mu.Unlock()
	if run == nil {
		return nil
	}
	var errs []error
	for _, s := range run.streams {
		if state, _ := s.get(); state == StateRunning {
			s.set(StateStopped, nil)
		}
		select {
		case <-s.done:
		default:
			if err := s.s.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("pipeline %s: stopping %s: %w", name, s.name, err))
			}
			<-s.done
		}
	}
	r.logger.Info("pipeline stopped", "pipeline", name, "err", errors.Join(errs...))
	return errors.Join(errs...)
}

// Status is what `samsa pipelines status` shows.
type Status struct {
	Name    string    `json:"name"`
	Version uint64    `json:"version"`
	Node    uint64    `json:"node"`
	State   string    `json:"state"`
	Error   string    `json:"error,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Topic   string    `json:"topic"`
	// Delivery is how records reach the topic: Pipeline.Delivery.
	Delivery string         `json:"delivery,omitempty"`
	In       int64          `json:"records_in"`
	Out      int64          `json:"records_out"`
	Dead     int64          `json:"dead_letters"`
	Errors   int64          `json:"errors"`
	Streams  []StreamStatus `json:"streams,omitempty"`
	Sinks    []SinkStatus   `json:"sinks,omitempty"`
}

// StreamStatus is one Benthos stream's state.
type StreamStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// SinkStatus is how far a sink is behind the topic.
type SinkStatus struct {
	Name  string `json:"name"`
	Group string `json:"group"`
	// Lag is the records in the topic the sink has not acknowledged yet;
	// -1 when this node does not lead every partition and cannot tell.
	Lag int64 `json:"lag"`
}

// List is the status of every stored pipeline and of those run unstored.
func (r *Runner) List() []Status {
	seen := map[string]bool{}
	var out []Status
	for _, sp := range r.log.Pipelines() {
		if st, ok := r.Status(sp.Name); ok {
			out = append(out, st)
			seen[sp.Name] = true
		}
	}
	r.mu.Lock()
	var unstored []string
	for name := range r.runs {
		if !seen[name] {
			unstored = append(unstored, name)
		}
	}
	r.mu.Unlock()
	for _, name := range unstored {
		if st, ok := r.Status(name); ok {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status reports one pipeline: stored, running here, or both.
func (r *Runner) Status(name string) (Status, bool) {
	r.mu.Lock()
	run := r.runs[name]
	r.mu.Unlock()
	sp, stored := r.log.Pipeline(name)
	if run == nil && !stored {
		return Status{}, false
	}
	st := Status{Name: name, State: StateStopped}
	if stored {
		st.Version = sp.Version
		if s, err := decodeStored(sp.Spec); err == nil {
			st.Node = s.Node
			if s.Node != r.log.NodeID() {
				st.State = StateElsewhere
			}
			if p, err := Parse(s.File, []byte(s.YAML)); err == nil {
				st.Topic, st.Delivery = p.Topic.Name, p.Delivery()
				st.Sinks = r.sinks(p)
			}
		}
	}
	if run == nil {
		return st, true
	}
	st.Node, st.Version, st.Started = r.log.NodeID(), run.version, run.started
	if run.err != nil {
		st.State, st.Error = StateFailed, run.err.Error()
		return st, true
	}
	st.Topic, st.Delivery = run.p.Topic.Name, run.p.Delivery()
	st.Sinks = r.sinks(run.p)
	t := r.env.metrics.Totals(name)
	st.In, st.Out, st.Dead, st.Errors = t.In.Load(), t.Out.Load(), t.DeadLetters.Load(), t.Errors.Load()
	running, finished := 0, 0
	for _, s := range run.streams {
		state, err := s.get()
		ss := StreamStatus{Name: s.name, State: state}
		if err != nil {
			ss.Error = err.Error()
			if st.Error == "" {
				st.Error = s.name + ": " + err.Error()
			}
		}
		switch state {
		case StateRunning:
			running++
		case StateFinished:
			finished++
		}
		st.Streams = append(st.Streams, ss)
	}
	switch {
	case st.Error != "":
		st.State = StateFailed
	case running == len(run.streams):
		st.State = StateRunning
	case running+finished == len(run.streams):
		st.State = StateFinished
	}
	return st, true
}

// sinks measures each sink's lag: the topic's end offsets minus the
// offsets its group committed.
func (r *Runner) sinks(p *Pipeline) []SinkStatus {
	if len(p.Sinks) == 0 {
		return nil
	}
	topic, ok := r.log.Topic(p.Topic.Name)
	out := make([]SinkStatus, len(p.Sinks))
	for i, s := range p.Sinks {
		group := p.SinkGroup(s.Name)
		out[i] = SinkStatus{Name: s.Name, Group: group, Lag: -1}
		if !ok {
			continue
		}
		var lag int64
		for part := range topic.Partitions {
			tp := replog.TopicPartition{Topic: p.Topic.Name, Partition: int32(part)}
			start, end, err := r.log.Offsets(tp)
			if err != nil {
				lag = -1
				break
			}
			from := start
			if c, ok := r.log.CommittedOffset(group, tp); ok {
				from = max(c.Offset, start)
			}
			lag += end - from
		}
		out[i].Lag = lag
	}
	return out
}

// ApplyFile applies a pipeline file from this node's disk.
func (r *Runner) ApplyFile(ctx context.Context, path string) (Status, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	return r.Apply(ctx, path, "", data)
}

// FilesIn lists the pipeline files in dir: *.yaml and *.yml, sorted.
func FilesIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pipelines: %w", err)
	}
	var out []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}
