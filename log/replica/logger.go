package replica

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	dblogger "github.com/lni/dragonboat/v4/logger"
)

// dragonboat's loggers are process-wide and its factory can be set only
// once, so every Host in a process shares one bridge to slog; the most
// recently started Host's logger receives the lines.
var (
	bridgeOnce   sync.Once
	bridgeLogger atomic.Pointer[slog.Logger]
)

// routeLogs sends dragonboat's WARNING and worse to l. dragonboat logs
// about seventy lines per replica at start and election at INFO; those
// stay out. Two packages warn in normal operation — raft at every election
// step, config at every shard start ("ElectionRTT is not a magnitude
// larger than HeartbeatRTT", true by choice here) — eight lines per shard
// that would bury real warnings when a thousand partitions start; their
// warnings go to Debug, their errors stay errors.
func routeLogs(l *slog.Logger) {
	bridgeLogger.Store(l)
	bridgeOnce.Do(func() {
		dblogger.SetLoggerFactory(func(pkg string) dblogger.ILogger {
			return &bridge{pkg: pkg}
		})
	})
}

type bridge struct {
	pkg   string
	level atomic.Int32 // dragonboat's LogLevel; set by SetLevel, WARNING by default
	set   atomic.Bool
}

func (b *bridge) SetLevel(l dblogger.LogLevel) { b.level.Store(int32(l)); b.set.Store(true) }

func (b *bridge) enabled(l dblogger.LogLevel) bool {
	max := dblogger.WARNING
	if b.set.Load() {
		max = min(dblogger.LogLevel(b.level.Load()), dblogger.WARNING)
	}
	return l <= max
}

func (b *bridge) log(l dblogger.LogLevel, level slog.Level, format string, args []any) {
	if !b.enabled(l) {
		return
	}
	if lg := bridgeLogger.Load(); lg != nil {
		lg.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "dragonboat/"+b.pkg)
	}
}

func (b *bridge) Debugf(format string, args ...any) {
	b.log(dblogger.DEBUG, slog.LevelDebug, format, args)
}
func (b *bridge) Infof(format string, args ...any) {
	b.log(dblogger.INFO, slog.LevelInfo, format, args)
}

// chatty are the packages whose warnings are routine.
var chatty = map[string]bool{"raft": true, "config": true}

func (b *bridge) Warningf(format string, args ...any) {
	level := slog.LevelWarn
	if chatty[b.pkg] {
		level = slog.LevelDebug
	}
	b.log(dblogger.WARNING, level, format, args)
}
func (b *bridge) Errorf(format string, args ...any) {
	b.log(dblogger.ERROR, slog.LevelError, format, args)
}

// Panicf logs and panics: dragonboat relies on it not returning.
func (b *bridge) Panicf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if lg := bridgeLogger.Load(); lg != nil {
		lg.Error(msg, "component", "dragonboat/"+b.pkg)
	}
	panic(msg)
}
