package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func newCluster(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster's brokers, check its health, add and remove nodes",
		Long:  "Show the brokers of the cluster, its controller and id, check that it is healthy, balance its leaders, add and remove nodes.",
		Example: `  samsa cluster info
  samsa cluster health
  samsa cluster rebalance
  samsa cluster add-node 4 --raft-addr host4:9093
  samsa cluster remove-node 3`,
	})
	cmd.AddCommand(newClusterInfo(g), newClusterHealth(g), newClusterRebalance(g), newClusterAddNode(g), newClusterRemoveNode(g))
	return cmd
}

type clusterInfo struct {
	ClusterID  string       `json:"cluster_id" yaml:"cluster_id"`
	Controller int32        `json:"controller" yaml:"controller"`
	Brokers    []brokerInfo `json:"brokers" yaml:"brokers"`
}

type brokerInfo struct {
	NodeID     int32  `json:"node_id" yaml:"node_id"`
	Address    string `json:"address" yaml:"address"`
	Rack       string `json:"rack,omitempty" yaml:"rack,omitempty"`
	Controller bool   `json:"controller" yaml:"controller"`
	// KafkaVersion is franz-go's guess of the Kafka release whose API
	// versions match the broker's: the protocol level it speaks, not its
	// software version, which the protocol does not carry.
	KafkaVersion string     `json:"kafka_version" yaml:"kafka_version"`
	APIs         []apiRange `json:"apis" yaml:"apis"`
	Error        string     `json:"error,omitempty" yaml:"error,omitempty"`
}

type apiRange struct {
	Key  int16  `json:"key" yaml:"key"`
	Name string `json:"name" yaml:"name"`
	Min  int16  `json:"min" yaml:"min"`
	Max  int16  `json:"max" yaml:"max"`
}

type clusterInfoFlags struct {
	apis bool
}

func newClusterInfo(g *globals) *cobra.Command {
	f := &clusterInfoFlags{}
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show the brokers, controller and cluster id",
		Long: `Show the cluster id, the controller and every broker with its address and the
Kafka protocol level it speaks (guessed from the API versions it advertises).
--apis lists each broker's APIs and versions; -o json and -o yaml always do.`,
		Example: `  samsa cluster info
  samsa cluster info --apis`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			md, err := adm.BrokerMetadata(ctx)
			if err != nil {
				return err
			}
			versions, err := adm.ApiVersions(ctx)
			if err != nil {
				return err
			}
			info := clusterInfo{ClusterID: md.Cluster, Controller: md.Controller, Brokers: []brokerInfo{}}
			for _, b := range md.Brokers {
				bi := brokerInfo{NodeID: b.NodeID, Address: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), Controller: b.NodeID == md.Controller, APIs: []apiRange{}}
				if b.Rack != nil {
					bi.Rack = *b.Rack
				}
				v, ok := versions[b.NodeID]
				switch {
				case !ok:
					bi.Error = "not asked for its API versions"
				case v.Err != nil:
					bi.Error = v.Err.Error()
				default:
					bi.KafkaVersion = v.VersionGuess(kversion.SkipKeys(missingKeys(v)...))
					v.EachKeySorted(func(key, lo, hi int16) {
						bi.APIs = append(bi.APIs, apiRange{Key: key, Name: kmsg.NameForKey(key), Min: lo, Max: hi})
					})
				}
				info.Brokers = append(info.Brokers, bi)
			}
			return g.print(cmd.OutOrStdout(), info, func(tw *tabwriter.Writer) { info.table(tw, f.apis) })
		},
	}
	cmd.Flags().BoolVar(&f.apis, "apis", false, "also list each broker's APIs and their versions")
	return cmd
}

func (c clusterInfo) table(tw *tabwriter.Writer, apis bool) {
	fmt.Fprintf(tw, "CLUSTER ID\t%s\n", c.ClusterID)
	fmt.Fprintf(tw, "CONTROLLER\t%d\n\n", c.Controller)
	fmt.Fprintln(tw, "BROKER\tADDRESS\tRACK\tAPIS\tKAFKA PROTOCOL LEVEL")
	for _, b := range c.Brokers {
		id := fmt.Sprint(b.NodeID)
		if b.Controller {
			id += "*"
		}
		rack := b.Rack
		if rack == "" {
			rack = "-"
		}
		level := b.KafkaVersion
		if b.Error != "" {
			level = "error: " + b.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", id, b.Address, rack, len(b.APIs), level)
	}
	if !apis {
		return
	}
	for _, b := range c.Brokers {
		fmt.Fprintf(tw, "\nAPIS OF BROKER %d\tKEY\tVERSIONS\n", b.NodeID)
		for _, a := range b.APIs {
			fmt.Fprintf(tw, "%s\t%d\t%d–%d\n", a.Name, a.Key, a.Min, a.Max)
		}
	}
}

type clusterHealth struct {
	Healthy    bool     `json:"healthy" yaml:"healthy"`
	Brokers    int      `json:"brokers" yaml:"brokers"`
	Topics     int      `json:"topics" yaml:"topics"`
	Partitions int      `json:"partitions" yaml:"partitions"`
	Problems   []string `json:"problems" yaml:"problems"`
}

func newClusterHealth(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check that every broker answers and every partition has a leader",
		Long: `Check the cluster: every broker in the metadata answers ApiVersions, and
every partition of every topic has a leader that is one of those brokers.
Exits 1 and lists the problems otherwise.`,
		Example: `  samsa cluster health && echo ready`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			h, err := checkHealth(ctx, adm)
			if err != nil {
				return err
			}
			err = g.print(cmd.OutOrStdout(), h, func(tw *tabwriter.Writer) {
				if h.Healthy {
					fmt.Fprintf(tw, "healthy: %d broker(s) answer, %d topic(s), %d partition(s), every partition has a leader\n", h.Brokers, h.Topics, h.Partitions)
					return
				}
				fmt.Fprintf(tw, "unhealthy: %d broker(s), %d topic(s), %d partition(s)\n", h.Brokers, h.Topics, h.Partitions)
				for _, p := range h.Problems {
					fmt.Fprintf(tw, "  - %s\n", p)
				}
			})
			if err == nil && !h.Healthy {
				err = fmt.Errorf("the cluster is unhealthy: %d problem(s)", len(h.Problems))
			}
			return err
		},
	}
}

