package replog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/partition"
	"github.com/samsa-io/samsa/log/replica"
	"github.com/samsa-io/samsa/log/segment"
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return tp.Topic + "-" + strconv.Itoa(int(tp.Partition)) }

// Log is this node's handle on the replicated log.
type Log struct {
	cfg    Config
	logger *slog.Logger
	host   *replica.Host
	meta   *replica.Meta

	view        atomic.Pointer[view]
	reconcileMu sync.Mutex       // one reconcile at a time
	viewChanged replica.Notifier // broadcast when a new view is stored

	producerIDs producerIDs
	free        freeSpace

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// view is what this node knows of the metadata, rebuilt at every change
// and read without locks.
type view struct {
	version uint64
	topics  map[string]*topicView
	nodes   map[uint64]meta.Node
	// lagging holds, by shard, the nodes whose replica reported being
	// behind its leader (lag.go).
	lagging map[uint64]map[uint64]bool
}

type topicView struct {
	meta.Topic
	settings meta.LogSettings
	parts    []*partView
}

type partView struct {
	shardID  uint64
	replicas []meta.Replica
	local    *replica.Shard // this node's replica, or nil
	// leader and leaderTerm are the last leader reported to the metadata
	// (leaders.go), for nodes without a replica of the partition.
	leader, leaderTerm uint64
	target             []uint64 // the nodes a move in progress ends on (move.go)
}

// Open starts this node: Raft, the meta shard, the node's registration in
// it, and the replicas of the partitions assigned to the node. It returns
// once the meta shard has a leader, which in a cluster needs a majority of
// Peers running.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replog: %w", err)
	}
	if err := os.MkdirAll(cfg.partitionsDir(), 0o755); err != nil {
		return nil, fmt.Errorf("replog: %w", err)
	}
	host, err := replica.Start(cfg.Raft)
	if err != nil {
		return nil, err
	}
	l := &Log{cfg: cfg, logger: cfg.Logger, host: host, done: make(chan struct{})}
	l.free.dir, l.free.min = cfg.DataDir, cfg.MinFreeBytes
	l.view.Store(&view{topics: map[string]*topicView{}, nodes: map[uint64]meta.Node{}})
	if _, member := cfg.Peers[cfg.NodeID]; !member && !cfg.Join {
		host.Close()
		return nil, fmt.Errorf("replog: node %d is not among peers %v: start it with join to add it to a running cluster", cfg.NodeID, cfg.Peers)
	}
	voters := cfg.metaVoters()
	_, voter := voters[cfg.NodeID]
	if l.meta, err = host.StartMeta(voters, cfg.Join || !voter); err != nil {
		host.Close()
		return nil, err
	}
	if err := l.register(ctx); err != nil {
		host.Close()
		return nil, err
	}
	if err := l.reconcile(); err != nil {
		l.logger.Warn("starting partition replicas", "err", err)
	}
	l.wg.Add(6)
	go l.lagLoop()
	go l.watch()
	go l.retain()
	go l.balanceLoop()
	go l.reportLeaders()
	go l.moveLoop()
	return l, nil
}

// register waits for the meta shard's leader and records this node's
// addresses in the metadata.
func (l *Log) register(ctx context.Context) error {
	for {
		var have meta.Node
		var ok bool
		l.meta.Read(func(s *meta.State) { have, ok = s.Node(l.cfg.NodeID) })
		if ok && have.RaftAddr == l.cfg.RaftAddr && have.KafkaAddr == l.cfg.KafkaAddr {
			return nil
		}
		if _, err := l.host.WaitLeader(ctx, meta.MetaShardID); err != nil {
			return fmt.Errorf("replog: waiting for the meta shard: %w", err)
		}
		res, err := l.meta.Propose(ctx, meta.RegisterNode{ID: l.cfg.NodeID, RaftAddr: l.cfg.RaftAddr, KafkaAddr: l.cfg.KafkaAddr})
		if err == nil {
			if err = res.Err(); err != nil {
				return fmt.Errorf("replog: registering node %d: %w", l.cfg.NodeID, err)
			}
			continue
		}
		if ctx.Err() != nil {
			return fmt.Errorf("replog: registering node %d: %w", l.cfg.NodeID, err)
		}
		time.Sleep(50 * time.Millisecond) // an election in progress
	}
}

// watch reconciles after every metadata change.
func (l *Log) watch() {
	defer l.wg.Done()
	for {
		changed := l.meta.Changed()
		retry := time.Duration(0)
		if err := l.reconcile(); err != nil {
			l.logger.Warn("reconciling partition replicas", "err", err)
			retry = time.Second
		}
		var wait <-chan time.Time
		if retry > 0 {
			wait = time.After(retry)
		}
		select {
		case <-changed:
		case <-wait:
		case <-l.done:
			return
		}
	}
}

