package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// LogDB names the storage dragonboat keeps its Raft log in. The choice is
// recorded in the NodeHost directory and cannot change afterwards.
type LogDB string

// LogDBs. See ARCHITECTURE.md for what was measured.
const (
	// LogDBPebble is dragonboat's sharded pebble store with small memtables:
	// one store for all shards, so a thousand partitions cost no more disk
	// than ten. The default.
	LogDBPebble LogDB = "pebble"
	// LogDBTan is dragonboat's tan log: one file per replica, preallocated
	// to 64 MiB — fast for a few partitions, prohibitive for many.
	LogDBTan LogDB = "tan"
)

// Defaults.
const (
	DefaultRTT                = 200 * time.Millisecond
	DefaultElectionRTT        = 5 // election timeout 1–2 s at the default RTT
	DefaultHeartbeatRTT       = 1
	DefaultSnapshotBytes      = 8 << 20
	DefaultCompactionOverhead = 1024
	DefaultMaxInFlight        = 1024
	DefaultProposalTimeout    = 10 * time.Second
	DefaultDeploymentID       = 0x53414d5341 // "SAMSA"
)

// Config is a Host's configuration. Zero fields take their defaults
// (WithDefaults); NodeID, Dir and RaftAddr are required.
type Config struct {
	// NodeID identifies this node; it is also its replica id in every shard
	// it starts from scratch. At least 1.
	NodeID uint64 `yaml:"node_id"`
	// Dir is the NodeHost directory (<data-dir>/raft).
	Dir string `yaml:"dir"`
	// RaftAddr is host:port for Raft traffic between nodes.
	RaftAddr string `yaml:"raft_addr"`
	// DeploymentID keeps nodes of different clusters from talking to each
	// other. Default "SAMSA" in ASCII.
	DeploymentID uint64 `yaml:"deployment_id"`
	// RTT is dragonboat's logical clock tick. Every tick visits every
	// shard, so it sets the idle cost of many partitions (1,000 idle
	// partitions: 8% of a core at 100 ms, 4% at 200 ms); commits do not
	// wait for ticks. Default 200 ms.
	RTT time.Duration `yaml:"rtt"`
	// ElectionRTT is the election timeout in ticks (a random value between
	// it and twice it is used). Default 5. Keep the timeout ≥ 1 s: shorter
	// ones churn leaders on a loaded machine and large proposals never
	// commit (DRAGONBOAT.md).
	ElectionRTT uint64 `yaml:"election_rtt"`
	// HeartbeatRTT is the heartbeat interval in ticks. Default 1.
	HeartbeatRTT uint64 `yaml:"heartbeat_rtt"`
	// Quiesce lets idle shards stop ticking and heartbeating. Off by
	// default: dragonboat marks it experimental, and a quiesced shard
	// notices a dead leader only when traffic arrives.
	Quiesce bool `yaml:"quiesce"`
	// LogDB is where dragonboat keeps its Raft log. Default LogDBPebble.
	LogDB LogDB `yaml:"logdb"`
	// SnapshotBytes is how many bytes of entries a partition replica applies
	// between snapshots. A snapshot of a partition is a checkpoint plus
	// compaction of the Raft log below it. Default 8 MiB: frequent enough
	// that a single-replica shard's entries are deleted while still in the
	// LogDB's 16 MiB memtable, which halves the bytes written to disk and
	// the commit latency's p99 (ARCHITECTURE.md).
	SnapshotBytes int64 `yaml:"snapshot_bytes"`
	// CompactionOverhead is how many entries below a snapshot stay in the
	// Raft log, so a follower that fell slightly behind catches up without a
	// full snapshot. Default 1024. A shard with a single replica keeps at
	// most 16.
	CompactionOverhead uint64 `yaml:"compaction_overhead"`
	// MaxInFlight bounds the proposals in flight per shard (dragonboat's
	// own queue refuses beyond 2,048). Default 1024.
	MaxInFlight int `yaml:"max_in_flight"`
	// ProposalTimeout bounds a proposal when the caller's context has no
	// deadline. Default 10 s.
	ProposalTimeout time.Duration `yaml:"proposal_timeout"`
	// Logger receives lifecycle events and dragonboat's warnings. Default
	// slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// WithDefaults returns c with unset fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.DeploymentID == 0 {
		c.DeploymentID = DefaultDeploymentID
	}
	if c.RTT == 0 {
		c.RTT = DefaultRTT
	}
	if c.ElectionRTT == 0 {
		c.ElectionRTT = DefaultElectionRTT
	}
	if c.HeartbeatRTT == 0 {
		c.HeartbeatRTT = DefaultHeartbeatRTT
	}
	if c.LogDB == "" {
		c.LogDB = LogDBPebble
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.CompactionOverhead == 0 {
		c.CompactionOverhead = DefaultCompactionOverhead
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.ProposalTimeout == 0 {
		c.ProposalTimeout = DefaultProposalTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == 0 {
		errs = append(errs, errors.New("node_id: must be at least 1"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: required"))
	}
	if c.RaftAddr == "" {
		errs = append(errs, errors.New("raft_addr: required"))
	}
	if c.RTT < time.Millisecond {
		errs = append(errs, fmt.Errorf("rtt: %v is below 1ms", c.RTT))
	}
	if c.ElectionRTT <= 2*c.HeartbeatRTT {
		errs = append(errs, fmt.Errorf("election_rtt: %d must be more than twice heartbeat_rtt (%d)", c.ElectionRTT, c.HeartbeatRTT))
	}
	if timeout := c.RTT * time.Duration(c.ElectionRTT); timeout < time.Second {
		errs = append(errs, fmt.Errorf("election_rtt: an election timeout of %v churns leaders; use at least 1s", timeout))
	}
	if c.LogDB != LogDBPebble && c.LogDB != LogDBTan {
		errs = append(errs, fmt.Errorf("logdb: %q is not %q or %q", c.LogDB, LogDBPebble, LogDBTan))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 2048 {
		errs = append(errs, fmt.Errorf("max_in_flight: %d is outside [1, 2048]", c.MaxInFlight))
	}
	return errors.Join(errs...)
}
