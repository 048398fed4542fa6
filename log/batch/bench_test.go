package batch

import (
	"fmt"
	"testing"
)

// benchRecords is a typical producer batch: 100 records with 100-byte
// values that compress somewhat.
func benchRecords() []Record {
	recs := make([]Record, 100)
	for i := range recs {
		v := make([]byte, 100)
		for j := range v {
			v[j] = byte('a' + (i*j)%23)
		}
		recs[i] = Record{Timestamp: 1_700_000_000_000 + int64(i), Key: fmt.Appendf(nil, "key-%03d", i), Value: v}
	}
	return recs
}

func BenchmarkIterate(b *testing.B) {
	recs := benchRecords()
	for _, c := range codecs {
		b.Run(c.String(), func(b *testing.B) {
			var bl Builder
			bl.SetCodec(c)
			for _, r := range recs {
				bl.Add(r)
			}
			batch, err := bl.Build(nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(bl.Size())) // uncompressed bytes decoded per op
			b.ReportAllocs()
			var it Iterator
			n := 0
			for b.Loop() {
				it.Reset(batch)
				for it.Next() {
					n += len(it.Record().Value)
				}
				if it.Err() != nil {
					b.Fatal(it.Err())
				}
			}
			if n == 0 {
				b.Fatal("no records")
			}
		})
	}
}

func BenchmarkValidateRecords(b *testing.B) {
	recs := benchRecords()
	for _, c := range []Codec{CodecNone, CodecLZ4, CodecZstd} {
		b.Run(c.String(), func(b *testing.B) {
			batch := buildBatch(b, c, recs)
			b.SetBytes(int64(len(buildBatch(b, CodecNone, recs)))) // uncompressed, as in BenchmarkIterate
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ValidateRecords(batch, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	recs := benchRecords()
	for _, c := range codecs {
		b.Run(c.String(), func(b *testing.B) {
			var bl Builder
			bl.SetCodec(c)
			var dst []byte
			for _, r := range recs {
				bl.Add(r)
			}
			b.SetBytes(int64(bl.Size()))
			b.ReportAllocs()
			for b.Loop() {
				bl.Reset()
				for _, r := range recs {
					bl.Add(r)
				}
				var err error
				if dst, err = bl.Build(dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
