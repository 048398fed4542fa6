package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type consumeFlags struct {
	fromBeginning bool
	offset        string
	since         string
	partition     int32
	group         string
	max           int
	exit          bool
	format        string
	printKeys     bool
}

func newConsume(g *globals) *cobra.Command {
	f := &consumeFlags{}
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records",
		Long: `Print a topic's records, each value on its own line, like Kafka's console
consumer. Reading starts at the end (new records only) unless --from-beginning,
--offset or --since says otherwise, and goes on until Ctrl-C, --max records or,
with --exit, the end of every partition as it was when reading started.

With --group the partitions are shared with the group's other members and the
offsets of printed records are committed (also on Ctrl-C); --from-beginning,
--offset and --since then only apply to partitions where the group has no
committed offset yet. To rewind a group use 'samsa groups reset'.

--format prints each record with kcat-style verbs:
  %k key           %v value (or %s)     %t topic        %p partition
  %o offset        %T timestamp (ms)    %h headers as k=v,k2=v2,...
  %K key length    %S value length      %% a percent sign
and the escapes \n, \t, \r and \\. A newline is added unless the format ends
in one. --print-keys is --format '%k\t%v'.`,
		Example: `  samsa consume MyfirstTopic1 --from-beginning
  samsa consume MyfirstTopic1 --offset -10 --exit
  samsa consume MyfirstTopic1 --since 15m --format '%p/%o %k=%v'
  samsa consume MyfirstTopic1 --group readers --print-keys`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: g.completeTopics,
		RunE:              func(cmd *cobra.Command, a []string) error { return f.run(cmd, g, a[0]) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest record")
	fl.StringVar(&f.offset, "offset", "", "start at offset N, or with -N at N records before the end of each partition")
	fl.StringVar(&f.since, "since", "", "start at the first record at or after TIME (RFC 3339) or that long ago (15m, 2h)")
	fl.Int32VarP(&f.partition, "partition", "p", -1, "read only this partition")
	fl.StringVarP(&f.group, "group", "g", "", "consume as a member of this consumer group and commit offsets")
	fl.IntVarP(&f.max, "max", "n", 0, "stop after N records (0: no limit)")
	fl.BoolVarP(&f.exit, "exit", "e", false, "stop at the end of every partition, as it was when reading started")
	fl.StringVarP(&f.format, "format", "f", "", "print each record with this format (see above)")
	fl.BoolVar(&f.printKeys, "print-keys", false, "print the key, a tab, then the value")
	return cmd
}

// start says where reading begins in a partition (for a group: in one
// without a committed offset).
type start struct {
	earliest bool
	offset   *startOffset
	since    time.Time
}

// parse checks the flags' values and combinations: every mistake is a
// usage error, found before anything is read.
func (f *consumeFlags) parse(now time.Time) (start, recordFormat, error) {
	var s start
	set := 0
	if f.fromBeginning {
		s.earliest = true
		set++
	}
	if f.offset != "" {
		o, err := parseOffset(f.offset)
		if err != nil {
			return s, nil, usageError{err}
		}
		s.offset = &o
		set++
	}
	if f.since != "" {
		t, err := parseSince(f.since, now)
		if err != nil {
			return s, nil, usageError{err}
		}
		s.since = t
		set++
	}
	if set > 1 {
		return s, nil, usageError{errors.New("give only one of --from-beginning, --offset and --since")}
	}
	if f.group != "" && f.partition >= 0 {
		return s, nil, usageError{errors.New("--partition cannot be combined with --group: the group assigns partitions")}
	}
	if f.max < 0 {
		return s, nil, usageError{fmt.Errorf("--max: %d must be 0 (no limit) or more", f.max)}
	}
	layout := `%v\n`
	switch {
	case f.format != "" && f.printKeys:
		return s, nil, usageError{errors.New("give --format or --print-keys, not both")}
	case f.format != "":
		layout = f.format
	case f.printKeys:
		layout = `%k\t%v\n`
	}
	format, err := parseFormat(layout)
	if err != nil {
		return s, nil, usageError{err}
	}
	return s, format, nil
}

// resetOffset is s for the client: where a group member starts in a
// partition without a commit.
func (s start) resetOffset() kgo.Offset {
	switch {
	case s.earliest:
		return kgo.NewOffset().AtStart()
	case s.offset != nil && s.offset.fromEnd:
		return kgo.NewOffset().AtEnd().Relative(-s.offset.n)
	case s.offset != nil:
		return kgo.NewOffset().At(s.offset.n)
	case !s.since.IsZero():
		return kgo.NewOffset().AfterMilli(s.since.UnixMilli())
	}
	return kgo.NewOffset().AtEnd()
}

// bounds are each partition's start and end offsets when reading began,
// and the offset s means in it.
type bounds struct {
	start, end, from map[int32]int64
}

func (s start) bounds(ctx context.Context, adm *kadm.Client, topic string, partitions []int32) (bounds, error) {
	b := bounds{start: map[int32]int64{}, end: map[int32]int64{}, from: map[int32]int64{}}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return b, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return b, fmt.Errorf("list end offsets: %w", err)
	}
	var after kadm.ListedOffsets
	if !s.since.IsZero() {
		if after, err = adm.ListOffsetsAfterMilli(ctx, s.since.UnixMilli(), topic); err != nil {
			return b, fmt.Errorf("list offsets by time: %w", err)
		}
	}
	for _, p := range partitions {
		lo, ok1 := starts.Lookup(topic, p)
		hi, ok2 := ends.Lookup(topic, p)
		if !ok1 || !ok2 || lo.Err != nil || hi.Err != nil {
			return b, fmt.Errorf("list offsets of %s[%d]: %w", topic, p, errors.Join(lo.Err, hi.Err))
		}
		b.start[p], b.end[p] = lo.Offset, hi.Offset
		switch {
		case s.earliest:
			b.from[p] = lo.Offset
		case s.offset != nil:
			b.from[p] = s.offset.within(lo.Offset, hi.Offset)
		case after != nil:
			a, ok := after.Lookup(topic, p)
			if !ok || a.Err != nil {
				return b, fmt.Errorf("list offsets by time of %s[%d]: %v", topic, p, a.Err)
			}
			b.from[p] = a.Offset
		default:
			b.from[p] = hi.Offset
		}
	}
	return b, nil
}

