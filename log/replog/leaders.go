package replog

import (
	"context"
	"time"

	"github.com/samsa-io/samsa/log/meta"
)

// reportInterval is how often a node checks, besides at every leader
// change, that the metadata names it as the leader of the partitions it
// leads: a report that failed (an election of the meta shard) is retried.
const reportInterval = 5 * time.Second

// reportLeaders records in the metadata, for every partition this node
// leads, that it does and in which term (meta.ReportLeaders). A node that
// hosts no replica of a partition knows its leader only this way, and
// Kafka clients ask any node for every partition's leader.
func (l *Log) reportLeaders() {
	defer l.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-l.done; cancel() }()
	tick := time.NewTicker(reportInterval)
	defer tick.Stop()
	for {
		changed, viewed := l.host.LeaderChanged(), l.viewChanged.Wait()
		l.reportLeading(ctx)
		select {
		case <-changed:
		case <-viewed: // new partitions, or a report applied
		case <-tick.C:
		case <-l.done:
			return
		}
	}
}

// reportLeading proposes one ReportLeaders with every partition this
// node leads that the metadata does not yet show it leading in this term.
// Partitions with a replica on every node are left out: every node knows
// their leader from its own replica.
func (l *Log) reportLeading(ctx context.Context) {
	v := l.view.Load()
	var shards []meta.ShardTerm
	for _, t := range v.topics {
		for _, p := range t.parts {
			if p.local == nil || len(p.replicas) >= len(v.nodes) {
				continue
			}
			id, term, ok := p.local.Leader()
			if !ok || id != p.local.ReplicaID() || (p.leader == l.cfg.NodeID && p.leaderTerm == term) || term < p.leaderTerm {
				continue
			}
			shards = append(shards, meta.ShardTerm{ShardID: p.shardID, Term: term})
		}
	}
	for len(shards) > 0 {
		n := min(len(shards), meta.MaxReportedLeaders)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := l.meta.Propose(pctx, meta.ReportLeaders{NodeID: l.cfg.NodeID, Shards: shards[:n]})
		cancel()
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			l.logger.Debug("reporting partition leaders", "partitions", n, "err", err)
			return // the next pass tries again, with a fresh view
		}
		shards = shards[n:]
	}
}
