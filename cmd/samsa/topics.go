package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newTopics(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "topics",
		Short: "Create, list, describe, alter and delete topics",
		Long: `Manage topics on any Kafka-compatible cluster: create them with their
partition count and configs, list and describe them (partitions, leaders,
replicas, offsets and configs), change their configs, grow them, move their
partitions to other nodes, delete them.`,
		Example: `  samsa topics create MyfirstTopic1 --partitions 2 --replication-factor 1
  samsa topics list
  samsa topics describe MyfirstTopic1 -o json`,
	})
	cmd.AddCommand(newTopicsCreate(g), newTopicsList(g), newTopicsDescribe(g), newTopicsDelete(g),
		newTopicsAlterConfig(g), newTopicsAddPartitions(g), newTopicsMovePartition(g))
	return cmd
}

type topicsCreateFlags struct {
	partitions  int32
	replication int16
	configs     []string
}

func newTopicsCreate(g *globals) *cobra.Command {
	f := &topicsCreateFlags{}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Long: `Create a topic. Without --partitions or --replication-factor the broker's
defaults are used. --config sets a topic config (retention.ms, cleanup.policy,
max.message.bytes, ...) and may be repeated.`,
		Example: `  samsa topics create MyfirstTopic1 --partitions 2 --replication-factor 1
  samsa topics create recordings --config retention.ms=-1`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error { return f.run(cmd, g, a[0]) },
	}
	fl := cmd.Flags()
	fl.Int32VarP(&f.partitions, "partitions", "p", -1, "number of partitions (-1: the broker's default)")
	fl.Int16VarP(&f.replication, "replication-factor", "r", -1, "replicas of each partition (-1: the broker's default)")
	fl.StringArrayVarP(&f.configs, "config", "c", nil, "topic config as key=value (repeatable)")
	return cmd
}

func (f *topicsCreateFlags) run(cmd *cobra.Command, g *globals, topic string) error {
	if f.partitions == 0 || f.partitions < -1 {
		return usageError{fmt.Errorf("--partitions: %d must be at least 1 (or -1 for the broker's default)", f.partitions)}
	}
	if f.replication == 0 || f.replication < -1 {
		return usageError{fmt.Errorf("--replication-factor: %d must be at least 1 (or -1 for the broker's default)", f.replication)}
	}
	kvs, err := parseKeyValues("config", f.configs)
	if err != nil {
		return err
	}
	configs := make(map[string]*string, len(kvs))
	for k, v := range kvs {
		configs[k] = &v
	}
	ctx, cancel := g.opContext(cmd)
	defer cancel()
	adm, err := g.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	rs, err := adm.CreateTopics(ctx, f.partitions, f.replication, configs, topic)
	if err != nil {
		return err
	}
	r, ok := rs[topic]
	if !ok {
		return fmt.Errorf("create topic %q: the broker did not answer for it", topic)
	}
	if r.Err != nil {
		if errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("topic %q already exists", topic)
		}
		return fmt.Errorf("create topic %q: %w", topic, brokerError(r.Err, r.ErrMessage))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "created topic %s (%s)\n", topic, f.shape(r))
	return nil
}

// shape describes what was created: as the broker says (CreateTopics v5+,
// Kafka 2.4), else as asked.
func (f *topicsCreateFlags) shape(r kadm.CreateTopicResponse) string {
	p, rf := r.NumPartitions, r.ReplicationFactor
	if p <= 0 {
		p, rf = f.partitions, f.replication
	}
	describe := func(n int64, what string) string {
		if n < 0 {
			return what + ": broker default"
		}
		return fmt.Sprintf("%s: %d", what, n)
	}
	return describe(int64(p), "partitions") + ", " + describe(int64(rf), "replication factor")
}

