package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newGroups(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "groups",
		Short: "List, describe, reset and delete consumer groups",
		Long: `Inspect and manage consumer groups: their members and what each reads, how
far behind they are (lag), and where they resume (reset).`,
		Example: `  samsa groups list
  samsa groups describe readers
  samsa groups reset readers --topic MyfirstTopic1 --to-earliest`,
	})
	cmd.AddCommand(newGroupsList(g), newGroupsDescribe(g), newGroupsReset(g), newGroupsDelete(g))
	return cmd
}

type groupSummary struct {
	Group        string `json:"group" yaml:"group"`
	State        string `json:"state" yaml:"state"`
	Members      int    `json:"members" yaml:"members"`
	ProtocolType string `json:"protocol_type" yaml:"protocol_type"`
	Coordinator  int32  `json:"coordinator" yaml:"coordinator"`
}

func newGroupsList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
		Long:    "List the cluster's consumer groups with their state (Stable, Empty, ...) and coordinator.",
		Example: `  samsa groups list -o json`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			gs, err := adm.ListGroups(ctx)
			if err != nil {
				return err
			}
			// ListGroups carries states only from v4 (Kafka 2.6); describing
			// the groups gives them on any broker, with the member counts.
			var described kadm.DescribedGroups
			if len(gs) > 0 {
				if described, err = adm.DescribeGroups(ctx, gs.Groups()...); err != nil {
					return err
				}
			}
			list := []groupSummary{}
			for _, lg := range gs.Sorted() {
				s := groupSummary{Group: lg.Group, State: lg.State, ProtocolType: lg.ProtocolType, Coordinator: lg.Coordinator}
				if d, ok := described[lg.Group]; ok && d.Err == nil {
					s.State, s.Members = d.State, len(d.Members)
				}
				list = append(list, s)
			}
			return g.print(cmd.OutOrStdout(), list, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "GROUP\tSTATE\tMEMBERS\tTYPE\tCOORDINATOR")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", s.Group, s.State, s.Members, s.ProtocolType, s.Coordinator)
				}
			})
		},
	}
}

// groupDescription is `groups describe`'s output; scripts read lag and
// total_lag from its JSON.
type groupDescription struct {
	Group       string         `json:"group" yaml:"group"`
	State       string         `json:"state" yaml:"state"`
	Protocol    string         `json:"protocol" yaml:"protocol"`
	Coordinator int32          `json:"coordinator" yaml:"coordinator"`
	Members     []groupMember  `json:"members" yaml:"members"`
	Partitions  []partitionLag `json:"partitions" yaml:"partitions"`
	TotalLag    int64          `json:"total_lag" yaml:"total_lag"`
}

type groupMember struct {
	MemberID   string            `json:"member_id" yaml:"member_id"`
	InstanceID string            `json:"instance_id,omitempty" yaml:"instance_id,omitempty"`
	ClientID   string            `json:"client_id" yaml:"client_id"`
	Host       string            `json:"host" yaml:"host"`
	Assigned   []topicPartitions `json:"assigned" yaml:"assigned"`
}

type topicPartitions struct {
	Topic      string  `json:"topic" yaml:"topic"`
	Partitions []int32 `json:"partitions" yaml:"partitions"`
}

// partitionLag is one partition the group reads or has committed to.
// Committed is -1 when nothing is committed yet; then lag counts from the
// start of the partition.
type partitionLag struct {
	Topic     string `json:"topic" yaml:"topic"`
	Partition int32  `json:"partition" yaml:"partition"`
	Committed int64  `json:"committed" yaml:"committed"`
	End       int64  `json:"end" yaml:"end"`
	Lag       int64  `json:"lag" yaml:"lag"`
	MemberID  string `json:"member_id,omitempty" yaml:"member_id,omitempty"`
	ClientID  string `json:"client_id,omitempty" yaml:"client_id,omitempty"`
	Error     string `json:"error,omitempty" yaml:"error,omitempty"`
}

