package replog

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/samsa-io/samsa/log/replica"
)

// Defaults.
const (
	DefaultRetentionCheck = 5 * time.Minute // log.retention.check.interval.ms
	DefaultMinFreeBytes   = 128 << 20
	// DefaultLeaderBalanceInterval is how often a node takes back the
	// leadership of the partitions it is the preferred replica of.
	DefaultLeaderBalanceInterval = 10 * time.Second
	// DefaultMetaVoters is how many initial peers vote in the meta shard.
	DefaultMetaVoters = 3
	// MaxMetaVoters bounds MetaVoters.
	MaxMetaVoters = 5
)

// Config is a node's log configuration.
type Config struct {
	// NodeID identifies the node in the cluster. Default 1.
	NodeID uint64 `yaml:"node_id"`
	// DataDir holds everything: raft/ (dragonboat) and partitions/.
	DataDir string `yaml:"data_dir"`
	// RaftAddr is host:port for Raft traffic.
	RaftAddr string `yaml:"raft_addr"`
	// KafkaAddr is the Kafka address clients reach this node at; it is
	// registered in the metadata for other nodes to advertise.
	KafkaAddr string `yaml:"kafka_addr"`
	// Peers are the meta shard's initial members, node id → Raft address;
	// default this node alone.
	Peers map[uint64]string `yaml:"peers"`
	// MetaVoters is how many of the initial peers (the lowest ids) vote in
	// the meta shard; the others, and nodes that join later, follow it as
	// non-voting members, added by the voters. 1 to 5; default 3. More
	// voters survive more failures and make every metadata change slower.
	// Read only when the cluster is first started.
	MetaVoters int `yaml:"meta_voters"`
	// Join starts a node that is not among the initial peers: it waits
	// until a member adds it (AddNode), then follows the metadata as a
	// non-voting member of the meta shard. Ignored once the node has
	// joined.
	Join bool `yaml:"join"`
	// Raft tunes replication (RTT, elections, LogDB, snapshots). NodeID,
	// Dir and RaftAddr are filled in from the fields above.
	Raft replica.Config `yaml:"raft"`
	// RetentionCheck is how often leaders apply retention. Default 5 min.
	RetentionCheck time.Duration `yaml:"retention_check"`
	// MinFreeBytes refuses appends (KAFKA_STORAGE_ERROR) while the data
	// directory's file system has less free space than this, so the Raft
	// apply path never meets a full disk. Default 128 MiB; -1 disables.
	MinFreeBytes int64 `yaml:"min_free_bytes"`
	// LeaderBalanceInterval is how often this node takes back, where its
	// replica is caught up, the leadership of the partitions it is the
	// preferred (first) replica of (balance.go). Default 10 s; -1 never
	// (requests by ElectLeaders still are).
	LeaderBalanceInterval time.Duration `yaml:"leader_balance_interval"`
	// Logger receives lifecycle events. Default slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// WithDefaults returns c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.NodeID == 0 {
		c.NodeID = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.Peers) == 0 && !c.Join {
		c.Peers = map[uint64]string{c.NodeID: c.RaftAddr}
	}
	if c.MetaVoters == 0 {
		c.MetaVoters = DefaultMetaVoters
	}
	if c.RetentionCheck == 0 {
		c.RetentionCheck = DefaultRetentionCheck
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.LeaderBalanceInterval == 0 {
		c.LeaderBalanceInterval = DefaultLeaderBalanceInterval
	}
	c.Raft.NodeID, c.Raft.RaftAddr = c.NodeID, c.RaftAddr
	c.Raft.Dir = filepath.Join(c.DataDir, "raft")
	if c.Raft.Logger == nil {
		c.Raft.Logger = c.Logger
	}
	c.Raft = c.Raft.WithDefaults()
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: required"))
	}
	if c.KafkaAddr == "" {
		errs = append(errs, errors.New("kafka_addr: required"))
	}
	if addr, ok := c.Peers[c.NodeID]; ok && addr != c.RaftAddr {
		errs = append(errs, fmt.Errorf("peers: node %d is listed at %s but raft_addr is %s", c.NodeID, addr, c.RaftAddr))
	}
	if c.MetaVoters < 1 || c.MetaVoters > MaxMetaVoters {
		errs = append(errs, fmt.Errorf("meta_voters: %d is not 1 to %d", c.MetaVoters, MaxMetaVoters))
	}
	if err := c.Raft.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("raft: %w", err))
	}
	return errors.Join(errs...)
}

// metaVoters returns the initial peers that vote in the meta shard: the
// MetaVoters lowest ids.
func (c Config) metaVoters() map[uint64]string {
	ids := slices.Sorted(maps.Keys(c.Peers))
	out := map[uint64]string{}
	for _, id := range ids[:min(len(ids), c.MetaVoters)] {
		out[id] = c.Peers[id]
	}
	return out
}

func (c Config) partitionsDir() string { return filepath.Join(c.DataDir, "partitions") }
