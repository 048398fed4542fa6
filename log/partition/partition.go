package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/samsa-io/samsa/log/batch"
	"github.com/samsa-io/samsa/log/segment"
)

// MaxBatchBytes is the largest batch a partition stores. It is a constant,
// not a setting, because every replica must refuse the same batches; a
// topic's max.message.bytes, checked by the leader before it proposes, may
// be smaller but not larger.
const MaxBatchBytes = 64 << 20

// Config holds a partition's settings.
type Config struct {
	// Log configures the segment log (segment.bytes, retention, ...).
	Log segment.Config
	// ProducerExpiryMs is how long an idempotent producer's state outlives
	// its last batch. It must be the same on every replica. Default
	// DefaultProducerExpiryMs (one day).
	ProducerExpiryMs int64
	// Logger receives lifecycle events. Default slog.Default().
	Logger *slog.Logger
}

// Result is the answer to one applied entry.
type Result struct {
	// BaseOffset is the first offset of the stored batch; for a duplicate,
	// the offset it got when first stored.
	BaseOffset int64
	// LogAppendTime is the batch's timestamp under LogAppendTime, else -1.
	LogAppendTime int64
	// LogStartOffset is the partition's log start offset after the entry.
	LogStartOffset int64
	// Duplicate means the batch was already stored; nothing was written.
	Duplicate bool
	// Err is a refusal (one of this package's errors, or
	// segment.ErrOffsetOutOfRange for a delete past the end): nothing
	// changed. Storage failures are Apply's error instead.
	Err error
}

// Partition is one partition's log and state. Apply, Sync and Close run on
// one goroutine (the Raft apply loop); Log's read methods and
// SourcePosition are safe from any goroutine.
type Partition struct {
	dir    string
	dirf   *os.File
	log    *segment.Log
	logger *slog.Logger

	mu      sync.RWMutex // guards state for readers; the writer holds it to change it
	state   *State
	applied uint64 // last entry index applied, durable after Sync

	head     [batch.HeaderLen]byte // the batch header as stored: a patched copy
	lastTime int64                 // newest append time seen, for Sweep
	ckpt     []byte                // checkpoint encoding, reused
}

