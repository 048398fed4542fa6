package kafka_test

import (
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProducePerPartition sends one Produce request whose partitions hold
// a good batch, a batch with a broken CRC, a control batch, two batches
// back to back, and a partition that does not exist: each is answered on
// its own, and only the good batch is stored.
func TestProducePerPartition(t *testing.T) {
	n := startNode(t)
	createTopic(t, n, "pp", 4, nil)
	cl := client(t, n)
	ctx := ctxT(t, 30*time.Second)

	build := func(v string) []byte {
		var b batch.Builder
		b.Add(batch.Record{Timestamp: time.Now().UnixMilli(), Value: []byte(v)})
		out, err := b.Build(nil)
		require.NoError(t, err)
		return out
	}
	good := build("good")
	badCRC := build("bad")
	badCRC[len(badCRC)-1] ^= 0xff
	control := build("control")
	control[22] |= 0x20 // the control bit, CRC recomputed below
	crc := batch.Checksum(control)
	control[17], control[18], control[19], control[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
	two := append(build("one"), build("two")...)

	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "pp", Partitions: []kmsg.ProduceRequestTopicPartition{
		{Partition: 0, Records: good},
		{Partition: 1, Records: badCRC},
		{Partition: 2, Records: control},
		{Partition: 3, Records: two},
		{Partition: 9, Records: good},
	}}}
	resp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	want := map[int32]*kerr.Error{0: nil, 1: kerr.CorruptMessage, 2: kerr.InvalidRecord, 3: kerr.InvalidRecord, 9: kerr.UnknownTopicOrPartition}
	for _, p := range resp.Topics[0].Partitions {
		if w := want[p.Partition]; w == nil {
			require.Zero(t, p.ErrorCode, "partition %d", p.Partition)
			require.Equal(t, int64(0), p.BaseOffset)
		} else {
			require.Equal(t, w.Code, p.ErrorCode, "partition %d: want %s", p.Partition, w.Message)
		}
	}
	// Only partition 0 holds a record.
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "pp"
	for p := int32(0); p < 4; p++ {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	lresp, err := lo.RequestWith(ctx, cl)
	require.NoError(t, err)
	for _, p := range lresp.Topics[0].Partitions {
		want := int64(0)
		if p.Partition == 0 {
			want = 1
		}
		require.Equal(t, want, p.Offset, "partition %d", p.Partition)
	}
}