func checkHealth(ctx context.Context, adm *kadm.Client) (clusterHealth, error) {
	h := clusterHealth{Problems: []string{}}
	md, err := adm.Metadata(ctx)
	if err != nil {
		return h, err
	}
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		return h, err
	}
	brokers := map[int32]bool{}
	for _, b := range md.Brokers {
		brokers[b.NodeID] = true
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		switch v, ok := versions[b.NodeID]; {
		case !ok:
			h.Problems = append(h.Problems, fmt.Sprintf("broker %d at %s was not asked for its API versions", b.NodeID, addr))
		case v.Err != nil:
			h.Problems = append(h.Problems, fmt.Sprintf("broker %d at %s does not answer: %v", b.NodeID, addr, v.Err))
		}
	}
	h.Brokers = len(md.Brokers)
	if h.Brokers == 0 {
		h.Problems = append(h.Problems, "the metadata lists no brokers")
	}
	for _, td := range md.Topics.Sorted() {
		if td.IsInternal {
			continue
		}
		h.Topics++
		if td.Err != nil {
			h.Problems = append(h.Problems, fmt.Sprintf("topic %s: %v", td.Topic, td.Err))
			continue
		}
		for _, p := range td.Partitions.Sorted() {
			h.Partitions++
			switch {
			case p.Err != nil:
				h.Problems = append(h.Problems, fmt.Sprintf("%s[%d]: %v", td.Topic, p.Partition, p.Err))
			case p.Leader < 0:
				h.Problems = append(h.Problems, fmt.Sprintf("%s[%d] has no leader", td.Topic, p.Partition))
			case !brokers[p.Leader]:
				h.Problems = append(h.Problems, fmt.Sprintf("%s[%d] is led by broker %d, which the metadata does not list", td.Topic, p.Partition, p.Leader))
			}
		}
	}
	h.Healthy = len(h.Problems) == 0
	return h, nil
}

// missingKeys are the API keys a broker does not advertise. Guessing its
// Kafka level without them compares what it has: a broker that leaves out
// the inter-broker and security APIs (as Samsa does) otherwise looks like
// Kafka 0.9.
func missingKeys(v kadm.BrokerApiVersions) []int16 {
	var out []int16
	for k := int16(0); k <= kmsg.MaxKey; k++ {
		if _, ok := v.KeyMaxVersion(k); !ok {
			out = append(out, k)
		}
	}
	return out
}

// rebalanceResult is one partition's outcome of a preferred leader
// election.
type rebalanceResult struct {
	Topic     string `json:"topic" yaml:"topic"`
	Partition int32  `json:"partition" yaml:"partition"`
	Result    string `json:"result" yaml:"result"`
	Error     string `json:"error,omitempty" yaml:"error,omitempty"`
}

func newClusterRebalance(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rebalance",
		Short: "Move each partition's leadership back to its preferred replica",
		Long: `Move the leadership of every partition back to its preferred replica (the
first in its replica list), as kafka-leader-election --election-type preferred
does. Leaders are spread over the nodes when topics are created; after a node
was down, the partitions it led are led elsewhere until it takes them back.
Nodes do that by themselves every 10 seconds; this asks them to do it now and
waits (up to --timeout) until it is done. A preferred replica that is down or
not caught up keeps its partition where it is: the command says which.`,
		Example: `  samsa cluster rebalance
  samsa cluster rebalance --timeout 30s -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			// The broker waits for the moves up to the request's timeout:
			// answer before --timeout runs out.
			if dl, ok := ctx.Deadline(); ok {
				adm.SetTimeoutMillis(int32(time.Until(dl).Milliseconds() * 4 / 5))
			}
			res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
			if err != nil {
				return err
			}
			out := []rebalanceResult{}
			failed := 0
			for _, topic := range slices.Sorted(maps.Keys(res)) {
				for _, part := range slices.Sorted(maps.Keys(res[topic])) {
					r := res[topic][part]
					rr := rebalanceResult{Topic: topic, Partition: part, Result: "moved to its preferred replica"}
					switch {
					case errors.Is(r.Err, kerr.ElectionNotNeeded):
						rr.Result = "already led by its preferred replica"
					case r.Err != nil:
						rr.Result, rr.Error, failed = "not moved", cmp.Or(r.ErrMessage, r.Err.Error()), failed+1
					}
					out = append(out, rr)
				}
			}
			err = g.print(cmd.OutOrStdout(), out, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "TOPIC\tPARTITION\tRESULT")
				for _, r := range out {
					line := r.Result
					if r.Error != "" {
						line += ": " + r.Error
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\n", r.Topic, r.Partition, line)
				}
			})
			if err == nil && failed > 0 {
				err = fmt.Errorf("%d partition(s) not led by their preferred replica", failed)
			}
			return err
		},
	}
}
