package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/client"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/samsa-io/samsa/log/partition"
)

// PartitionSpec says which partition replica to run.
type PartitionSpec struct {
	ShardID   uint64
	ReplicaID uint64
	// Members are the shard's initial replicas, replica id → Raft address.
	// Used only when the shard is new on this host.
	Members map[uint64]string
	// Join is set for a replica added to an existing shard: it starts empty
	// and catches up from the leader.
	Join bool
	// NonVoting starts the replica as a non-voting member (a learner added
	// by a move, not yet promoted).
	NonVoting bool
	// Dir holds the partition's segments and checkpoint.
	Dir string
	// Config configures the partition (segment sizes, retention, ...).
	Config partition.Config
}

// Shard is a partition replica running on this host.
type Shard struct {
	host    *Host
	id      uint64
	replica uint64
	session *client.Session
	sem     chan struct{} // proposals in flight
	sm      *partitionSM
	// solo is set while the shard has a single replica (this one): no
	// follower needs the Raft log below a snapshot. A membership change
	// that adds a replica must clear it.
	solo atomic.Bool
}

// StartPartition starts (or restarts) a partition replica. A directory
// left by an earlier shard with another id (a deleted and re-created
// topic) is removed first: dragonboat would refuse a new replica that
// claims applied entries.
func (h *Host) StartPartition(spec PartitionSpec) (*Shard, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.shards[spec.ShardID]; s != nil {
		return s, nil
	}
	fresh := !h.nh.HasNodeInfo(spec.ShardID, spec.ReplicaID)
	if err := claimDir(spec.Dir, spec.ShardID, fresh); err != nil {
		return nil, fmt.Errorf("replica: shard %d: %w", spec.ShardID, err)
	}
	s := &Shard{
		host:    h,
		id:      spec.ShardID,
		replica: spec.ReplicaID,
		session: h.nh.GetNoOPSession(spec.ShardID),
		sem:     make(chan struct{}, h.cfg.MaxInFlight),
		sm:      &partitionSM{host: h, shardID: spec.ShardID, dir: spec.Dir, closed: make(chan struct{})},
	}
	s.sm.cfg.Store(&spec.Config)
	s.solo.Store(!spec.Join && len(spec.Members) == 1)
	members := map[uint64]dragonboat.Target{}
	join := spec.Join && fresh
	if !spec.Join && fresh {
		for id, addr := range spec.Members {
			members[id] = addr
		}
	}
	// A known replica restarts without members: dragonboat has them, and
	// would refuse a list that differs from the first one it was given
	// (the replicas change when partitions move).
	cfg := h.shardConfig(spec.ShardID, spec.ReplicaID)
	cfg.IsNonVoting = spec.NonVoting
	create := func(shardID, replicaID uint64) sm.IOnDiskStateMachine { return s.sm }
	if err := h.nh.StartOnDiskReplica(members, join, create, cfg); err != nil {
		return nil, fmt.Errorf("replica: start shard %d: %w", spec.ShardID, mapError(err))
	}
	h.shards[spec.ShardID] = s
	return s, nil
}

// claimDir makes dir the home of shardID. A fresh replica (dragonboat
// knows nothing of it) starts from an empty directory, whatever was left
// there; a known one keeps its directory unless the marker file names
// another shard (a deleted topic whose name came back).
func claimDir(dir string, shardID uint64, fresh bool) error {
	marker := filepath.Join(dir, "shard")
	b, err := os.ReadFile(marker)
	owner, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if fresh || (err == nil && owner != shardID) {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte(strconv.FormatUint(shardID, 10)+"\n"), 0o644)
}

// Shard returns the local replica of a partition shard, or nil.
func (h *Host) Shard(shardID uint64) *Shard {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.shards[shardID]
}

