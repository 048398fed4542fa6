package connectors

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The vectors of the Java client's UtilsTest.testMurmur2.
func TestMurmur2JavaVectors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		require.Equal(t, c.want, int32(murmur2([]byte(c.in))), "murmur2(%q)", c.in)
	}
}

// keyPartition agrees with franz-go's Kafka-compatible partitioner for
// keys of every length class and every partition count.
func TestKeyPartitionMatchesKgo(t *testing.T) {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewPCG(1, 2))
	keys := [][]byte{{}, []byte("a"), []byte("ab"), []byte("abc"), []byte("abcd"), []byte("user-42")}
	for range 2000 {
		k := make([]byte, rng.IntN(40))
		for i := range k {
			k[i] = byte(rng.UintN(256))
		}
		keys = append(keys, k)
	}
	for _, n := range []int{1, 2, 3, 4, 7, 16, 100} {
		for _, k := range keys {
			want := p.Partition(&kgo.Record{Key: k}, n)
			require.Equal(t, want, int(keyPartition(k, int32(n))), "key %x over %d partitions", k, n)
		}
	}
}

func BenchmarkMurmur2(b *testing.B) {
	key := []byte(fmt.Sprintf("user-%d", 123456))
	b.ReportAllocs()
	for b.Loop() {
		murmur2(key)
	}
}
