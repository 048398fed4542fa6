package replog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/samsa-io/samsa/log/meta"
)

// Leader balance. A partition's preferred leader (Kafka's term) is its
// first replica, and the controller places replicas so that first
// replicas spread evenly over the nodes. Elections do not care: after a
// node fails, the partitions it led are led elsewhere, and they stay
// there when it returns. So each node moves back the leadership of the
// partitions it is the preferred replica of — itself asking for it, since
// only it knows that it is alive and caught up (a Raft ReadIndex), and a
// leader transfer to a replica that is down would stop writes for an
// election timeout. It does so every LeaderBalanceInterval, and at once
// when anyone proposes meta.RequestLeaderBalance (Kafka's ElectLeaders,
// `samsa cluster rebalance`).

// balanceParallel bounds the caught-up checks of one balance pass that
// run at once: a replica still catching up takes the check's whole 2 s.
const balanceParallel = 16

// balance asks for the leadership of every partition this node is the
// preferred replica of and does not lead, where its replica is caught up.
// It returns how many it asked for.
func (l *Log) balance(ctx context.Context) int {
	type candidate struct {
		tp     TopicPartition
		p      *partView
		leader uint64
	}
	var cands []candidate
	for name, t := range l.view.Load().topics {
		for i, p := range t.parts {
			if p.local == nil || len(p.replicas) == 0 || p.replicas[0].NodeID != l.cfg.NodeID {
				continue
			}
			if leader, _, ok := p.local.Leader(); ok && leader != p.local.ReplicaID() {
				cands = append(cands, candidate{TopicPartition{name, int32(i)}, p, leader})
			}
		}
	}
	var asked atomic.Int32
	var wg sync.WaitGroup
	sem := make(chan struct{}, balanceParallel)
	for _, c := range cands {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := c.p.local.CaughtUp(cctx)
			cancel()
			if err != nil {
				l.logger.Debug("not taking back leadership: not caught up", "topic", c.tp.Topic, "partition", c.tp.Partition, "err", err)
				return
			}
			if err := c.p.local.TakeLeadership(); err != nil {
				l.logger.Warn("taking back leadership", "topic", c.tp.Topic, "partition", c.tp.Partition, "err", err)
				return
			}
			l.logger.Info("taking back leadership as the preferred replica", "topic", c.tp.Topic, "partition", c.tp.Partition, "from_replica", c.leader)
			asked.Add(1)
		}()
	}
	wg.Wait()
	return int(asked.Load())
}

// balanceLoop runs balance every LeaderBalanceInterval and whenever the
// metadata's count of balance requests grows.
func (l *Log) balanceLoop() {
	defer l.wg.Done()
	var tick <-chan time.Time
	if l.cfg.LeaderBalanceInterval > 0 {
		t := time.NewTicker(l.cfg.LeaderBalanceInterval)
		defer t.Stop()
		tick = t.C
	}
	var requests uint64
	l.meta.Read(func(s *meta.State) { requests = s.LeaderBalances() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-l.done; cancel() }()
	for {
		changed := l.meta.Changed()
		var now uint64
		l.meta.Read(func(s *meta.State) { now = s.LeaderBalances() })
		if now != requests {
			requests = now
			l.balance(ctx)
		}
		select {
		case <-tick:
			l.balance(ctx)
		case <-changed:
		case <-l.done:
			return
		}
	}
}

// RequestLeaderBalance asks every node to move leadership back to the
// preferred replicas now. It returns once the request is committed; the
// moves follow within an election timeout where the preferred replicas
// are up and caught up.
func (l *Log) RequestLeaderBalance(ctx context.Context) error {
	res, err := l.meta.Propose(ctx, meta.RequestLeaderBalance{})
	if err != nil {
		return fmt.Errorf("replog: requesting a leader balance: %w", mapReplicaError(err))
	}
	return res.Err()
}

// PreferredLeader returns the node id of a partition's preferred leader:
// its first replica.
func (l *Log) PreferredLeader(tp TopicPartition) (uint64, error) {
	_, p, err := l.part(tp)
	if err != nil {
		return 0, err
	}
	if len(p.replicas) == 0 {
		return 0, fmt.Errorf("%w: %s has no replicas", ErrLeaderNotAvailable, tp)
	}
	return p.replicas[0].NodeID, nil
}
