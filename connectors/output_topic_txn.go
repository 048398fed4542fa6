package connectors

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
)

// Transactions: the samsa_topic output's exactly-once mode for records
// read from a topic (topic-to-topic pipelines). Each write is one Kafka
// transaction of a transactional id: the records go to the topic (and
// the dead letters to the dead-letter topic) as transactional batches,
// the offsets of the input records they came from are committed for the
// input's group in the same transaction, and the transaction commits.
// Readers with read_committed see a batch's records exactly when its
// input offsets are committed: a restart resumes after the last committed
// batch, and whatever a killed process wrote of a later one is aborted.
//
// The samsa_topic input in transactional mode stamps each message with
// MetaTxnOffset and leaves committing to this output.

// MetaTxnOffset is the metadata key of a message read by a transactional
// samsa_topic input: a *TxnOffset, where the input resumes once the
// message's result is committed.
const MetaTxnOffset = "samsa_txn_offset"

// TxnOffset is the value of MetaTxnOffset.
type TxnOffset struct {
	Topic     string
	Partition int32
	Next      int64 // the offset after the record
}

// YAML fields of the output's transaction object.
const (
	txnFieldID         = "id"
	txnFieldGroup      = "group"
	txnFieldDeadLetter = "dead_letter_topic"
	txnFieldTimeout    = "timeout"
)

func txnOutputField() *service.ConfigField {
	return service.NewObjectField(topicOutFieldTransaction,
		service.NewStringField(txnFieldID).
			Description("The transactional id. A new instance with the same id fences the old one and aborts what it left open."),
		service.NewStringField(txnFieldGroup).
			Description("The consumer group of the samsa_topic input (with `transactional: true`) whose offsets each transaction commits."),
		service.NewStringField(txnFieldDeadLetter).
			Description("Messages with `samsa_dead_letter` metadata are written to this topic (as `dead_letter: true` writes them), in the same transaction.").
			Default(""),
		service.NewDurationField(txnFieldTimeout).
			Description("The transaction timeout: a transaction left open this long (its writer died) is aborted by the coordinator.").
			Default("60s"),
	).
		Description("Exactly once from a topic: each write is a transaction that also commits the input's offsets. Readers see the records with read_committed.").
		Optional()
}

// topicTxn is the transaction state of a transactional samsa_topic
// output, under the output's lock.
type topicTxn struct {
	id        string
	group     string
	timeoutMs int32
	dlq       *topicOutput // nil: dead letters go to the topic like the rest

	ready  bool // pid and epoch are this instance's
	pid    int64
	epoch  int16
	seq    map[replog.TopicPartition]int32 // the next sequence per partition, this epoch
	finish bool                            // a committed transaction's markers may be unwritten
	// fenced is set once a newer instance with the same id took over:
	// this one writes nothing more (it does not fence back).
	fenced error
}

func newTopicTxn(conf *service.ParsedConfig, o *topicOutput) (*topicTxn, error) {
	t := &topicTxn{seq: map[replog.TopicPartition]int32{}}
	var err error
	if t.id, err = conf.FieldString(topicOutFieldTransaction, txnFieldID); err != nil {
		return nil, err
	}
	if t.group, err = conf.FieldString(topicOutFieldTransaction, txnFieldGroup); err != nil {
		return nil, err
	}
	if t.id == "" || t.group == "" {
		return nil, fmt.Errorf("%s: %s and %s are required", topicOutFieldTransaction, txnFieldID, txnFieldGroup)
	}
	timeout, err := conf.FieldDuration(topicOutFieldTransaction, txnFieldTimeout)
	if err != nil {
		return nil, err
	}
	if timeout < time.Millisecond || timeout > meta.MaxTxnTimeoutMs*time.Millisecond {
		return nil, fmt.Errorf("%s.%s: must be 1ms to %v", topicOutFieldTransaction, txnFieldTimeout, meta.MaxTxnTimeoutMs*time.Millisecond)
	}
	t.timeoutMs = int32(timeout.Milliseconds())
	dlq, err := conf.FieldString(topicOutFieldTransaction, txnFieldDeadLetter)
	if err != nil {
		return nil, err
	}
	if dlq != "" {
		t.dlq = &topicOutput{
			log:        o.log,
			spec:       replog.TopicSpec{Name: dlq, Partitions: 1, ReplicationFactor: o.spec.ReplicationFactor},
			deadLetter: true, stored: map[sourcePart][]byte{},
		}
	}
	return t, nil
}

// finishTxn writes the markers of the transaction's decided transaction,
// on the partitions this node leads.
func (o *topicOutput) finishTxn(ctx context.Context) error {
	return o.log.FinishTxn(ctx, o.txn.id, o.log.WriteTxnMarkerRetrying)
}

// ensureProducer gets this instance's producer id and epoch: a new epoch
// fences any older instance, and a transaction an older instance left
// open is aborted first.
func (o *topicOutput) ensureProducer(ctx context.Context) error {
	t := o.txn
	if t.finish {
		if err := o.finishTxn(ctx); err != nil {
			return err
		}
		t.finish = false
	}
	if t.fenced != nil {
		return t.fenced
	}
	if t.ready {
		return nil
	}
	pid, epoch, err := o.log.InitTxnProducerAborting(ctx, t.id, t.timeoutMs, -1, -1, func(ctx context.Context, id string) error {
		return o.log.FinishTxn(ctx, id, o.log.WriteTxnMarkerRetrying)
	})
	if err != nil {
		return err
	}
	t.ready, t.pid, t.epoch = true, pid, epoch
	clear(t.seq)
	return nil
}