func (f *consumeFlags) run(cmd *cobra.Command, g *globals, topic string) error {
	st, format, err := f.parse(time.Now())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c := &consumer{topic: topic, format: format, max: f.max, exit: f.exit}
	c.mu.pos = map[int32]int64{}
	c.mu.assigned = map[int32]bool{}
	// Cancelling pollCtx ends the poll: Ctrl-C, or --exit satisfied as
	// seen from a group callback.
	pollCtx, cancelPoll := context.WithCancel(ctx)
	defer cancelPoll()
	c.stop = cancelPoll
	opts, err := f.plan(ctx, g, c, st)
	if err != nil {
		return err
	}
	if f.exit && c.done() {
		return nil // nothing to read
	}
	cl, err := g.client(ctx, opts...)
	if err != nil {
		return err
	}
	c.cl = cl
	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	loopErr := c.loop(pollCtx, out, cmd.ErrOrStderr(), f.group != "")
	if err := out.Flush(); err != nil && loopErr == nil {
		loopErr = err
	}
	if f.group != "" {
		// Ctrl-C cancelled ctx: commit with a deadline of its own.
		cctx, cancel := context.WithTimeout(context.Background(), g.timeout)
		defer cancel()
		if err := cl.CommitMarkedOffsets(cctx); err != nil && loopErr == nil {
			loopErr = fmt.Errorf("commit offsets of group %q: %w", f.group, err)
		}
	}
	cl.Close() // leaves the group, so that it is Empty at once
	return loopErr
}

// plan looks the topic up, finds where reading starts and ends in each
// partition, and returns the client options that read from there.
func (f *consumeFlags) plan(ctx context.Context, g *globals, c *consumer, st start) ([]kgo.Opt, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	adm, err := g.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	td, err := topicDetail(ctx, adm, c.topic)
	if err != nil {
		return nil, err
	}
	partitions := td.Partitions.Numbers()
	if f.partition >= 0 {
		if int(f.partition) >= len(partitions) {
			return nil, usageError{fmt.Errorf("--partition: %d does not exist; topic %q has partitions 0 to %d", f.partition, c.topic, len(partitions)-1)}
		}
		partitions = []int32{f.partition}
	}
	if c.bounds, err = st.bounds(ctx, adm, c.topic, partitions); err != nil {
		return nil, err
	}
	if f.group == "" {
		offsets := map[int32]kgo.Offset{}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range partitions {
			offsets[p] = kgo.NewOffset().At(c.bounds.from[p])
			c.assignLocked(p, c.bounds.from[p])
		}
		return []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: offsets})}, nil
	}
	if f.exit {
		if err := c.resumeAt(ctx, adm, f.group); err != nil {
			return nil, err
		}
	}
	return []kgo.Opt{
		kgo.ConsumerGroup(f.group),
		kgo.ConsumeTopics(c.topic),
		kgo.ConsumeResetOffset(st.resetOffset()),
		// Commit only what was printed: a fetch may hold more records
		// than --max or --exit lets through.
		kgo.AutoCommitMarks(),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnOffsetsFetched(c.onFetched),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
	}, nil
}

