package kafka

import (
	"reflect"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the server's Prometheus metrics. Labels are bounded: API
// names, error code names, reasons — never client ids.
type metrics struct {
	requests    *prometheus.CounterVec   // by api
	errors      *prometheus.CounterVec   // by api and error code
	latency     *prometheus.HistogramVec // by api
	badRequests *prometheus.CounterVec   // connections closed, by reason
	connections prometheus.Gauge
	bytesIn     prometheus.Counter
	bytesOut    prometheus.Counter
	produced    prometheus.Counter // records
	fetched     prometheus.Counter // bytes of records
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_kafka_requests_total", Help: "Kafka requests answered, by API.",
		}, []string{"api"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_kafka_errors_total", Help: "Error codes in Kafka responses (top level and per partition), by API and code.",
		}, []string{"api", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "samsa_kafka_request_duration_seconds", Help: "Time from reading a request to writing its response, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"api"}),
		badRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "samsa_kafka_bad_requests_total", Help: "Connections closed because a request broke the protocol, by reason.",
		}, []string{"reason"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "samsa_kafka_connections", Help: "Open Kafka connections."}),
		bytesIn:     prometheus.NewCounter(prometheus.CounterOpts{Name: "samsa_kafka_received_bytes_total", Help: "Bytes of requests received."}),
		bytesOut:    prometheus.NewCounter(prometheus.CounterOpts{Name: "samsa_kafka_sent_bytes_total", Help: "Bytes of responses sent."}),
		produced:    prometheus.NewCounter(prometheus.CounterOpts{Name: "samsa_kafka_produced_records_total", Help: "Records stored by Produce requests."}),
		fetched:     prometheus.NewCounter(prometheus.CounterOpts{Name: "samsa_kafka_fetched_bytes_total", Help: "Bytes of record batches sent by Fetch responses."}),
	}
	groups := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "samsa_kafka_groups", Help: "Consumer groups the coordinator holds in memory."},
		func() float64 { g, _ := s.groups.Stats(); return float64(g) })
	members := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "samsa_kafka_group_members", Help: "Members of consumer groups."},
		func() float64 { _, n := s.groups.Stats(); return float64(n) })
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.errors, m.latency, m.badRequests, m.connections, m.bytesIn, m.bytesOut, m.produced, m.fetched, groups, members} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(key int16, d time.Duration, bytes int) {
	name := kmsg.NameForKey(key)
	m.requests.WithLabelValues(name).Inc()
	m.latency.WithLabelValues(name).Observe(d.Seconds())
	m.bytesOut.Add(float64(bytes))
}

// countErrors counts every non-zero ErrorCode field in a response, at any
// depth: each partition's error counts.
func (m *metrics) countErrors(key int16, resp kmsg.Response) {
	walkErrorCodes(reflect.ValueOf(resp), func(code int16) { m.countError(key, code) })
}

func (m *metrics) countError(key int16, code int16) {
	if code == 0 {
		return
	}
	name := strconv.Itoa(int(code))
	if k, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		name = k.Message
	}
	m.errors.WithLabelValues(kmsg.NameForKey(key), name).Inc()
}

func walkErrorCodes(v reflect.Value, fn func(int16)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkErrorCodes(v.Elem(), fn)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if t.Field(i).Name == "ErrorCode" && f.Kind() == reflect.Int16 {
				if c := int16(f.Int()); c != 0 {
					fn(c)
				}
				continue
			}
			if f.Kind() == reflect.Slice || f.Kind() == reflect.Struct || f.Kind() == reflect.Pointer {
				walkErrorCodes(f, fn)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // bytes, not structures
		}
		for i := 0; i < v.Len(); i++ {
			walkErrorCodes(v.Index(i), fn)
		}
	}
}
