package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/engine"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// serveFlags are `samsa serve`'s flags; a --config file carries the same
// keys, and a flag given on the command line wins over the file.
type serveFlags struct {
	config    string
	logFormat string
	logLevel  string
	peers     string
	cfg       engine.Config
}

func newServe() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Samsa node: a Kafka-compatible broker on a Raft-replicated log",
		Long: `Run a Samsa node. With no flags it is a single node keeping its data in ./data
and serving Kafka on 127.0.0.1:9092, metrics and health on http://127.0.0.1:9644.

SIGTERM or SIGINT stops it gracefully: no new connections, requests in progress
answered, every partition checkpointed.`,
		Example: `  samsa serve                                  # one node: ./data, Kafka on 127.0.0.1:9092
  samsa serve --data-dir /var/lib/samsa --kafka-addr 0.0.0.0:9092 --advertise-kafka-addr broker1:9092
  samsa serve --config samsa.yaml --log-format json
  samsa serve --node-id 4 --join --raft-addr host4:9093   # then: samsa cluster add-node 4 --raft-addr host4:9093
  samsa serve --pipelines pipelines/            # and run every pipeline file in the folder`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd) },
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&f.cfg.PipelinesDir, "pipelines", "", "a folder of pipeline files (*.yaml) to apply at start")
	return cmd
}

// register adds the node's flags: serve's, which run shares.
func (f *serveFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.config, "config", "", "YAML file with the same keys as the flags (data_dir, kafka_addr, ...)")
	fl.StringVar(&f.cfg.DataDir, "data-dir", "./data", "where the node keeps its data")
	fl.Uint64Var(&f.cfg.NodeID, "node-id", 1, "this node's id in the cluster")
	fl.StringVar(&f.cfg.KafkaAddr, "kafka-addr", "127.0.0.1:9092", "Kafka listener address")
	fl.StringVar(&f.cfg.AdvertiseKafkaAddr, "advertise-kafka-addr", "", "address clients are told to connect to (default: --kafka-addr)")
	fl.StringVar(&f.cfg.RaftAddr, "raft-addr", "127.0.0.1:9093", "address for Raft traffic between nodes")
	fl.StringVar(&f.cfg.HTTPAddr, "http-addr", "127.0.0.1:9644", "address for /metrics, /healthz, /readyz and the pipeline API")
	fl.StringVar(&f.peers, "peers", "", "the cluster's initial nodes as id=raft-host:port,... (default: this node alone)")
	fl.IntVar(&f.cfg.MetaVoters, "meta-voters", 3, "how many of the initial peers (lowest ids first) vote in the metadata's Raft group, 1 to 5")
	fl.BoolVar(&f.cfg.Join, "join", false, "join a running cluster: wait until `samsa cluster add-node` adds this node")
	fl.BoolVar(&f.cfg.AutoCreateTopics, "auto-create-topics", false, "create topics that clients ask for")
	fl.Int32Var(&f.cfg.DefaultPartitions, "default-partitions", 1, "partitions of auto-created topics")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func (f *serveFlags) run(cmd *cobra.Command) error {
	return f.serve(cmd, func(context.Context, *engine.Node) error { return nil })
}

// serve starts a node, calls then, and serves until SIGINT or SIGTERM.
func (f *serveFlags) serve(cmd *cobra.Command, then func(context.Context, *engine.Node) error) error {
	cfg, err := f.load(cmd.Flags())
	if err != nil {
		return usageError{err}
	}
	if cfg.Logger, err = newLogger(f.logFormat, f.logLevel); err != nil {
		return usageError{err}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start, cancel := context.WithTimeout(ctx, 2*time.Minute)
	if cfg.Join {
		// A joining node waits for `samsa cluster add-node`, however long.
		start, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	node, err := engine.Start(start, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "samsa is serving Kafka on %s (data in %s); metrics at http://%s/metrics\n", node.KafkaAddr(), cfg.WithDefaults().DataDir, node.HTTPAddr())
	if err := then(start, node); err != nil {
		return errors.Join(err, node.Stop(context.Background()))
	}
	<-ctx.Done()
	stop() // a second signal kills at once
	cfg.Logger.Info("stopping: signal received")
	return node.Stop(context.Background())
}

// load merges the config file and the flags given explicitly.
func (f *serveFlags) load(fl *pflag.FlagSet) (engine.Config, error) {
	cfg := engine.Config{}
	if f.config != "" {
		b, err := os.ReadFile(f.config)
		if err != nil {
			return cfg, err
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("%s: %w", f.config, err)
		}
	}
	set := func(name string, apply func()) {
		if f.config == "" || fl.Changed(name) {
			apply()
		}
	}
	set("data-dir", func() { cfg.DataDir = f.cfg.DataDir })
	set("node-id", func() { cfg.NodeID = f.cfg.NodeID })
	set("kafka-addr", func() { cfg.KafkaAddr = f.cfg.KafkaAddr })
	set("advertise-kafka-addr", func() { cfg.AdvertiseKafkaAddr = f.cfg.AdvertiseKafkaAddr })
	set("raft-addr", func() { cfg.RaftAddr = f.cfg.RaftAddr })
	set("http-addr", func() { cfg.HTTPAddr = f.cfg.HTTPAddr })
	set("auto-create-topics", func() { cfg.AutoCreateTopics = f.cfg.AutoCreateTopics })
	set("default-partitions", func() { cfg.DefaultPartitions = f.cfg.DefaultPartitions })
	set("pipelines", func() { cfg.PipelinesDir = f.cfg.PipelinesDir })
	set("join", func() { cfg.Join = f.cfg.Join })
	set("meta-voters", func() { cfg.MetaVoters = f.cfg.MetaVoters })
	if f.peers != "" {
		peers, err := parsePeers(f.peers)
		if err != nil {
			return cfg, err
		}
		cfg.Peers = peers
	}
	return cfg, cfg.WithDefaults().Validate()
}

// parsePeers reads "1=host:port,2=host:port".
func parsePeers(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.ParseUint(id, 10, 64)
		if !ok || err != nil || n == 0 || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not id=host:port (ids start at 1)", part)
		}
		out[n] = addr
	}
	return out, nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// usageError marks a mistake in how samsa was invoked: exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}
