package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// FileOutputName is the file sink's component name.
const FileOutputName = "samsa_file"

// YAML fields of the samsa_file output.
const (
	fileOutFieldPath           = "path"
	fileOutFieldRotateSize     = "rotate_size"
	fileOutFieldRotateInterval = "rotate_interval"
	fileOutFieldMaxFiles       = "max_files"
	fileOutFieldSync           = "sync"
)

// rotatedLayout is the time in a rotated file's name: UTC, sortable, no
// characters a file system or a shell minds.
const rotatedLayout = "20060102T150405.000Z"

func fileOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Local").
		Summary("Writes messages as lines to a file that is rotated by size or time.").
		Description(`
Each message is written as one line (its bytes and a newline) to `+"`path`"+`, a batch with one
write. When the file would grow past `+"`rotate_size`"+`, or is older than `+"`rotate_interval`"+`, it is
closed and renamed to `+"`<name>-<UTC time>.<ext>`"+` (for example `+"`plays-20261126T090000.000Z.jsonl`"+`),
and a new `+"`path`"+` is started; rotated names sort in the order they were written. With
`+"`max_files`"+` the oldest rotated files beyond that many are deleted.

A batch is acknowledged once it is written, and with `+"`sync: true`"+` (the default) once it is on disk,
so the offsets a pipeline sink commits never run ahead of the file. After a crash a sink resumes
from its committed offsets, so the last batches may be written twice (at least once, as any sink
that is not idempotent).`).
		Fields(
			service.NewStringField(fileOutFieldPath).
				Description("The file being written; relative paths resolve against the pipeline file's folder.").
				Example("out/plays.jsonl"),
			service.NewStringField(fileOutFieldRotateSize).
				Description("Rotate before the file grows past this size, e.g. `64MiB` or `1GB`; empty: never by size. A single batch larger than this makes a file of its own.").
				Default(""),
			service.NewDurationField(fileOutFieldRotateInterval).
				Description("Rotate a file this long after it was started, e.g. `1h`; `0s`: never by time. Checked at each write and every second.").
				Default("0s"),
			service.NewIntField(fileOutFieldMaxFiles).
				Description("Keep at most this many rotated files, deleting the oldest; 0 keeps all.").
				Default(0),
			service.NewBoolField(fileOutFieldSync).
				Description("fsync the file after each batch before acknowledging it.").
				Default(true).Advanced(),
		).
		Example("Hourly files", "Archive a topic into one file per hour, keeping a week.", `
output:
  samsa_file:
    path: archive/plays.jsonl
    rotate_interval: 1h
    max_files: 168
`)
}

// fileOutput is the samsa_file output. mu orders writes, rotation by the
// timer and Close.
type fileOutput struct {
	path     string
	maxSize  int64 // 0: no size limit
	interval time.Duration
	maxFiles int
	sync     bool
	logger   *slog.Logger

	mu      sync.Mutex
	f       *os.File
	size    int64
	started time.Time
	buf     []byte
	last    time.Time // the last rotated name's time, kept strictly increasing
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newFileOutput(conf *service.ParsedConfig, deps Deps) (*fileOutput, error) {
	o := &fileOutput{logger: deps.Logger}
	var err error
	if o.path, err = conf.FieldString(fileOutFieldPath); err != nil {
		return nil, err
	}
	if o.path == "" {
		return nil, fmt.Errorf("%s: required", fileOutFieldPath)
	}
	size, err := conf.FieldString(fileOutFieldRotateSize)
	if err != nil {
		return nil, err
	}
	if size != "" {
		n, err := humanize.ParseBytes(size)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%s: %q is not a size such as 64MiB", fileOutFieldRotateSize, size)
		}
		o.maxSize = int64(n)
	}
	if o.interval, err = conf.FieldDuration(fileOutFieldRotateInterval); err != nil {
		return nil, err
	}
	if o.maxFiles, err = conf.FieldInt(fileOutFieldMaxFiles); err != nil {
		return nil, err
	}
	if o.sync, err = conf.FieldBool(fileOutFieldSync); err != nil {
		return nil, err
	}
	switch {
	case o.interval < 0:
		return nil, fmt.Errorf("%s: must not be negative", fileOutFieldRotateInterval)
	case o.maxFiles < 0:
		return nil, fmt.Errorf("%s: must not be negative", fileOutFieldMaxFiles)
	}
	o.logger = o.logger.With("output", FileOutputName, "path", o.path)
	return o, nil
}

