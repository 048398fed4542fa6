package partition

import (
	"bytes"
	"fmt"

	"github.com/samsa-io/samsa/log/batch"
)

// DefaultProducerExpiryMs is how long a producer's sequence state outlives
// its last batch (Kafka's producer.id.expiration.ms): one day.
const DefaultProducerExpiryMs = 24 * 3600 * 1000

// producerBatches is how many recent batches per producer are remembered to
// recognise a retry: Kafka's limit on in-flight requests per producer.
const producerBatches = 5

// State is a partition's deterministic state besides its records: where
// the next batch goes, where the log starts, and what each idempotent
// producer and pipeline source has stored. It does no I/O; Check decides a
// batch, Record notes one that was stored.
type State struct {
	NextOffset     int64
	LogStartOffset int64
	// ExpiryMs is how long a producer's state outlives its last batch,
	// judged by entries' append times. Every replica must use the same
	// value. Default DefaultProducerExpiryMs.
	ExpiryMs int64

	producers map[int64]*producer
	sources   map[string]*source
}

// producer is what the partition remembers of one idempotent producer.
type producer struct {
	epoch      int16
	lastTime   int64 // append time of its last batch, for expiry
	lastOffset int64 // offset of its last record, for DeleteBefore
	batches    []batchMeta
}

// batchMeta identifies a stored batch so that its retry is recognised.
type batchMeta struct {
	firstSeq, lastSeq int32
	baseOffset        int64
}

// source is the highest position stored for one pipeline source.
type source struct {
	pos        []byte
	lastOffset int64
}

// NewState returns the state of an empty partition.
func NewState() *State {
	return &State{ExpiryMs: DefaultProducerExpiryMs, producers: map[int64]*producer{}, sources: map[string]*source{}}
}

// Verdict is what storing a batch entry would do.
type Verdict struct {
	// BaseOffset is the offset the batch gets. For a duplicate it is the
	// offset the batch got when first stored (for a source's duplicate, the
	// last offset that source reached).
	BaseOffset int64
	// Duplicate means the batch is already stored: answer success, store nothing.
	Duplicate bool
	// Err is a refusal (one of this package's errors): store nothing.
	Err error
}

// Check decides a batch entry without changing anything.
func (s *State) Check(m *Meta, h *batch.Header) Verdict {
	switch {
	case h.Attributes.Control():
		return Verdict{Err: fmt.Errorf("%w: control batch from a producer", ErrInvalidRecord)}
	case h.Attributes.Transactional():
		return Verdict{Err: fmt.Errorf("%w: transactional batches are not supported", ErrInvalidRecord)}
	}
	if m.Source != "" {
		if v, done := s.checkSource(m); done {
			return v
		}
	}
	if h.Idempotent() {
		if v, done := s.checkProducer(m, h); done {
			return v
		}
	}
	return Verdict{BaseOffset: s.NextOffset}
}

// checkSource applies DESIGN invariant 4: a source's batch at or below the
// position already stored is a duplicate.
func (s *State) checkSource(m *Meta) (Verdict, bool) {
	if len(m.SourceLast) == 0 || bytes.Compare(m.SourceFirst, m.SourceLast) > 0 {
		return Verdict{Err: fmt.Errorf("%w: source %q batch positions out of order", ErrInvalidRecord, m.Source)}, true
	}
	src := s.sources[m.Source]
	if src == nil {
		return Verdict{}, false
	}
	switch {
	case bytes.Compare(m.SourceLast, src.pos) <= 0:
		return Verdict{BaseOffset: src.lastOffset, Duplicate: true}, true
	case bytes.Compare(m.SourceFirst, src.pos) <= 0:
		return Verdict{Err: fmt.Errorf("%w: source %q", ErrSourceOverlap, m.Source)}, true
	}
	return Verdict{}, false
}

// checkProducer applies Kafka's idempotent-producer rules.
func (s *State) checkProducer(m *Meta, h *batch.Header) (Verdict, bool) {
	if h.BaseSequence < 0 || h.ProducerEpoch < 0 {
		return Verdict{Err: fmt.Errorf("%w: producer %d without a sequence or epoch", ErrInvalidRecord, h.ProducerID)}, true
	}
	p := s.producer(h.ProducerID, m.AppendTime)
	switch {
	case p == nil:
		// Unknown (new, expired, or its records deleted): any sequence
		// starts it, as in Kafka since KIP-360.
		return Verdict{}, false
	case h.ProducerEpoch < p.epoch:
		return Verdict{Err: fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, p.epoch)}, true
	case h.ProducerEpoch > p.epoch:
		if h.BaseSequence != 0 {
			return Verdict{Err: fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d, not 0", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)}, true
		}
		return Verdict{}, false
	}
	last := h.LastSequence()
	for _, b := range p.batches {
		if b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return Verdict{BaseOffset: b.baseOffset, Duplicate: true}, true
		}
	}
	if want := batch.AddSequence(p.batches[len(p.batches)-1].lastSeq, 1); h.BaseSequence != want {
		return Verdict{Err: fmt.Errorf("%w: producer %d sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence, want)}, true
	}
	return Verdict{}, false
}

// producer returns the live state of producer id at time now, or nil if
// there is none or it has expired. Expiry is judged here, from append
// times, so the result does not depend on when Sweep last ran.
func (s *State) producer(id, now int64) *producer {
	p := s.producers[id]
	if p == nil || now-p.lastTime > s.ExpiryMs {
		return nil
	}
	return p
}

// Record notes that a batch checked with Check was stored at base.
func (s *State) Record(m *Meta, h *batch.Header, base int64) {
	last := base + int64(h.LastOffsetDelta)
	s.NextOffset = last + 1
	if m.Source != "" {
		src := s.sources[m.Source]
		if src == nil {
			src = &source{}
			s.sources[m.Source] = src
		}
		src.pos = append(src.pos[:0], m.SourceLast...)
		src.lastOffset = last
	}
	if h.Idempotent() {
		p := s.producer(h.ProducerID, m.AppendTime)
		if p == nil || h.ProducerEpoch != p.epoch {
			p = &producer{epoch: h.ProducerEpoch}
			s.producers[h.ProducerID] = p
		}
		if len(p.batches) == producerBatches {
			p.batches = append(p.batches[:0], p.batches[1:]...)
		}
		p.batches = append(p.batches, batchMeta{firstSeq: h.BaseSequence, lastSeq: h.LastSequence(), baseOffset: base})
		p.lastTime, p.lastOffset = m.AppendTime, last
	}
}

// DeleteBefore moves the log start offset to offset (never backwards) and
// forgets producers whose records are all below it, as Kafka does.
func (s *State) DeleteBefore(offset int64) {
	if offset <= s.LogStartOffset {
		return
	}
	s.LogStartOffset = offset
	for id, p := range s.producers {
		if p.lastOffset < offset {
			delete(s.producers, id)
		}
	}
}

// Sweep drops expired producers to free memory. Check treats them as gone
// already, so when Sweep runs changes no decision.
func (s *State) Sweep(now int64) {
	for id, p := range s.producers {
		if now-p.lastTime > s.ExpiryMs {
			delete(s.producers, id)
		}
	}
}

// Producers is the number of producers with remembered state.
func (s *State) Producers() int { return len(s.producers) }

// SourcePosition returns the highest position stored for a source and the
// offset of its last record, so a restarting source can skip what is there.
func (s *State) SourcePosition(id string) (pos []byte, lastOffset int64, ok bool) {
	src := s.sources[id]
	if src == nil {
		return nil, 0, false
	}
	return src.pos, src.lastOffset, true
}