// consumer prints records and knows, for --exit, when every partition it
// reads has reached the end it had when reading began. With a group the
// partitions it reads change at rebalances, reported by the client's
// callbacks on their own goroutine: hence the mutex.
type consumer struct {
	cl     *kgo.Client
	topic  string
	format recordFormat
	max    int
	exit   bool
	bounds bounds
	stop   context.CancelFunc // ends the poll when --exit is satisfied from a callback

	mu struct {
		sync.Mutex
		pos      map[int32]int64 // next offset to print, per partition
		assigned map[int32]bool  // the partitions being read
		known    bool            // assigned is known: planned without a group, else guessed or received
		guessed  bool            // assigned is resumeAt's guess, until the group's first assignment
	}
}

func (c *consumer) assignLocked(p int32, from int64) {
	c.mu.assigned[p] = true
	c.mu.pos[p] = from
	c.mu.known = true
}

// done reports whether --exit is satisfied: every partition being read is
// at or past its end.
func (c *consumer) done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doneLocked()
}

func (c *consumer) doneLocked() bool {
	if !c.mu.known {
		return false
	}
	for p := range c.mu.assigned {
		if c.mu.pos[p] < c.bounds.end[p] {
			return false
		}
	}
	return true
}

// resumeAt reads where the group resumes in every partition, so that
// --exit can tell before joining the group that it has nothing to read:
// joining costs the coordinator's initial rebalance delay (3 s by default).
// Until the group assigns partitions, every partition counts as assigned.
func (c *consumer) resumeAt(ctx context.Context, adm *kadm.Client, group string) error {
	commits, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch offsets of group %q: %w", group, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, from := range c.bounds.from {
		if o, ok := commits.Lookup(c.topic, p); ok && o.Err == nil && o.At >= 0 {
			from = o.At
		}
		c.assignLocked(p, from)
	}
	c.mu.guessed = true
	return nil
}

func (c *consumer) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.guessed {
		clear(c.mu.assigned) // the group decides now
		c.mu.guessed = false
	}
	for _, p := range assigned[c.topic] {
		c.assignLocked(p, c.bounds.from[p])
	}
	c.mu.known = true
}

// onFetched learns where the group resumes in each newly assigned
// partition; if that is already the end everywhere, --exit is done.
func (c *consumer) onFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	resume := func(topic string, p int32, offset int64, code int16) {
		if topic == c.topic && code == 0 && offset >= 0 && c.mu.assigned[p] {
			c.mu.pos[p] = offset
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			resume(t.Topic, p.Partition, p.Offset, p.ErrorCode)
		}
	}
	for _, g := range resp.Groups { // OffsetFetch v8+
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				resume(t.Topic, p.Partition, p.Offset, p.ErrorCode)
			}
		}
	}
	if c.exit && c.doneLocked() {
		c.stop()
	}
	return nil
}

// onRevoked commits what was printed from the partitions going away (the
// client's own revoke handler would, had it not been replaced).
func (c *consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	cl.CommitMarkedOffsets(ctx)
	c.onLost(ctx, cl, revoked)
}

func (c *consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range lost[c.topic] {
		delete(c.mu.assigned, p)
	}
}

// loop polls and prints until the context ends, --max records were
// printed or --exit is satisfied.
func (c *consumer) loop(ctx context.Context, out *bufio.Writer, errw io.Writer, group bool) error {
	printed := 0
	lastWarn := ""
	for {
		if c.exit && c.done() {
			return nil
		}
		fetches := c.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			// The client retries on its own; say what is wrong once.
			if w := fmt.Sprintf("fetch %s[%d]: %v", t, p, err); w != lastWarn {
				fmt.Fprintln(errw, "samsa: warning:", w)
				lastWarn = w
			}
		})
		for r := range fetches.RecordsAll() {
			c.mu.Lock()
			c.mu.pos[r.Partition] = max(c.mu.pos[r.Partition], r.Offset+1)
			c.mu.Unlock()
			if c.exit && r.Offset >= c.bounds.end[r.Partition] {
				// It arrived after reading began; it still shows that the
				// partition is past its end, even if the group resumed
				// later than expected.
				continue
			}
			c.format.write(out, r)
			if group {
				c.cl.MarkCommitRecords(r)
			}
			printed++
			if c.max > 0 && printed >= c.max {
				return nil
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
}
