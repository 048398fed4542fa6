package replog

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/log/meta"
)

// Moving partitions (Kafka's partition reassignment). The controller
// records each partition's target nodes in the metadata
// (ReassignPartitions); the partition's Raft leader carries the move out
// — only a node with a replica of the shard can change its membership —
// one step per pass, each recorded in the metadata (log/meta/move.go), so
// that a new leader picks up where the old one stopped:
//
//  1. a target node without a replica gets a learner (meta.AddReplica, a
//     fresh replica id), which the leader adds to the shard as a
//     non-voting member; the learner's node starts it (reconcile), and it
//     catches up by the Raft log or a snapshot stream of the segments
//  2. the learner's node sees it caught up (a Raft ReadIndex) and records
//     it (meta.MarkCaughtUp); the leader promotes it to a voter; the
//     learner's node takes a snapshot and records the promotion
//     (meta.PromoteReplica), after which the replica restarts as a voter
//  3. once every target node has a voter, the leader removes the voters
//     outside the target one at a time (handing its own leadership to the
//     target's first replica before removing itself); their nodes stop
//     them and delete their data.
//
// The voters never number fewer than the replication factor, and each
// dragonboat membership change names the membership it was decided from
// (OrderedConfigChange), so two leaders cannot both apply a stale step.

// moveInterval is how often a node looks at moving partitions besides
// at metadata changes: dragonboat's membership changes raise no event.
const moveInterval = time.Second

// moveParallel bounds the partitions one pass works on at once.
const moveParallel = 16

// moveLoop drives the moves of the partitions this node leads, checks
// its learners, and keeps its meta-shard role file right.
func (l *Log) moveLoop() {
	defer l.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-l.done; cancel() }()
	tick := time.NewTicker(moveInterval)
	defer tick.Stop()
	for {
		viewed := l.viewChanged.Wait()
		progressed := l.movePass(ctx)
		l.checkMetaRole(ctx)
		l.addPeers(ctx)
		if progressed {
			continue // the next step is ready now, no need to wait
		}
		select {
		case <-viewed:
		case <-tick.C:
		case <-l.done:
			return
		}
	}
}

// movePass takes one step of every move this node can advance. It
// reports whether any step was taken.
func (l *Log) movePass(ctx context.Context) bool {
	v := l.view.Load()
	var work []func() bool
	for name, t := range v.topics {
		for i, p := range t.parts {
			if p.target == nil || p.local == nil {
				continue
			}
			tp := TopicPartition{name, int32(i)}
			if r, ok := p.replicaOn(l.cfg.NodeID); ok && r.Learner {
				work = append(work, func() bool { return l.checkLearner(ctx, tp, p, r) })
			}
			if p.local.IsLeader() {
				work = append(work, func() bool { return l.moveStep(ctx, tp, p, v.nodes) })
			}
		}
	}
	var progressed atomic.Bool
	var wg sync.WaitGroup
	sem := make(chan struct{}, moveParallel)
	for _, w := range work {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if w() {
				progressed.Store(true)
			}
		}()
	}
	wg.Wait()
	return progressed.Load()
}

// replicaOn returns the partition's replica on a node.
func (p *partView) replicaOn(node uint64) (meta.Replica, bool) {
	i := slices.IndexFunc(p.replicas, func(r meta.Replica) bool { return r.NodeID == node })
	if i < 0 {
		return meta.Replica{}, false
	}
	return p.replicas[i], true
}

// checkLearner advances this node's learner replica: it records that the
// replica caught up — it applied everything its leader had committed when
// asked (a Raft ReadIndex, which a non-voting member forwards to the
// leader) — and, once the leader promoted it, that it is a voter, after a
// snapshot (replica.Shard.Snapshot says why).
func (l *Log) checkLearner(ctx context.Context, tp TopicPartition, p *partView, r meta.Replica) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if !r.CaughtUp {
		if err := p.local.CaughtUp(cctx); err != nil {
			l.logger.Debug("learner still catching up", "topic", tp.Topic, "partition", tp.Partition, "err", err)
			return false
		}
		return l.proposeMove(ctx, tp, meta.MarkCaughtUp{ShardID: p.shardID, ReplicaID: r.ReplicaID})
	}
	mem, err := p.local.Membership(cctx)
	if err != nil {
		return false
	}
	if _, voter := mem.Voters[r.ReplicaID]; !voter {
		return false
	}
	if err := p.local.Snapshot(ctx); err != nil {
		l.logger.Warn("move: snapshot after promotion", "topic", tp.Topic, "partition", tp.Partition, "err", err)
		return false
	}
	return l.proposeMove(ctx, tp, meta.PromoteReplica{ShardID: p.shardID, ReplicaID: r.ReplicaID})
}

