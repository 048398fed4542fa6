package replog

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replica"
)

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
}

// CreateTopic creates a topic, placing its partitions' replicas across the
// registered nodes with leaders spread evenly, and waits until this node's
// replicas of it have leaders (or ctx ends). validateOnly checks without
// creating.
func (l *Log) CreateTopic(ctx context.Context, spec TopicSpec, validateOnly bool) error {
	if err := meta.ValidateTopicName(spec.Name); err != nil {
		return err
	}
	if spec.Partitions < 1 {
		return fmt.Errorf("%w: %d partitions", ErrInvalidPartitions, spec.Partitions)
	}
	if err := meta.ValidateConfigs(spec.Configs); err != nil {
		return err
	}
	placements, err := l.place(ctx, 0, int(spec.Partitions), int(spec.ReplicationFactor))
	if err != nil {
		return err
	}
	if _, exists := l.Topic(spec.Name); exists {
		return fmt.Errorf("%w: %q", ErrTopicExists, spec.Name)
	}
	if validateOnly {
		return nil
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80 // a version 4 UUID, as Kafka's topic ids are
	cmd := meta.CreateTopic{Name: spec.Name, ID: id, Placements: placements, Configs: spec.Configs, NowMs: time.Now().UnixMilli()}
	if err := l.proposeMeta(ctx, cmd); err != nil {
		return err
	}
	return l.settle(ctx, spec.Name)
}

// place chooses replicas for partitions [first, first+n): rf distinct
// live nodes each — registered, and not known to be unreachable by this
// node's Raft transport — the first one (the preferred leader) rotating
// so that leaders spread over the nodes. It reads the nodes after a
// barrier, so a node that registered anywhere a moment ago counts.
func (l *Log) place(ctx context.Context, first, n, rf int) ([][]uint64, error) {
	if err := l.meta.Barrier(ctx); err != nil {
		return nil, mapReplicaError(err)
	}
	var nodes []uint64
	registered := 0
	l.meta.Read(func(s *meta.State) {
		for _, nd := range s.Nodes() {
			registered++
			if nd.ID == l.cfg.NodeID || l.host.Reachable(nd.RaftAddr) {
				nodes = append(nodes, nd.ID)
			}
		}
	})
	if rf < 1 || rf > len(nodes) {
		return nil, fmt.Errorf("%w: %d, with %d of the cluster's %d nodes live", ErrInvalidReplication, rf, len(nodes), registered)
	}
	out := make([][]uint64, n)
	for i := range out {
		for r := range rf {
			out[i] = append(out[i], nodes[(first+i+r)%len(nodes)])
		}
	}
	return out, nil
}

// settle brings the local replicas of a changed topic up now rather than
// at the watcher's next turn, and waits for their leaders.
func (l *Log) settle(ctx context.Context, topic string) error {
	if err := l.reconcile(); err != nil {
		return err
	}
	t := l.view.Load().topics[topic]
	if t == nil {
		return nil
	}
	for _, p := range t.parts {
		if p.local != nil {
			if _, err := l.host.WaitLeader(ctx, p.shardID); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrLeaderNotAvailable, topic, err)
			}
		}
	}
	return nil
}

// proposeMeta proposes a metadata change and returns its refusal, if any.
func (l *Log) proposeMeta(ctx context.Context, cmd meta.Command) error {
	res, err := l.meta.Propose(ctx, cmd)
	if err != nil {
		return mapReplicaError(err)
	}
	return res.Err()
}

// DeleteTopic deletes a topic, its partitions' data on every replica, and
// the committed offsets of every group for it.
func (l *Log) DeleteTopic(ctx context.Context, name string) error {
	if _, ok := l.Topic(name); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	if err := l.proposeMeta(ctx, meta.DeleteTopic{Name: name}); err != nil {
		return err
	}
	return l.reconcile()
}

// CreatePartitions grows a topic to total partitions.
func (l *Log) CreatePartitions(ctx context.Context, name string, total int32, validateOnly bool) error {
	t, ok := l.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	have := int32(len(t.Partitions))
	if total <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger, not %d", ErrInvalidPartitions, name, have, total)
	}
	placements, err := l.place(ctx, int(have), int(total-have), int(t.ReplicationFactor))
	if err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if err := l.proposeMeta(ctx, meta.CreatePartitions{Name: name, Total: total, Placements: placements}); err != nil {
		return err
	}
	return l.settle(ctx, name)
}

