package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/samsa-io/samsa/log/segment"
)

// YAML fields of the samsa_topic input.
const (
	topicInFieldTopic    = "topic"
	topicInFieldGroup    = "group"
	topicInFieldStart    = "start"
	topicInFieldMaxBatch = "max_batch"
	topicInFieldTxn      = "transactional"
)

// Values of start besides an RFC 3339 time.
const (
	startEarliest = "earliest"
	startLatest   = "latest"
)

// Metadata the samsa_topic input sets, as Benthos's Kafka inputs name it.
const (
	MetaKafkaKey           = "kafka_key"
	MetaKafkaTopic         = "kafka_topic"
	MetaKafkaPartition     = "kafka_partition"
	MetaKafkaOffset        = "kafka_offset"
	MetaKafkaTimestampMs   = "kafka_timestamp_ms"
	MetaKafkaTimestampUnix = "kafka_timestamp_unix"
	MetaKafkaTombstone     = "kafka_tombstone_message"
)

// Reading and committing.
const (
	commitInterval = 100 * time.Millisecond // at most this often, and on close
	fetchMaxBytes  = 1 << 20
	fetchMaxWait   = 500 * time.Millisecond // a long poll's wait when there is nothing new
	fetchRetry     = 200 * time.Millisecond // after a failed read
)

func topicInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Reads a topic of Samsa's replicated log, in-process: for sinks and replay.").
		Description(`
Every partition is read in offset order with long polls. With a `+"`group`"+`, the offset after the
highest contiguous acknowledged record of each partition is committed for the group (at most
every 100ms, and on close), and a restart resumes from it; a partition without a committed
offset (or every partition, without a group) starts at `+"`start`"+`. A batch that is not
acknowledged (nacked) is delivered again.

Each message's content is the record value, with metadata `+"`kafka_key`"+` (if not null),
`+"`kafka_topic`"+`, `+"`kafka_partition`"+`, `+"`kafka_offset`"+`, `+"`kafka_timestamp_ms`"+`,
`+"`kafka_timestamp_unix`"+` (seconds), `+"`kafka_tombstone_message`"+` (for a null value) and each
record header as a string.`).
		Fields(
			service.NewStringField(topicInFieldTopic).
				Description("The topic to read. The input waits, retrying, until it exists.").
				Example("plays"),
			service.NewStringField(topicInFieldGroup).
				Description("The consumer group to commit offsets for and resume from; none means offsets are not committed.").
				Example("pipeline.plays.archive").
				Default(""),
			service.NewStringField(topicInFieldStart).
				Description("Where a partition without a committed offset starts: `earliest`, `latest`, or an RFC 3339 time (the first record at or after it, by timestamp).").
				Examples(startEarliest, startLatest, "2025-01-31T00:00:00Z").
				Default(startEarliest),
			service.NewBoolField(topicInFieldTxn).
				Description("Read committed (records of open transactions wait, aborted ones are skipped) and leave the group's offsets to a samsa_topic output with a `transaction` for the same group, which commits them with each transaction it writes: exactly once from topic to topic. Each message carries `samsa_txn_offset` metadata for that output.").
				Default(false).Advanced(),
			service.NewIntField(topicInFieldMaxBatch).
				Description("Records per message batch at most.").
				Default(1024).Advanced(),
		).
		Example("A sink", "Archive a topic to a file, resuming where it stopped.", `
input:
  samsa_topic:
    topic: plays
    group: pipeline.plays.archive
output:
  file:
    path: ./out/plays.jsonl
`).
		Example("Replay", "Read what arrived since a time, without committing.", `
input:
  samsa_topic:
    topic: plays
    start: "2025-01-31T00:00:00Z"
`)
}

// topicInput is the samsa_topic input: a goroutine per partition reads
// into batches, ReadBatch hands them out, and acknowledgements become
// committed offsets.
type topicInput struct {
	log      *replog.Log
	logger   *slog.Logger
	topic    string
	topicVal any // topic, boxed once
	group    string
	startTs  int64 // replog.EarliestTimestamp, LatestTimestamp, or ms
	maxBatch int
	txn      bool // read committed; a transactional output commits the offsets

	batches chan fetched
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	close1  sync.Once

	mu struct {
		sync.Mutex
		connected bool
		parts     map[int32]*partAcks
	}
}

