package replog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replica"
)

// Nodes joining and leaving a running cluster. The meta shard's voters
// are the initial peers; a node that joins (`samsa serve --join`) starts
// an empty non-voting replica of the meta shard, which AddNode makes a
// member of: it then receives the metadata, registers its addresses and
// gets partitions like any other node. RemoveNode takes a node out once
// its replicas have been moved away (a drain: `samsa cluster
// remove-node`); if it was a voter of the meta shard, a non-voting member
// takes its vote first, so the meta shard keeps as many voters.

// ErrNodeExists means a node of that id is registered already or is a
// member of the meta shard.
var ErrNodeExists = errors.New("replog: node already a member")

// AddNode makes a node started with Join a member of the cluster: a
// non-voting member of the meta shard, after which it registers itself.
func (l *Log) AddNode(ctx context.Context, id uint64, raftAddr string) error {
	if id == 0 || id >= meta.FirstMovedReplicaID {
		return fmt.Errorf("%w: node id %d outside [1, %d)", ErrInvalidRequest, id, meta.FirstMovedReplicaID)
	}
	mem, err := l.meta.Membership(ctx)
	for err != nil && retryable(ctx, err) {
		mem, err = l.meta.Membership(ctx)
	}
	if err != nil {
		return fmt.Errorf("replog: adding node %d: %w", id, mapReplicaError(err))
	}
	if mem.Removed[id] {
		return fmt.Errorf("%w: node id %d was removed from this cluster and cannot come back: use a new id", ErrInvalidRequest, id)
	}
	for other, addr := range mem.Voters {
		if addr == raftAddr && other != id {
			return fmt.Errorf("%w: raft address %s is node %d's", ErrInvalidRequest, raftAddr, other)
		}
	}
	if have, ok := mem.Voters[id]; ok {
		return fmt.Errorf("%w: node %d (at %s)", ErrNodeExists, id, have)
	}
	if have, ok := mem.NonVoting[id]; ok {
		if have == raftAddr {
			return nil // added already: a retry
		}
		return fmt.Errorf("%w: node %d (at %s)", ErrNodeExists, id, have)
	}
	if err := l.meta.AddNonVoting(ctx, id, raftAddr, mem.ConfigChangeID); err != nil {
		return fmt.Errorf("replog: adding node %d: %w", id, mapReplicaError(err))
	}
	l.logger.Info("node added to the cluster", "node", id, "raft_addr", raftAddr)
	return nil
}

// WaitRegistered waits until a node has registered its addresses in the
// metadata, as a node that was just added does once it caught up.
func (l *Log) WaitRegistered(ctx context.Context, id uint64) error {
	for {
		changed := l.viewChanged.Wait()
		if _, ok := l.view.Load().nodes[id]; ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("replog: node %d has not registered: %w", id, mapReplicaError(ctx.Err()))
		}
	}
}

// RemoveNode takes a node that holds no replicas out of the cluster: out
// of the metadata (meta.RemoveNode refuses while it holds or is to hold
// replicas) and out of the meta shard. Its id cannot be used again.
func (l *Log) RemoveNode(ctx context.Context, id uint64) error {
	res, err := l.meta.Propose(ctx, meta.RemoveNode{ID: id})
	if err != nil {
		return fmt.Errorf("replog: removing node %d: %w", id, mapReplicaError(err))
	}
	unknown := errors.Is(res.Err(), meta.ErrUnknownNode) // or removed from the metadata by an earlier try
	if err := res.Err(); err != nil && !unknown {
		return err
	}
	handedOver := false
	for {
		mem, err := l.meta.Membership(ctx)
		if err != nil {
			if retryable(ctx, err) {
				continue // the meta shard elects a leader: it may have been this node's
			}
			return fmt.Errorf("replog: removing node %d: %w", id, mapReplicaError(err))
		}
		_, voter := mem.Voters[id]
		if !mem.Has(id) {
			if unknown {
				return res.Err()
			}
			l.logger.Info("node removed from the cluster", "node", id)
			return nil
		}
		if voter {
			// Give its vote to a non-voting member first, so the meta shard's
			// quorum does not shrink.
			if next, ok := l.nextMetaVoter(mem.NonVoting); ok {
				if err := l.meta.AddVoter(ctx, next, mem.NonVoting[next], mem.ConfigChangeID); err != nil {
					if retryable(ctx, err) {
						continue
					}
					return fmt.Errorf("replog: promoting node %d in the meta shard: %w", next, mapReplicaError(err))
				}
				l.logger.Info("node promoted to a voter of the meta shard", "node", next, "replacing", id)
				continue
			}
			if len(mem.Voters) <= 1 {
				return fmt.Errorf("%w: node %d is the meta shard's only voter", ErrInvalidRequest, id)
			}
			// A leader that removes itself leaves the shard without one for
			// an election timeout, and the answer to the removal may be lost:
			// hand the leadership over first.
			if leader, _, ok := l.meta.Leader(); ok && leader == id && !handedOver {
				handedOver = true
				l.handOverMetaLeadership(ctx, id, mem.Voters)
				continue
			}
		}
		if err := l.meta.RemoveMember(ctx, id, mem.ConfigChangeID); err != nil {
			if retryable(ctx, err) {
				continue
			}
			return fmt.Errorf("replog: removing node %d from the meta shard: %w", id, mapReplicaError(err))
		}
	}
}