// brokerError adds the broker's own explanation to a Kafka error code,
// which is usually the part a person can act on.
func brokerError(err error, msg string) error {
	if msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

// topicSummary is one row of `topics list`.
type topicSummary struct {
	Name              string `json:"name" yaml:"name"`
	Partitions        int    `json:"partitions" yaml:"partitions"`
	ReplicationFactor int    `json:"replication_factor" yaml:"replication_factor"`
}

func newTopicsList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Long:    "List the cluster's topics with their partition count and replication factor.",
		Example: `  samsa topics list
  samsa topics list -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			tds, err := adm.ListTopics(ctx)
			if err != nil {
				return err
			}
			list := []topicSummary{}
			for _, td := range tds.Sorted() {
				list = append(list, topicSummary{Name: td.Topic, Partitions: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas()})
			}
			return g.print(cmd.OutOrStdout(), list, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tPARTITIONS\tREPLICAS")
				for _, t := range list {
					fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Name, t.Partitions, t.ReplicationFactor)
				}
			})
		},
	}
}

// topicDescription is `topics describe`'s output.
type topicDescription struct {
	Name              string            `json:"name" yaml:"name"`
	ID                string            `json:"id" yaml:"id"`
	ReplicationFactor int               `json:"replication_factor" yaml:"replication_factor"`
	Partitions        []partitionInfo   `json:"partitions" yaml:"partitions"`
	Configs           []topicConfigInfo `json:"configs" yaml:"configs"`
}

type partitionInfo struct {
	Partition   int32   `json:"partition" yaml:"partition"`
	Leader      int32   `json:"leader" yaml:"leader"`
	LeaderEpoch int32   `json:"leader_epoch" yaml:"leader_epoch"`
	Replicas    []int32 `json:"replicas" yaml:"replicas"`
	ISR         []int32 `json:"isr" yaml:"isr"`
	Start       int64   `json:"start_offset" yaml:"start_offset"`
	End         int64   `json:"end_offset" yaml:"end_offset"`
	Error       string  `json:"error,omitempty" yaml:"error,omitempty"`
}

type topicConfigInfo struct {
	Name   string `json:"name" yaml:"name"`
	Value  string `json:"value" yaml:"value"`
	Source string `json:"source" yaml:"source"`
}

func newTopicsDescribe(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic's partitions, offsets and configs",
		Long: `Show a topic: for each partition its leader, replicas, in-sync replicas and
start and end offsets (end minus start is how many records it holds), then
the topic's configs and where each value comes from.`,
		Example: `  samsa topics describe MyfirstTopic1
  samsa topics describe MyfirstTopic1 -o yaml`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeTopics,
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			d, err := describeTopic(ctx, adm, a[0])
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), d, func(tw *tabwriter.Writer) { d.table(tw) })
		},
	}
}

func describeTopic(ctx context.Context, adm *kadm.Client, topic string) (topicDescription, error) {
	td, err := topicDetail(ctx, adm, topic)
	if err != nil {
		return topicDescription{}, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return topicDescription{}, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return topicDescription{}, fmt.Errorf("list end offsets: %w", err)
	}
	d := topicDescription{Name: topic, ID: td.ID.String(), ReplicationFactor: td.Partitions.NumReplicas(), Configs: []topicConfigInfo{}}
	for _, p := range td.Partitions.Sorted() {
		pi := partitionInfo{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR, Start: -1, End: -1}
		if s, ok := starts.Lookup(topic, p.Partition); ok && s.Err == nil {
			pi.Start = s.Offset
		}
		if e, ok := ends.Lookup(topic, p.Partition); ok && e.Err == nil {
			pi.End = e.Offset
		}
		if p.Err != nil {
			pi.Error = p.Err.Error()
		}
		d.Partitions = append(d.Partitions, pi)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return d, fmt.Errorf("describe configs: %w", err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil && rc.Err != nil {
		err = brokerError(rc.Err, rc.ErrMessage)
	}
	if err != nil {
		return d, fmt.Errorf("describe configs: %w", err)
	}
	for _, c := range rc.Configs {
		d.Configs = append(d.Configs, topicConfigInfo{Name: c.Key, Value: c.MaybeValue(), Source: configSource(c.Source.String())})
	}
	slices.SortFunc(d.Configs, func(a, b topicConfigInfo) int { return strings.Compare(a.Name, b.Name) })
	return d, nil
}

// configSource shortens Kafka's source names (DYNAMIC_TOPIC_CONFIG → topic).
func configSource(s string) string {
	switch s {
	case "DYNAMIC_TOPIC_CONFIG":
		return "topic"
	case "DEFAULT_CONFIG":
		return "default"
	case "STATIC_BROKER_CONFIG", "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG":
		return "broker"
	}
	return strings.ToLower(s)
}

func (d topicDescription) table(tw *tabwriter.Writer) {
	fmt.Fprintf(tw, "NAME\t%s\n", d.Name)
	fmt.Fprintf(tw, "PARTITIONS\t%d\n", len(d.Partitions))
	fmt.Fprintf(tw, "REPLICATION FACTOR\t%d\n\n", d.ReplicationFactor)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tSTART\tEND\tRECORDS")
	for _, p := range d.Partitions {
		records := "-"
		if p.Start >= 0 && p.End >= 0 {
			records = fmt.Sprint(p.End - p.Start)
		}
		line := fmt.Sprintf("%d\t%d\t%d\t%s\t%s\t%d\t%d\t%s", p.Partition, p.Leader, p.LeaderEpoch, ints(p.Replicas), ints(p.ISR), p.Start, p.End, records)
		if p.Error != "" {
			line += "\t" + p.Error
		}
		fmt.Fprintln(tw, line)
	}
	fmt.Fprintln(tw, "\nCONFIG\tVALUE\tSOURCE")
	for _, c := range d.Configs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Value, c.Source)
	}
}

