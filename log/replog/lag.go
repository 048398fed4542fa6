package replog

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/samsa-io/samsa/log/meta"
)

// Lagging followers. Every lagCheckInterval a node asks each of its
// follower replicas whether it has applied what its leader has committed
// (a Raft ReadIndex, answered once the replica has applied up to the
// leader's commit index, given lagCheckWait). The shards where it has
// not are reported to the metadata (meta.ReportLagging), only when the
// set changes, and every node leaves those replicas out of the in-sync
// replicas it reports. A follower that cannot report (its node is down
// or cut off) is left out by its partition's leader, whose transport
// fails to reach it (topics.go).

const (
	lagCheckInterval = 2 * time.Second
	lagCheckWait     = time.Second
	lagCheckParallel = 16
)

// lagLoop checks this node's followers and reports those behind.
func (l *Log) lagLoop() {
	defer l.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-l.done; cancel() }()
	tick := time.NewTicker(lagCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-l.done:
			return
		}
		lagging := l.laggingFollowers(ctx)
		var reported []uint64
		l.meta.Read(func(s *meta.State) { reported = s.Lagging()[l.cfg.NodeID] })
		if slices.Equal(lagging, reported) {
			continue
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := l.proposeMeta(pctx, meta.ReportLagging{NodeID: l.cfg.NodeID, Shards: lagging}); err != nil && ctx.Err() == nil {
			l.logger.Debug("reporting lagging replicas", "err", err)
		} else if len(lagging) > 0 {
			l.logger.Info("replicas behind their leader", "shards", lagging)
		}
		pcancel()
	}
}

// laggingFollowers returns, sorted, the shards of this node's follower
// replicas that have not caught up with their leader within lagCheckWait.
func (l *Log) laggingFollowers(ctx context.Context) []uint64 {
	var mu sync.Mutex
	var out []uint64
	var wg sync.WaitGroup
	sem := make(chan struct{}, lagCheckParallel)
	for _, t := range l.view.Load().topics {
		for _, p := range t.parts {
			if p.local == nil || p.local.IsLeader() {
				continue
			}
			if r, ok := p.replicaOn(l.cfg.NodeID); ok && r.Learner {
				continue // a learner's catching up is the move's (move.go)
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				cctx, cancel := context.WithTimeout(ctx, lagCheckWait)
				defer cancel()
				if err := p.local.CaughtUp(cctx); err != nil && ctx.Err() == nil {
					mu.Lock()
					out = append(out, p.shardID)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	slices.Sort(out)
	return out
}
