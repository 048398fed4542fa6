package partition

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

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
	// txns maps each producer with an open transaction here to the
	// offset of its first transactional batch since its last marker.
	txns map[int64]int64
	// aborted lists aborted transactions in marker order, so by last
	// offset, until the log start passes them.
	aborted []AbortedTxn
}

// AbortedTxn is an aborted transaction of one producer in this partition:
// its records lie between FirstOffset and LastOffset, the offset of its
// abort marker. A read_committed consumer skips that producer's records
// from FirstOffset until it meets the marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
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
	return &State{ExpiryMs: DefaultProducerExpiryMs, producers: map[int64]*producer{}, sources: map[string]*source{}, txns: map[int64]int64{}}
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
	case h.Attributes.Transactional() && !h.Idempotent():
		return Verdict{Err: fmt.Errorf("%w: transactional batch without a producer id", ErrInvalidRecord)}
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
	case len(p.batches) == 0:
		// Known only from a marker (which moved its epoch): its first
		// batch here starts it at any sequence, as for an unknown one.
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
// times, so the result does not depend on when Sweep last ran. A producer
// with an open transaction does not expire: its marker is still to come.
func (s *State) producer(id, now int64) *producer {
	p := s.producers[id]
	if p == nil || s.expired(id, p, now) {
		return nil
	}
	return p
}

func (s *State) expired(id int64, p *producer, now int64) bool {
	_, open := s.txns[id]
	return !open && now-p.lastTime > s.ExpiryMs
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
		if _, open := s.txns[h.ProducerID]; h.Attributes.Transactional() && !open {
			s.txns[h.ProducerID] = base
		}
	}
}

// CheckMarker decides a marker entry without changing anything: a marker
// from an epoch older than its producer's is fenced.
func (s *State) CheckMarker(m *Meta) error {
	mk := &m.Marker
	if mk.ProducerID < 0 || mk.ProducerEpoch < 0 {
		return fmt.Errorf("%w: marker for producer %d epoch %d", ErrInvalidRecord, mk.ProducerID, mk.ProducerEpoch)
	}
	if p := s.producer(mk.ProducerID, m.AppendTime); p != nil && mk.ProducerEpoch < p.epoch {
		return fmt.Errorf("%w: marker for producer %d epoch %d, current %d", ErrInvalidProducerEpoch, mk.ProducerID, mk.ProducerEpoch, p.epoch)
	}
	return nil
}

// RecordMarker notes that a marker checked with CheckMarker was stored at
// offset: the producer moves to the marker's epoch (so a coordinator's
// fencing abort refuses the zombie's later batches) and its open
// transaction, if any, ends; an aborted one enters the aborted index. A
// marker without an open transaction (a retry, or a partition the
// producer never wrote to) is stored all the same, as in Kafka.
func (s *State) RecordMarker(m *Meta, offset int64) {
	mk := &m.Marker
	s.NextOffset = offset + 1
	p := s.producer(mk.ProducerID, m.AppendTime)
	if p == nil {
		p = &producer{epoch: mk.ProducerEpoch}
		s.producers[mk.ProducerID] = p
	}
	if p.epoch != mk.ProducerEpoch {
		p.epoch, p.batches = mk.ProducerEpoch, p.batches[:0]
	}
	p.lastTime, p.lastOffset = m.AppendTime, offset
	if first, open := s.txns[mk.ProducerID]; open {
		delete(s.txns, mk.ProducerID)
		if !mk.Commit {
			s.aborted = append(s.aborted, AbortedTxn{ProducerID: mk.ProducerID, FirstOffset: first, LastOffset: offset})
		}
	}
}

// LastStableOffset is the first offset of the oldest open transaction, or
// NextOffset if none is open: a read_committed consumer reads below it. It
// is never below the log start. It is always a batch boundary.
func (s *State) LastStableOffset() int64 {
	lso := s.NextOffset
	for _, first := range s.txns {
		lso = min(lso, first)
	}
	return max(lso, s.LogStartOffset)
}

// OpenTxns is the number of producers with an open transaction here.
func (s *State) OpenTxns() int { return len(s.txns) }

// AbortedTxns appends to dst the aborted transactions whose records
// overlap [from, to): last offset at least from, first offset below to.
func (s *State) AbortedTxns(from, to int64, dst []AbortedTxn) []AbortedTxn {
	i, _ := slices.BinarySearchFunc(s.aborted, from, func(a AbortedTxn, off int64) int { return cmp.Compare(a.LastOffset, off) })
	for _, a := range s.aborted[i:] {
		if a.FirstOffset < to {
			dst = append(dst, a)
		}
	}
	return dst
}

// DeleteBefore moves the log start offset to offset (never backwards) and
// forgets producers whose records are all below it, as Kafka does.
func (s *State) DeleteBefore(offset int64) {
	if offset <= s.LogStartOffset {
		return
	}
	s.LogStartOffset = offset
	for id, p := range s.producers {
		if _, open := s.txns[id]; !open && p.lastOffset < offset {
			delete(s.producers, id)
		}
	}
	i := 0
	for i < len(s.aborted) && s.aborted[i].LastOffset < offset {
		i++
	}
	s.aborted = append(s.aborted[:0], s.aborted[i:]...)
}

// Sweep drops expired producers to free memory. Check treats them as gone
// already, so when Sweep runs changes no decision.
func (s *State) Sweep(now int64) {
	for id, p := range s.producers {
		if s.expired(id, p, now) {
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