// ints prints node ids as Kafka's tools do: [1,2,3].
func ints(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func newTopicsDelete(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "delete NAME",
		Aliases:           []string{"rm"},
		Short:             "Delete a topic and all its records",
		Long:              "Delete a topic: its partitions and every record in them are gone for good.",
		Example:           `  samsa topics delete MyfirstTopic1`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeTopics,
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			topic := a[0]
			rs, err := adm.DeleteTopics(ctx, topic)
			if err != nil {
				return err
			}
			r, ok := rs[topic]
			if ok && errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				return unknownTopic(ctx, adm, topic)
			}
			if ok && r.Err != nil {
				return fmt.Errorf("delete topic %q: %w", topic, brokerError(r.Err, r.ErrMessage))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", topic)
			return nil
		},
	}
}

type topicsAlterFlags struct {
	set    []string
	delete []string
}

func newTopicsAlterConfig(g *globals) *cobra.Command {
	f := &topicsAlterFlags{}
	cmd := &cobra.Command{
		Use:   "alter-config NAME",
		Short: "Set or remove a topic's configs",
		Long: `Change a topic's configs incrementally: --set key=value sets one, --delete key
returns one to its default; both may be repeated. Other configs are kept.`,
		Example: `  samsa topics alter-config MyfirstTopic1 --set retention.ms=86400000
  samsa topics alter-config MyfirstTopic1 --delete retention.ms`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeTopics,
		RunE:              func(cmd *cobra.Command, a []string) error { return f.run(cmd, g, a[0]) },
	}
	cmd.Flags().StringArrayVar(&f.set, "set", nil, "config to set, as key=value (repeatable)")
	cmd.Flags().StringArrayVar(&f.delete, "delete", nil, "config to return to its default (repeatable)")
	return cmd
}

func (f *topicsAlterFlags) run(cmd *cobra.Command, g *globals, topic string) error {
	if len(f.set) == 0 && len(f.delete) == 0 {
		return usageError{errors.New("give at least one --set key=value or --delete key")}
	}
	set, err := parseKeyValues("set", f.set)
	if err != nil {
		return err
	}
	var alters []kadm.AlterConfig
	for _, k := range slices.Sorted(maps.Keys(set)) {
		v := set[k]
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range f.delete {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	ctx, cancel := g.opContext(cmd)
	defer cancel()
	adm, err := g.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	if _, err := topicDetail(ctx, adm, topic); err != nil {
		return err
	}
	rs, err := adm.AlterTopicConfigs(ctx, alters, topic)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("alter configs of %q: %w", topic, brokerError(r.Err, r.ErrMessage))
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "altered topic %s: %d set, %d deleted\n", topic, len(set), len(f.delete))
	return nil
}

type addPartitionsFlags struct {
	total int
}

func newTopicsAddPartitions(g *globals) *cobra.Command {
	f := &addPartitionsFlags{}
	cmd := &cobra.Command{
		Use:   "add-partitions NAME --total N",
		Short: "Grow a topic to N partitions",
		Long: `Grow a topic to a total of N partitions. Partitions can only be added: keyed
records that went to one partition may go to another afterwards, since the
partition of a key depends on the count.`,
		Example:           `  samsa topics add-partitions MyfirstTopic1 --total 4`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeTopics,
		RunE: func(cmd *cobra.Command, a []string) error {
			if f.total < 1 {
				return usageError{errors.New("--total: give the new partition count, at least 1")}
			}
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			topic := a[0]
			td, err := topicDetail(ctx, adm, topic)
			if err != nil {
				return err
			}
			if have := len(td.Partitions); f.total <= have {
				return fmt.Errorf("topic %q already has %d partitions; --total must be more (partitions cannot be removed)", topic, have)
			}
			rs, err := adm.UpdatePartitions(ctx, f.total, topic)
			if err != nil {
				return err
			}
			if r, ok := rs[topic]; ok && r.Err != nil {
				return fmt.Errorf("add partitions to %q: %w", topic, brokerError(r.Err, r.ErrMessage))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "topic %s now has %d partitions\n", topic, f.total)
			return nil
		},
	}
	cmd.Flags().IntVar(&f.total, "total", 0, "the partition count to grow to")
	return cmd
}