// Connect opens the file, appending to one left from before; its age for
// rotate_interval counts from now.
func (o *fileOutput) Connect(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		return nil
	}
	if err := o.open(); err != nil {
		return err
	}
	if o.interval > 0 && o.stop == nil {
		o.stop = make(chan struct{})
		o.wg.Add(1)
		go o.rotateLoop(o.stop)
	}
	return nil
}

func (o *fileOutput) open() error {
	if err := os.MkdirAll(filepath.Dir(o.path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	o.f, o.size, o.started = f, fi.Size(), time.Now()
	return nil
}

// WriteBatch writes the batch as lines, rotating first if it would make
// the file too large or the file is too old.
func (o *fileOutput) WriteBatch(_ context.Context, msgs service.MessageBatch) error {
	o.buf = o.buf[:0]
	for _, m := range msgs {
		b, err := m.AsBytes()
		if err != nil {
			return err
		}
		o.buf = append(append(o.buf, b...), '\n')
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return service.ErrNotConnected
	}
	if o.size > 0 && (o.maxSize > 0 && o.size+int64(len(o.buf)) > o.maxSize || o.expired()) {
		if err := o.rotate(); err != nil {
			return err
		}
	}
	n, err := o.f.Write(o.buf)
	o.size += int64(n)
	if err == nil && o.sync {
		err = o.f.Sync()
	}
	if err != nil {
		// The file may end in a partial line: start a new one after it.
		o.logger.Warn("write failed; reopening the file", "err", err)
		o.f.Close()
		o.f = nil
		return service.ErrNotConnected
	}
	return nil
}

func (o *fileOutput) expired() bool {
	return o.interval > 0 && time.Since(o.started) >= o.interval
}

// rotate closes the file, renames it with the time and starts a new one,
// then deletes the oldest rotated files beyond max_files.
func (o *fileOutput) rotate() error {
	if err := o.f.Close(); err != nil {
		return err
	}
	o.f = nil
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(o.last) {
		now = o.last.Add(time.Millisecond)
	}
	o.last = now
	ext := filepath.Ext(o.path)
	base := strings.TrimSuffix(o.path, ext)
	rotated := base + "-" + now.Format(rotatedLayout) + ext
	if err := os.Rename(o.path, rotated); err != nil {
		return err
	}
	o.logger.Debug("file rotated", "to", rotated, "bytes", o.size)
	if err := o.open(); err != nil {
		return err
	}
	if o.maxFiles > 0 {
		old, err := o.rotatedFiles()
		if err != nil {
			return err
		}
		for len(old) > o.maxFiles {
			if err := os.Remove(old[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			old = old[1:]
		}
	}
	return nil
}

// rotatedFiles lists the rotated files of path, oldest first.
func (o *fileOutput) rotatedFiles() ([]string, error) {
	ext := filepath.Ext(o.path)
	base := strings.TrimSuffix(o.path, ext)
	matches, err := filepath.Glob(escapeGlob(base) + "-*" + escapeGlob(ext))
	if err != nil {
		return nil, err
	}
	out := matches[:0]
	for _, m := range matches {
		stamp := strings.TrimSuffix(strings.TrimPrefix(m, base+"-"), ext)
		if _, err := time.Parse(rotatedLayout, stamp); err == nil {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out, nil
}

// escapeGlob escapes the characters filepath.Match treats specially.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// rotateLoop rotates an idle file once it is older than rotate_interval,
// so that an hour's file is closed in its hour even when nothing follows.
func (o *fileOutput) rotateLoop(stop <-chan struct{}) {
	defer o.wg.Done()
	t := time.NewTicker(min(time.Second, o.interval))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			o.mu.Lock()
			if o.f != nil && o.size > 0 && o.expired() {
				if err := o.rotate(); err != nil {
					o.logger.Warn("rotating", "err", err)
				}
			}
			o.mu.Unlock()
		case <-stop:
			return
		}
	}
}

// Close stops the rotation timer and closes the file.
func (o *fileOutput) Close(context.Context) error {
	o.mu.Lock()
	if o.stop != nil {
		close(o.stop)
		o.stop = nil
	}
	f := o.f
	o.f = nil
	o.mu.Unlock()
	o.wg.Wait()
	if f != nil {
		return f.Close()
	}
	return nil
}
