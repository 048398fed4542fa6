package pipelines

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// Metrics bridges Benthos's metrics into a Prometheus registry: each
// Benthos metric becomes samsa_pipeline_<name> (counters with _total,
// timers as histograms in seconds), labelled pipeline and stream on top of
// Benthos's own labels. It also keeps the per-pipeline totals that
// `samsa pipelines status` shows.
type Metrics struct {
	reg    prometheus.Registerer
	logger *slog.Logger

	mu     sync.Mutex
	vecs   map[string]vec // by Prometheus name
	totals map[string]*Totals
}

// Totals are a pipeline's counts since this node started it.
type Totals struct {
	In, Out, DeadLetters, Errors atomic.Int64
}

type vec struct {
	keys []string
	c    *prometheus.CounterVec
	g    *prometheus.GaugeVec
	h    *prometheus.HistogramVec
}

func (v vec) collector() prometheus.Collector {
	switch {
	case v.c != nil:
		return v.c
	case v.g != nil:
		return v.g
	}
	return v.h
}

// NewMetrics returns a bridge registering into reg.
func NewMetrics(reg prometheus.Registerer, logger *slog.Logger) *Metrics {
	return &Metrics{reg: reg, logger: logger, vecs: map[string]vec{}, totals: map[string]*Totals{}}
}

// Totals returns a pipeline's running counts.
func (m *Metrics) Totals(pipeline string) *Totals {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.totals[pipeline]
	if t == nil {
		t = &Totals{}
		m.totals[pipeline] = t
	}
	return t
}

// Forget drops a pipeline's series and totals, once it is deleted.
func (m *Metrics) Forget(pipeline string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.vecs {
		switch {
		case v.c != nil:
			v.c.DeletePartialMatch(prometheus.Labels{"pipeline": pipeline})
		case v.g != nil:
			v.g.DeletePartialMatch(prometheus.Labels{"pipeline": pipeline})
		default:
			v.h.DeletePartialMatch(prometheus.Labels{"pipeline": pipeline})
		}
	}
	delete(m.totals, pipeline)
}

// register adds the samsa_metrics exporter to env; streams select it with
// metrics: {samsa_metrics: {pipeline: NAME, stream: STREAM}}.
func (m *Metrics) register(env *service.Environment) error {
	spec := service.NewConfigSpec().
		Summary("Samsa's bridge from Benthos metrics to the node's Prometheus registry.").
		Fields(service.NewStringField("pipeline"), service.NewStringField("stream"))
	return env.RegisterMetricsExporter("samsa_metrics", spec, func(conf *service.ParsedConfig, _ *service.Logger) (service.MetricsExporter, error) {
		pipeline, err := conf.FieldString("pipeline")
		if err != nil {
			return nil, err
		}
		stream, err := conf.FieldString("stream")
		if err != nil {
			return nil, err
		}
		return &exporter{m: m, pipeline: pipeline, stream: stream, totals: m.Totals(pipeline)}, nil
	})
}

// metricsYAML selects the exporter for one stream.
func metricsYAML(pipeline, stream string) map[string]any {
	return map[string]any{"samsa_metrics": map[string]any{"pipeline": pipeline, "stream": stream}}
}

// get returns the vector for name, creating and registering it with the
// labels pipeline, stream and keys. A name already used with other labels
// gets nothing (Prometheus needs one label set per name).
func (m *Metrics) get(name string, keys []string, mk func(labels []string) vec) (vec, bool) {
	labels := append([]string{"pipeline", "stream"}, keys...)
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vecs[name]; ok {
		if !slices.Equal(v.keys, labels) {
			m.logger.Debug("pipeline metric dropped: its labels differ from an earlier series", "metric", name, "labels", labels, "had", v.keys)
			return vec{}, false
		}
		return v, true
	}
	v := mk(labels)
	v.keys = labels
	if err := m.reg.Register(v.collector()); err != nil {
		m.logger.Debug("pipeline metric not registered", "metric", name, "err", err)
		return vec{}, false
	}
	m.vecs[name] = v
	return v, true
}

