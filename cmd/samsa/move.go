package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Membership commands: moving partitions (Kafka's AlterPartitionReassignments
// and ListPartitionReassignments), adding a node (AddRaftVoter, which
// Samsa reads as "let this node in") and removing one (moves, then
// UnregisterBroker). Each waits and shows progress unless --no-wait.

// movePollInterval is how often a waiting command asks for progress.
const movePollInterval = 500 * time.Millisecond

// moveState is one partition's move as last seen.
type moveState struct {
	Topic     string  `json:"topic" yaml:"topic"`
	Partition int32   `json:"partition" yaml:"partition"`
	Target    []int32 `json:"target" yaml:"target"`
	Replicas  []int32 `json:"replicas" yaml:"replicas"`
	ISR       []int32 `json:"isr" yaml:"isr"`
	Adding    []int32 `json:"adding" yaml:"adding"`
	Removing  []int32 `json:"removing" yaml:"removing"`
	Done      bool    `json:"done" yaml:"done"`
}

// line describes the move for a person: each replica and its state.
func (m moveState) line() string {
	if m.Done {
		return fmt.Sprintf("%s[%d]: done, replicas %s", m.Topic, m.Partition, joinIDs(m.Replicas))
	}
	var parts []string
	for _, id := range m.Replicas {
		state := "in sync"
		switch {
		case slices.Contains(m.Removing, id):
			state = "leaving"
		case slices.Contains(m.Adding, id) && slices.Contains(m.ISR, id):
			state = "caught up, joining"
		case slices.Contains(m.Adding, id):
			state = "catching up"
		case !slices.Contains(m.ISR, id):
			state = "not in sync"
		}
		parts = append(parts, fmt.Sprintf("%d %s", id, state))
	}
	return fmt.Sprintf("%s[%d]: moving to %s: %s", m.Topic, m.Partition, joinIDs(m.Target), strings.Join(parts, ", "))
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

// parseIDs reads "1,2,4".
func parseIDs(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || id < 1 {
			return nil, fmt.Errorf("%q is not a node id", f)
		}
		out = append(out, int32(id))
	}
	return out, nil
}

// moveFlags are the flags of the commands that wait for moves.
type moveFlags struct {
	noWait bool
}

func (f *moveFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "return once the cluster accepted the change, without waiting for it to finish")
}

type moveRequest struct {
	topic     string
	partition int32
	replicas  []int32
}

// startMoves asks the cluster to move partitions and reports each
// refusal.
func startMoves(ctx context.Context, adm *kadm.Client, moves []moveRequest) error {
	var req kadm.AlterPartitionAssignmentsReq
	for _, m := range moves {
		req.Assign(m.topic, m.partition, m.replicas)
	}
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range res.Sorted() {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %s", r.Topic, r.Partition, cmp.Or(r.ErrMessage, r.Err.Error())))
		}
	}
	return errors.Join(errs...)
}

// waitMoves polls the moves until every one is over, printing a line
// whenever a partition's state changes (table output only). It returns
// the last states.
func waitMoves(ctx context.Context, g *globals, cl *kgo.Client, w io.Writer, moves []moveRequest) ([]moveState, error) {
	start := time.Now()
	last := map[string]string{}
	for {
		states, err := moveStates(ctx, g, cl, moves)
		if err != nil {
			return nil, err
		}
		done := true
		for _, s := range states {
			done = done && s.Done
			key := fmt.Sprintf("%s/%d", s.Topic, s.Partition)
			if l := s.line(); l != last[key] && g.output == "table" {
				fmt.Fprintf(w, "%6.1fs  %s\n", time.Since(start).Seconds(), l)
				last[key] = l
			}
		}
		if done {
			return states, nil
		}
		select {
		case <-ctx.Done():
			return states, fmt.Errorf("stopped waiting: %w (the moves go on; `samsa topics describe` shows them)", ctx.Err())
		case <-time.After(movePollInterval):
		}
	}
}