// writeTxn writes msgs as one transaction with the input offsets they
// carry. On a failure before the commit the transaction is aborted and
// the producer starts a new epoch at the next write, so a retry writes
// the batch afresh.
func (o *topicOutput) writeTxn(ctx context.Context, msgs service.MessageBatch) error {
	t := o.txn
	if err := o.ensureProducer(ctx); err != nil {
		return err
	}
	var main, dead service.MessageBatch
	offsets := map[replog.TopicPartition]int64{}
	for _, m := range msgs {
		if v, ok := m.MetaGetMut(MetaTxnOffset); ok {
			if to, ok := v.(*TxnOffset); ok {
				tp := replog.TopicPartition{Topic: to.Topic, Partition: to.Partition}
				offsets[tp] = max(offsets[tp], to.Next)
			}
		}
		if t.dlq != nil && isDeadLetter(m) {
			dead = append(dead, m)
		} else {
			main = append(main, m)
		}
	}
	var chunks, dlqChunks []*chunk
	var err error
	defer func() {
		for _, c := range chunks {
			c.b.Reset()
			o.free = append(o.free, c.b)
		}
		for _, c := range dlqChunks {
			c.b.Reset()
			t.dlq.free = append(t.dlq.free, c.b)
		}
	}()
	if chunks, err = o.chunk(main); err != nil {
		return err
	}
	if t.dlq != nil {
		if dlqChunks, err = t.dlq.chunk(dead); err != nil {
			return err
		}
	}
	if err := o.commitTxn(ctx, chunks, dlqChunks, offsets); err != nil {
		if errors.Is(err, meta.ErrProducerFenced) || errors.Is(err, meta.ErrInvalidProducerIDMapping) {
			t.fenced = fmt.Errorf("transactional id %q: another instance took over: %w", t.id, err)
			o.logger.Error("fenced by a newer instance of this output; writing nothing more", "err", err)
			return t.fenced
		}
		o.abortTxn(err)
		return err
	}
	return nil
}

// commitTxn runs one transaction: partitions and group added, batches
// appended, offsets committed, commit decided, markers written.
func (o *topicOutput) commitTxn(ctx context.Context, chunks, dlqChunks []*chunk, offsets map[replog.TopicPartition]int64) error {
	t := o.txn
	var tps []replog.TopicPartition
	stamp := func(topic string, cs []*chunk) {
		for _, c := range cs {
			tp := replog.TopicPartition{Topic: topic, Partition: c.sp.partition}
			if !slices.Contains(tps, tp) {
				tps = append(tps, tp)
			}
			c.b.SetProducer(t.pid, t.epoch, t.seq[tp])
			c.b.SetTransactional(true)
			t.seq[tp] += int32(c.b.Len())
		}
	}
	stamp(o.spec.Name, chunks)
	if t.dlq != nil {
		stamp(t.dlq.spec.Name, dlqChunks)
	}
	if len(tps) > 0 {
		if err := o.log.AddTxnPartitions(ctx, t.id, t.pid, t.epoch, tps); err != nil {
			return err
		}
	}
	if len(offsets) > 0 {
		if err := o.log.AddTxnGroup(ctx, t.id, t.pid, t.epoch, t.group); err != nil {
			return err
		}
	}
	if err := o.appendChunks(ctx, chunks); err != nil {
		return err
	}
	if t.dlq != nil {
		if err := t.dlq.appendChunks(ctx, dlqChunks); err != nil {
			return err
		}
	}
	if len(offsets) > 0 {
		commits := make([]meta.OffsetCommit, 0, len(offsets))
		for tp, next := range offsets {
			commits = append(commits, meta.OffsetCommit{Topic: tp.Topic, Partition: tp.Partition, Offset: next, LeaderEpoch: -1})
		}
		slices.SortFunc(commits, func(a, b meta.OffsetCommit) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
		errs, err := o.log.TxnCommitOffsets(ctx, t.id, t.pid, t.epoch, t.group, commits)
		if err == nil {
			err = errors.Join(errs...)
		}
		if err != nil {
			return err
		}
	}
	if len(tps) == 0 && len(offsets) == 0 {
		return nil // nothing written, nothing to commit
	}
	if err := o.log.EndTxn(ctx, t.id, t.pid, t.epoch, true); err != nil {
		return err
	}
	// Decided: the batch is committed whatever happens next. Its markers
	// are written now, or before the next transaction.
	if err := o.finishTxn(ctx); err != nil {
		t.finish = true
		o.logger.Warn("transaction committed; its markers will be written before the next", "err", err)
	}
	return nil
}

// abortTxn gives up the transaction after a failure: it is aborted if it
// is still open (else the coordinator's timeout aborts it), and the next
// write starts a new epoch.
func (o *topicOutput) abortTxn(cause error) {
	t := o.txn
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.log.EndTxn(ctx, t.id, t.pid, t.epoch, false); err == nil {
		if err := o.finishTxn(ctx); err != nil {
			t.finish = true
		}
	}
	t.ready = false
	o.logger.Warn("transaction aborted; the batch will be written again", "err", cause)
}

// isDeadLetter reports whether a stage turned m into a dead letter.
func isDeadLetter(m *service.Message) bool {
	v, ok := m.MetaGetMut(MetaDeadLetter)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}
