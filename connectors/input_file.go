package connectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
)

// YAML fields of the samsa_file input.
const (
	fileFieldPaths              = "paths"
	fileFieldFormat             = "format"
	fileFieldSourceID           = "source_id"
	fileFieldTail               = "tail"
	fileFieldPollInterval       = "poll_interval"
	fileFieldBatchSize          = "batch_size"
	fileFieldCheckpointInterval = "checkpoint_interval"
	fileFieldMaxInFlight        = "max_in_flight"
)

// MetaFilePath is the metadata key holding the path a record was read from.
const MetaFilePath = "samsa_file_path"

// checkpointTimeout bounds one periodic checkpoint write.
const checkpointTimeout = 10 * time.Second

// The wait before reading again after a failure doubles from
// minRewindWait up to maxRewindWait while the failures go on.
const (
	minRewindWait = 50 * time.Millisecond
	maxRewindWait = 5 * time.Second
)

func fileInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Local").
		Summary("Reads lines from files into a pipeline exactly once: every record carries its position, and the position below which everything is stored is checkpointed in Samsa's log.").
		Description(`
Files matching `+"`paths`"+` are numbered in the order they are found (sorted by name at each
discovery) and read one after another. Each record is a line, or in `+"`csv`"+` a row (a quoted
field may span lines); only complete records are read, so a partial last line waits for its
newline. With `+"`tail: true`"+` the input follows the last file as it grows and picks up new
files; it moves on from a file once a newer one exists and the file has not grown for one
`+"`poll_interval`"+`. A file truncated in place (copy-truncate) is read again from its start as
a new file.

Every message carries metadata `+"`samsa_source`"+` (the `+"`source_id`"+`), `+"`samsa_position`"+`
(16 bytes: the file's ordinal and the byte offset after the record, big-endian) and
`+"`samsa_file_path`"+`. Every `+"`checkpoint_interval`"+` and on close the input stores the position
below which every record it emitted has been acknowledged, with the identities of the files it
numbered, under `+"`source/<source_id>`"+`; a restart resumes there, and the `+"`samsa_topic`"+`
output drops the records its partitions already hold, so each line is stored once.

Up to `+"`max_in_flight`"+` batches are in flight, so that reading and processing a batch overlaps
writing the one before. A batch that fails (a write that cannot be retried in place, a record a
stage lets fail, a nack) sends the input back: it waits (50ms, doubling up to 5s while failures
go on), then reads again from the acknowledged position, and what was read after the failed batch
is not written ahead of it (metadata `+"`samsa_ticket`"+`).`).
		Fields(
			service.NewStringListField(fileFieldPaths).
				Description("Files to read, as glob patterns (`*`, `?`, `[...]`; no `**`).").
				Example([]string{"./data/*.jsonl"}),
			service.NewStringEnumField(fileFieldFormat, formatLines, formatJSONL, formatCSV).
				Description("`lines`: each line is a message. `jsonl`: each line is a JSON document; a line that is not valid JSON is passed on as its raw bytes, for validation downstream to reject. `csv`: the first row of each file is the header and every following row becomes a JSON object of strings keyed by it; a row with another number of fields is passed on raw. Blank lines are skipped; a trailing carriage return is removed.").
				Default(formatLines),
			service.NewStringField(fileFieldSourceID).
				Description("Identifies the source: the key of its checkpoint and the id the partitions fence duplicates by. Keep it stable across restarts and unique per source."),
			service.NewBoolField(fileFieldTail).
				Description("Keep following the files for appended lines and new files. With `false`, read what is there, then end the stream once everything read is acknowledged.").
				Default(true),
			service.NewDurationField(fileFieldPollInterval).
				Description("How often to look for new files and growth when file system notifications are not available (they are watched where the directory of a pattern has no wildcard).").
				Default("200ms").Advanced(),
			service.NewIntField(fileFieldBatchSize).
				Description("Records per batch at most. A batch is what moves through the pipeline and is written to a partition at once.").
				Default(1024).Advanced(),
			service.NewIntField(fileFieldMaxInFlight).
				Description("Batches read ahead of the oldest one not yet acknowledged. One makes the input wait for each batch to be stored before reading the next.").
				Default(4).Advanced(),
			service.NewDurationField(fileFieldCheckpointInterval).
				Description("How often the acknowledged position is checkpointed. A longer interval means more records re-read (and dropped as duplicates) after a crash, not duplicates in the topic.").
				Default("1s").Advanced(),
		).
		Example("Tail JSON lines", "Follow a directory of JSON lines files into a pipeline.", `
input:
  samsa_file:
    paths: [ ./data/plays/*.jsonl ]
    format: jsonl
    source_id: plays-files
`).
		Example("Load CSV files once", "Read every CSV file there is, then stop.", `
input:
  samsa_file:
    paths: [ ./import/*.csv ]
    format: csv
    source_id: import
    tail: false
`)
}