func newGroupsDescribe(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's members, committed offsets and lag",
		Long: `Show a consumer group: its members (client id, host, assigned partitions)
and, for each partition it reads or has committed to, the committed offset,
the end offset and the lag between them, then the total lag.`,
		Example: `  samsa groups describe readers
  samsa groups describe readers -o json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeGroups,
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			d, err := describeGroup(ctx, adm, a[0])
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), d, func(tw *tabwriter.Writer) { d.table(tw) })
		},
	}
}

func describeGroup(ctx context.Context, adm *kadm.Client, name string) (groupDescription, error) {
	lags, err := adm.Lag(ctx, name)
	if err != nil {
		return groupDescription{}, err
	}
	l, ok := lags[name]
	if !ok {
		return groupDescription{}, fmt.Errorf("group %q: the cluster did not describe it", name)
	}
	if err := l.Error(); err != nil {
		return groupDescription{}, fmt.Errorf("group %q: %w", name, err)
	}
	if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
		return groupDescription{}, unknownGroup(ctx, adm, name)
	}
	d := groupDescription{Group: name, State: l.State, Protocol: l.Protocol, Coordinator: l.Coordinator.NodeID,
		Members: []groupMember{}, Partitions: []partitionLag{}, TotalLag: l.Lag.Total()}
	for _, m := range l.Members {
		gm := groupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: []topicPartitions{}}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				gm.Assigned = append(gm.Assigned, topicPartitions{Topic: t.Topic, Partitions: ps})
			}
		}
		d.Members = append(d.Members, gm)
	}
	for _, ml := range l.Lag.Sorted() {
		pl := partitionLag{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			pl.MemberID, pl.ClientID = ml.Member.MemberID, ml.Member.ClientID
		}
		if ml.Err != nil {
			pl.Error = ml.Err.Error()
		}
		d.Partitions = append(d.Partitions, pl)
	}
	return d, nil
}

func unknownGroup(ctx context.Context, adm *kadm.Client, name string) error {
	msg := fmt.Sprintf("group %q does not exist", name)
	if gs, err := adm.ListGroups(ctx); err == nil {
		if near := nearNames(name, gs.Groups()); len(near) > 0 {
			msg += "; did you mean " + orList(near) + "?"
		}
	}
	return errors.New(msg)
}

func (d groupDescription) table(tw *tabwriter.Writer) {
	fmt.Fprintf(tw, "GROUP\t%s\n", d.Group)
	fmt.Fprintf(tw, "STATE\t%s\n", d.State)
	if d.Protocol != "" {
		fmt.Fprintf(tw, "ASSIGNOR\t%s\n", d.Protocol)
	}
	fmt.Fprintf(tw, "COORDINATOR\t%d\n", d.Coordinator)
	fmt.Fprintf(tw, "MEMBERS\t%d\n", len(d.Members))
	if len(d.Members) > 0 {
		fmt.Fprintln(tw, "\nMEMBER\tCLIENT-ID\tHOST\tASSIGNED")
		for _, m := range d.Members {
			var as []string
			for _, t := range m.Assigned {
				as = append(as, t.Topic+ints(t.Partitions))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.MemberID, m.ClientID, m.Host, strings.Join(as, " "))
		}
	}
	fmt.Fprintln(tw, "\nTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tCLIENT-ID")
	for _, p := range d.Partitions {
		committed := "-"
		if p.Committed >= 0 {
			committed = fmt.Sprint(p.Committed)
		}
		line := fmt.Sprintf("%s\t%d\t%s\t%d\t%d\t%s", p.Topic, p.Partition, committed, p.End, p.Lag, p.ClientID)
		if p.Error != "" {
			line += "\t" + p.Error
		}
		fmt.Fprintln(tw, line)
	}
	fmt.Fprintf(tw, "\nTOTAL LAG\t%d\n", d.TotalLag)
}

type groupsResetFlags struct {
	topic      string
	toEarliest bool
	toLatest   bool
	toOffset   int64
	toDatetime string
	shiftBy    int64
	dryRun     bool
}

// offsetChange is one partition's reset, as printed.
type offsetChange struct {
	Topic     string `json:"topic" yaml:"topic"`
	Partition int32  `json:"partition" yaml:"partition"`
	Old       int64  `json:"old" yaml:"old"`
	New       int64  `json:"new" yaml:"new"`
}

func newGroupsReset(g *globals) *cobra.Command {
	f := &groupsResetFlags{}
	cmd := &cobra.Command{
		Use:   "reset GROUP --topic TOPIC --to-earliest|--to-latest|--to-offset N|--to-datetime TIME|--shift-by N",
		Short: "Move where a group resumes reading a topic",
		Long: `Set the committed offsets of a group for every partition of a topic, as Kafka's
kafka-consumer-groups --reset-offsets does: to the earliest or latest offset,
to an offset, to the first record at or after a time (RFC 3339, or a duration
ago like 1h), or shifted by N (negative to re-read). New offsets are kept
within each partition's start and end. The group must have no active members:
stop its consumers first. Prints each partition's old → new offset; --dry-run
only prints.`,
		Example: `  samsa groups reset readers --topic MyfirstTopic1 --to-earliest
  samsa groups reset readers --topic MyfirstTopic1 --shift-by -10 --dry-run
  samsa groups reset readers --topic MyfirstTopic1 --to-datetime 2024-05-01T12:00:00Z`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeGroups,
		RunE:              func(cmd *cobra.Command, a []string) error { return f.run(cmd, g, a[0]) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.topic, "topic", "t", "", "the topic whose offsets to reset (required)")
	fl.BoolVar(&f.toEarliest, "to-earliest", false, "reset to the oldest record")
	fl.BoolVar(&f.toLatest, "to-latest", false, "reset to the end: skip everything not yet read")
	fl.Int64Var(&f.toOffset, "to-offset", -1, "reset to this offset")
	fl.StringVar(&f.toDatetime, "to-datetime", "", "reset to the first record at or after TIME (RFC 3339, or a duration ago)")
	fl.Int64Var(&f.shiftBy, "shift-by", 0, "move the committed offsets by N (negative: back)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the new offsets without committing them")
	return cmd
}

// target returns the function that picks a partition's new offset from
// its current commit (-1 if none) and its bounds.
func (f *groupsResetFlags) target(cmd *cobra.Command) (func(commit, start, end, byTime int64) (int64, error), time.Time, error) {
	var at time.Time
	var pick func(commit, start, end, byTime int64) (int64, error)
	n := 0
	if f.toEarliest {
		n++
		pick = func(_, start, _, _ int64) (int64, error) { return start, nil }
	}
	if f.toLatest {
		n++
		pick = func(_, _, end, _ int64) (int64, error) { return end, nil }
	}
	if cmd.Flags().Changed("to-offset") {
		n++
		if f.toOffset < 0 {
			return nil, at, usageError{fmt.Errorf("--to-offset: %d must be 0 or more", f.toOffset)}
		}
		pick = func(_, _, _, _ int64) (int64, error) { return f.toOffset, nil }
	}
	if f.toDatetime != "" {
		n++
		t, err := parseSince(f.toDatetime, time.Now())
		if err != nil {
			return nil, at, usageError{fmt.Errorf("--to-datetime%s", strings.TrimPrefix(err.Error(), "--since"))}
		}
		at = t
		pick = func(_, _, _, byTime int64) (int64, error) { return byTime, nil }
	}
	if cmd.Flags().Changed("shift-by") {
		n++
		pick = func(commit, _, _, _ int64) (int64, error) {
			if commit < 0 {
				return 0, errors.New("has no committed offset to shift; use --to-earliest, --to-latest or --to-offset")
			}
			return commit + f.shiftBy, nil
		}
	}
	if n != 1 {
		return nil, at, usageError{errors.New("give exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime TIME and --shift-by N")}
	}
	return pick, at, nil
}

func (f *groupsResetFlags) run(cmd *cobra.Command, g *globals, name string) error {
	if f.topic == "" {
		return usageError{errors.New("--topic: give the topic whose offsets to reset")}
	}
	pick, at, err := f.target(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := g.opContext(cmd)
	defer cancel()
	adm, err := g.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	if _, err := topicDetail(ctx, adm, f.topic); err != nil {
		return err
	}
	// Kafka's tool refuses too: a live member would overwrite the reset
	// with its next commit, and the coordinator refuses non-member commits.
	dgs, err := adm.DescribeGroups(ctx, name)
	if err != nil {
		return err
	}
	if dg, ok := dgs[name]; ok && len(dg.Members) > 0 {
		return fmt.Errorf("group %q has %d active member(s) (state %s); stop its consumers, then reset", name, len(dg.Members), dg.State)
	}
	changes, err := f.changes(ctx, adm, name, pick, at)
	if err != nil {
		return err
	}
	if !f.dryRun {
		offsets := make(kadm.Offsets)
		for _, c := range changes {
			offsets.Add(kadm.Offset{Topic: c.Topic, Partition: c.Partition, At: c.New, LeaderEpoch: -1})
		}
		if err := adm.CommitAllOffsets(ctx, name, offsets); err != nil {
			return fmt.Errorf("commit offsets of group %q: %w", name, err)
		}
	}
	err = g.print(cmd.OutOrStdout(), changes, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tOLD\t\tNEW")
		for _, c := range changes {
			old := "-"
			if c.Old >= 0 {
				old = fmt.Sprint(c.Old)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t→\t%d\n", c.Topic, c.Partition, old, c.New)
		}
	})
	if err == nil && f.dryRun {
		fmt.Fprintln(cmd.ErrOrStderr(), "dry run: nothing committed")
	}
	return err
}

// changes computes every partition's old and new offset.
func (f *groupsResetFlags) changes(ctx context.Context, adm *kadm.Client, name string, pick func(commit, start, end, byTime int64) (int64, error), at time.Time) ([]offsetChange, error) {
	commits, err := adm.FetchOffsets(ctx, name)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("fetch offsets of group %q: %w", name, err)
	}
	starts, err := adm.ListStartOffsets(ctx, f.topic)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, f.topic)
	if err != nil {
		return nil, err
	}
	var byTime kadm.ListedOffsets
	if !at.IsZero() {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), f.topic); err != nil {
			return nil, err
		}
	}
	var out []offsetChange
	endsOf := ends[f.topic]
	for _, p := range slices.Sorted(maps.Keys(endsOf)) {
		end := endsOf[p]
		start, ok := starts.Lookup(f.topic, p)
		if !ok {
			start.Err = errors.New("no start offset listed")
		}
		if err := errors.Join(start.Err, end.Err); err != nil {
			return nil, fmt.Errorf("list offsets of %s[%d]: %w", f.topic, p, err)
		}
		c := offsetChange{Topic: f.topic, Partition: p, Old: -1}
		if o, ok := commits.Lookup(f.topic, p); ok && o.Err == nil {
			c.Old = o.At
		}
		t := int64(-1)
		if byTime != nil {
			bt, _ := byTime.Lookup(f.topic, p)
			t = bt.Offset
		}
		n, err := pick(c.Old, start.Offset, end.Offset, t)
		if err != nil {
			return nil, fmt.Errorf("%s[%d] %w", f.topic, p, err)
		}
		c.New = max(start.Offset, min(n, end.Offset))
		out = append(out, c)
	}
	return out, nil
}

func newGroupsDelete(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "delete GROUP",
		Aliases:           []string{"rm"},
		Short:             "Delete a consumer group and its committed offsets",
		Long:              "Delete a consumer group without active members, and its committed offsets.",
		Example:           `  samsa groups delete readers`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeGroups,
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			adm, err := g.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			name := a[0]
			r, err := adm.DeleteGroup(ctx, name)
			switch {
			case errors.Is(err, kerr.GroupIDNotFound) || errors.Is(r.Err, kerr.GroupIDNotFound):
				return unknownGroup(ctx, adm, name)
			case errors.Is(err, kerr.NonEmptyGroup) || errors.Is(r.Err, kerr.NonEmptyGroup):
				return fmt.Errorf("group %q has active members; stop its consumers, then delete it", name)
			case err != nil:
				return fmt.Errorf("delete group %q: %w", name, err)
			case r.Err != nil:
				return fmt.Errorf("delete group %q: %w", name, r.Err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted group %s\n", name)
			return nil
		},
	}
}
