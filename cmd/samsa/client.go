package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"
)

// globals are the flags every client command shares: where the cluster is,
// how long to wait for it, and how listings are printed.
type globals struct {
	brokers string
	timeout time.Duration
	output  string
}

const defaultBrokers = "127.0.0.1:9092"

// addGlobals puts the client flags on root and checks them before any
// command runs, so a bad -o fails before a topic is created, not after.
func addGlobals(root *cobra.Command) *globals {
	g := &globals{}
	brokers := os.Getenv("SAMSA_BROKERS")
	if brokers == "" {
		brokers = defaultBrokers
	}
	fl := root.PersistentFlags()
	fl.StringVar(&g.brokers, "brokers", brokers, "Kafka brokers to contact, host:port,... (env SAMSA_BROKERS)")
	fl.DurationVar(&g.timeout, "timeout", 10*time.Second, "how long to wait for the cluster to answer an operation")
	fl.StringVarP(&g.output, "output", "o", "table", "how listings are printed: table, json or yaml")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error { return g.validate() }
	return g
}

func (g *globals) validate() error {
	switch g.output {
	case "table", "json", "yaml":
	default:
		return usageError{fmt.Errorf("-o/--output: %q is not table, json or yaml", g.output)}
	}
	if g.timeout <= 0 {
		return usageError{fmt.Errorf("--timeout: %s must be positive", g.timeout)}
	}
	if len(g.seeds()) == 0 {
		return usageError{errors.New("--brokers: give at least one host:port")}
	}
	return nil
}

func (g *globals) seeds() []string {
	var out []string
	for _, s := range strings.Split(g.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// client connects to the cluster and checks that a broker answers, so
// that a missing server is reported at once with what to do about it
// instead of after the client's retries run out.
func (g *globals) client(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(g.seeds()...),
		kgo.ClientID("samsa-cli"),
		kgo.DialTimeout(min(g.timeout, 5*time.Second)),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, usageError{err}
	}
	pctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("no Kafka broker answered at %s (%v); start one with `samsa serve`, or point --brokers (or SAMSA_BROKERS) at a running cluster", g.brokers, err)
	}
	return cl, nil
}

// admin connects an admin client; the broker-side timeout of requests
// that wait (create, delete) follows --timeout.
func (g *globals) admin(ctx context.Context) (*kadm.Client, error) {
	cl, err := g.client(ctx)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(min(g.timeout, time.Hour).Milliseconds()))
	return adm, nil
}

// opContext bounds one admin operation by --timeout.
func (g *globals) opContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), g.timeout)
}

// print writes v as JSON or YAML, or calls table to write the table form.
func (g *globals) print(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	switch g.output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// topicDetail looks one topic up; an unknown topic's error lists the
// topics whose names are close, since a typo is the usual cause.
func topicDetail(ctx context.Context, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, err
	}
	td, ok := tds[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return td, unknownTopic(ctx, adm, topic)
	}
	if td.Err != nil {
		return td, fmt.Errorf("topic %q: %w", topic, td.Err)
	}
	return td, nil
}

func unknownTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	msg := fmt.Sprintf("topic %q does not exist", topic)
	if all, err := adm.ListTopics(ctx); err == nil {
		if near := nearNames(topic, all.Names()); len(near) > 0 {
			msg += "; did you mean " + orList(near) + "?"
		}
	}
	return errors.New(msg)
}

// nearNames returns the candidates that look like a mistyped name: equal
// but for case, one a prefix of the other, or within a few edits — closest
// first, at most five.
func nearNames(name string, candidates []string) []string {
	type scored struct {
		name string
		d    int
	}
	var near []scored
	limit := max(2, len(name)/4)
	lower := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		lc := strings.ToLower(c)
		d := editDistance(lower, lc)
		prefix := min(len(lower), len(lc)) >= 3 && (strings.HasPrefix(lc, lower) || strings.HasPrefix(lower, lc))
		if d <= limit || prefix {
			near = append(near, scored{c, d})
		}
	}
	slices.SortFunc(near, func(a, b scored) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for i := 0; i < len(near) && i < 5; i++ {
		out = append(out, near[i].name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, by bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// orList quotes names and joins them as `"a", "b" or "c"`.
func orList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// parseKeyValues reads repeated k=v flag values.
func parseKeyValues(flag string, vals []string) (map[string]string, error) {
	out := make(map[string]string, len(vals))
	for _, kv := range vals {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--%s: %q is not key=value", flag, kv)}
		}
		out[k] = v
	}
	return out, nil
}

// args wraps a cobra argument check so that a wrong number of arguments is
// a usage mistake (exit code 2), like a bad flag.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			return usageError{fmt.Errorf("%s: %w (usage: %s)", path, err, cmd.UseLine())}
		}
		return nil
	}
}

// group makes a parent command: without a subcommand it prints its help,
// and an unknown subcommand is a usage mistake rather than a silent help.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, a []string) error {
		if len(a) > 0 {
			return usageError{fmt.Errorf("unknown command %q for %q; see %q", a[0], c.CommandPath(), c.CommandPath()+" --help")}
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}

// completeTopics offers topic names for shell completion; it asks the
// cluster briefly and offers nothing if it does not answer.
func (g *globals) completeTopics(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(a) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	adm, err := g.admin(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer adm.Close()
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return tds.Names(), cobra.ShellCompDirectiveNoFileComp
}

// completeGroups offers consumer group names for shell completion.
func (g *globals) completeGroups(cmd *cobra.Command, a []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(a) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	adm, err := g.admin(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer adm.Close()
	gs, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return gs.Groups(), cobra.ShellCompDirectiveNoFileComp
}
