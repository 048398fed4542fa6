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
// leads, that it does and in which term (meta.ReportLeader). A node that
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
		changed, viewed := l.host.LeaderChanged(), l.nextView()
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

// reportLeading proposes a ReportLeader for each partition this node
// leads that the metadata does not yet show it leading in this term.
func (l *Log) reportLeading(ctx context.Context) {
	for _, t := range l.view.Load().topics {
		for _, p := range t.parts {
			if p.local == nil {
				continue
			}
			id, term, ok := p.local.Leader()
			if !ok || id != p.local.ReplicaID() || (p.leader == l.cfg.NodeID && p.leaderTerm == term) || term < p.leaderTerm {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			res, err := l.meta.Propose(pctx, meta.ReportLeader{ShardID: p.shardID, NodeID: l.cfg.NodeID, Term: term})
			cancel()
			if err == nil {
				err = res.Err()
			}
			if err != nil {
				l.logger.Debug("reporting a partition's leader", "shard", p.shardID, "term", term, "err", err)
			}
		}
	}
}