// fetched is a batch of one partition's messages covering offsets
// [from, to): records skipped within (control records) are covered too.
type fetched struct {
	msgs      service.MessageBatch
	partition int32
	from, to  int64
}

// partAcks turns a partition's acknowledgements into the offset to commit.
type partAcks struct {
	next      int64           // every offset below is acknowledged
	committed int64           // the offset last committed
	done      map[int64]int64 // acknowledged ranges above next: from → to
}

func (p *partAcks) ack(from, to int64) {
	if from != p.next {
		if from > p.next {
			p.done[from] = to
		}
		return
	}
	p.next = to
	for {
		to, ok := p.done[p.next]
		if !ok {
			return
		}
		delete(p.done, p.next)
		p.next = to
	}
}

func newTopicInput(conf *service.ParsedConfig, deps Deps) (*topicInput, error) {
	in := &topicInput{log: deps.Log, batches: make(chan fetched)}
	var err error
	if in.topic, err = conf.FieldString(topicInFieldTopic); err != nil {
		return nil, err
	}
	if in.topic == "" {
		return nil, fmt.Errorf("%s: required", topicInFieldTopic)
	}
	if in.group, err = conf.FieldString(topicInFieldGroup); err != nil {
		return nil, err
	}
	start, err := conf.FieldString(topicInFieldStart)
	if err != nil {
		return nil, err
	}
	if in.startTs, err = parseStart(start); err != nil {
		return nil, fmt.Errorf("%s: %w", topicInFieldStart, err)
	}
	if in.maxBatch, err = conf.FieldInt(topicInFieldMaxBatch); err != nil {
		return nil, err
	}
	if in.maxBatch < 1 {
		return nil, fmt.Errorf("%s: must be at least 1", topicInFieldMaxBatch)
	}
	if in.txn, err = conf.FieldBool(topicInFieldTxn); err != nil {
		return nil, err
	}
	if in.txn && in.group == "" {
		return nil, fmt.Errorf("%s: needs a %s, whose offsets the transactions commit", topicInFieldTxn, topicInFieldGroup)
	}
	in.topicVal = in.topic
	in.logger = deps.Logger.With("input", TopicInputName, "topic", in.topic, "group", in.group)
	in.ctx, in.cancel = context.WithCancel(context.Background())
	return in, nil
}

// parseStart reads start: earliest, latest or an RFC 3339 time (ms).
func parseStart(s string) (int64, error) {
	switch s {
	case startEarliest, "":
		return replog.EarliestTimestamp, nil
	case startLatest:
		return replog.LatestTimestamp, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not earliest, latest or an RFC 3339 time", s)
	}
	return t.UnixMilli(), nil
}

// Connect finds the topic's partitions and where to start each, then
// starts reading them.
func (in *topicInput) Connect(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.mu.connected {
		return nil
	}
	t, ok := in.log.Topic(in.topic)
	if !ok {
		return fmt.Errorf("topic %q: %w", in.topic, replog.ErrUnknownTopicOrPartition)
	}
	parts := make(map[int32]*partAcks, len(t.Partitions))
	for p := range int32(len(t.Partitions)) {
		off, err := in.startOffset(replog.TopicPartition{Topic: in.topic, Partition: p})
		if err != nil {
			return fmt.Errorf("topic %q: %w", in.topic, err)
		}
		parts[p] = &partAcks{next: off, committed: off, done: map[int64]int64{}}
	}
	in.mu.parts = parts
	in.mu.connected = true
	for p, a := range parts {
		in.wg.Add(1)
		go in.readPartition(p, a.next)
	}
	if in.group != "" && !in.txn {
		in.wg.Add(1)
		go in.commitLoop()
	}
	in.logger.Info("topic input connected", "partitions", len(parts))
	return nil
}

// startOffset is the group's committed offset, else where start says.
func (in *topicInput) startOffset(tp replog.TopicPartition) (int64, error) {
	if in.group != "" {
		if c, ok := in.log.CommittedOffset(in.group, tp); ok && c.Offset >= 0 {
			return c.Offset, nil
		}
	}
	off, _, err := in.log.ListOffsets(tp, in.startTs)
	if err != nil {
		return 0, err
	}
	if off < 0 { // every record is older than the time
		off, _, err = in.log.ListOffsets(tp, replog.LatestTimestamp)
	}
	return off, err
}