// fileInput is the samsa_file input. ReadBatch runs one call at a time;
// acknowledgements, the checkpoint loop and Close come from other
// goroutines and meet under mu.
type fileInput struct {
	log       *replog.Log
	logger    *slog.Logger
	sourceID  string
	srcMeta   any // sourceID, boxed once for every message's metadata
	ckKey     string
	patterns  []string
	format    string
	tail      bool
	poll      time.Duration
	batchSize int
	ckEvery   time.Duration
	inFlight  int // max_in_flight
	fl        inflight[filePos]

	readMu   sync.Mutex // held by ReadBatch; Close takes it to close the file
	cur      *fileReader
	resume   filePos   // where to read from when cur is nil: no file there yet
	globbed  time.Time // the last discovery
	slabHint int       // the last batch's content size

	wake   chan struct{} // file system events, a batch killed
	done   chan struct{} // closed by Close
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	close1 sync.Once

	mu struct {
		sync.Mutex
		connected bool
		files     []fileID // sorted by ordinal
		next      uint64   // the ordinal the next new file gets
		watcher   *watcher
	}

	ckMu   sync.Mutex // one checkpoint write at a time, in order
	stored []byte     // the checkpoint last stored (under ckMu)
}

func newFileInput(conf *service.ParsedConfig, deps Deps) (*fileInput, error) {
	in := &fileInput{log: deps.Log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	var err error
	if in.patterns, err = conf.FieldStringList(fileFieldPaths); err != nil {
		return nil, err
	}
	if len(in.patterns) == 0 {
		return nil, fmt.Errorf("%s: at least one path is required", fileFieldPaths)
	}
	if in.format, err = conf.FieldString(fileFieldFormat); err != nil {
		return nil, err
	}
	if in.sourceID, err = conf.FieldString(fileFieldSourceID); err != nil {
		return nil, err
	}
	if in.sourceID == "" {
		return nil, fmt.Errorf("%s: required", fileFieldSourceID)
	}
	if in.tail, err = conf.FieldBool(fileFieldTail); err != nil {
		return nil, err
	}
	if in.poll, err = conf.FieldDuration(fileFieldPollInterval); err != nil {
		return nil, err
	}
	if in.batchSize, err = conf.FieldInt(fileFieldBatchSize); err != nil {
		return nil, err
	}
	if in.ckEvery, err = conf.FieldDuration(fileFieldCheckpointInterval); err != nil {
		return nil, err
	}
	if in.inFlight, err = conf.FieldInt(fileFieldMaxInFlight); err != nil {
		return nil, err
	}
	switch {
	case in.poll <= 0:
		return nil, fmt.Errorf("%s: must be positive", fileFieldPollInterval)
	case in.batchSize < 1:
		return nil, fmt.Errorf("%s: must be at least 1", fileFieldBatchSize)
	case in.ckEvery <= 0:
		return nil, fmt.Errorf("%s: must be positive", fileFieldCheckpointInterval)
	case in.inFlight < 1:
		return nil, fmt.Errorf("%s: must be at least 1", fileFieldMaxInFlight)
	}
	in.fl.init(&in.mu.Mutex, in.wake, in.done)
	in.srcMeta = in.sourceID
	in.ckKey = "source/" + in.sourceID
	in.logger = deps.Logger.With("input", FileInputName, "source", in.sourceID)
	in.ctx, in.cancel = context.WithCancel(context.Background())
	return in, nil
}

// Connect loads the checkpoint, finds the files again, numbers new ones,
// stores the file table before reading any new file, and opens the file
// the checkpoint points into.
func (in *fileInput) Connect(ctx context.Context) error {
	in.mu.Lock()
	connected := in.mu.connected
	in.mu.Unlock()
	if connected {
		return nil
	}
	ck := fileCheckpoint{Next: 1}
	if b, ok := in.log.Checkpoint(in.ckKey); ok {
		c, err := decodeFileCheckpoint(b)
		if err != nil {
			return fmt.Errorf("%s: %w", in.ckKey, err)
		}
		ck = c
		in.ckMu.Lock()
		in.stored = b
		in.ckMu.Unlock()
	}
	found, err := globFiles(in.patterns)
	if err != nil {
		return err
	}
	files := in.refind(ck, found)
	in.mu.Lock()
	in.mu.files, in.mu.next = files, ck.Next
	in.fl.setAckedLocked(ck.Acked)
	in.mu.Unlock()
	in.addNew(found)
	in.globbed = time.Now()
	if err := in.storeCheckpoint(ctx); err != nil {
		return err
	}
	in.readMu.Lock()
	err = in.openFrom(ck.Acked)
	in.readMu.Unlock()
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.tail {
		in.mu.watcher = startWatcher(in.patterns, in.wake, in.logger)
	}
	in.mu.connected = true
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		storeEvery(in.ctx, in.done, in.ckEvery, in.logger, in.storeCheckpoint)
	}()
	in.logger.Info("file source connected", "files", len(in.mu.files), "resume", ck.Acked.String())
	return nil
}

