package segment

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/samsa-io/samsa/log/batch"
)

// OpenOptions says what the caller knows about the log's durable state.
type OpenOptions struct {
	// Checkpoint is the end offset recorded by the caller's last durable
	// checkpoint (taken after Sync), or −1 without one. The log is cut back
	// to it — Raft re-applies what came after — and what lies before it is
	// trusted. A checkpoint beyond the data on disk is ErrCorrupt.
	Checkpoint int64
	// StartOffset is the log start offset recorded with the checkpoint
	// (DeleteBefore may have moved it inside a segment). Zero if unknown.
	StartOffset int64
}

// NoCheckpoint is OpenOptions for a log whose durable state is unknown.
var NoCheckpoint = OpenOptions{Checkpoint: -1}

// Open opens the log in dir, creating the directory if needed, and recovers
// it (see the package doc): cut back to the checkpoint, check the batches
// that were not known to be durable, rebuild indexes that are missing or do
// not match. cfg is completed with WithDefaults.
func Open(dir string, cfg Config, opts OpenOptions) (*Log, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("segment: open: %w", err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("segment: open: %w", err)
	}
	l := &Log{dir: dir, dirf: dirf}
	l.cfg.Store(&cfg)
	if err := l.recover(opts); err != nil {
		for _, s := range l.segs {
			s.decRef()
		}
		dirf.Close()
		return nil, fmt.Errorf("segment: open %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) recover(opts OpenOptions) error {
	bases, err := l.listSegments()
	if err != nil {
		return err
	}
	// The marker must be gone for good before anything is written, or a
	// crash could leave a stale one that vouches for torn data.
	clean := false
	if err := os.Remove(filepath.Join(l.dir, cleanMarker)); err == nil {
		clean = true
		if err := l.dirf.Sync(); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, base := range bases {
		s, err := openSegment(l.dir, base)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
	}

	cp := opts.Checkpoint
	switch {
	case len(l.segs) == 0 || (cp >= 0 && cp <= l.segs[0].base):
		if cp > opts.StartOffset && cp > 0 && len(l.segs) == 0 {
			return fmt.Errorf("%w: checkpoint at offset %d but no segment files", ErrCorrupt, cp)
		}
		if err := l.reset(max(cp, opts.StartOffset, 0)); err != nil {
			return err
		}
	case cp >= 0:
		if err := l.recoverToCheckpoint(cp, clean); err != nil {
			return err
		}
	case clean:
		if err := l.recoverClean(); err != nil {
			return err
		}
	default:
		if err := l.recoverAll(); err != nil {
			return err
		}
	}

	for _, s := range l.segs[:len(l.segs)-1] {
		if err := s.seal(); err != nil {
			return err
		}
		s.unsynced = s.rebuilt // unchanged files need no fsync
	}
	a := l.active()
	l.next.Store(a.next.Load())
	l.start.Store(min(max(opts.StartOffset, l.segs[0].base), l.next.Load()))
	// Segments entirely below a checkpointed start offset are leftovers of
	// a deletion that did not reach the disk.
	_, err = l.dropBelowStart()
	return err
}

// listSegments returns the base offsets of the .log files in the directory,
// removing index files that have no log (leftovers of a deletion).
func (l *Log) listSegments() ([]int64, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	logs := map[int64]bool{}
	var orphans []string
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		base, err := strconv.ParseInt(strings.TrimSuffix(name, ext), 10, 64)
		if err != nil || len(name)-len(ext) != 20 || base < 0 {
			continue // not ours: the partition keeps its checkpoint here too
		}
		switch ext {
		case logSuffix:
			logs[base] = true
		case indexSuffix, timeIndexSuffix:
			orphans = append(orphans, name)
		}
	}
	for _, name := range orphans {
		base, _ := strconv.ParseInt(strings.TrimSuffix(name, filepath.Ext(name)), 10, 64)
		if !logs[base] {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, err
			}
		}
	}
	bases := make([]int64, 0, len(logs))
	for b := range logs {
		bases = append(bases, b)
	}
	slices.Sort(bases)
	return bases, nil
}

// recoverToCheckpoint cuts the log at cp. Segments before the one holding
// cp are trusted; the one holding cp is rescanned with CRCs up to cp,
// unless a clean close already left it ending exactly there.
func (l *Log) recoverToCheckpoint(cp int64, clean bool) error {
	i := l.find(cp)
	if l.segs[i].base == cp { // cp starts a segment: the previous one ends there
		i--
	}
	for _, g := range l.segs[i+1:] {
		if err := g.remove(); err != nil {
			return err
		}
		g.decRef()
		l.dirDirty = true
	}
	l.segs = l.segs[:i+1]
	for j, s := range l.segs[:i] {
		if err := s.resume(l.segs[j+1].base, *l.cfg.Load()); err != nil {
			return err
		}
	}
	a := l.active()
	if clean {
		if err := a.resume(math.MaxInt64, *l.cfg.Load()); err != nil {
			return err
		}
		if a.next.Load() == cp {
			return nil
		}
	}
	end, err := a.rebuild(true, cp, *l.cfg.Load())
	if err != nil {
		return err
	}
	if end != cp {
		return fmt.Errorf("%w: checkpoint at offset %d but %s ends at %d", ErrCorrupt, cp, a.path, end)
	}
	return nil
}

// recoverClean trusts a cleanly closed log, checking only that the indexes
// agree with their segments.
func (l *Log) recoverClean() error {
	for i, s := range l.segs {
		limit := int64(math.MaxInt64)
		if i+1 < len(l.segs) {
			limit = l.segs[i+1].base
		}
		if err := s.resume(limit, *l.cfg.Load()); err != nil {
			return err
		}
	}
	return nil
}

// recoverAll checks every batch of every segment, cutting the log before the
// first one that is torn, fails its CRC, or breaks the run of offsets.
func (l *Log) recoverAll() error {
	for i, s := range l.segs {
		end, err := s.rebuild(true, math.MaxInt64, *l.cfg.Load())
		if err != nil {
			return err
		}
		if i+1 < len(l.segs) && (end != l.segs[i+1].base || s.size.Load() == 0) {
			l.cfg.Load().Logger.Warn("log cut after a torn segment", "dir", l.dir, "segment", s.path, "offset", end)
			for _, g := range l.segs[i+1:] {
				if err := g.remove(); err != nil {
					return err
				}
				g.decRef()
			}
			l.segs = l.segs[:i+1]
			l.dirDirty = true
			break
		}
	}
	return nil
}

// resume adopts a trusted segment whose next segment begins at limit (or
// MaxInt64 for the last): it keeps the indexes if they agree with the file
// and rebuilds them (without CRC checks) otherwise.
func (s *segment) resume(limit int64, cfg Config) error {
	if !s.indexesAgree(limit) {
		cfg.Logger.Warn("rebuilding index", "segment", s.path)
		_, err := s.rebuild(false, limit, cfg)
		return err
	}
	// Walk the batches after the last indexed one: the end offset, and the
	// timestamps and byte count the next append continues from.
	var pos int64
	if n := s.offsets.len(); n > 0 {
		_, p := offsetEntry(s.offsets, n-1)
		pos = int64(p)
	}
	if n := s.times.len(); n > 0 {
		ts, rel := timeEntry(s.times, n-1)
		s.maxTs.Store(ts)
		s.maxTsOffset, s.lastTimeTs = s.base+int64(rel), ts
	}
	size := s.size.Load()
	sc := newScanner(s.f, pos, size, false)
	defer sc.close()
	next := s.base
	for sc.Next() {
		h := sc.Header()
		if sc.Pos() == pos {
			s.sinceIndex = 0
		}
		s.sinceIndex += int64(h.Size())
		if h.MaxTimestamp > s.maxTs.Load() {
			s.maxTs.Store(h.MaxTimestamp)
			s.maxTsOffset = h.BaseOffset
		}
		next = h.NextOffset()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, s.path, err)
	}
	s.next.Store(next)
	if size > 0 {
		sc := newScanner(s.f, 0, size, false)
		defer sc.close()
		if sc.Next() {
			s.firstTs = sc.Header().MaxTimestamp
		}
	}
	return nil
}