// reconcile rebuilds the view from the metadata and makes the local
// replicas match it: start those assigned to this node, apply changed
// topic settings, stop (and delete) those no longer assigned.
func (l *Log) reconcile() error {
	l.reconcileMu.Lock()
	defer l.reconcileMu.Unlock()
	var topics []meta.Topic
	var nodes []meta.Node
	var version uint64
	var lagging map[uint64][]uint64
	l.meta.Read(func(s *meta.State) { topics, nodes, version, lagging = s.Topics(), s.Nodes(), s.Version(), s.Lagging() })

	old := l.view.Load()
	v := &view{version: version, topics: make(map[string]*topicView, len(topics)), nodes: make(map[uint64]meta.Node, len(nodes))}
	for _, n := range nodes {
		v.nodes[n.ID] = n
	}
	v.lagging = map[uint64]map[uint64]bool{}
	for node, shards := range lagging {
		for _, shard := range shards {
			if v.lagging[shard] == nil {
				v.lagging[shard] = map[uint64]bool{}
			}
			v.lagging[shard][node] = true
		}
	}
	var errs []error
	keep := map[uint64]bool{}
	for _, t := range topics {
		tv := &topicView{Topic: t, settings: t.LogSettings(), parts: make([]*partView, len(t.Partitions))}
		pcfg := l.partitionConfig(tv.settings)
		for i, p := range t.Partitions {
			pv := &partView{shardID: p.ShardID, replicas: p.Replicas, leader: p.Leader, leaderTerm: p.LeaderTerm, target: p.Target}
			tv.parts[i] = pv
			for _, r := range p.Replicas {
				if r.NodeID != l.cfg.NodeID {
					continue
				}
				keep[p.ShardID] = true
				s, err := l.startReplica(TopicPartition{t.Name, int32(i)}, p, r, v.nodes, pcfg)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if err := s.SetConfig(pcfg); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", TopicPartition{t.Name, int32(i)}, err))
				}
				pv.local = s
			}
		}
		v.topics[t.Name] = tv
	}
	l.view.Store(v)
	l.viewChanged.Broadcast()
	for _, t := range old.topics {
		for _, p := range t.parts {
			if p.local != nil && !keep[p.shardID] {
				if err := l.host.StopPartition(p.shardID, true); err != nil {
					errs = append(errs, err)
				}
				l.logger.Info("partition replica removed", "shard", p.shardID, "topic", t.Name)
			}
		}
	}
	return errors.Join(errs...)
}

// startReplica starts this node's replica of a partition. A replica
// placed when the partition was created (its id is the node's) starts
// with the partition's first members; one added by a move joins the
// shard, as a non-voting member until it is promoted.
func (l *Log) startReplica(tp TopicPartition, p meta.Partition, r meta.Replica, nodes map[uint64]meta.Node, pcfg partition.Config) (*replica.Shard, error) {
	if s := l.host.Shard(p.ShardID); s != nil {
		return s, nil
	}
	join := r.ReplicaID >= meta.FirstMovedReplicaID
	members := map[uint64]string{}
	for _, m := range p.Replicas {
		if join || m.ReplicaID >= meta.FirstMovedReplicaID {
			continue
		}
		n, ok := nodes[m.NodeID]
		if !ok {
			return nil, fmt.Errorf("%s: replica on unregistered node %d", tp, m.NodeID)
		}
		members[m.ReplicaID] = n.RaftAddr
	}
	s, err := l.host.StartPartition(replica.PartitionSpec{
		ShardID: p.ShardID, ReplicaID: r.ReplicaID, Members: members,
		Join: join, NonVoting: r.Learner,
		Dir:    filepath.Join(l.cfg.partitionsDir(), tp.String()),
		Config: pcfg,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tp, err)
	}
	l.logger.Info("partition replica started", "topic", tp.Topic, "partition", tp.Partition, "shard", p.ShardID, "replica", r.ReplicaID, "learner", r.Learner)
	return s, nil
}

// partitionConfig maps a topic's settings onto the storage engine's.
func (l *Log) partitionConfig(s meta.LogSettings) partition.Config {
	c := segment.Config{
		SegmentBytes: s.SegmentBytes, SegmentMs: s.SegmentMs,
		RetentionMs: s.RetentionMs, RetentionBytes: s.RetentionBytes,
		IndexIntervalBytes: s.IndexIntervalBytes, Logger: l.logger,
	}
	// segment.Config reads zero as "use the default", but zero is a valid
	// Kafka value: retention.ms=0 expires at once, retention.bytes=0 keeps
	// only the active segment, index.interval.bytes=0 indexes every batch.
	if c.RetentionMs == 0 {
		c.RetentionMs = 1
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = 1
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = 1
	}
	return partition.Config{Log: c, Logger: l.logger}
}

// part finds a partition in the current view.
func (l *Log) part(tp TopicPartition) (*topicView, *partView, error) {
	t := l.view.Load().topics[tp.Topic]
	if t == nil || tp.Partition < 0 || int(tp.Partition) >= len(t.parts) {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnknownTopicOrPartition, tp)
	}
	return t, t.parts[tp.Partition], nil
}

// leading returns this node's replica of tp if it leads the partition.
func (l *Log) leading(tp TopicPartition) (*topicView, *replica.Shard, error) {
	t, p, err := l.part(tp)
	if err != nil {
		return nil, nil, err
	}
	if p.local == nil {
		return nil, nil, fmt.Errorf("%w: %s has no replica on node %d", ErrNotLeader, tp, l.cfg.NodeID)
	}
	id, _, ok := p.local.Leader()
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("%w: %s", ErrLeaderNotAvailable, tp)
	case id != p.local.ReplicaID():
		return nil, nil, fmt.Errorf("%w: %s is led by replica %d", ErrNotLeader, tp, id)
	case p.local.Partition() == nil:
		return nil, nil, fmt.Errorf("%w: %s is still opening", ErrLeaderNotAvailable, tp)
	}
	return t, p.local, nil
}

// NodeID is this node's id.
func (l *Log) NodeID() uint64 { return l.cfg.NodeID }

// Close stops this node: its loops, every replica (each syncs a final
// checkpoint) and Raft. It waits for in-flight work until ctx ends.
func (l *Log) Close(ctx context.Context) error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		done := make(chan struct{})
		go func() {
			l.wg.Wait()
			l.host.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("replog: close: %w", ctx.Err())
		}
	})
	return err
}
