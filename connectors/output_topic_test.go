package connectors

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// producer is a stream fed by a function, writing to one output.
type producer struct {
	send service.MessageBatchHandlerFunc
	st   *stream
}

func startProducer(t *testing.T, e *service.Environment, output string) *producer {
	t.Helper()
	b := e.NewStreamBuilder()
	b.SetLogger(quietLogger())
	send, err := b.AddBatchProducerFunc()
	require.NoError(t, err)
	require.NoError(t, b.AddOutputYAML(output))
	s, err := b.Build()
	require.NoError(t, err)
	st := &stream{s: s, done: make(chan struct{})}
	go func() {
		defer close(st.done)
		st.err = s.Run(context.Background())
	}()
	t.Cleanup(func() { st.stop(t, 10*time.Second) })
	return &producer{send: send, st: st}
}

func (p *producer) write(t *testing.T, msgs ...*service.Message) {
	t.Helper()
	require.NoError(t, p.send(ctxT(t, time.Minute), msgs))
}

// pos8 is a test source's position: n, 8 bytes big-endian.
func pos8(n int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// sourced makes messages of source s at positions from..to-1, valued
// "v<position>".
func sourced(s string, from, to int) []*service.Message {
	var out []*service.Message
	for i := from; i < to; i++ {
		m := service.NewMessage(fmt.Appendf(nil, "v%d", i))
		m.MetaSetMut(MetaSource, s)
		m.MetaSetMut(MetaPosition, pos8(i))
		out = append(out, m)
	}
	return out
}

func valuesRange(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("v%d", i))
	}
	return out
}

// Dead letters carry the original record and why, where and when in
// headers; string metadata becomes headers, samsa_* and non-strings do not.
func TestTopicOutputDeadLetter(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := startProducer(t, env(t, n.log), `
samsa_topic:
  topic: plays.dlq
  dead_letter: true
`)
	m := service.NewMessage([]byte(`{"error":"transformed"}`))
	m.MetaSetMut(MetaDeadLetter, true)
	m.MetaSetMut(MetaOriginal, []byte(`{"user": oops`))
	m.MetaSetMut(MetaDLQReason, "invalid JSON at byte 9")
	m.MetaSetMut(MetaDLQStage, "validate")
	m.MetaSetMut(MetaDLQTime, "2025-01-31T10:00:00Z")
	m.MetaSetMut(MetaTimestamp, "2025-01-31T09:59:59.5Z")
	m.MetaSetMut(MetaSource, "files")
	m.MetaSetMut(MetaPosition, pos8(1))
	m.MetaSetMut("trace_id", "abc")
	m.MetaSetMut("attempt", 3)
	plain := service.NewMessage([]byte("no original"))
	plain.MetaSetMut(MetaDLQReason, "schema")
	p.write(t, m, plain)

	recs := readPartition(t, n.log, replog.TopicPartition{Topic: "plays.dlq"})
	require.Len(t, recs, 2)
	require.Equal(t, `{"user": oops`, recs[0].Value)
	require.Equal(t, map[string]string{
		HeaderErrorReason: "invalid JSON at byte 9",
		HeaderErrorStage:  "validate",
		HeaderErrorTime:   "2025-01-31T10:00:00Z",
		"trace_id":        "abc",
	}, recs[0].Headers)
	require.Equal(t, time.Date(2025, 1, 31, 9, 59, 59, 5e8, time.UTC).UnixMilli(), recs[0].Timestamp)
	require.Nil(t, recs[0].Key)
	require.Equal(t, "no original", recs[1].Value)
	require.Equal(t, map[string]string{HeaderErrorReason: "schema"}, recs[1].Headers)
	require.InDelta(t, time.Now().UnixMilli(), recs[1].Timestamp, 60e3)
}