// Open opens the partition in dir, creating it if needed. The log is cut
// back to the last checkpoint: everything after it is to be applied again
// (DESIGN invariant 5). AppliedIndex says from where.
func Open(dir string, cfg Config) (*Partition, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Log.Logger == nil {
		cfg.Log.Logger = cfg.Logger
	}
	if err := finishRestore(dir); err != nil {
		return nil, fmt.Errorf("partition: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("partition: open: %w", err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("partition: open: %w", err)
	}
	p := &Partition{dir: dir, dirf: dirf, state: NewState(), logger: cfg.Logger}
	if cfg.ProducerExpiryMs > 0 {
		p.state.ExpiryMs = cfg.ProducerExpiryMs
	}
	applied, found, err := readCheckpoint(dir, p.state)
	if err != nil {
		dirf.Close()
		return nil, fmt.Errorf("partition: open %s: %w", dir, err)
	}
	p.applied = applied
	// Without a checkpoint nothing is known to be durable: start empty.
	opts := segment.OpenOptions{Checkpoint: p.state.NextOffset, StartOffset: p.state.LogStartOffset}
	if p.log, err = segment.Open(dir, cfg.Log, opts); err != nil {
		dirf.Close()
		return nil, fmt.Errorf("partition: open %s: %w", dir, err)
	}
	if end := p.log.EndOffset(); end != p.state.NextOffset {
		p.log.Close()
		dirf.Close()
		return nil, fmt.Errorf("partition: open %s: %w: log ends at %d, checkpoint says %d", dir, segment.ErrCorrupt, end, p.state.NextOffset)
	}
	p.logger.Debug("partition opened", "dir", dir, "checkpoint", found, "applied_index", applied,
		"log_start_offset", p.state.LogStartOffset, "next_offset", p.state.NextOffset)
	return p, nil
}

// Log is the partition's segment log, for readers.
func (p *Partition) Log() *segment.Log { return p.log }

// Dir is the partition's directory.
func (p *Partition) Dir() string { return p.dir }

// AppliedIndex is the index of the last entry applied.
func (p *Partition) AppliedIndex() uint64 { return p.applied }

// Apply applies the entry at index. A refused batch is answered in
// Result.Err and still counts as applied; an error means storage failed,
// nothing changed, and the entry was not applied.
func (p *Partition) Apply(index uint64, entry []byte) (Result, error) {
	m, b, err := DecodeEntry(entry)
	if err != nil {
		p.applied = index
		return p.refuse(err), nil
	}
	switch m.Kind {
	case KindDeleteRecords:
		return p.deleteRecords(index, m.DeleteBefore)
	case KindTxnMarker:
		return p.applyMarker(index, &m)
	}
	return p.ApplyBatch(index, &m, b)
}

// applyMarker stores a transaction marker as the control batch it builds
// from the entry, and ends the producer's transaction.
func (p *Partition) applyMarker(index uint64, m *Meta) (Result, error) {
	if err := p.state.CheckMarker(m); err != nil {
		p.applied = index
		return p.refuse(err), nil
	}
	off := p.state.NextOffset
	b, err := MarkerBatch(m, off)
	if err != nil {
		return Result{}, fmt.Errorf("partition: marker: %w", err)
	}
	if err := p.log.AppendPatched(b[:batch.HeaderLen], b); err != nil {
		return Result{}, fmt.Errorf("partition: %w", err)
	}
	p.mu.Lock()
	p.state.RecordMarker(m, off)
	p.mu.Unlock()
	p.applied = index
	p.lastTime = max(p.lastTime, m.AppendTime)
	return Result{BaseOffset: off, LogAppendTime: -1, LogStartOffset: p.state.LogStartOffset}, nil
}

// Control record types (the key's second field).
const (
	ControlAbort  = 0
	ControlCommit = 1
)

// MarkerBatch builds the control batch of a marker entry at offset, as
// Kafka writes it: attributes transactional and control, the producer's
// id and epoch, base sequence -1, and one record whose key is version 0
// and the control type (0 abort, 1 commit) and whose value is the
// EndTxnMarker, version 0 and the coordinator epoch (clients such as
// sarama refuse any other value); both timestamps are the append time.
// It depends only on the entry and the offset, so every replica stores
// the same bytes.
func MarkerBatch(m *Meta, offset int64) ([]byte, error) {
	var bld batch.Builder
	bld.SetProducer(m.Marker.ProducerID, m.Marker.ProducerEpoch, -1)
	bld.SetTransactional(true)
	bld.SetControl(true)
	typ := byte(ControlAbort)
	if m.Marker.Commit {
		typ = ControlCommit
	}
	value := binary.BigEndian.AppendUint32([]byte{0, 0}, uint32(m.Marker.CoordinatorEpoch))
	bld.Add(batch.Record{Timestamp: m.AppendTime, Key: []byte{0, 0, 0, typ}, Value: value})
	b, err := bld.Build(nil)
	if err != nil {
		return nil, err
	}
	batch.SetBaseOffset(b, offset)
	batch.SetLeaderEpoch(b, m.LeaderEpoch)
	return b, nil
}

// ApplyBatch applies a batch entry already split into its parts. The
// batch is neither kept nor modified: the stored copy has the broker's
// header fields patched in.
func (p *Partition) ApplyBatch(index uint64, m *Meta, b []byte) (Result, error) {
	if len(b) > MaxBatchBytes {
		p.applied = index
		return p.refuse(fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxBatchBytes)), nil
	}
	h, err := batch.Validate(b)
	if err != nil {
		p.applied = index
		return p.refuse(fmt.Errorf("%w: %w", ErrCorrupt, err)), nil
	}
	v := p.state.Check(m, &h)
	if v.Err != nil || v.Duplicate {
		p.applied = index
		res := p.refuse(v.Err)
		res.BaseOffset, res.Duplicate = v.BaseOffset, v.Duplicate
		return res, nil
	}
	res := Result{BaseOffset: p.state.NextOffset, LogAppendTime: -1}
	copy(p.head[:], b)
	batch.SetBaseOffset(p.head[:], res.BaseOffset)
	batch.SetLeaderEpoch(p.head[:], m.LeaderEpoch)
	if m.LogAppendTime {
		batch.SetLogAppendTime(p.head[:], b[batch.HeaderLen:], m.AppendTime)
		res.LogAppendTime = m.AppendTime
	}
	if err := p.log.AppendPatched(p.head[:], b); err != nil {
		return Result{}, fmt.Errorf("partition: %w", err)
	}
	p.mu.Lock()
	p.state.Record(m, &h, res.BaseOffset)
	p.mu.Unlock()
	p.applied = index
	p.lastTime = max(p.lastTime, m.AppendTime)
	res.LogStartOffset = p.state.LogStartOffset
	return res, nil
}

