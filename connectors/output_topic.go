package connectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/replog"
)

// YAML fields of the samsa_topic output.
const (
	topicOutFieldTopic             = "topic"
	topicOutFieldKey               = "key"
	topicOutFieldPartitions        = "partitions"
	topicOutFieldReplicationFactor = "replication_factor"
	topicOutFieldConfigs           = "configs"
	topicOutFieldDeadLetter        = "dead_letter"
	topicOutFieldBatching          = "batching"
	topicOutFieldTransaction       = "transaction"
)

// defaultBatchPolicy applies when the config has no batching: batches from
// the input pass whole (up to 1024 records), and messages that come one at
// a time are gathered for at most a millisecond.
var defaultBatchPolicy = service.BatchPolicy{Count: 1024, Period: "1ms"}

// recordOverhead bounds a record's framing in a batch (length, attributes,
// deltas, field lengths), for cutting batches below max.message.bytes.
const recordOverhead = 32

func topicOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Writes messages to a topic of Samsa's replicated log, in-process, exactly once for sources that stamp positions.").
		Description(`
Each write groups the messages by partition, keeping their order, and appends one RecordBatch per
partition (more if it would pass the topic's `+"`max.message.bytes`"+`); the partitions' appends are
proposed together, then waited for, each committed by a majority of its replicas.

With a `+"`key`"+`, the partition is Kafka's default: murmur2 of the key, so Samsa and Kafka clients
agree on where a key lives. Without one, whole batches go to the partitions in turn.

**Exactly once.** Messages carrying `+"`samsa_source`"+` and `+"`samsa_position`"+` metadata (as Samsa's
sources set them) are appended with the source id and the batch's first and last position; the
partition stores the highest position of each source and answers a batch at or below it as a
duplicate. On connect, and after a refusal, the output learns each partition's stored position
and drops the messages at or below it before appending (they are stored already; they are
acknowledged). Without a key, the highest position over all partitions is used, since the
partition of an unkeyed record depends on batch boundaries.

**Record.** The value is the message content; the timestamp is `+"`samsa_timestamp`"+` metadata if
set (milliseconds, a time or an RFC 3339 string), else now; the headers are the message's string
metadata, except keys starting `+"`samsa_`"+` or `+"`kafka_`"+`. With `+"`dead_letter: true`"+` the value is
`+"`samsa_original`"+` (the record as the source read it) when set, and headers
`+"`samsa.error.reason`"+`, `+"`samsa.error.stage`"+` and `+"`samsa.error.time`"+` come from
`+"`samsa_dlq_reason`"+`, `+"`samsa_dlq_stage`"+` and `+"`samsa_dlq_time`"+`.

This node must lead the topic's partitions (a single node, or `+"`samsa run`"+`). Writes are one at
a time, so that a source's records reach every partition in position order.`).
		Fields(
			service.NewStringField(topicOutFieldTopic).
				Description("The topic to write to; created with the settings below if it does not exist.").
				Example("plays"),
			service.NewInterpolatedStringField(topicOutFieldKey).
				Description("The record key. When set, the partition is murmur2(key) modulo the partition count, as Kafka's default partitioner does; a key that fails to interpolate is written as null, on the partition of the empty key.").
				Example(`${! json("user_id") }`).
				Optional(),
			service.NewIntField(topicOutFieldPartitions).
				Description("Partitions of the topic when the output creates it.").
				Default(1),
			service.NewIntField(topicOutFieldReplicationFactor).
				Description("Replicas of each partition when the output creates the topic.").
				Default(1),
			service.NewStringMapField(topicOutFieldConfigs).
				Description("Topic configs when the output creates the topic, as Kafka names them.").
				Example(map[string]string{"retention.ms": "-1"}).
				Default(map[string]any{}),
			service.NewBoolField(topicOutFieldDeadLetter).
				Description("Write dead letters: the value is `samsa_original` when set, and the `samsa_dlq_*` metadata become `samsa.error.*` headers.").
				Default(false),
			txnOutputField(),
			service.NewBatchPolicyField(topicOutFieldBatching).
				Description("How messages are gathered into writes. When the field is absent: `count: 1024, period: 1ms`, so that batches from the input pass whole and single messages wait at most a millisecond for others."),
		).
		Example("Keyed topic", "Write plays keyed by user, four partitions, kept forever.", `
output:
  samsa_topic:
    topic: plays
    key: '${! json("user_id") }'
    partitions: 4
    configs:
      retention.ms: "-1"
`).
		Example("Dead letters", "Write rejected records with why, where and when in headers.", `
output:
  samsa_topic:
    topic: plays.dlq
    dead_letter: true
`)
}