// A batch that overlaps what a partition holds (the output's view was
// stale) is refused; the output learns the position again, drops what is
// stored and writes the rest. Records at or below the position are
// dropped, not written twice.
func TestTopicOutputRecoversFromOverlap(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := startProducer(t, env(t, n.log), `
samsa_topic:
  topic: s
`)
	p.write(t, sourced("src", 1, 11)...)
	tp := replog.TopicPartition{Topic: "s"}

	// Another writer of the same source stores 11..20 behind the output's
	// back.
	var b batch.Builder
	for i := 11; i < 21; i++ {
		b.Add(batch.Record{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "v%d", i)})
	}
	raw, err := b.Build(nil)
	require.NoError(t, err)
	_, err = n.log.Append(ctxT(t, time.Minute), tp, raw, replog.AppendOptions{Acks: replog.AcksAll, Source: "src", SourceFirst: pos8(11), SourceLast: pos8(20)})
	require.NoError(t, err)

	p.write(t, sourced("src", 5, 31)...) // 5..10 known stored, 11..20 stored behind its back
	p.write(t, sourced("src", 25, 36)...)
	p.write(t, sourced("other", 1, 3)...) // another source: its own fence

	var got []string
	for _, r := range readPartition(t, n.log, tp) {
		got = append(got, r.Value)
	}
	require.Equal(t, append(valuesRange(1, 36), "v1", "v2"), got)
	pos, _, ok, err := n.log.SourcePosition(tp, "src")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, pos8(35), pos)
}

// A write larger than the topic's max.message.bytes is split into several
// batches, stored in order.
func TestTopicOutputSplitsLargeWrites(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := startProducer(t, env(t, n.log), `
samsa_topic:
  topic: big
  configs:
    max.message.bytes: "8192"
`)
	var msgs []*service.Message
	var want []string
	for i := range 100 {
		v := fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 500))
		want = append(want, v)
		m := service.NewMessage([]byte(v))
		m.MetaSetMut(MetaSource, "big")
		m.MetaSetMut(MetaPosition, pos8(i+1))
		msgs = append(msgs, m)
	}
	p.write(t, msgs...)
	recs := readPartition(t, n.log, replog.TopicPartition{Topic: "big"})
	var got []string
	for _, r := range recs {
		got = append(got, r.Value)
	}
	require.Equal(t, want, got)

	// Count the batches: several, each within the limit.
	res, err := n.log.Read(replog.TopicPartition{Topic: "big"}, 0, 1<<20, nil)
	require.NoError(t, err)
	require.Greater(t, len(res.Sections), 0)
	var all []byte
	for i := range res.Sections {
		all, err = res.Sections[i].AppendTo(all)
		require.NoError(t, err)
	}
	batches := 0
	for len(all) > 0 {
		size, err := batch.PeekSize(all)
		require.NoError(t, err)
		require.LessOrEqual(t, size, 8192)
		all = all[size:]
		batches++
	}
	require.GreaterOrEqual(t, batches, 7)
}

// Without a key, whole batches go to the partitions in turn.
func TestTopicOutputRoundRobin(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := startProducer(t, env(t, n.log), `
samsa_topic:
  topic: rr
  partitions: 3
`)
	for i := range 6 {
		var batch []*service.Message
		for j := range 4 {
			batch = append(batch, service.NewMessage(fmt.Appendf(nil, "b%d-%d", i, j)))
		}
		p.write(t, batch...)
	}
	seen := map[string]int32{}
	for part := range int32(3) {
		recs := readPartition(t, n.log, replog.TopicPartition{Topic: "rr", Partition: part})
		require.Len(t, recs, 8, "partition %d", part)
		for _, r := range recs {
			seen[strings.Split(r.Value, "-")[0]] = part
		}
		for i := 0; i < len(recs); i += 4 {
			b := strings.Split(recs[i].Value, "-")[0]
			for j := range 4 {
				require.Equal(t, fmt.Sprintf("%s-%d", b, j), recs[i+j].Value, "batches stay whole and in order")
			}
		}
	}
	require.Len(t, seen, 6)
}
