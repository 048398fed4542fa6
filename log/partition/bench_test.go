package partition

import (
	"testing"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/stretchr/testify/require"
)

// BenchmarkApply16K applies 16 KiB entries (160 records of ~100 bytes)
// from an idempotent producer: entry decode, CRC validation, the sequence
// check and the patched append, without fsync. Compare with
// segment.BenchmarkAppend16K/nosync for the cost of the apply logic.
func BenchmarkApply16K(b *testing.B) {
	p, err := Open(b.TempDir(), Config{Logger: quiet, Log: segment.Config{}})
	require.NoError(b, err)
	defer p.Close()
	var bl batch.Builder
	val := make([]byte, 80)
	for i := 0; i < 160; i++ {
		bl.Add(batch.Record{Timestamp: 1, Value: val})
	}
	b.SetBytes(int64(bl.Size()))
	b.ReportAllocs()
	var buf, e []byte
	for i := 0; i < b.N; i++ {
		bl.SetProducer(1, 0, int32(i)*160)
		if buf, err = bl.Build(buf[:0]); err != nil {
			b.Fatal(err)
		}
		e = AppendEntry(e[:0], &plain, buf)
		if i == 0 {
			b.ResetTimer()
		}
		res, err := p.Apply(uint64(i+1), e)
		if err != nil || res.Err != nil {
			b.Fatal(err, res.Err)
		}
	}
}