// readPartition reads one partition from off until Close, handing batches
// to ReadBatch.
func (in *topicInput) readPartition(p int32, off int64) {
	defer in.wg.Done()
	tp := replog.TopicPartition{Topic: in.topic, Partition: p}
	logger := in.logger.With("partition", p)
	from := off // the start of the range the next batch covers
	var sections []segment.Section
	var aborted abortedTxns
	for in.ctx.Err() == nil {
		stable := int64(math.MaxInt64) // records from here on wait (read committed)
		if in.txn {
			var err error
			if stable, err = aborted.load(in.log, tp, off); err != nil || stable <= off {
				if err != nil && in.ctx.Err() == nil {
					logger.Debug("reading committed", "offset", off, "err", err)
				}
				in.sleep(txnPoll)
				continue
			}
		}
		res, err := in.log.Fetch(in.ctx, tp, off, fetchMaxBytes, 1, fetchMaxWait, sections[:0])
		if err != nil {
			if in.ctx.Err() != nil {
				return
			}
			if errors.Is(err, replog.ErrOffsetOutOfRange) {
				next := in.resetOffset(tp, off, logger)
				in.ackRange(p, from, next) // nothing there to deliver
				off, from = next, next
				continue
			}
			logger.Debug("fetch", "offset", off, "err", err)
			in.sleep(fetchRetry)
			continue
		}
		var buf []byte
		for i := range res.Sections {
			if buf, err = res.Sections[i].AppendTo(buf); err != nil {
				break
			}
		}
		segment.Release(res.Sections)
		sections = res.Sections
		if err != nil {
			logger.Warn("reading the log", "offset", off, "err", err)
			in.sleep(fetchRetry)
			continue
		}
		it := batch.NewIterator(buf)
		var msgs service.MessageBatch
		for it.Next() {
			r := it.Record()
			if r.Offset < off {
				continue // Kafka semantics: the read starts at the batch holding off
			}
			if r.Offset >= stable {
				break // in an open transaction: wait for its end
			}
			off = r.Offset + 1
			h := it.Batch()
			if h.Attributes.Control() {
				continue
			}
			if in.txn && h.Attributes.Transactional() && aborted.skip(h.ProducerID, r.Offset) {
				continue
			}
			m := in.message(p, r, h.Attributes.Codec() != batch.CodecNone)
			if in.txn {
				m.MetaSetMut(MetaTxnOffset, &TxnOffset{Topic: in.topic, Partition: p, Next: off})
			}
			msgs = append(msgs, m)
			if len(msgs) == in.maxBatch {
				in.coverTo(msgs, off)
				if !in.send(fetched{msgs: msgs, partition: p, from: from, to: off}) {
					return
				}
				msgs, from = nil, off
			}
		}
		if err := it.Err(); err != nil {
			logger.Error("undecodable batch; retrying", "offset", off, "err", err)
			in.sleep(time.Second)
		}
		if len(msgs) > 0 {
			in.coverTo(msgs, off)
			if !in.send(fetched{msgs: msgs, partition: p, from: from, to: off}) {
				return
			}
			from = off
		}
	}
}

// coverTo makes a transactional batch's last message commit up to off,
// past the control and aborted records read after it.
func (in *topicInput) coverTo(msgs service.MessageBatch, off int64) {
	if !in.txn {
		return
	}
	if v, ok := msgs[len(msgs)-1].MetaGetMut(MetaTxnOffset); ok {
		v.(*TxnOffset).Next = off
	}
}

// txnPoll is how often a transactional input looks again while the
// partition's next record is in an open transaction.
const txnPoll = 20 * time.Millisecond

// abortedTxns tells, while a partition is read committed, which
// transactional records are aborted: those of an aborted transaction's
// producer from its first offset to its abort marker.
type abortedTxns []replog.AbortedTxn

// load learns the aborted transactions from off up to the partition's
// last stable offset, which it returns.
func (a *abortedTxns) load(l *replog.Log, tp replog.TopicPartition, off int64) (int64, error) {
	stable, err := l.LastStableOffset(tp)
	if err != nil || stable <= off {
		return stable, err
	}
	*a, err = l.AbortedTxns(tp, off, stable)
	return stable, err
}

