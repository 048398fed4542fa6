package connectors

import (
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// watcher wakes the file source when something changes in the directories
// of its patterns, so that appended lines are read at once rather than at
// the next poll. Patterns whose directory has a wildcard are left to
// polling, as is everything where notifications are not available.
type watcher struct {
	w  *fsnotify.Watcher
	wg sync.WaitGroup
}

// startWatcher watches the directories of patterns, nudging wake (a
// channel of capacity one) at every event. It returns nil if nothing can
// be watched.
func startWatcher(patterns []string, wake chan<- struct{}, logger *slog.Logger) *watcher {
	var dirs []string
	for _, p := range patterns {
		if d := filepath.Dir(p); !strings.ContainsAny(d, "*?[") {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	if len(dirs) == 0 {
		return nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		logger.Debug("file notifications unavailable; polling", "err", err)
		return nil
	}
	added := 0
	for _, d := range dirs {
		if err := fw.Add(d); err != nil {
			logger.Debug("cannot watch directory; polling it", "dir", d, "err", err)
			continue
		}
		added++
	}
	if added == 0 {
		fw.Close()
		return nil
	}
	w := &watcher{w: fw}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case _, ok := <-fw.Events:
				if !ok {
					return
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				logger.Debug("file notifications", "err", err)
			}
		}
	}()
	return w
}

// close stops the watcher and waits for its goroutine.
func (w *watcher) close() {
	if w == nil {
		return
	}
	w.w.Close()
	w.wg.Wait()
}