// refind locates the checkpoint's files: at their path, or renamed to
// another match of the globs. Those found nowhere are forgotten.
func (in *fileInput) refind(ck fileCheckpoint, found []statFile) []fileID {
	var out []fileID
	for _, id := range ck.Files {
		ok := id.matches(id.Path)
		for i := 0; !ok && i < len(found); i++ {
			if found[i].di == id.devIno() && found[i].path != id.Path && id.matches(found[i].path) {
				id.Path, ok = found[i].path, true
			}
		}
		if ok {
			out = append(out, id)
		} else if id.Ordinal >= ck.Acked.Ordinal {
			in.logger.Warn("file gone or replaced since the checkpoint; its unread lines are lost", "path", id.Path, "ordinal", id.Ordinal)
		}
	}
	return out
}

// addNew numbers the files in found that are not known, in found's (name)
// order, and reports whether there were any. Known files seen at a new path
// get that path; a known file's fingerprint grows with the file.
func (in *fileInput) addNew(found []statFile) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	known := make(map[devIno]int, len(in.mu.files))
	for i := range in.mu.files {
		known[in.mu.files[i].devIno()] = i
	}
	changed := false
	for _, f := range found {
		if i, ok := known[f.di]; ok {
			id := &in.mu.files[i]
			if id.Path != f.path {
				id.Path, changed = f.path, true
			}
			if id.FPLen < fingerprintLen && f.size > int64(id.FPLen) && id.matches(f.path) {
				if grown, err := identify(f.path, id.Ordinal); err == nil && grown.devIno() == id.devIno() {
					*id, changed = grown, true
				}
			}
			continue
		}
		id, err := identify(f.path, in.mu.next)
		if err != nil || id.devIno() != f.di {
			continue // gone or replaced since the glob: the next discovery sees it
		}
		in.mu.next++
		in.mu.files = append(in.mu.files, id)
		known[f.di] = len(in.mu.files) - 1
		changed = true
		in.logger.Debug("file found", "path", f.path, "ordinal", id.Ordinal)
	}
	return changed
}

// discover looks for new and renamed files and forgets finished files that
// are gone. A changed table is stored before any record of a new file is
// read, so that a restart numbers the files the same way.
func (in *fileInput) discover(ctx context.Context) error {
	in.globbed = time.Now()
	found, err := globFiles(in.patterns)
	if err != nil {
		return err
	}
	changed := in.addNew(found)
	seen := make(map[devIno]bool, len(found))
	for _, f := range found {
		seen[f.di] = true
	}
	cur := in.resume.Ordinal
	if in.cur != nil {
		cur = in.cur.ordinal
	}
	in.mu.Lock()
	n := len(in.mu.files)
	in.mu.files = slices.DeleteFunc(in.mu.files, func(id fileID) bool { return id.Ordinal < cur && !seen[id.devIno()] })
	changed = changed || len(in.mu.files) != n
	in.mu.Unlock()
	if changed {
		return in.storeCheckpoint(ctx)
	}
	return nil
}