// skip reports whether producer pid's transactional record at offset is
// in an aborted transaction.
func (a abortedTxns) skip(pid, offset int64) bool {
	for _, t := range a {
		if t.ProducerID == pid && t.FirstOffset <= offset && offset <= t.LastOffset {
			return true
		}
	}
	return false
}

// resetOffset answers an offset the partition no longer (or not yet) has:
// the log start if it is below, the end if above.
func (in *topicInput) resetOffset(tp replog.TopicPartition, off int64, logger *slog.Logger) int64 {
	start, end, err := in.log.Offsets(tp)
	if err != nil {
		return off
	}
	next := end
	if off < start {
		next = start
	}
	logger.Warn("offset out of range; moving", "offset", off, "to", next)
	return next
}

// message makes a record into a message. The value aliases buf, which is
// this read's own, unless the batch was compressed (the iterator reuses its
// decompression buffer).
func (in *topicInput) message(p int32, r *batch.Record, compressed bool) *service.Message {
	value := r.Value
	if compressed && value != nil {
		value = append([]byte(nil), value...)
	}
	m := service.NewMessage(value)
	if r.Key != nil {
		m.MetaSetMut(MetaKafkaKey, string(r.Key))
	}
	if r.Value == nil {
		m.MetaSetMut(MetaKafkaTombstone, true)
	}
	m.MetaSetMut(MetaKafkaTopic, in.topicVal)
	m.MetaSetMut(MetaKafkaPartition, int(p))
	m.MetaSetMut(MetaKafkaOffset, r.Offset)
	m.MetaSetMut(MetaKafkaTimestampMs, r.Timestamp)
	m.MetaSetMut(MetaKafkaTimestampUnix, r.Timestamp/1000)
	for _, h := range r.Headers {
		m.MetaSetMut(string(h.Key), string(h.Value))
	}
	return m
}

func (in *topicInput) send(f fetched) bool {
	select {
	case in.batches <- f:
		return true
	case <-in.ctx.Done():
		return false
	}
}

func (in *topicInput) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-in.ctx.Done():
	}
}

// ReadBatch returns the next batch of any partition.
func (in *topicInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	select {
	case f := <-in.batches:
		return f.msgs, func(_ context.Context, err error) error {
			if err == nil { // a nack is re-delivered by AutoRetryNacksBatched
				in.ackRange(f.partition, f.from, f.to)
			}
			return nil
		}, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-in.ctx.Done():
		return nil, nil, service.ErrNotConnected
	}
}

func (in *topicInput) ackRange(p int32, from, to int64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if a := in.mu.parts[p]; a != nil {
		a.ack(from, to)
	}
}

// commitLoop commits the group's offsets every commitInterval.
func (in *topicInput) commitLoop() {
	defer in.wg.Done()
	t := time.NewTicker(commitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := in.commit(in.ctx); err != nil && in.ctx.Err() == nil {
				in.logger.Warn("committing offsets", "err", err)
			}
		case <-in.ctx.Done():
			return
		}
	}
}

// commit stores the offsets that moved since the last commit.
func (in *topicInput) commit(ctx context.Context) error {
	in.mu.Lock()
	var offsets []meta.OffsetCommit
	for p, a := range in.mu.parts {
		if a.next > a.committed {
			offsets = append(offsets, meta.OffsetCommit{Topic: in.topic, Partition: p, Offset: a.next, LeaderEpoch: -1})
		}
	}
	in.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	errs, err := in.log.CommitOffsets(ctx, in.group, offsets)
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, o := range offsets {
		if errs[i] == nil {
			in.mu.parts[o.Partition].committed = max(in.mu.parts[o.Partition].committed, o.Offset)
		}
	}
	return errors.Join(errs...)
}

// Close stops reading and commits what was acknowledged.
func (in *topicInput) Close(ctx context.Context) error {
	var err error
	in.close1.Do(func() {
		in.cancel()
		in.wg.Wait()
		in.mu.Lock()
		connected := in.mu.connected
		in.mu.Unlock()
		if connected && in.group != "" && !in.txn {
			err = in.commit(ctx)
		}
	})
	return err
}