// indexesAgree checks a trusted segment's index files: present if the
// segment has data, whole entries only, increasing, within the file, and the
// last offset entry pointing at the batch it names.
func (s *segment) indexesAgree(limit int64) bool {
	size := s.size.Load()
	if size == 0 {
		return true
	}
	if !s.offsets.existed || !s.times.existed ||
		s.offsets.fileLen != len(s.offsets.buf) || s.times.fileLen != len(s.times.buf) {
		return false
	}
	if validOffsetPrefix(s.offsets, size) != s.offsets.len() ||
		validTimePrefix(s.times, min(limit-s.base, math.MaxUint32)) != s.times.len() {
		return false
	}
	if n := s.offsets.len(); n > 0 {
		rel, pos := offsetEntry(s.offsets, n-1)
		var head [batch.HeaderLen]byte
		if _, err := s.f.ReadAt(head[:], int64(pos)); err != nil {
			return false
		}
		h, err := batch.ParseHeader(head[:])
		if err != nil || h.BaseOffset != s.base+int64(rel) {
			return false
		}
	}
	return true
}

// rebuild rescans the segment from its start, recreating both indexes and
// the append state exactly as the appends did, and cuts the file after the
// last good batch before limit (an offset). A batch is good if it parses,
// lies within the file, continues the run of offsets, and (with crc) passes
// its CRC. It returns the segment's new end offset.
func (s *segment) rebuild(crc bool, limit int64, cfg Config) (int64, error) {
	s.mu.Lock()
	s.offsets.reset()
	s.times.reset()
	s.mu.Unlock()
	s.maxTs.Store(noTimestamp)
	s.maxTsOffset, s.firstTs, s.lastTimeTs, s.sinceIndex = 0, noTimestamp, noTimestamp, 0
	s.rebuilt = true

	size := s.size.Load()
	sc := newScanner(s.f, 0, size, crc)
	defer sc.close()
	next, good := s.base, int64(0)
	for next < limit && sc.Next() {
		h := sc.Header()
		if h.BaseOffset != next {
			break
		}
		s.noteBatch(h, sc.Pos(), sc.End()-sc.Pos(), int64(cfg.IndexIntervalBytes))
		next, good = h.NextOffset(), sc.End()
	}
	if good < size {
		why := "stopped at the recovery point"
		if err := sc.Err(); err != nil {
			why = err.Error()
		} else if next < limit {
			why = "offsets do not continue"
		}
		cfg.Logger.Warn("segment truncated", "segment", s.path, "position", good, "dropped_bytes", size-good, "reason", why)
		if err := s.f.Truncate(good); err != nil {
			return 0, err
		}
		s.size.Store(good)
		s.dirty = true
	}
	s.next.Store(next)
	return next, nil
}

// truncateAt cuts the segment before the batch that starts at offset.
func (s *segment) truncateAt(offset int64, cfg Config) error {
	size := s.size.Load()
	pos, _, err := s.findBatch(offset, size)
	if err != nil {
		return err
	}
	if pos < size {
		var head [batch.HeaderLen]byte
		if _, err := s.f.ReadAt(head[:], pos); err != nil {
			return err
		}
		if h, err := batch.ParseHeader(head[:]); err != nil || h.BaseOffset != offset {
			return fmt.Errorf("%w: offset %d is inside a batch", ErrCorrupt, offset)
		}
	}
	end, err := s.rebuild(false, offset, cfg)
	if err != nil {
		return err
	}
	if end != offset {
		return fmt.Errorf("%w: cut at %d reached %d", ErrCorrupt, offset, end)
	}
	return nil
}

// writeCleanMarker records a clean shutdown: every segment and index was
// fsynced before it was written.
func writeCleanMarker(dir string, dirf *os.File) error {
	f, err := os.Create(filepath.Join(dir, cleanMarker))
	if err != nil {
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return dirf.Sync()
}
