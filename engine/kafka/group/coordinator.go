package group

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Store is what the coordinator needs from the replicated log: committed
// offsets, kept in the meta shard so that they survive restarts and
// leader changes. *replog.Log implements it.
type Store interface {
	// CommitOffsets stores offsets; it returns one error per offset (nil
	// for stored ones) and an error for the request as a whole.
	CommitOffsets(ctx context.Context, group string, offsets []meta.OffsetCommit) ([]error, error)
	// CommittedOffset returns a group's committed offset for a partition.
	CommittedOffset(group string, tp replog.TopicPartition) (meta.CommittedOffset, bool)
	// GroupOffsets returns every offset a group committed, sorted by topic
	// then partition.
	GroupOffsets(group string) []meta.GroupOffset
	// Groups lists the groups that have committed offsets.
	Groups() []string
	// DeleteGroup deletes a group's committed offsets.
	DeleteGroup(ctx context.Context, group string) error
}

// Defaults, Kafka's.
const (
	DefaultInitialRebalanceDelay = 3 * time.Second  // group.initial.rebalance.delay.ms
	DefaultMinSessionTimeout     = 6 * time.Second  // group.min.session.timeout.ms
	DefaultMaxSessionTimeout     = 30 * time.Minute // group.max.session.timeout.ms

	// newMemberJoinTimeout bounds how long a member that has never been
	// through a rebalance may wait in JoinGroup (Kafka's
	// NewMemberJoinTimeoutMs): it cannot heartbeat, and a client that gave
	// up and retried would otherwise leave a defunct member behind.
	newMemberJoinTimeout = 5 * time.Minute
)

// Config configures a Coordinator.
type Config struct {
	// Store holds committed offsets. Required.
	Store Store
	// ErrorCode maps a Store error to a Kafka error code (engine/kafka owns
	// the one mapping table). Required.
	ErrorCode func(error) int16
	// Logger receives group lifecycle events (rebalances, expiries) at Info
	// and per-request detail at Debug. Default slog.Default().
	Logger *slog.Logger
	// Now stamps member activity; session expiry compares it with the last
	// activity when a (real-time) timer fires, so a clock that stands still
	// keeps members alive. Default time.Now.
	Now func() time.Time
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members, extended by the same delay each time a
	// new member arrives, up to the rebalance timeout. Default 3 s
	// (group.initial.rebalance.delay.ms); negative means none.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (INVALID_SESSION_TIMEOUT outside). Defaults 6 s and
	// 30 min (group.min/max.session.timeout.ms).
	MinSessionTimeout, MaxSessionTimeout time.Duration
}

func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.InitialRebalanceDelay == 0:
		cfg.InitialRebalanceDelay = DefaultInitialRebalanceDelay
	case cfg.InitialRebalanceDelay < 0:
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.MinSessionTimeout == 0 {
		cfg.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if cfg.MaxSessionTimeout == 0 {
		cfg.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	return cfg
}

// Coordinator is the classic consumer-group coordinator of one node: it
// owns every group's membership in memory and commits offsets through the
// Store. Its methods are safe for concurrent use.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	members atomic.Int64   // members of every group, for Stats
	closed  atomic.Bool    // written under mu, read anywhere
	wg      sync.WaitGroup // timer callbacks in flight

	mu struct {
		sync.Mutex
		groups map[string]*group
	}
}

// New returns a coordinator. It panics if cfg has no Store or ErrorCode:
// those are wiring, not configuration.
func New(cfg Config) *Coordinator {
	if cfg.Store == nil || cfg.ErrorCode == nil {
		panic("group: Config.Store and Config.ErrorCode are required")
	}
	cfg = cfg.withDefaults()
	c := &Coordinator{cfg: cfg, log: cfg.Logger}
	c.mu.groups = map[string]*group{}
	return c
}

// Stats reports the number of groups and members in memory, for metrics.
// Groups that only have committed offsets live in the Store, not here.
func (c *Coordinator) Stats() (groups, members int) {
	c.mu.Lock()
	groups = len(c.mu.groups)
	c.mu.Unlock()
	return groups, int(c.members.Load())
}

