package transforms

import (
	"context"
	"fmt"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/require"
)

// benchSchema and benchRecord are the quickstart's shape: a 100-byte play.
const benchSchema = `{"type": "record", "name": "Play", "fields": [
  {"name": "user", "type": "string"},
  {"name": "track", "type": "string"},
  {"name": "artist", "type": ["null", "string"], "default": null},
  {"name": "played_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "ms_played", "type": "long"}
]}`

var benchRecord = []byte(`{"user":"u00012345","track":"t-0000042","artist":"Low","played_at":1714560000123,"ms_played":183000}`)

func reportRecords(b *testing.B, records int) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(len(benchRecord)), "bytes/record")
}

func BenchmarkAvro(b *testing.B) {
	for _, encode := range []bool{false, true} {
		b.Run(fmt.Sprintf("encode=%v", encode), func(b *testing.B) {
			p, err := newTestAvro(b, fmt.Sprintf("{schema: '%s', encode: %v}", benchSchema, encode), Deps{})
			require.NoError(b, err)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := p.Process(ctx, service.NewMessage(benchRecord)); err != nil {
					b.Fatal(err)
				}
			}
			reportRecords(b, b.N)
		})
	}
}

// BenchmarkStageAvro is validation as a pipeline runs it: samsa_avro
// inside a samsa_stage, one message at a time.
func BenchmarkStageAvro(b *testing.B) {
	env, _ := newEnv(b, Deps{})
	conf, err := stageSpec().ParseYAML(fmt.Sprintf("{name: validate, processors: [{samsa_avro: {schema: '%s'}}]}", benchSchema), env)
	require.NoError(b, err)
	s, err := newStageProcessor(conf, service.MockResources(), Deps{Logger: quietLogger()})
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := s.Process(ctx, service.NewMessage(benchRecord))
		if err != nil || len(out) != 1 || out[0].GetError() != nil {
			b.Fatal(out, err)
		}
	}
	reportRecords(b, b.N)
}

// BenchmarkStreamStageAvro runs a strict stream of batches of 1000 records
// through a validate stage to a batch consumer.
func BenchmarkStreamStageAvro(b *testing.B) {
	const batch = 1000
	env, _ := newEnv(b, Deps{})
	sb := env.NewStreamBuilder()
	sb.SetStrict(true)
	sb.SetLogger(quietLogger())
	require.NoError(b, sb.AddProcessorYAML(fmt.Sprintf("samsa_stage: {name: validate, processors: [{samsa_avro: {schema: '%s'}}]}", benchSchema)))
	send, err := sb.AddBatchProducerFunc()
	require.NoError(b, err)
	require.NoError(b, sb.AddBatchConsumerFunc(func(context.Context, service.MessageBatch) error { return nil }))
	stream, err := sb.Build()
	require.NoError(b, err)
	go func() { _ = stream.Run(context.Background()) }()
	b.Cleanup(func() { _ = stream.StopWithin(10e9) })

	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		mb := make(service.MessageBatch, batch)
		for i := range mb {
			mb[i] = service.NewMessage(benchRecord)
		}
		if err := send(ctx, mb); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b, b.N*batch)
}
