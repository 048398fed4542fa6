// Package engine is a Samsa node: its configuration, the order in which
// its parts start and stop, and the wiring between them — the replicated
// log, the Kafka listener, the pipeline runner and the HTTP admin server.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/samsa-io/samsa/engine/admin"
	"github.com/samsa-io/samsa/engine/kafka"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/samsa-io/samsa/pipelines"
)

// Node is a running Samsa node.
type Node struct {
	cfg      Config
	logger   *slog.Logger
	log      *replog.Log
	kafka    *kafka.Server
	admin    *admin.Server
	runner   *pipelines.Runner
	kafkaLn  net.Listener
	httpLn   net.Listener
	registry *prometheus.Registry

	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// Start starts a node: it binds its listeners first (a port in use fails
// at once), opens the replicated log, and then serves Kafka and HTTP.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	n := &Node{cfg: cfg, logger: cfg.Logger, registry: prometheus.NewRegistry()}
	var err error
	if n.kafkaLn, err = net.Listen("tcp", cfg.KafkaAddr); err != nil {
		return nil, fmt.Errorf("engine: Kafka listener: %w", err)
	}
	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		n.kafkaLn.Close()
		return nil, fmt.Errorf("engine: HTTP listener: %w", err)
	}
	advertised := cfg.AdvertiseKafkaAddr
	if advertised == "" {
		advertised = boundAddr(cfg.KafkaAddr, n.kafkaLn)
	}
	n.log, err = replog.Open(ctx, replog.Config{
		NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr, KafkaAddr: advertised,
		Peers: cfg.Peers, MetaVoters: cfg.MetaVoters, Join: cfg.Join, Raft: cfg.Raft, Logger: cfg.Logger, LeaderBalanceInterval: cfg.LeaderBalanceInterval,
	})
	if err != nil {
		n.kafkaLn.Close()
		n.httpLn.Close()
		return nil, fmt.Errorf("engine: %w", err)
	}
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), logCollector{n.log})
	n.kafka, err = kafka.New(n.log, kafka.Config{
		NodeID: int32(cfg.NodeID), AdvertisedAddr: advertised, AutoCreateTopics: cfg.AutoCreateTopics,
		DefaultPartitions: cfg.DefaultPartitions, InitialRebalanceDelay: cfg.InitialRebalanceDelay,
		Registerer: n.registry, Logger: cfg.Logger,
	})
	if err != nil {
		n.log.Close(ctx)
		n.kafkaLn.Close()
		n.httpLn.Close()
		return nil, fmt.Errorf("engine: %w", err)
	}
	env, err := pipelines.NewEnvironment(pipelines.Deps{Log: n.log, Registerer: n.registry, Logger: cfg.Logger})
	if err != nil {
		n.kafka.Shutdown(ctx)
		n.log.Close(ctx)
		n.kafkaLn.Close()
		n.httpLn.Close()
		return nil, fmt.Errorf("engine: %w", err)
	}
	n.runner = pipelines.NewRunner(env)
	n.admin = admin.New(admin.Config{Gatherer: n.registry, Ready: n.ready, Routes: n.runner.Register, Logger: cfg.Logger})
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		if err := n.kafka.Serve(n.kafkaLn); err != nil {
			n.logger.Error("Kafka listener stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		if err := n.admin.Serve(n.httpLn); err != nil {
			n.logger.Error("HTTP listener stopped", "err", err)
		}
	}()
	if err := n.startPipelines(ctx); err != nil {
		n.Stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("engine: %w", err)
	}
	n.logger.Info("samsa node started", "node_id", cfg.NodeID, "kafka", n.KafkaAddr(), "advertised", advertised,
		"raft", cfg.RaftAddr, "http", n.HTTPAddr(), "data_dir", cfg.DataDir)
	return n, nil
}

// startPipelines starts the stored pipelines this node runs, then applies
// the files in PipelinesDir.
func (n *Node) startPipelines(ctx context.Context) error {
	if err := n.runner.LoadStored(ctx); err != nil {
		n.logger.Error("stored pipelines", "err", err) // the others run; status shows the failure
	}
	if n.cfg.PipelinesDir == "" {
		return nil
	}
	files, err := pipelines.FilesIn(n.cfg.PipelinesDir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, err := n.runner.ApplyFile(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// boundAddr is addr with a port 0 replaced by the port ln bound.
func boundAddr(addr string, ln net.Listener) string {
	host, port, _ := net.SplitHostPort(addr)
	if port == "0" {
		port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	return net.JoinHostPort(host, port)
}

// ready reports whether the node can serve: the meta shard has a leader.
func (n *Node) ready() error {
	if _, ok := n.log.Controller(); !ok {
		return errors.New("the cluster's metadata has no leader")
	}
	return nil
}

// KafkaAddr is the address the Kafka listener bound.
func (n *Node) KafkaAddr() string { return n.kafkaLn.Addr().String() }

// HTTPAddr is the address the HTTP listener bound.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// Log is the node's replicated log.
func (n *Node) Log() *replog.Log { return n.log }

// Pipelines is the node's pipeline runner.
func (n *Node) Pipelines() *pipelines.Runner { return n.runner }

// Stop stops the node in order — the pipelines (what they read is stored
// and acknowledged), the Kafka listener (requests in progress finish and
// are answered), the log (each partition syncs a checkpoint, then Raft
// stops), the HTTP server last — within the configured shutdown timeout,
// or ctx's deadline if sooner.
func (n *Node) Stop(ctx context.Context) error {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, n.cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		errs = append(errs, n.runner.Close(ctx))
		errs = append(errs, n.kafka.Shutdown(ctx))
		errs = append(errs, n.log.Close(ctx))
		errs = append(errs, n.admin.Shutdown(ctx))
		n.wg.Wait()
		n.stopErr = errors.Join(errs...)
		n.logger.Info("samsa node stopped", "node_id", n.cfg.NodeID, "err", n.stopErr)
	})
	return n.stopErr
}