// openFrom opens the first file at or after pos, at pos's offset if it is
// pos's file. Files gone since they were numbered are skipped. With no
// file there, cur is nil and resume remembers pos.
func (in *fileInput) openFrom(pos filePos) error {
	in.cur.close()
	in.cur = nil
	for {
		in.resume = pos
		in.mu.Lock()
		i := slices.IndexFunc(in.mu.files, func(id fileID) bool { return id.Ordinal >= pos.Ordinal })
		var id fileID
		if i >= 0 {
			id = in.mu.files[i]
		}
		in.mu.Unlock()
		if i < 0 {
			return nil
		}
		var off int64
		if id.Ordinal == pos.Ordinal {
			off = pos.Offset
		}
		r, err := openFileReader(id, off, in.format)
		if err == nil {
			in.cur = r
			return nil
		}
		if !errors.Is(err, errFileGone) && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		in.logger.Warn("file gone before it was read; skipping it", "path", id.Path, "ordinal", id.Ordinal)
		in.mu.Lock()
		in.mu.files = slices.DeleteFunc(in.mu.files, func(f fileID) bool { return f.Ordinal == id.Ordinal })
		in.mu.Unlock()
		pos = filePos{Ordinal: id.Ordinal + 1}
	}
}

// hasNext reports whether a file after the current one (or at resume,
// without one) is known.
func (in *fileInput) hasNext() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cur == nil {
		return slices.ContainsFunc(in.mu.files, func(id fileID) bool { return id.Ordinal >= in.resume.Ordinal })
	}
	return slices.ContainsFunc(in.mu.files, func(id fileID) bool { return id.Ordinal > in.cur.ordinal })
}

// ReadBatch returns the next batch of records once fewer than
// max_in_flight are unacknowledged, reading again from the acknowledged
// position first if a batch failed. It returns as soon as there are
// records, up to batch_size.
func (in *fileInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	in.readMu.Lock()
	defer in.readMu.Unlock()
	if err := in.fl.waitRoom(ctx, in.inFlight-1); err != nil {
		return nil, nil, err
	}
	for {
		if err := in.rewindIfFailed(ctx); err != nil {
			return nil, nil, err
		}
		if in.cur != nil {
			msgs, end, consumed, err := in.readBatch()
			if err != nil {
				return nil, nil, err
			}
			if len(msgs) > 0 || consumed {
				ack, tk, ok := in.fl.issue(end, len(msgs) == 0, nil)
				if !ok {
					continue // a batch failed meanwhile: these are read again
				}
				if len(msgs) > 0 {
					in.cur.idleAt = time.Time{}
					for _, m := range msgs {
						m.MetaSetMut(MetaTicket, tk)
					}
					return msgs, ack, nil
				}
			}
			if truncated, err := in.checkTruncated(ctx); err != nil || truncated {
				if err != nil {
					return nil, nil, err
				}
				continue
			}
		}
		next := in.hasNext()
		switch {
		case in.cur == nil && next:
			if err := in.openFrom(in.resume); err != nil {
				return nil, nil, err
			}
			continue
		case in.cur == nil && !in.tail:
			if err := in.ended(ctx); err != nil {
				return nil, nil, err
			}
			continue
		case in.cur != nil && (!in.tail || next && in.idleFor() >= in.poll):
			// The file is finished: its unterminated last line is a
			// record, then the next file is read (or the input ends).
			if !in.cur.final {
				in.cur.final = true
				continue
			}
			if !next {
				if err := in.ended(ctx); err != nil {
					return nil, nil, err
				}
				continue
			}
			if err := in.openFrom(filePos{Ordinal: in.cur.ordinal + 1}); err != nil {
				return nil, nil, err
			}
			continue
		}
		if in.cur != nil && in.cur.idleAt.IsZero() {
			in.cur.idleAt = time.Now()
		}
		if err := pause(ctx, in.poll, in.wake, in.done); err != nil {
			return nil, nil, err
		}
		if time.Since(in.globbed) >= in.poll {
			if err := in.discover(ctx); err != nil {
				in.logger.Warn("looking for files", "err", err)
			}
		}
	}
}

// idleFor is how long the current file has had nothing new.
func (in *fileInput) idleFor() time.Duration {
	if in.cur.idleAt.IsZero() {
		return 0
	}
	return time.Since(in.cur.idleAt)
}

