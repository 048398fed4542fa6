package segment

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"

	"github.com/samsa-io/samsa/log/batch"
)

// Log is the segmented log of one partition.
type Log struct {
	dir  string
	dirf *os.File // the directory, for fsync after creating or deleting files

	mu     sync.RWMutex // guards segs and closed; readers hold it while they search
	segs   []*segment   // by base offset; the last is active
	closed bool

	start atomic.Int64 // log start offset: reads below it are out of range
	next  atomic.Int64 // offset the next batch gets (the high watermark)

	cfg atomic.Pointer[Config] // replaced whole by SetConfig, from any goroutine

	// Writer-only state.
	dirDirty bool // files were created or removed since the last Sync
}

// Dir is the directory the log lives in.
func (l *Log) Dir() string { return l.dir }

// StartOffset is the first offset a read may ask for.
func (l *Log) StartOffset() int64 { return l.start.Load() }

// EndOffset is the offset the next appended batch will get: one past the
// last stored record.
func (l *Log) EndOffset() int64 { return l.next.Load() }

// Size is the number of bytes in all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size.Load()
	}
	return n
}

// Segments is the number of segment files.
func (l *Log) Segments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segs)
}

// Config returns the settings in force.
func (l *Log) Config() Config { return *l.cfg.Load() }

// SetConfig changes the settings; they apply from the next append or
// retention pass. Safe from any goroutine: replicas may change settings
// at different moments, which changes where segments roll but never which
// records they hold.
func (l *Log) SetConfig(cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.cfg.Store(&cfg)
	return nil
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// writebackBytes is how many appended bytes the log lets the page cache
// hold before asking the kernel to start writing them out. Sync then
// finds most of them on disk already, so a checkpoint (which the Raft
// layer takes while no entries are applied) waits for a few milliseconds
// of writing, not for everything since the last one.
const writebackBytes = 1 << 20

// Append stores one RecordBatch v2 whose base offset the caller has set to
// EndOffset. The bytes are written as they are, without fsync (see Sync).
// Append does not check the CRC; package partition validates batches
// before they reach the log.
func (l *Log) Append(b []byte) error {
	if len(b) < batch.HeaderLen {
		return fmt.Errorf("segment: append: %w: %d bytes", batch.ErrCorrupt, len(b))
	}
	return l.AppendPatched(b[:batch.HeaderLen], b)
}

// AppendPatched stores b with its first len(head) bytes replaced by head,
// in one write and without copying or modifying b: the partition passes a
// patched copy of the header (base offset, leader epoch, append time) while
// b may still be shared with the Raft layer.
func (l *Log) AppendPatched(head, b []byte) error {
	h, err := batch.ParseHeader(head)
	if err != nil {
		return fmt.Errorf("segment: append: %w", err)
	}
	if h.Size() != len(b) || len(head) > len(b) {
		return fmt.Errorf("segment: append: %w: batchLength says %d bytes, have %d", batch.ErrCorrupt, h.Size(), len(b))
	}
	if next := l.next.Load(); h.BaseOffset != next {
		return fmt.Errorf("%w: batch at %d, log ends at %d", ErrNonMonotonic, h.BaseOffset, next)
	}
	if l.closed {
		return ErrClosed
	}
	size := int64(len(b))
	if l.shouldRoll(&h, size) {
		if err := l.roll(h.BaseOffset); err != nil {
			return err
		}
	}
	s := l.active()
	pos := s.size.Load()
	if err := writeAt(s.f, head, b[len(head):], pos); err != nil {
		// Leave no partial batch behind: a later append writes at pos again.
		_ = s.f.Truncate(pos)
		return fmt.Errorf("segment: append offset %d to %s: %w", h.BaseOffset, s.path, err)
	}
	s.dirty = true
	if end := pos + size; end-s.writeback >= writebackBytes {
		startWriteback(s.f, s.writeback, end-s.writeback)
		s.writeback = end
	}
	s.noteBatch(&h, pos, size, int64(l.cfg.Load().IndexIntervalBytes))
	s.next.Store(h.NextOffset())
	s.size.Store(pos + size)
	l.next.Store(h.NextOffset())
	return nil
}

// shouldRoll reports whether the batch must start a new segment: the active
// one would pass segment.bytes, its batches span more than segment.ms, or a
// relative offset would not fit the index.
func (l *Log) shouldRoll(h *batch.Header, size int64) bool {
	s := l.active()
	cur := s.size.Load()
	if cur == 0 {
		return false
	}
	if cur+size > l.cfg.Load().SegmentBytes || h.LastOffset()-s.base > math.MaxInt32 {
		return true
	}
	if s.firstTs > noTimestamp && h.MaxTimestamp > noTimestamp {
		return h.MaxTimestamp-s.firstTs > l.cfg.Load().SegmentMs
	}
	return l.cfg.Load().Now().Sub(s.created).Milliseconds() > l.cfg.Load().SegmentMs
}

// roll seals the active segment and starts a new one at base.
func (l *Log) roll(base int64) error {
	old := l.active()
	if err := old.seal(); err != nil {
		return err
	}
	s, err := createSegment(l.dir, base, l.cfg.Load().Now())
	if err != nil {
		// Stay on the old segment, writable again; the next append retries.
		return errors.Join(fmt.Errorf("segment: roll at offset %d: %w", base, err), old.unseal())
	}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.dirDirty = true
	l.cfg.Load().Logger.Debug("segment rolled", "dir", l.dir, "base_offset", base)
	return nil
}

// Sync makes every appended batch durable: the data of segments written
// since the last Sync, the indexes of segments sealed since then, and the
// directory if files were created or removed. After Sync returns, a caller
// may record EndOffset as a recovery point for Open.
func (l *Log) Sync() error {
	if l.closed {
		return ErrClosed
	}
	for _, s := range l.segs {
		if err := s.sync(); err != nil {
			return err
		}
	}
	if l.dirDirty {
		if err := l.dirf.Sync(); err != nil {
			return fmt.Errorf("segment: fsync %s: %w", l.dir, err)
		}
		l.dirDirty = false
	}
	return nil
}

// Discard releases the log's files without syncing anything or leaving a
// clean-shutdown marker: for a log about to be deleted, or abandoned the
// way a crash would leave it (Open then recovers as after a crash).
func (l *Log) Discard() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()
	for _, s := range segs {
		s.decRef()
	}
	return l.dirf.Close()
}

// Close makes everything durable, leaves a clean-shutdown marker so the
// next Open trusts the indexes, and releases the files (segments still read
// through live Sections close when those are released).
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()

	var err error
	for _, s := range segs {
		if e := s.syncAll(); e != nil && err == nil {
			err = fmt.Errorf("segment: close %s: %w", s.path, e)
		}
	}
	if err == nil {
		err = writeCleanMarker(l.dir, l.dirf)
	}
	for _, s := range segs {
		s.decRef()
	}
	if e := l.dirf.Close(); e != nil && err == nil {
		err = e
	}
	return err
}
