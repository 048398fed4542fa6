package engine

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/samsa-io/samsa/log/replog"
)

// logCollector exports the replicated log's state at scrape time: per
// partition replica its offsets and size, and the Raft host's counters.
// Labels are topic and partition only.
type logCollector struct{ log *replog.Log }

var (
	descHWM       = prometheus.NewDesc("samsa_partition_high_watermark", "The partition's high watermark (next offset), on this node's replica.", []string{"topic", "partition"}, nil)
	descStart     = prometheus.NewDesc("samsa_partition_log_start_offset", "The partition's log start offset, on this node's replica.", []string{"topic", "partition"}, nil)
	descSize      = prometheus.NewDesc("samsa_partition_log_size_bytes", "Bytes of segment files of this node's replica.", []string{"topic", "partition"}, nil)
	descLeader    = prometheus.NewDesc("samsa_partition_leader", "1 if this node's replica leads the partition.", []string{"topic", "partition"}, nil)
	descChanges   = prometheus.NewDesc("samsa_raft_leader_changes_total", "Raft leader changes seen by this node, every shard.", nil, nil)
	descProposals = prometheus.NewDesc("samsa_raft_proposals_total", "Partition entries proposed from this node.", nil, nil)
	descRestores  = prometheus.NewDesc("samsa_raft_snapshot_restores_total", "Partition replicas that caught up from a snapshot.", nil, nil)
	descTopics    = prometheus.NewDesc("samsa_topics", "Topics in the cluster.", nil, nil)
)

func (logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHWM, descStart, descSize, descLeader, descChanges, descProposals, descRestores, descTopics} {
		ch <- d
	}
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.log.LocalPartitions() {
		part := strconv.Itoa(int(p.Partition))
		leader := 0.0
		if p.Leader {
			leader = 1
		}
		ch <- prometheus.MustNewConstMetric(descHWM, prometheus.GaugeValue, float64(p.EndOffset), p.Topic, part)
		ch <- prometheus.MustNewConstMetric(descStart, prometheus.GaugeValue, float64(p.StartOffset), p.Topic, part)
		ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(p.SizeBytes), p.Topic, part)
		ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader, p.Topic, part)
	}
	h := c.log.Host()
	ch <- prometheus.MustNewConstMetric(descChanges, prometheus.CounterValue, float64(h.LeaderChanges()))
	ch <- prometheus.MustNewConstMetric(descProposals, prometheus.CounterValue, float64(h.Proposals()))
	ch <- prometheus.MustNewConstMetric(descRestores, prometheus.CounterValue, float64(h.Restores()))
	ch <- prometheus.MustNewConstMetric(descTopics, prometheus.GaugeValue, float64(len(c.log.Topics())))
}