// moveStep takes the next step of a partition's move on its leader.
func (l *Log) moveStep(ctx context.Context, tp TopicPartition, p *partView, nodes map[uint64]meta.Node) bool {
	log := l.logger.With("topic", tp.Topic, "partition", tp.Partition, "shard", p.shardID)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, n := range p.target {
		if _, ok := p.replicaOn(n); !ok {
			log.Info("move: adding a learner", "node", n)
			return l.proposeMove(ctx, tp, meta.AddReplica{ShardID: p.shardID, NodeID: n})
		}
	}
	mem, err := p.local.Membership(sctx)
	if err != nil {
		log.Debug("move: reading the membership", "err", err)
		return false
	}
	addr := func(node uint64) string { return nodes[node].RaftAddr }
	fail := func(what string, err error) bool {
		log.Warn("move: "+what, "err", err)
		return false
	}
	for _, r := range p.replicas {
		if !r.Learner {
			continue
		}
		_, voter := mem.Voters[r.ReplicaID]
		switch {
		case !slices.Contains(p.target, r.NodeID): // the target changed since it was added
			if mem.Has(r.ReplicaID) {
				if err := p.local.RemoveMember(sctx, r.ReplicaID, mem.ConfigChangeID); err != nil {
					return fail("removing a learner", err)
				}
				return true
			}
			return l.proposeMove(ctx, tp, meta.RemoveReplica{ShardID: p.shardID, ReplicaID: r.ReplicaID})
		case !mem.Has(r.ReplicaID) && !mem.Removed[r.ReplicaID]:
			log.Info("move: adding a non-voting member", "node", r.NodeID, "replica", r.ReplicaID)
			if err := p.local.AddNonVoting(sctx, r.ReplicaID, addr(r.NodeID), mem.ConfigChangeID); err != nil {
				return fail("adding a non-voting member", err)
			}
			return true
		case r.CaughtUp && !voter:
			log.Info("move: promoting a caught-up learner", "node", r.NodeID, "replica", r.ReplicaID)
			if err := p.local.Promote(sctx, r.ReplicaID, addr(r.NodeID), mem.ConfigChangeID); err != nil {
				return fail("promoting a learner", err)
			}
			return true
		}
	}
	for _, n := range p.target {
		if r, _ := p.replicaOn(n); r.Learner {
			return false // still catching up
		}
	}
	for _, r := range p.replicas {
		if slices.Contains(p.target, r.NodeID) {
			continue
		}
		if r.ReplicaID == p.local.ReplicaID() {
			next, _ := p.replicaOn(p.target[0])
			log.Info("move: handing leadership over before leaving", "to_node", next.NodeID)
			if err := p.local.TransferLeadership(next.ReplicaID); err != nil {
				return fail("handing leadership over", err)
			}
			return false // the new leader carries on
		}
		if mem.Has(r.ReplicaID) {
			log.Info("move: removing a replica", "node", r.NodeID, "replica", r.ReplicaID)
			if err := p.local.RemoveMember(sctx, r.ReplicaID, mem.ConfigChangeID); err != nil {
				return fail("removing a replica", err)
			}
			return true
		}
		return l.proposeMove(ctx, tp, meta.RemoveReplica{ShardID: p.shardID, ReplicaID: r.ReplicaID})
	}
	return false
}

// proposeMove records a step of a move. A refusal means another node's
// step came first (the view was stale): the next pass sees it.
func (l *Log) proposeMove(ctx context.Context, tp TopicPartition, cmd meta.Command) bool {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := l.meta.Propose(pctx, cmd)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		l.logger.Debug("move: step not recorded", "topic", tp.Topic, "partition", tp.Partition, "step", fmt.Sprintf("%T", cmd), "err", err)
		return false
	}
	return true
}

// Reassign sets the target replicas of partitions (nil cancels a
// partition's move) and answers each on its own. The moves happen
// afterwards; Reassignments shows them.
func (l *Log) Reassign(ctx context.Context, moves []meta.Reassignment) ([]error, error) {
	// Check first, to answer refusals with their reason: the command's
	// results carry only codes. The command checks again, against the
	// state it meets.
	errs := make([]error, len(moves))
	var valid []meta.Reassignment
	var at []int
	l.meta.Read(func(s *meta.State) {
		for i, m := range moves {
			if errs[i] = s.CheckReassignment(m); errs[i] == nil {
				valid, at = append(valid, m), append(at, i)
			}
		}
	})
	if len(valid) == 0 {
		return errs, nil
	}
	res, err := l.meta.Propose(ctx, meta.ReassignPartitions{Moves: valid})
	if err != nil {
		return nil, fmt.Errorf("replog: reassigning partitions: %w", mapReplicaError(err))
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	for j, i := range at {
		errs[i] = res.ItemErr(j)
	}
	return errs, nil
}

// Reassignment is a partition's move in progress.
type Reassignment struct {
	TopicPartition
	Replicas []uint64 // every replica's node: the current ones, then those being added
	Adding   []uint64 // target nodes without a voter yet
	Removing []uint64 // nodes outside the target still holding a replica
	Target   []uint64
}

// Reassignments lists the moves in progress, by topic and partition, as
// this node's metadata has them (not its view, which follows a change a
// moment later: a move just set must show).
func (l *Log) Reassignments() []Reassignment {
	var topics []meta.Topic
	l.meta.Read(func(s *meta.State) { topics = s.Topics() })
	var out []Reassignment
	for _, t := range topics {
		for i, p := range t.Partitions {
			if p.Target == nil {
				continue
			}
			pv := &partView{replicas: p.Replicas}
			r := Reassignment{TopicPartition: TopicPartition{t.Name, int32(i)}, Target: p.Target}
			for _, rep := range p.Replicas {
				r.Replicas = append(r.Replicas, rep.NodeID)
				if !slices.Contains(p.Target, rep.NodeID) {
					r.Removing = append(r.Removing, rep.NodeID)
				}
			}
			for _, n := range p.Target {
				if rep, ok := pv.replicaOn(n); !ok || rep.Learner {
					r.Adding = append(r.Adding, n)
				}
				if !slices.Contains(r.Replicas, n) {
					r.Replicas = append(r.Replicas, n)
				}
			}
			out = append(out, r)
		}
	}
	return out
}