// StopPartition stops the local replica; with removeData its Raft state
// and directory go too (the partition was deleted or moved away).
func (h *Host) StopPartition(shardID uint64, removeData bool) error {
	h.mu.Lock()
	s := h.shards[shardID]
	delete(h.shards, shardID)
	h.mu.Unlock()
	if s == nil {
		return nil
	}
	s.sm.discard.Store(removeData)
	if err := h.nh.StopShard(shardID); err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) {
		return fmt.Errorf("replica: stop shard %d: %w", shardID, err)
	}
	if !removeData {
		return nil
	}
	// dragonboat closes the state machine on its own goroutines after
	// StopShard returns: the directory goes only once that is done.
	select {
	case <-s.sm.closed:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("replica: shard %d: its state machine did not close", shardID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := h.nh.SyncRemoveData(ctx, shardID, s.replica)
		if err == nil {
			break
		}
		if !errors.Is(err, dragonboat.ErrShardNotStopped) || ctx.Err() != nil {
			return fmt.Errorf("replica: remove shard %d: %w", shardID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return os.RemoveAll(s.sm.dir)
}

// ID is the shard id.
func (s *Shard) ID() uint64 { return s.id }

// Partition is the local partition, for reads. It changes when a snapshot
// replaces the replica's content; nil until the replica has opened.
func (s *Shard) Partition() *partition.Partition { return s.sm.p.Load() }

// Changed returns a channel closed the next time entries are applied.
func (s *Shard) Changed() <-chan struct{} { return s.sm.applied.Wait() }

// Leader returns the shard's leader as this node knows it.
func (s *Shard) Leader() (leaderID, term uint64, ok bool) { return s.host.Leader(s.id) }

// IsLeader reports whether this replica leads the shard.
func (s *Shard) IsLeader() bool {
	id, _, ok := s.Leader()
	return ok && id == s.replica
}

// SetConfig changes the partition's settings (segment size, retention):
// the open partition's at once, and the one a snapshot restore opens.
func (s *Shard) SetConfig(cfg partition.Config) error {
	s.sm.cfg.Store(&cfg)
	if p := s.Partition(); p != nil {
		return p.Log().SetConfig(cfg.Log)
	}
	return nil
}

// ReplicaID is this replica's id in the shard.
func (s *Shard) ReplicaID() uint64 { return s.replica }

// Propose proposes an entry (partition.AppendEntry) and waits until it is
// committed and applied here. Many proposals may be in flight at once; at
// most MaxInFlight per shard, beyond which Propose waits. A refusal by the
// partition comes back in Result.Err; the error is for the proposal itself
// (ErrNotReady, ErrBusy, ErrTimeout, ErrClosed, or ctx's error — after a
// timeout or cancellation the entry may still commit).
func (s *Shard) Propose(ctx context.Context, entry []byte) (partition.Result, error) {
	p, err := s.ProposeStart(ctx, entry)
	if err != nil {
		return partition.Result{}, err
	}
	return p.Wait(ctx)
}

// Pending is a proposal in flight.
type Pending struct {
	s  *Shard
	rs *dragonboat.RequestState
}

// ProposeStart proposes an entry and returns at once; Wait gets the
// outcome. Entries proposed one after another from one goroutine are
// applied in that order, which is what keeps a connection's produce
// requests in order while they wait concurrently.
func (s *Shard) ProposeStart(ctx context.Context, entry []byte) (*Pending, error) {
	rs, err := s.propose(ctx, entry)
	if err != nil {
		return nil, err
	}
	return &Pending{s: s, rs: rs}, nil
}

// Wait waits for the proposal's outcome, as Propose does. Call it once.
func (p *Pending) Wait(ctx context.Context) (partition.Result, error) {
	select {
	case r := <-p.rs.ResultC():
		p.release()
		return p.s.outcome(r)
	case <-ctx.Done():
		// The entry is still in flight: its slot frees when it settles.
		go func() { <-p.rs.ResultC(); p.release() }()
		return partition.Result{}, fmt.Errorf("replica: shard %d: %w (the entry may still commit)", p.s.id, ctx.Err())
	}
}

func (p *Pending) release() {
	p.rs.Release()
	<-p.s.sem
}

// ProposeAsync proposes an entry without waiting for it (Kafka's acks=0).
// It still counts against MaxInFlight until the entry is applied.
func (s *Shard) ProposeAsync(ctx context.Context, entry []byte) error {
	rs, err := s.propose(ctx, entry)
	if err != nil {
		return err
	}
	p := &Pending{s: s, rs: rs}
	go func() { <-rs.ResultC(); p.release() }()
	return nil
}

func (s *Shard) propose(ctx context.Context, entry []byte) (*dragonboat.RequestState, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	timeout := s.host.cfg.ProposalTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond*time.Duration(2*s.host.cfg.RTT.Milliseconds()))
	}
	rs, err := s.host.nh.Propose(s.session, entry, timeout)
	if err != nil {
		<-s.sem
		return nil, fmt.Errorf("replica: shard %d: %w", s.id, mapError(err))
	}
	s.host.proposals.Add(1)
	return rs, nil
}

func (s *Shard) outcome(r dragonboat.RequestResult) (partition.Result, error) {
	switch {
	case r.Completed():
		return decodeResult(r.GetResult())
	case r.Timeout():
		return partition.Result{}, fmt.Errorf("replica: shard %d: %w", s.id, ErrTimeout)
	case r.Dropped():
		return partition.Result{}, fmt.Errorf("replica: shard %d: %w", s.id, ErrNotReady)
	case r.Terminated(), r.Aborted():
		return partition.Result{}, fmt.Errorf("replica: shard %d: %w", s.id, ErrClosed)
	case r.Rejected():
		return partition.Result{}, fmt.Errorf("replica: shard %d: %w", s.id, ErrRejected)
	}
	return partition.Result{}, fmt.Errorf("replica: shard %d: unexpected proposal outcome %+v", s.id, r)
}

// partitionSM is dragonboat's on-disk state machine for one partition.
type partitionSM struct {
	host    *Host
	shardID uint64
	dir     string
	cfg     atomic.Pointer[partition.Config]

	p       atomic.Pointer[partition.Partition]
	applied Notifier
	bytes   int64 // entry bytes applied since the last snapshot request

	discard   atomic.Bool   // the partition is being deleted: close without syncing
	closed    chan struct{} // closed when Close has finished
	closeOnce sync.Once
}

// Open opens the partition and returns the last index durable in its
// checkpoint; the log past it was cut, and dragonboat applies it again.
func (s *partitionSM) Open(stop <-chan struct{}) (uint64, error) {
	p, err := partition.Open(s.dir, *s.cfg.Load())
	if err != nil {
		return 0, err
	}
	s.p.Store(p)
	return p.AppliedIndex(), nil
}

// Update applies committed entries. A refused batch is a result, never an
// error: dragonboat halts the process on an error, which is right only
// when storage itself fails.
func (s *partitionSM) Update(ents []sm.Entry) ([]sm.Entry, error) {
	p := s.p.Load()
	for i := range ents {
		res, err := p.Apply(ents[i].Index, ents[i].Cmd)
		if err != nil {
			s.host.logger.Error("partition storage failed; the node must stop", "shard", s.shardID, "dir", s.dir, "err", err)
			return nil, err
		}
		ents[i].Result = encodeResult(res)
		s.bytes += int64(len(ents[i].Cmd))
	}
	s.applied.Broadcast()
	if s.bytes >= s.host.cfg.SnapshotBytes {
		s.bytes = 0
		s.host.requestSnapshot(s.shardID)
	}
	return ents, nil
}

// Lookup is unused: reads go to the partition directly (Shard.Partition).
func (s *partitionSM) Lookup(q any) (any, error) { return nil, errors.New("replica: no lookups") }

// Sync makes every applied entry durable (a partition checkpoint).
func (s *partitionSM) Sync() error { return s.p.Load().Sync() }

// PrepareSnapshot captures the partition as it is now.
func (s *partitionSM) PrepareSnapshot() (any, error) { return s.p.Load().Snapshot() }

// SaveSnapshot streams a captured partition to a replica that fell behind.
func (s *partitionSM) SaveSnapshot(ctx any, w io.Writer, stop <-chan struct{}) error {
	snap := ctx.(*partition.Snapshot)
	defer snap.Release()
	if _, err := snap.WriteTo(w, stop, sm.ErrSnapshotStopped); err != nil {
		if errors.Is(err, sm.ErrSnapshotStopped) {
			return err
		}
		return sm.ErrSnapshotStreaming
	}
	return nil
}

// RecoverFromSnapshot replaces this replica's partition with a snapshot
// from the leader. The old partition stays readable until the new one is
// in place; readers then see the new one.
func (s *partitionSM) RecoverFromSnapshot(r io.Reader, stop <-chan struct{}) error {
	old := s.p.Load()
	if err := old.Close(); err != nil {
		s.host.logger.Warn("closing a partition before restoring a snapshot", "shard", s.shardID, "err", err)
	}
	if _, err := partition.Restore(s.dir, r, stop, sm.ErrSnapshotStopped); err != nil {
		return err
	}
	p, err := partition.Open(s.dir, *s.cfg.Load())
	if err != nil {
		return err
	}
	s.p.Store(p)
	s.applied.Broadcast()
	s.host.restores.Add(1)
	s.host.logger.Info("partition restored from a snapshot", "shard", s.shardID, "applied_index", p.AppliedIndex(),
		"log_start_offset", p.Log().StartOffset(), "next_offset", p.Log().EndOffset())
	return nil
}

// Close closes the partition after a final checkpoint — or, when it is
// being deleted, without one.
func (s *partitionSM) Close() error {
	defer s.closeOnce.Do(func() { close(s.closed) })
	p := s.p.Load()
	switch {
	case p == nil:
		return nil
	case s.discard.Load():
		return p.Discard()
	}
	return p.Close()
}

// CaughtUp returns nil once this replica has applied everything the
// leader had committed when CaughtUp was called (a Raft ReadIndex), or an
// error if that takes longer than ctx allows.
func (s *Shard) CaughtUp(ctx context.Context) error {
	timeout := s.host.cfg.ProposalTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	rs, err := s.host.nh.ReadIndex(s.id, timeout)
	if err != nil {
		return fmt.Errorf("replica: shard %d: %w", s.id, mapError(err))
	}
	defer rs.Release()
	select {
	case r := <-rs.ResultC():
		if !r.Completed() {
			return fmt.Errorf("replica: shard %d: %w", s.id, ErrNotReady)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TakeLeadership asks the shard's leader to hand leadership to this
// replica (Raft leader transfer). It returns at once; the leader stops
// taking proposals until this replica has its whole log, then the new
// leader shows in Leader. Ask only for a replica that is caught up.
func (s *Shard) TakeLeadership() error {
	if err := s.host.nh.RequestLeaderTransfer(s.id, s.replica); err != nil {
		return fmt.Errorf("replica: shard %d: %w", s.id, mapError(err))
	}
	return nil
}