// topicOutput is the samsa_topic output. Benthos calls WriteBatch one at a
// time (max in flight 1); mu also orders Connect against it.
type topicOutput struct {
	log        *replog.Log
	logger     *slog.Logger
	spec       replog.TopicSpec
	key        *service.InterpolatedString // nil: no key
	deadLetter bool
	txn        *topicTxn // nil: not transactional

	mu       sync.Mutex
	parts    int32
	maxBytes int
	// stored caches, per source and partition, the highest position the
	// partition holds (nil: none). It is learned on first use after
	// Connect and kept up to date by the output's own appends.
	stored   map[sourcePart][]byte
	rr       int32 // the next partition for unkeyed batches
	failures int   // consecutive failed writes; Connect backs off
	free     []*batch.Builder
	buf      []byte
	headers  []batch.RecordHeader
}

type sourcePart struct {
	source    string
	partition int32
}

func newTopicOutput(conf *service.ParsedConfig, deps Deps) (*topicOutput, service.BatchPolicy, error) {
	o := &topicOutput{log: deps.Log, stored: map[sourcePart][]byte{}}
	policy := defaultBatchPolicy
	var err error
	if o.spec.Name, err = conf.FieldString(topicOutFieldTopic); err != nil {
		return nil, policy, err
	}
	if o.spec.Name == "" {
		return nil, policy, fmt.Errorf("%s: required", topicOutFieldTopic)
	}
	if conf.Contains(topicOutFieldKey) {
		if o.key, err = conf.FieldInterpolatedString(topicOutFieldKey); err != nil {
			return nil, policy, err
		}
	}
	parts, err := conf.FieldInt(topicOutFieldPartitions)
	if err != nil {
		return nil, policy, err
	}
	rf, err := conf.FieldInt(topicOutFieldReplicationFactor)
	if err != nil {
		return nil, policy, err
	}
	if parts < 1 || rf < 1 {
		return nil, policy, fmt.Errorf("%s and %s: must be at least 1", topicOutFieldPartitions, topicOutFieldReplicationFactor)
	}
	o.spec.Partitions, o.spec.ReplicationFactor = int32(parts), int16(rf)
	if o.spec.Configs, err = conf.FieldStringMap(topicOutFieldConfigs); err != nil {
		return nil, policy, err
	}
	if o.deadLetter, err = conf.FieldBool(topicOutFieldDeadLetter); err != nil {
		return nil, policy, err
	}
	if conf.Contains(topicOutFieldBatching) {
		if policy, err = conf.FieldBatchPolicy(topicOutFieldBatching); err != nil {
			return nil, policy, err
		}
	}
	o.logger = deps.Logger.With("output", TopicOutputName, "topic", o.spec.Name)
	if conf.Contains(topicOutFieldTransaction) {
		if o.txn, err = newTopicTxn(conf, o); err != nil {
			return nil, policy, err
		}
		if o.txn.dlq != nil {
			o.txn.dlq.logger = deps.Logger.With("output", TopicOutputName, "topic", o.txn.dlq.spec.Name)
		}
	}
	return o, policy, nil
}