// exporter is one stream's view of the bridge.
type exporter struct {
	m                *Metrics
	pipeline, stream string
	totals           *Totals
}

func promName(name string) string {
	return "samsa_pipeline_" + strings.NewReplacer(".", "_", "-", "_").Replace(name)
}

func (e *exporter) values(vs []string) []string {
	return append([]string{e.pipeline, e.stream}, vs...)
}

func (e *exporter) NewCounterCtor(name string, keys ...string) service.MetricsExporterCounterCtor {
	pname := promName(name) + "_total"
	v, ok := e.m.get(pname, keys, func(labels []string) vec {
		return vec{c: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: pname, Help: "Benthos counter " + name + " of a pipeline's stream.",
		}, labels)}
	})
	return func(vs ...string) service.MetricsExporterCounter {
		c := counter{total: e.total(name, keys, vs)}
		if ok {
			c.c = v.c.WithLabelValues(e.values(vs)...)
		}
		return c
	}
}

// total is the pipeline total a counter feeds, if any: records in at the
// source's input, out at the topic output, dead letters at the dead-letter
// output, and errors anywhere.
func (e *exporter) total(name string, keys, vs []string) *atomic.Int64 {
	label, path := "", ""
	for i, k := range keys {
		if i < len(vs) {
			switch k {
			case "label":
				label = vs[i]
			case "path":
				path = vs[i]
			}
		}
	}
	switch {
	case e.stream == "source" && name == "input_received" && path == "root.input":
		return &e.totals.In
	case e.stream == "source" && name == "output_sent" && label == labelTopic:
		return &e.totals.Out
	case e.stream == "source" && name == "output_sent" && label == labelDeadLetters:
		return &e.totals.DeadLetters
	case name == "output_error" || (name == "processor_error" && (label == labelValidate || label == labelTransform)):
		return &e.totals.Errors
	}
	return nil
}

func (e *exporter) NewTimerCtor(name string, keys ...string) service.MetricsExporterTimerCtor {
	pname := promName(strings.TrimSuffix(name, "_ns")) + "_seconds"
	v, ok := e.m.get(pname, keys, func(labels []string) vec {
		return vec{h: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: pname, Help: "Benthos timer " + name + " of a pipeline's stream, in seconds.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10), // 10 µs to 2.6 s
		}, labels)}
	})
	return func(vs ...string) service.MetricsExporterTimer {
		if !ok {
			return timer{}
		}
		return timer{v.h.WithLabelValues(e.values(vs)...)}
	}
}

func (e *exporter) NewGaugeCtor(name string, keys ...string) service.MetricsExporterGaugeCtor {
	pname := promName(name)
	v, ok := e.m.get(pname, keys, func(labels []string) vec {
		return vec{g: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: pname, Help: "Benthos gauge " + name + " of a pipeline's stream.",
		}, labels)}
	})
	return func(vs ...string) service.MetricsExporterGauge {
		if !ok {
			return gauge{}
		}
		return gauge{v.g.WithLabelValues(e.values(vs)...)}
	}
}

func (e *exporter) Close(context.Context) error { return nil }

type counter struct {
	c     prometheus.Counter
	total *atomic.Int64
}

func (c counter) Incr(n int64) {
	if c.c != nil {
		c.c.Add(float64(n))
	}
	if c.total != nil {
		c.total.Add(n)
	}
}

type timer struct{ h prometheus.Observer }

func (t timer) Timing(ns int64) {
	if t.h != nil {
		t.h.Observe(float64(ns) / 1e9)
	}
}

type gauge struct{ g prometheus.Gauge }

func (g gauge) Set(v int64) {
	if g.g != nil {
		g.g.Set(float64(v))
	}
}

func (g gauge) SetFloat64(v float64) {
	if g.g != nil {
		g.g.Set(v)
	}
}
