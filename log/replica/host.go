package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	dbconfig "github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/plugin/tan"
	"github.com/lni/dragonboat/v4/raftio"
)

// Host is this process's dragonboat NodeHost and the shards it runs.
type Host struct {
	cfg    Config
	nh     *dragonboat.NodeHost
	logger *slog.Logger

	mu     sync.Mutex
	shards map[uint64]*Shard // partition replicas started here
	meta   *Meta

	snapshots chan uint64 // shards asking for a snapshot
	done      chan struct{}
	wg        sync.WaitGroup

	leaderChanges atomic.Uint64
	proposals     atomic.Uint64 // partition entries proposed from this host
	restores      atomic.Uint64 // partition replicas replaced by a snapshot
	leaderWait    Notifier      // broadcast on every leader change
	peers         peers         // what the transport knows of other hosts (peers.go)
}

// Start starts the NodeHost. Its directory is created if needed.
func Start(cfg Config) (*Host, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	routeLogs(cfg.Logger)
	h := &Host{
		cfg:       cfg,
		logger:    cfg.Logger,
		shards:    map[uint64]*Shard{},
		snapshots: make(chan uint64, 256),
		done:      make(chan struct{}),
	}
	nhc := dbconfig.NodeHostConfig{
		DeploymentID:        cfg.DeploymentID,
		NodeHostDir:         cfg.Dir,
		RTTMillisecond:      uint64(cfg.RTT / time.Millisecond),
		RaftAddress:         cfg.RaftAddr,
		RaftEventListener:   (*leaderListener)(h),
		SystemEventListener: (*sysListener)(h),
		// Bound the memory a slow peer can make us hold.
		MaxSendQueueSize:    256 << 20,
		MaxReceiveQueueSize: 256 << 20,
		Expert:              dbconfig.GetDefaultExpertConfig(),
	}
	switch cfg.LogDB {
	case LogDBTan:
		nhc.Expert.LogDBFactory = tan.Factory
		nhc.Expert.LogDB = dbconfig.GetTinyMemLogDBConfig()
	default:
		nhc.Expert.LogDB = dbconfig.GetSmallMemLogDBConfig()
	}
	nh, err := dragonboat.NewNodeHost(nhc)
	if err != nil {
		return nil, fmt.Errorf("replica: start NodeHost in %s: %w", cfg.Dir, err)
	}
	h.nh = nh
	h.wg.Add(1)
	go h.snapshotLoop()
	h.logger.Info("raft node started", "node_id", cfg.NodeID, "raft_addr", cfg.RaftAddr, "logdb", cfg.LogDB)
	return h, nil
}

// NodeID is this node's id.
func (h *Host) NodeID() uint64 { return h.cfg.NodeID }

// Config is the host's configuration, defaults applied.
func (h *Host) Config() Config { return h.cfg }

// shardConfig is the dragonboat configuration of a shard on this host.
func (h *Host) shardConfig(shardID, replicaID uint64) dbconfig.Config {
	return dbconfig.Config{
		ShardID:      shardID,
		ReplicaID:    replicaID,
		ElectionRTT:  h.cfg.ElectionRTT,
		HeartbeatRTT: h.cfg.HeartbeatRTT,
		CheckQuorum:  true,
		PreVote:      true,
		Quiesce:      h.cfg.Quiesce,
		// Partitions snapshot by bytes (Shard.applied), not by entries.
		SnapshotEntries:     0,
		CompactionOverhead:  h.cfg.CompactionOverhead,
		OrderedConfigChange: true,
		MaxInMemLogSize:     256 << 20,
		// After compacting the Raft log, dragonboat would also ask pebble
		// to compact the removed range, which flushes the memtable first:
		// entries already deleted inside it would be written to disk after
		// all. pebble's own compactions reclaim the space instead.
		DisableAutoCompactions: true,
	}
}

// Leader returns the shard's leader as this node knows it.
func (h *Host) Leader(shardID uint64) (leaderID, term uint64, ok bool) {
	id, term, valid, err := h.nh.GetLeaderID(shardID)
	return id, term, err == nil && valid
}

// LeaderChanged returns a channel closed at the next leader change of any
// shard on this host.
func (h *Host) LeaderChanged() <-chan struct{} { return h.leaderWait.Wait() }

// LeaderChanges is the number of leader changes seen on this host.
func (h *Host) LeaderChanges() uint64 { return h.leaderChanges.Load() }

// Proposals is the number of partition entries proposed from this host.
func (h *Host) Proposals() uint64 { return h.proposals.Load() }

// Restores is the number of partition replicas that caught up by a
// snapshot stream on this host.
func (h *Host) Restores() uint64 { return h.restores.Load() }

// WaitLeader waits until the shard has a leader, or ctx ends.
func (h *Host) WaitLeader(ctx context.Context, shardID uint64) (uint64, error) {
	for {
		ch := h.leaderWait.Wait()
		if id, _, ok := h.Leader(shardID); ok {
			return id, nil
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond): // leadership learned from peers raises no event
		case <-ctx.Done():
			return 0, fmt.Errorf("replica: shard %d: %w: %w", shardID, ErrNotReady, ctx.Err())
		}
	}
}

// leaderListener receives dragonboat's leadership events on its own
// goroutine; it only counts and wakes waiters.
type leaderListener Host

func (l *leaderListener) LeaderUpdated(info raftio.LeaderInfo) {
	h := (*Host)(l)
	if info.LeaderID != 0 {
		h.leaderChanges.Add(1)
	}
	h.leaderWait.Broadcast()
}

// requestSnapshot asks, without blocking, for a snapshot of the shard.
func (h *Host) requestSnapshot(shardID uint64) {
	select {
	case h.snapshots <- shardID:
	default: // a burst of requests: the next apply asks again
	}
}

// soloCompactionOverhead is how many entries a shard without followers
// keeps below a snapshot. Nobody reads them: a short tail lets the
// entries die in the LogDB's memtable, so they are written to disk once
// (the WAL), not again by a flush.
const soloCompactionOverhead = 16

// compactionOverhead is how many entries below a snapshot the shard keeps
// in its Raft log for followers that fell slightly behind.
func (h *Host) compactionOverhead(shardID uint64) uint64 {
	if s := h.Shard(shardID); s != nil && s.solo.Load() {
		return min(soloCompactionOverhead, h.cfg.CompactionOverhead)
	}
	return h.cfg.CompactionOverhead
}

// snapshotLoop takes snapshots that shards asked for. For a partition a
// snapshot is a checkpoint (Sync) and the compaction of the Raft log below
// it; doing them here keeps NodeHost calls out of Update.
func (h *Host) snapshotLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case id := <-h.snapshots:
			opt := dragonboat.SnapshotOption{OverrideCompactionOverhead: true, CompactionOverhead: h.compactionOverhead(id)}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := h.nh.SyncRequestSnapshot(ctx, id, opt)
			cancel()
			if err != nil && !errors.Is(err, dragonboat.ErrRejected) {
				h.logger.Debug("snapshot not taken", "shard", id, "err", err)
			}
		}
	}
}

// Close stops every shard and the NodeHost. Shards are closed by
// dragonboat, which syncs each partition (a checkpoint) on the way.
func (h *Host) Close() {
	close(h.done)
	h.wg.Wait()
	h.nh.Close()
	h.logger.Info("raft node stopped", "node_id", h.cfg.NodeID)
}