// readBatch reads up to batch_size records from the current file. consumed
// reports whether it got past any bytes (records that make no message
// included); end is the position after the last.
func (in *fileInput) readBatch() (msgs service.MessageBatch, end filePos, consumed bool, err error) {
	r := in.cur
	start := r.off
	content := make([]byte, 0, max(in.slabHint, 4096))
	bounds := make([]int, 0, min(in.batchSize, 1024))
	var pos []byte
	for len(bounds) < in.batchSize {
		rec, ok := r.next()
		if !ok {
			n, err := r.fill()
			if err != nil {
				return nil, end, false, err
			}
			if n > 0 {
				continue
			}
			if rec, ok = r.next(); !ok { // the final record, if the file is finished
				break
			}
		}
		var made bool
		if content, made = r.appendRecord(content, rec); made {
			bounds = append(bounds, len(content))
			pos = filePos{Ordinal: r.ordinal, Offset: r.off}.appendTo(pos)
		}
	}
	end = filePos{Ordinal: r.ordinal, Offset: r.off}
	in.slabHint = len(content) + len(content)/8
	if len(bounds) == 0 {
		return nil, end, r.off > start, nil
	}
	msgs = make(service.MessageBatch, len(bounds))
	a := 0
	for i, b := range bounds {
		m := service.NewMessage(content[a:b:b])
		m.MetaSetMut(MetaSource, in.srcMeta)
		m.MetaSetMut(MetaPosition, pos[i*PositionLen:(i+1)*PositionLen:(i+1)*PositionLen])
		m.MetaSetMut(MetaFilePath, r.pathMeta)
		msgs[i] = m
		a = b
	}
	return msgs, end, true, nil
}

// checkTruncated handles a current file now shorter than what was read of
// it (copy-truncate): it is numbered again as a new file, after every file
// known, and read from its start in turn. What was written to it between
// the last read and the truncation is lost, as with any copy-truncate.
func (in *fileInput) checkTruncated(ctx context.Context) (bool, error) {
	r := in.cur
	fi, err := r.f.Stat()
	if err != nil || fi.Size() >= r.off {
		return false, nil
	}
	in.logger.Warn("file truncated; reading it again from its start", "path", r.path, "ordinal", r.ordinal, "size", fi.Size(), "read", r.off)
	id := fileID{Path: r.path}
	id.Dev, id.Inode = devInode(r.path, fi)
	id.FPLen = int(min(fi.Size(), fingerprintLen))
	if id.FP, err = fingerprint(r.f, id.FPLen); err != nil {
		return false, err
	}
	in.mu.Lock()
	id.Ordinal = in.mu.next
	in.mu.next++
	in.mu.files = slices.DeleteFunc(in.mu.files, func(f fileID) bool { return f.Ordinal == r.ordinal })
	in.mu.files = append(in.mu.files, id)
	in.mu.Unlock()
	if err := in.storeCheckpoint(ctx); err != nil {
		return false, err
	}
	return true, in.openFrom(filePos{Ordinal: r.ordinal + 1})
}

// rewindIfFailed reads again from the acknowledged position if a batch
// failed, after a wait that grows while failures go on.
func (in *fileInput) rewindIfFailed(ctx context.Context) error {
	pos, rewound, err := in.fl.rewindIfFailed(ctx, in.logger, "a batch failed; reading again from the acknowledged position")
	if err != nil || !rewound {
		return err
	}
	return in.openFrom(pos)
}

// ended waits until everything read is acknowledged and then returns
// service.ErrEndOfInput; it returns nil if a batch failed instead, to be
// read again.
func (in *fileInput) ended(ctx context.Context) error {
	if err := in.fl.waitRoom(ctx, 0); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fl.failedLocked() {
		return nil
	}
	return service.ErrEndOfInput
}

// storeCheckpoint stores the acknowledged position and the file table if
// they changed since the last store.
func (in *fileInput) storeCheckpoint(ctx context.Context) error {
	in.ckMu.Lock()
	defer in.ckMu.Unlock()
	in.mu.Lock()
	c := fileCheckpoint{Acked: in.fl.ackedLocked(), Next: in.mu.next, Files: slices.Clone(in.mu.files)}
	in.mu.Unlock()
	b, err := c.encode()
	if err != nil {
		return err
	}
	if bytes.Equal(b, in.stored) {
		return nil
	}
	if err := in.log.PutCheckpoint(ctx, in.ckKey, b); err != nil {
		return fmt.Errorf("connectors: %s: storing the checkpoint: %w", in.sourceID, err)
	}
	in.stored = b
	return nil
}

// Close stops watching, stores a last checkpoint and closes the file.
func (in *fileInput) Close(ctx context.Context) error {
	var err error
	in.close1.Do(func() {
		close(in.done)
		in.cancel()
		in.mu.Lock()
		w, connected := in.mu.watcher, in.mu.connected
		in.mu.Unlock()
		w.close()
		in.wg.Wait()
		if connected {
			err = in.storeCheckpoint(ctx)
		}
		in.readMu.Lock()
		in.cur.close()
		in.cur = nil
		in.readMu.Unlock()
	})
	return err
}
