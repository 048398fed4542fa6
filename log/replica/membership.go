package replica

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/samsa-io/samsa/log/meta"
)

// Membership is a shard's Raft membership as a replica has applied it.
type Membership struct {
	Voters    map[uint64]string // replica id → Raft address
	NonVoting map[uint64]string
	Removed   map[uint64]bool
	// ConfigChangeID orders membership changes: each change names the one
	// it follows (dragonboat's OrderedConfigChange), so two proposers
	// working from the same view cannot both succeed.
	ConfigChangeID uint64
}

// Has reports whether replicaID is a voter or non-voting member.
func (m Membership) Has(replicaID uint64) bool {
	_, v := m.Voters[replicaID]
	_, n := m.NonVoting[replicaID]
	return v || n
}

// membership reads a shard's membership through a Raft ReadIndex on the
// local replica.
func (h *Host) membership(ctx context.Context, shardID uint64) (Membership, error) {
	ctx, cancel := h.deadline(ctx)
	defer cancel()
	m, err := h.nh.SyncGetShardMembership(ctx, shardID)
	if err != nil {
		return Membership{}, fmt.Errorf("replica: shard %d membership: %w", shardID, mapError(err))
	}
	out := Membership{Voters: m.Nodes, NonVoting: m.NonVotings, Removed: map[uint64]bool{}, ConfigChangeID: m.ConfigChangeID}
	for id := range m.Removed {
		out.Removed[id] = true
	}
	return out, nil
}

// membershipTimeout bounds one membership request or read. A request
// dropped during an election is never answered, only timed out: the
// caller retries sooner this way than after the proposal timeout.
const membershipTimeout = 5 * time.Second

// deadline bounds a synchronous dragonboat call (dragonboat needs a
// deadline) by membershipTimeout.
func (h *Host) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, min(membershipTimeout, h.cfg.ProposalTimeout))
}

// addNonVoting adds replicaID at addr to a shard as a non-voting member:
// it receives the log (or a snapshot) and counts for no quorum.
func (h *Host) addNonVoting(ctx context.Context, shardID, replicaID uint64, addr string, ccid uint64) error {
	ctx, cancel := h.deadline(ctx)
	defer cancel()
	if err := h.nh.SyncRequestAddNonVoting(ctx, shardID, replicaID, dragonboat.Target(addr), ccid); err != nil {
		return fmt.Errorf("replica: shard %d: adding non-voting replica %d: %w", shardID, replicaID, mapError(err))
	}
	return nil
}

// addVoter adds replicaID to a shard as a voter, or promotes it if it is
// a non-voting member.
func (h *Host) addVoter(ctx context.Context, shardID, replicaID uint64, addr string, ccid uint64) error {
	ctx, cancel := h.deadline(ctx)
	defer cancel()
	if err := h.nh.SyncRequestAddReplica(ctx, shardID, replicaID, dragonboat.Target(addr), ccid); err != nil {
		return fmt.Errorf("replica: shard %d: adding voter %d: %w", shardID, replicaID, mapError(err))
	}
	return nil
}

// deleteMember removes replicaID from a shard. Its id is never usable
// again in that shard.
func (h *Host) deleteMember(ctx context.Context, shardID, replicaID, ccid uint64) error {
	ctx, cancel := h.deadline(ctx)
	defer cancel()
	if err := h.nh.SyncRequestDeleteReplica(ctx, shardID, replicaID, ccid); err != nil {
		return fmt.Errorf("replica: shard %d: removing replica %d: %w", shardID, replicaID, mapError(err))
	}
	return nil
}

// Membership returns the partition shard's membership.
func (s *Shard) Membership(ctx context.Context) (Membership, error) {
	return s.host.membership(ctx, s.id)
}

// AddNonVoting adds a replica as a non-voting member; ccid is the
// ConfigChangeID of the membership the decision was made from.
func (s *Shard) AddNonVoting(ctx context.Context, replicaID uint64, addr string, ccid uint64) error {
	s.solo.Store(false) // a follower will need the log below snapshots
	return s.host.addNonVoting(ctx, s.id, replicaID, addr, ccid)
}

// Promote makes a non-voting member a voter.
func (s *Shard) Promote(ctx context.Context, replicaID uint64, addr string, ccid uint64) error {
	return s.host.addVoter(ctx, s.id, replicaID, addr, ccid)
}

// RemoveMember removes a replica from the shard.
func (s *Shard) RemoveMember(ctx context.Context, replicaID, ccid uint64) error {
	return s.host.deleteMember(ctx, s.id, replicaID, ccid)
}

// TransferLeadership asks this replica, the leader, to hand leadership to
// another replica. It returns at once.
func (s *Shard) TransferLeadership(replicaID uint64) error {
	if err := s.host.nh.RequestLeaderTransfer(s.id, replicaID); err != nil {
		return fmt.Errorf("replica: shard %d: %w", s.id, mapError(err))
	}
	return nil
}

// Membership returns the meta shard's membership; its replica ids are
// node ids.
func (m *Meta) Membership(ctx context.Context) (Membership, error) {
	return m.host.membership(ctx, meta.MetaShardID)
}

// AddNonVoting adds a node to the meta shard as a non-voting member: a
// node that joins a running cluster follows the metadata without
// counting for its quorum.
func (m *Meta) AddNonVoting(ctx context.Context, nodeID uint64, addr string, ccid uint64) error {
	return m.host.addNonVoting(ctx, meta.MetaShardID, nodeID, addr, ccid)
}

// AddVoter makes a node a voter of the meta shard.
func (m *Meta) AddVoter(ctx context.Context, nodeID uint64, addr string, ccid uint64) error {
	return m.host.addVoter(ctx, meta.MetaShardID, nodeID, addr, ccid)
}

// RemoveMember removes a node from the meta shard.
func (m *Meta) RemoveMember(ctx context.Context, nodeID, ccid uint64) error {
	return m.host.deleteMember(ctx, meta.MetaShardID, nodeID, ccid)
}

// snapshot takes a snapshot of a local replica. A replica promoted from
// non-voting takes one before it records its promotion: at a restart,
// dragonboat re-applies the membership changes logged after the last
// snapshot, and re-applying "add as non-voting" to a replica started as
// a voter halts the process. With a snapshot after the promotion, the
// replica restarts as a voter and nothing before it is re-applied.
func (h *Host) snapshot(ctx context.Context, shardID uint64) error {
	ctx, cancel := h.deadline(ctx)
	defer cancel()
	opt := dragonboat.SnapshotOption{OverrideCompactionOverhead: true, CompactionOverhead: h.cfg.CompactionOverhead}
	if _, err := h.nh.SyncRequestSnapshot(ctx, shardID, opt); err != nil && !errors.Is(err, dragonboat.ErrRejected) {
		// Rejected: nothing applied since the last snapshot, which is then
		// already after the promotion.
		return fmt.Errorf("replica: shard %d snapshot: %w", shardID, mapError(err))
	}
	return nil
}

// Snapshot takes a snapshot of this replica (see Host.snapshot).
func (s *Shard) Snapshot(ctx context.Context) error { return s.host.snapshot(ctx, s.id) }

// TransferLeadership asks the meta shard's leader, which must be this
// host's replica, to hand leadership to another voter. It returns at once.
func (m *Meta) TransferLeadership(nodeID uint64) error {
	if err := m.host.nh.RequestLeaderTransfer(meta.MetaShardID, nodeID); err != nil {
		return fmt.Errorf("replica: meta shard: %w", mapError(err))
	}
	return nil
}
