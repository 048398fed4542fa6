package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/samsa-io/samsa/log/replica"
)

// Config is a node's configuration: `samsa serve`'s flags and the keys of
// its --config YAML file are the same.
type Config struct {
	// DataDir holds everything the node stores. Default ./data.
	DataDir string `yaml:"data_dir"`
	// NodeID identifies the node in the cluster. Default 1.
	NodeID uint64 `yaml:"node_id"`
	// KafkaAddr is where the Kafka listener binds. Default 127.0.0.1:9092.
	KafkaAddr string `yaml:"kafka_addr"`
	// AdvertiseKafkaAddr is the address clients are told to use. Default
	// KafkaAddr (with a port 0 replaced by the port actually bound).
	AdvertiseKafkaAddr string `yaml:"advertise_kafka_addr"`
	// RaftAddr is where Raft traffic between nodes goes. Default
	// 127.0.0.1:9093.
	RaftAddr string `yaml:"raft_addr"`
	// HTTPAddr serves /healthz, /readyz and /metrics. Default
	// 127.0.0.1:9644.
	HTTPAddr string `yaml:"http_addr"`
	// Peers are the initial nodes of the cluster's meta shard, node id →
	// Raft address. Default this node alone.
	Peers map[uint64]string `yaml:"peers"`
	// MetaVoters is how many initial peers (the lowest ids) vote in the
	// meta shard; the rest follow it. 1 to 5; default 3. Read only when
	// the cluster is first started.
	MetaVoters int `yaml:"meta_voters"`
	// Join starts a node that is not among the initial peers: it waits,
	// without a time limit, until a member adds it (`samsa cluster
	// add-node`), then joins. Ignored once the node has joined.
	Join bool `yaml:"join"`
	// AutoCreateTopics creates topics that clients ask for. Default off.
	AutoCreateTopics bool `yaml:"auto_create_topics"`
	// DefaultPartitions is the partition count of auto-created topics.
	// Default 1.
	DefaultPartitions int32 `yaml:"default_partitions"`
	// ShutdownTimeout bounds a graceful stop. Default 30 s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// PipelinesDir is a folder of pipeline files (*.yaml, *.yml) applied at
	// start, after the pipelines already stored. Optional.
	PipelinesDir string `yaml:"pipelines_dir"`
	// LeaderBalanceInterval is how often a node takes back the leadership
	// of the partitions it is the preferred replica of. Default 10 s; -1
	// never (ElectLeaders requests still move it).
	LeaderBalanceInterval time.Duration `yaml:"leader_balance_interval"`
	// Raft tunes replication; see replica.Config.
	Raft replica.Config `yaml:"raft"`
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms. Default 3 s.
	InitialRebalanceDelay time.Duration `yaml:"initial_rebalance_delay"`
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// WithDefaults returns c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.NodeID == 0 {
		c.NodeID = 1
	}
	if c.KafkaAddr == "" {
		c.KafkaAddr = "127.0.0.1:9092"
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:9093"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:9644"
	}
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 1
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem at once, naming each key.
func (c Config) Validate() error {
	var errs []error
	for key, addr := range map[string]string{"kafka_addr": c.KafkaAddr, "raft_addr": c.RaftAddr, "http_addr": c.HTTPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", key, addr))
		}
	}
	if c.AdvertiseKafkaAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseKafkaAddr); err != nil {
			errs = append(errs, fmt.Errorf("advertise_kafka_addr: %q is not host:port", c.AdvertiseKafkaAddr))
		}
	}
	if c.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("default_partitions: %d must be at least 1", c.DefaultPartitions))
	}
	for id, addr := range c.Peers {
		if id == 0 {
			errs = append(errs, errors.New("peers: node ids start at 1"))
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("peers: node %d: %q is not host:port", id, addr))
		}
	}
	return errors.Join(errs...)
}