// AlterConfigs changes a topic's configs: Kafka's incremental form (set and
// delete keys) or, with replace, its legacy form (set becomes the whole set).
func (l *Log) AlterConfigs(ctx context.Context, name string, set map[string]string, del []string, replace, validateOnly bool) error {
	if _, ok := l.Topic(name); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	if err := meta.ValidateConfigs(set); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if err := l.proposeMeta(ctx, meta.AlterConfigs{Name: name, Set: set, Delete: del, Replace: replace}); err != nil {
		return err
	}
	return l.reconcile()
}

// Topics lists the topics, sorted by name.
func (l *Log) Topics() []meta.Topic {
	v := l.view.Load()
	out := make([]meta.Topic, 0, len(v.topics))
	for _, t := range v.topics {
		out = append(out, t.Topic)
	}
	slices.SortFunc(out, func(a, b meta.Topic) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Topic returns one topic.
func (l *Log) Topic(name string) (meta.Topic, bool) {
	t := l.view.Load().topics[name]
	if t == nil {
		return meta.Topic{}, false
	}
	return t.Topic, true
}

// Nodes lists the registered nodes, sorted by id.
func (l *Log) Nodes() []meta.Node {
	v := l.view.Load()
	out := make([]meta.Node, 0, len(v.nodes))
	for _, n := range v.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b meta.Node) int { return int(a.ID) - int(b.ID) })
	return out
}

// Controller is the node leading the meta shard.
func (l *Log) Controller() (uint64, bool) {
	id, _, ok := l.meta.Leader()
	return id, ok
}

// PartitionInfo is what Kafka's Metadata says of a partition.
type PartitionInfo struct {
	Leader      uint64 // node id; 0 when there is none or it is not known here
	LeaderEpoch int32  // the leader's Raft term
	Replicas    []uint64
	ISR         []uint64
}

// PartitionInfo returns the partition's leader as this node knows it and
// its replicas' nodes. A node learns a partition's leader only from its own
// replica of it; the in-sync set is every replica for now (dragonboat does
// not expose follower progress).
func (l *Log) PartitionInfo(tp TopicPartition) (PartitionInfo, error) {
	_, p, err := l.part(tp)
	if err != nil {
		return PartitionInfo{}, err
	}
	info := PartitionInfo{Replicas: make([]uint64, len(p.replicas))}
	leading := p.local != nil && p.local.IsLeader()
	v := l.view.Load()
	nodes := v.nodes
	for i, r := range p.replicas {
		info.Replicas[i] = r.NodeID
		// As in Kafka's reassignment, a replica being added joins the
		// in-sync set once it has caught up. Replicas that reported
		// being behind their leader are left out (lag.go); the leader
		// also leaves out the followers its transport cannot reach and
		// those it is sending a snapshot (too far behind for the log).
		switch {
		case r.Learner && !r.CaughtUp:
		case v.lagging[p.shardID][r.NodeID]:
		case leading && r.ReplicaID != p.local.ReplicaID() &&
			(!l.host.Reachable(nodes[r.NodeID].RaftAddr) || l.host.SendingSnapshot(p.shardID, r.ReplicaID)):
		default:
			info.ISR = append(info.ISR, r.NodeID)
		}
	}
	if p.local != nil {
		if id, term, ok := p.local.Leader(); ok {
			for _, r := range p.replicas {
				if r.ReplicaID == id {
					info.Leader, info.LeaderEpoch = r.NodeID, int32(term)
				}
			}
		}
		return info, nil
	}
	// No replica here: the leader last reported to the metadata. It may be
	// stale for an election timeout; a client sent there is told
	// NOT_LEADER_OR_FOLLOWER and asks again.
	if p.leader != 0 {
		info.Leader, info.LeaderEpoch = p.leader, int32(p.leaderTerm)
	}
	return info, nil
}

// Host is the node's Raft host, for statistics.
func (l *Log) Host() *replica.Host { return l.host }

// PartitionStat describes one of this node's replicas, for metrics.
type PartitionStat struct {
	TopicPartition
	Leader      bool
	StartOffset int64
	EndOffset   int64 // the high watermark
	SizeBytes   int64
}

// LocalPartitions lists this node's partition replicas.
func (l *Log) LocalPartitions() []PartitionStat {
	var out []PartitionStat
	for name, t := range l.view.Load().topics {
		for i, p := range t.parts {
			if p.local == nil {
				continue
			}
			part := p.local.Partition()
			if part == nil {
				continue
			}
			lg := part.Log()
			out = append(out, PartitionStat{
				TopicPartition: TopicPartition{name, int32(i)}, Leader: p.local.IsLeader(),
				StartOffset: lg.StartOffset(), EndOffset: lg.EndOffset(), SizeBytes: lg.Size(),
			})
		}
	}
	return out
}