func (p *Partition) refuse(err error) Result {
	return Result{LogAppendTime: -1, LogStartOffset: p.state.LogStartOffset, Err: err}
}

// deleteRecords moves the log start offset and deletes whole segments
// below it.
func (p *Partition) deleteRecords(index uint64, offset int64) (Result, error) {
	if offset > p.state.NextOffset || offset < 0 {
		p.applied = index
		return p.refuse(fmt.Errorf("%w: delete before %d, log ends at %d", segment.ErrOffsetOutOfRange, offset, p.state.NextOffset)), nil
	}
	if _, err := p.log.DeleteBefore(offset); err != nil {
		return Result{}, fmt.Errorf("partition: %w", err)
	}
	p.mu.Lock()
	p.state.DeleteBefore(offset)
	p.mu.Unlock()
	p.applied = index
	return Result{LogAppendTime: -1, LogStartOffset: p.state.LogStartOffset}, nil
}

// RetentionPoint is the offset below which retention.ms and
// retention.bytes allow deleting records at time now (ms). A leader
// proposes it as a KindDeleteRecords entry so every replica deletes the
// same records.
func (p *Partition) RetentionPoint(nowMs int64) int64 {
	return p.log.RetentionPoint(time.UnixMilli(nowMs))
}

// LastStableOffset is the offset below which every transaction is
// decided (see State.LastStableOffset). Safe from any goroutine; it is
// never above the log's EndOffset.
func (p *Partition) LastStableOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.state.LastStableOffset()
}

// AbortedTxns appends to dst the aborted transactions overlapping
// [from, to) (see State.AbortedTxns). Safe from any goroutine.
func (p *Partition) AbortedTxns(from, to int64, dst []AbortedTxn) []AbortedTxn {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.state.AbortedTxns(from, to, dst)
}

// SourcePosition returns the highest position stored for a pipeline
// source and the offset of its last record. Safe from any goroutine.
func (p *Partition) SourcePosition(id string) (pos []byte, lastOffset int64, ok bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pos, lastOffset, ok = p.state.SourcePosition(id)
	return append([]byte(nil), pos...), lastOffset, ok
}

// Sync makes everything applied durable: the log first, then a checkpoint
// that records the applied index and the state, so that Open after a crash
// resumes from here.
func (p *Partition) Sync() error {
	if err := p.log.Sync(); err != nil {
		return fmt.Errorf("partition: sync: %w", err)
	}
	p.mu.Lock()
	p.state.Sweep(p.lastTime)
	p.mu.Unlock()
	var err error
	if p.ckpt, err = appendCheckpoint(p.ckpt[:0], p.applied, p.state); err != nil {
		return fmt.Errorf("partition: checkpoint: %w", err)
	}
	if err := writeCheckpoint(p.dir, p.dirf, p.ckpt); err != nil {
		return fmt.Errorf("partition: checkpoint %s: %w", p.dir, err)
	}
	return nil
}

// Discard releases the partition without syncing or checkpointing: for a
// partition about to be deleted.
func (p *Partition) Discard() error {
	return errors.Join(p.log.Discard(), p.dirf.Close())
}

// Close syncs and releases the partition.
func (p *Partition) Close() error {
	err := p.Sync()
	return errors.Join(err, p.log.Close(), p.dirf.Close())
}