// Close stops every timer and answers every waiting JoinGroup and
// SyncGroup with NOT_COORDINATOR, as Kafka does when a coordinator lets go
// of a group: clients look the coordinator up again and rejoin. Later
// calls answer NOT_COORDINATOR at once. Close waits for timer callbacks in
// flight; it does not wait for the callers of the other methods.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return
	}
	c.closed.Store(true)
	groups := slices.Collect(maps.Values(c.mu.groups))
	c.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.shutdownLocked()
		g.mu.Unlock()
	}
	c.wg.Wait()
}

// acquire returns the group named name holding a reference on it,
// creating it if create is set; nil if it does not exist. code is
// NOT_COORDINATOR once the coordinator is closed.
func (c *Coordinator) acquire(name string, create bool) (*group, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, kerr.NotCoordinator.Code
	}
	g := c.mu.groups[name]
	if g == nil {
		if !create {
			return nil, 0
		}
		g = newGroup(c, strings.Clone(name)) // see JoinGroup on copies
		c.mu.groups[g.name] = g
	}
	g.refs++
	return g, 0
}

// lock returns the named group locked and referenced (see acquire). With
// commit set it also holds the group's commitMu, which orders offset
// commits and deletion. Release with unlock (and commitMu.Unlock).
func (c *Coordinator) lock(name string, create, commit bool) (*group, int16) {
	for {
		g, code := c.acquire(name, create)
		if g == nil {
			return nil, code
		}
		if commit {
			g.commitMu.Lock()
		}
		g.mu.Lock()
		if !g.removed && !c.closed.Load() {
			return g, 0
		}
		closed := c.closed.Load()
		c.unlock(g)
		if commit {
			g.commitMu.Unlock()
		}
		if closed {
			return nil, kerr.NotCoordinator.Code
		}
		// Deleted while we waited: look again.
	}
}

// unlock drops a reference taken by acquire and unlocks g.mu, which the
// caller holds. The last reference to an idle group removes it from
// memory: membership that matters is never idle, and offsets live in the
// Store.
func (c *Coordinator) unlock(g *group) {
	c.mu.Lock()
	g.refs--
	if g.refs == 0 && !g.removed && g.idleLocked() {
		delete(c.mu.groups, g.name)
		g.removed = true
	}
	c.mu.Unlock()
	g.mu.Unlock()
}

// release takes g.mu again after a wait and drops the reference with
// unlock.
func (c *Coordinator) release(g *group) {
	g.mu.Lock()
	c.unlock(g)
}

// removeLocked removes a group being deleted from memory at once, whatever
// its references; their holders see removed and look again.
func (c *Coordinator) removeLocked(g *group) {
	c.mu.Lock()
	if c.mu.groups[g.name] == g {
		delete(c.mu.groups, g.name)
	}
	g.removed = true
	c.mu.Unlock()
}

// snapshot returns the groups in memory, for reads that lock them one by
// one (never under c.mu: the lock order is group, then coordinator).
func (c *Coordinator) snapshot() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Values(c.mu.groups))
}

// afterFunc runs fn with g locked after d, unless the coordinator closed or
// the group left memory by then. Close waits for callbacks in flight.
func (c *Coordinator) afterFunc(g *group, d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		c.mu.Lock()
		if c.closed.Load() || g.removed {
			c.mu.Unlock()
			return
		}
		c.wg.Add(1)
		g.refs++
		c.mu.Unlock()
		defer c.wg.Done()
		g.mu.Lock()
		if !c.closed.Load() {
			fn()
		}
		c.unlock(g)
	})
}

func (c *Coordinator) now() time.Time { return c.cfg.Now() }

// newMemberID returns a member id as Kafka forms them: the client id (or
// the instance id of a static member), a dash and a random UUID.
func newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails
	u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// millis converts a protocol duration in milliseconds.
func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