// handOverMetaLeadership asks the meta shard's leader, node id, to hand
// leadership to another voter (a voter follower forwards the request to
// the leader), and waits up to a few seconds until it did.
func (l *Log) handOverMetaLeadership(ctx context.Context, id uint64, voters map[uint64]string) {
	var to []uint64
	for v := range voters {
		if v != id {
			to = append(to, v)
		}
	}
	if len(to) == 0 {
		return
	}
	if err := l.meta.TransferLeadership(slices.Min(to)); err != nil {
		l.logger.Debug("handing the meta leadership over", "from", id, "err", err)
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if leader, _, ok := l.meta.Leader(); ok && leader != id {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// retryable reports whether a membership request failed for a passing
// reason (no leader, a timeout, a change that raced another) and ctx
// allows another try, after a short pause.
func retryable(ctx context.Context, err error) bool {
	if !errors.Is(err, replica.ErrNotReady) && !errors.Is(err, replica.ErrTimeout) && !errors.Is(err, replica.ErrRejected) {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

// nextMetaVoter picks the registered non-voting member with the lowest id.
func (l *Log) nextMetaVoter(nonVoting map[uint64]string) (uint64, bool) {
	nodes := l.view.Load().nodes
	var ids []uint64
	for id := range nonVoting {
		if _, ok := nodes[id]; ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0, false
	}
	return slices.Min(ids), true
}

// addPeers makes the initial peers that do not vote in the meta shard
// (beyond Config.MetaVoters) its non-voting members: they start like a
// node that joins, and the meta leader adds them.
func (l *Log) addPeers(ctx context.Context) {
	if len(l.cfg.Peers) <= l.cfg.MetaVoters {
		return
	}
	if id, _, ok := l.meta.Leader(); !ok || id != l.cfg.NodeID {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mem, err := l.meta.Membership(cctx)
	if err != nil {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(l.cfg.Peers)) {
		if mem.Has(id) || mem.Removed[id] {
			continue
		}
		if err := l.meta.AddNonVoting(cctx, id, l.cfg.Peers[id], mem.ConfigChangeID); err != nil {
			l.logger.Debug("adding a peer to the meta shard", "node", id, "err", err)
			return
		}
		l.logger.Info("peer added to the meta shard as a non-voting member", "node", id)
		return // the next pass reads the new membership
	}
}

// checkMetaRole notices that this node's meta replica was promoted to a
// voter and records it, so that it restarts as one.
func (l *Log) checkMetaRole(ctx context.Context) {
	if l.meta.Voter() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mem, err := l.meta.Membership(cctx)
	if err != nil {
		return
	}
	if _, ok := mem.Voters[l.cfg.NodeID]; ok {
		if err := l.meta.MarkVoter(cctx); err != nil {
			l.logger.Warn("recording the promotion to meta voter", "err", err)
			return
		}
		l.logger.Info("this node is now a voter of the meta shard")
	}
}