// moveStates reads the moves' progress: ListPartitionReassignments for
// the replicas being added and removed, Metadata for the in-sync set. A
// move is over when it is no longer listed and the replicas are the
// target's.
func moveStates(ctx context.Context, g *globals, cl *kgo.Client, moves []moveRequest) ([]moveState, error) {
	pctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	set := kadm.TopicsSet{}
	var topics []string
	for _, m := range moves {
		set.Add(m.topic, m.partition)
		if !slices.Contains(topics, m.topic) {
			topics = append(topics, m.topic)
		}
	}
	listed, err := adm.ListPartitionReassignments(pctx, set)
	if err != nil {
		return nil, err
	}
	md, err := freshMetadata(pctx, g, cl, topics...)
	if err != nil {
		return nil, err
	}
	var out []moveState
	for _, m := range moves {
		s := moveState{Topic: m.topic, Partition: m.partition, Target: m.replicas, Replicas: []int32{}, ISR: []int32{}, Adding: []int32{}, Removing: []int32{}}
		for _, t := range md.Topics {
			for _, p := range t.Partitions {
				if t.Topic != nil && *t.Topic == m.topic && p.Partition == m.partition {
					s.Replicas, s.ISR = p.Replicas, p.ISR
				}
			}
		}
		if r, ok := listed[m.topic][m.partition]; ok {
			s.Replicas, s.Adding, s.Removing = r.Replicas, r.AddingReplicas, r.RemovingReplicas
		} else {
			s.Done = slices.Equal(s.Replicas, m.replicas)
		}
		for _, ids := range []*[]int32{&s.Replicas, &s.ISR, &s.Adding, &s.Removing} {
			if *ids == nil {
				*ids = []int32{} // [] in JSON, not null
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func printMoves(g *globals, w io.Writer, states []moveState) error {
	if g.output == "table" {
		return nil // the progress lines said it all
	}
	return g.print(w, states, func(*tabwriter.Writer) {})
}

func newTopicsMovePartition(g *globals) *cobra.Command {
	f := &moveFlags{}
	var replicas string
	cmd := &cobra.Command{
		Use:   "move-partition TOPIC PARTITION --replicas 1,2,4",
		Short: "Move a partition's replicas to other nodes",
		Long: `Move a partition's replicas to the nodes listed, the first becoming its
preferred leader (kafka-reassign-partitions does the same). The list has as
many nodes as the topic's replication factor. A replica on a new node joins as
a non-voting member and catches up by the Raft log or a copy of the segment
files; once caught up it becomes a voter, and only then do replicas on nodes
left out go, one at a time: the partition never has fewer in-sync replicas
than its replication factor, and producers and consumers carry on.

The command shows each replica's state until the move is over (Ctrl-C stops
watching, not the move); --no-wait returns once the move is accepted. Giving
the current replicas in another order only changes the preferred leader.`,
		Example: `  samsa topics move-partition plays 0 --replicas 4,2,1
  samsa topics move-partition plays 0 --replicas 1,2,3 --no-wait`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			p, err := strconv.ParseInt(a[1], 10, 32)
			if err != nil || p < 0 {
				return usageError{fmt.Errorf("PARTITION: %q is not a partition number", a[1])}
			}
			ids, err := parseIDs(replicas)
			if err != nil {
				return usageError{fmt.Errorf("--replicas: %w", err)}
			}
			moves := []moveRequest{{topic: a[0], partition: int32(p), replicas: ids}}
			return runMoves(cmd, g, f, moves)
		},
	}
	cmd.Flags().StringVar(&replicas, "replicas", "", "the nodes to hold the partition, comma-separated, preferred leader first")
	_ = cmd.MarkFlagRequired("replicas")
	f.register(cmd)
	return cmd
}

// runMoves starts moves and, unless --no-wait, waits for them.
func runMoves(cmd *cobra.Command, g *globals, f *moveFlags, moves []moveRequest) error {
	ctx, cancel := g.opContext(cmd)
	cl, err := g.client(ctx)
	if err != nil {
		cancel()
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(g.timeout.Milliseconds()))
	err = startMoves(ctx, adm, moves)
	cancel()
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.noWait {
		if g.output == "table" {
			for _, m := range moves {
				fmt.Fprintf(out, "%s[%d]: moving to %s; `samsa topics describe %s` shows the replicas\n", m.topic, m.partition, joinIDs(m.replicas), m.topic)
			}
			return nil
		}
		states, err := moveStates(cmd.Context(), g, cl, moves)
		if err != nil {
			return err
		}
		return printMoves(g, out, states)
	}
	states, err := waitMoves(cmd.Context(), g, cl, out, moves)
	if err != nil {
		return err
	}
	return printMoves(g, out, states)
}

func newClusterAddNode(g *globals) *cobra.Command {
	f := &moveFlags{}
	var raftAddr string
	cmd := &cobra.Command{
		Use:   "add-node ID --raft-addr HOST:PORT",
		Short: "Let a new node into the cluster",
		Long: `Add a node to a running cluster. Start it first (or afterwards) with
--join instead of --peers:

  samsa serve --node-id 4 --join --raft-addr host4:9093 --kafka-addr 0.0.0.0:9092 \
    --advertise-kafka-addr host4:9092 --data-dir /var/lib/samsa

This command makes it a member: it receives the cluster's metadata, registers
its Kafka address and from then on gets replicas of new topics; move existing
partitions to it with 'samsa topics move-partition'. The command waits until
the node has registered (--no-wait returns at once). Node ids are never
reused: a removed node's id cannot come back.`,
		Example: `  samsa cluster add-node 4 --raft-addr 127.0.0.1:19095`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := strconv.ParseInt(a[0], 10, 32)
			if err != nil || id < 1 {
				return usageError{fmt.Errorf("ID: %q is not a node id", a[0])}
			}
			host, port, err := net.SplitHostPort(raftAddr)
			p, perr := strconv.ParseUint(port, 10, 16)
			if err != nil || perr != nil || host == "" {
				return usageError{fmt.Errorf("--raft-addr: %q is not host:port", raftAddr)}
			}
			ctx, cancel := g.opContext(cmd)
			defer cancel()
			cl, err := g.client(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			req := kmsg.NewPtrAddRaftVoterRequest()
			req.VoterID, req.TimeoutMillis = int32(id), int32(g.timeout.Milliseconds())
			l := kmsg.NewAddRaftVoterRequestListener()
			l.Name, l.Host, l.Port = "RAFT", host, uint16(p)
			req.Listeners = append(req.Listeners, l)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && !errors.Is(err, kerr.DuplicateBrokerRegistration) {
				return fmt.Errorf("adding node %d: %s", id, cmp.Or(derefString(resp.ErrorMessage), err.Error()))
			}
			out := cmd.OutOrStdout()
			if f.noWait {
				fmt.Fprintf(out, "node %d is a member; it joins once it runs `samsa serve --node-id %d --join --raft-addr %s ...`\n", id, id, raftAddr)
				return nil
			}
			fmt.Fprintf(out, "node %d is a member; waiting for it to register (start it with `samsa serve --node-id %d --join --raft-addr %s ...`)\n", id, id, raftAddr)
			cancel()
			return waitBroker(cmd.Context(), g, cl, int32(id), true, out)
		},
	}
	cmd.Flags().StringVar(&raftAddr, "raft-addr", "", "the new node's Raft address (its --raft-addr)")
	_ = cmd.MarkFlagRequired("raft-addr")
	f.register(cmd)
	return cmd
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// freshMetadata asks a broker for the metadata of topics (none: only
// the brokers). kadm answers from the client's cache, which a command
// that polls for a change would see stale.
func freshMetadata(ctx context.Context, g *globals, cl *kgo.Client, topics ...string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	return req.RequestWith(ctx, cl)
}

// waitBroker waits until the metadata lists broker id (present) or no
// longer does.
func waitBroker(ctx context.Context, g *globals, cl *kgo.Client, id int32, present bool, w io.Writer) error {
	for {
		md, err := freshMetadata(ctx, g, cl)
		if err == nil && slices.ContainsFunc(md.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == id }) == present {
			if present {
				fmt.Fprintf(w, "node %d has registered\n", id)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for node %d: %w", id, ctx.Err())
		case <-time.After(movePollInterval):
		}
	}
}

func newClusterRemoveNode(g *globals) *cobra.Command {
	f := &moveFlags{}
	cmd := &cobra.Command{
		Use:   "remove-node ID",
		Short: "Move a node's replicas elsewhere, then take it out of the cluster",
		Long: `Drain a node and remove it: each partition with a replica on it moves that
replica to the node holding the fewest replicas among those without one
(kafka-reassign-partitions, computed for you); once every move is over the
node leaves the cluster's metadata (UnregisterBroker) and, if it held a vote
in the metadata's Raft group, a node that joined later takes it. Then stop
its process. A partition never has fewer replicas than its replication
factor, so the other nodes must be enough to hold them.

With --no-wait the moves start and the command returns; run it again when
they are over to remove the node.`,
		Example: `  samsa cluster remove-node 3`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := strconv.ParseInt(a[0], 10, 32)
			if err != nil || id < 1 {
				return usageError{fmt.Errorf("ID: %q is not a node id", a[0])}
			}
			return removeNode(cmd, g, f, int32(id))
		},
	}
	f.register(cmd)
	return cmd
}

func removeNode(cmd *cobra.Command, g *globals, f *moveFlags, id int32) error {
	ctx, cancel := g.opContext(cmd)
	defer cancel()
	cl, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(g.timeout.Milliseconds()))
	md, err := adm.Metadata(ctx)
	if err != nil {
		return err
	}
	moves, err := drainPlan(md, id)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if len(moves) > 0 {
		if err := startMoves(ctx, adm, moves); err != nil {
			return err
		}
		cancel()
		fmt.Fprintf(out, "moving %d replica(s) off node %d\n", len(moves), id)
		if f.noWait {
			fmt.Fprintf(out, "run `samsa cluster remove-node %d` again once the moves are over\n", id)
			return nil
		}
		if _, err := waitMoves(cmd.Context(), g, cl, out, moves); err != nil {
			return err
		}
	}
	// Ask another node: a node does not remove itself.
	uctx, ucancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer ucancel()
	var other int32 = -1
	for _, b := range md.Brokers {
		if b.NodeID != id {
			other = b.NodeID
			break
		}
	}
	if other < 0 {
		return fmt.Errorf("node %d is the only node", id)
	}
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = id
	kresp, err := cl.Broker(int(other)).Request(uctx, req)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.UnregisterBrokerResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && !errors.Is(err, kerr.BrokerIDNotRegistered) {
		return fmt.Errorf("removing node %d: %s", id, cmp.Or(derefString(resp.ErrorMessage), err.Error()))
	}
	fmt.Fprintf(out, "node %d has left the cluster; stop its process\n", id)
	return nil
}

// drainPlan moves every replica on node id to the node with the fewest
// replicas among those the partition is not on, keeping its position in
// the replica list (a preferred leader is replaced by a preferred leader).
func drainPlan(md kadm.Metadata, id int32) ([]moveRequest, error) {
	load := map[int32]int{}
	for _, b := range md.Brokers {
		if b.NodeID != id {
			load[b.NodeID] = 0
		}
	}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				if _, ok := load[r]; ok {
					load[r]++
				}
			}
		}
	}
	var moves []moveRequest
	for _, t := range md.Topics.Sorted() {
		if t.Err != nil {
			return nil, fmt.Errorf("topic %s: %w", t.Topic, t.Err)
		}
		for _, p := range t.Partitions.Sorted() {
			i := slices.Index(p.Replicas, id)
			if i < 0 {
				continue
			}
			best := int32(-1)
			for n, c := range load {
				if slices.Contains(p.Replicas, n) {
					continue
				}
				if best < 0 || c < load[best] || (c == load[best] && n < best) {
					best = n
				}
			}
			if best < 0 {
				return nil, fmt.Errorf("no other node can take %s[%d]'s replica (each has one already): removing node %d would leave it below its replication factor; add a node first", t.Topic, p.Partition, id)
			}
			target := slices.Clone(p.Replicas)
			target[i] = best
			load[best]++
			moves = append(moves, moveRequest{topic: t.Topic, partition: p.Partition, replicas: target})
		}
	}
	return moves, nil
}