// Connect creates the topic if needed, checks that this node leads its
// partitions and forgets the stored positions learned so far.
func (o *topicOutput) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failures > 0 {
		wait := min(50*time.Millisecond<<min(o.failures-1, 5), time.Second)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := o.connectLocked(ctx); err != nil {
		return err
	}
	if o.txn == nil {
		return nil
	}
	if o.txn.dlq != nil {
		o.txn.dlq.mu.Lock()
		err := o.txn.dlq.connectLocked(ctx)
		o.txn.dlq.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return o.ensureProducer(ctx) // at once: a new instance fences the old one before it writes
}

// connectLocked creates the topic if needed and waits for this node to
// lead its partitions.
func (o *topicOutput) connectLocked(ctx context.Context) error {
	t, ok := o.log.Topic(o.spec.Name)
	if !ok {
		err := o.log.CreateTopic(ctx, o.spec, false)
		if err != nil && !errors.Is(err, replog.ErrTopicExists) {
			return fmt.Errorf("creating topic %q: %w", o.spec.Name, err)
		}
		if t, ok = o.log.Topic(o.spec.Name); !ok {
			return fmt.Errorf("topic %q: %w", o.spec.Name, replog.ErrUnknownTopicOrPartition)
		}
		o.logger.Info("topic created", "partitions", o.spec.Partitions, "replication_factor", o.spec.ReplicationFactor)
	}
	o.parts = int32(len(t.Partitions))
	o.maxBytes = int(t.LogSettings().MaxMessageBytes)
	for p := range o.parts {
		if err := o.awaitLeader(ctx, replog.TopicPartition{Topic: o.spec.Name, Partition: p}); err != nil {
			return fmt.Errorf("topic %q: %w", o.spec.Name, err)
		}
	}
	clear(o.stored)
	o.rr %= o.parts
	return nil
}

// leaderWait is how long Connect waits for a partition's leader (after a
// node starts, its partitions elect theirs within a second or two) before
// it reports the error and lets Benthos retry.
const leaderWait = 5 * time.Second

// awaitLeader waits until this node leads tp, up to leaderWait.
func (o *topicOutput) awaitLeader(ctx context.Context, tp replog.TopicPartition) error {
	deadline := time.Now().Add(leaderWait)
	for {
		_, _, err := o.log.Offsets(tp)
		if err == nil || !errors.Is(err, replog.ErrLeaderNotAvailable) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// chunk is one batch to append: records of one source (or none) for one
// partition.
type chunk struct {
	sp          sourcePart
	first, last []byte // positions; nil without a source
	b           *batch.Builder
}

// WriteBatch appends the messages, dropping those a partition already
// holds and those of a dead ticket. A retryable failure returns
// service.ErrNotConnected: Benthos then reconnects (the positions are
// learned again) and writes the same batch, so nothing behind it overtakes
// it; any other failure kills the batch's tickets before returning.
func (o *topicOutput) WriteBatch(ctx context.Context, msgs service.MessageBatch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.parts == 0 {
		return service.ErrNotConnected
	}
	if o.txn != nil {
		if err := o.writeTxn(ctx, msgs); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return service.ErrNotConnected // aborted: written afresh after Connect
		}
		return nil
	}
	chunks, err := o.chunk(msgs)
	if err == nil {
		err = o.appendChunks(ctx, chunks)
	}
	for _, c := range chunks {
		c.b.Reset()
		o.free = append(o.free, c.b)
	}
	if err == nil {
		o.failures = 0
		return nil
	}
	o.failures++
	if retryable(err) && ctx.Err() == nil {
		o.logger.Warn("write failed; retrying", "err", err)
		return service.ErrNotConnected
	}
	// The batch goes back to its source: nothing issued after it may be
	// written ahead of it (see MetaTicket).
	failTickets(msgs, err)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("topic %q: %w", o.spec.Name, err)
}

// retryable reports whether a write may succeed if repeated: no leader or
// not this node's yet, an unknown outcome, a full disk, or a source batch
// that overlaps what the partition has (after learning it again).
func retryable(err error) bool {
	for _, target := range []error{replog.ErrLeaderNotAvailable, replog.ErrNotLeader, replog.ErrTimeout,
		replog.ErrStorage, replog.ErrSourceOverlap, replog.ErrUnknownTopicOrPartition} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// chunk groups the messages into batches per partition and source, in
// order, leaving out those at or below the partition's stored position.
func (o *topicOutput) chunk(msgs service.MessageBatch) ([]*chunk, error) {
	now := time.Now().UnixMilli()
	unkeyed := o.rr
	o.rr = (o.rr + 1) % o.parts
	var chunks []*chunk
	open := map[sourcePart]*chunk{} // the last chunk of each group
	var keys *service.MessageBatchInterpolationExecutor
	if o.key != nil {
		keys = msgs.InterpolationExecutor(o.key)
	}
	for i, m := range msgs {
		if !liveTicket(m) {
			continue // its source reads it again
		}
		source, pos := sourceOf(m)
		var key []byte
		part := unkeyed
		if keys != nil {
			k, err := keys.TryBytes(i)
			if err != nil {
				o.logger.Debug("key does not interpolate; writing a null key", "err", err)
				k = nil
			} else if k == nil {
				k = []byte{}
			}
			key, part = k, keyPartition(k, o.parts)
		}
		sp := sourcePart{source, part}
		if source != "" {
			stored, err := o.storedPosition(sp)
			if err != nil {
				return chunks, err
			}
			if positionAtOrBelow(pos, stored) {
				continue // stored before a restart
			}
		}
		rec, err := o.record(m, key, now)
		if err != nil {
			return chunks, err
		}
		c := open[sp]
		if c == nil || c.b.Len() > 0 && c.b.Size()+o.recordSize(&rec) > o.maxBytes {
			c = &chunk{sp: sp, b: o.builder()}
			open[sp] = c
			chunks = append(chunks, c)
		}
		c.b.Add(rec)
		if pos != nil {
			if c.first == nil || bytes.Compare(pos, c.first) < 0 {
				c.first = pos
			}
			if bytes.Compare(pos, c.last) > 0 {
				c.last = pos
			}
		}
	}
	return chunks, nil
}

func (o *topicOutput) builder() *batch.Builder {
	if n := len(o.free); n > 0 {
		b := o.free[n-1]
		o.free = o.free[:n-1]
		return b
	}
	return new(batch.Builder)
}

func (o *topicOutput) recordSize(r *batch.Record) int {
	n := recordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// storedPosition returns the highest position of sp's source that its
// partition holds, or, without a key, that any partition holds.
func (o *topicOutput) storedPosition(sp sourcePart) ([]byte, error) {
	if o.key != nil {
		return o.learn(sp)
	}
	var highest []byte
	for p := range o.parts {
		pos, err := o.learn(sourcePart{sp.source, p})
		if err != nil {
			return nil, err
		}
		if bytes.Compare(pos, highest) > 0 {
			highest = pos
		}
	}
	return highest, nil
}

func (o *topicOutput) learn(sp sourcePart) ([]byte, error) {
	if pos, ok := o.stored[sp]; ok {
		return pos, nil
	}
	pos, _, ok, err := o.log.SourcePosition(replog.TopicPartition{Topic: o.spec.Name, Partition: sp.partition}, sp.source)
	if err != nil {
		return nil, err
	}
	if !ok {
		pos = nil
	}
	o.stored[sp] = pos
	return pos, nil
}

// record makes a message into a record. Its byte slices are the message's
// or o's scratch space; the Builder copies them.
func (o *topicOutput) record(m *service.Message, key []byte, now int64) (batch.Record, error) {
	rec := batch.Record{Key: key, Timestamp: now}
	if v, ok := m.MetaGetMut(MetaTimestamp); ok {
		if ts, ok := timestampMs(v); ok {
			rec.Timestamp = ts
		}
	}
	o.headers = o.headers[:0]
	_ = m.MetaWalkMut(func(k string, v any) error {
		if s, ok := v.(string); ok && !strings.HasPrefix(k, "samsa_") && !strings.HasPrefix(k, "kafka_") {
			o.headers = append(o.headers, batch.RecordHeader{Key: []byte(k), Value: []byte(s)})
		}
		return nil
	})
	var err error
	if o.deadLetter {
		for _, h := range [...][2]string{{MetaDLQReason, HeaderErrorReason}, {MetaDLQStage, HeaderErrorStage}, {MetaDLQTime, HeaderErrorTime}} {
			if v, ok := m.MetaGetMut(h[0]); ok {
				o.headers = append(o.headers, batch.RecordHeader{Key: []byte(h[1]), Value: metaBytes(v)})
			}
		}
		if v, ok := m.MetaGetMut(MetaOriginal); ok {
			rec.Value = metaBytes(v)
		}
	}
	if rec.Value == nil {
		if rec.Value, err = m.AsBytes(); err != nil {
			return rec, fmt.Errorf("%w: message content: %v", replog.ErrInvalidRecord, err)
		}
		if rec.Value == nil {
			rec.Value = []byte{}
		}
	}
	rec.Headers = o.headers
	return rec, nil
}

// appendChunks appends the chunks: in rounds, each proposing the next
// chunk of every partition and source at once, then waiting for all of
// them, so that a partition's chunks are stored in order and different
// partitions are written in parallel.
func (o *topicOutput) appendChunks(ctx context.Context, chunks []*chunk) error {
	type started struct {
		c  *chunk
		pa *replog.PendingAppend
	}
	rounds := make(map[sourcePart]int, len(chunks))
	byRound := make([][]*chunk, 0, 1)
	for _, c := range chunks {
		r := rounds[c.sp]
		rounds[c.sp]++
		if r == len(byRound) {
			byRound = append(byRound, nil)
		}
		byRound[r] = append(byRound[r], c)
	}
	for _, round := range byRound {
		var pending []started
		var firstErr error
		for _, c := range round {
			var err error
			if o.buf, err = c.b.Build(o.buf[:0]); err != nil {
				firstErr = err
				break
			}
			opts := replog.AppendOptions{Acks: replog.AcksAll}
			if c.sp.source != "" {
				opts.Source, opts.SourceFirst, opts.SourceLast = c.sp.source, c.first, c.last
			}
			pa, err := o.log.AppendStart(ctx, replog.TopicPartition{Topic: o.spec.Name, Partition: c.sp.partition}, o.buf, opts)
			if err != nil {
				firstErr = err
				break
			}
			pending = append(pending, started{c, pa})
		}
		for _, s := range pending {
			_, err := s.pa.Wait(ctx)
			switch {
			case err == nil: // stored, or a duplicate: stored before
				if s.c.sp.source != "" {
					o.stored[s.c.sp] = s.c.last
				}
			case errors.Is(err, replog.ErrSourceOverlap), errors.Is(err, replog.ErrTimeout):
				delete(o.stored, s.c.sp) // learn it again
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if firstErr != nil {
			return firstErr
		}
	}
	return nil
}

// sourceOf returns a message's source id and position, or "" and nil if
// it has none.
func sourceOf(m *service.Message) (string, []byte) {
	v, ok := m.MetaGetMut(MetaSource)
	if !ok {
		return "", nil
	}
	source, ok := v.(string)
	if !ok || source == "" {
		return "", nil
	}
	p, ok := m.MetaGetMut(MetaPosition)
	if !ok {
		return "", nil
	}
	switch p := p.(type) {
	case []byte:
		if len(p) > 0 {
			return source, p
		}
	case string:
		if p != "" {
			return source, []byte(p)
		}
	}
	return "", nil
}

// metaBytes renders a metadata value as bytes.
func metaBytes(v any) []byte {
	switch v := v.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	case time.Time:
		return []byte(v.Format(time.RFC3339Nano))
	case nil:
		return nil
	}
	return fmt.Append(nil, v)
}

// timestampMs reads samsa_timestamp: milliseconds, a time, or an RFC 3339
// (or millisecond) string.
func timestampMs(v any) (int64, bool) {
	switch v := v.(type) {
	case time.Time:
		return v.UnixMilli(), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint64:
		return int64(v), true
	case float64:
		return int64(v), true
	case string:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UnixMilli(), true
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

// Close has nothing to release: appends are waited for within WriteBatch.
func (o *topicOutput) Close(context.Context) error { return nil }
