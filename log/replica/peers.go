package replica

import (
	"sync"

	"github.com/lni/dragonboat/v4/raftio"
)

// What this host's Raft transport knows of its peers, for the in-sync
// replica sets: dragonboat exposes no follower progress, but its
// transport reports when a peer stops answering and when it answers
// again, and when a follower is sent a snapshot because it fell behind
// the log the leader keeps. A leader sends its followers heartbeats all
// the time, so it hears of a dead peer within a heartbeat or two.

// peers is the transport's view of the other hosts.
type peers struct {
	mu          sync.Mutex
	unreachable map[string]bool   // Raft address → the last message connection failed
	sending     map[[2]uint64]int // (shard, replica) → snapshots being sent to it
}

// Reachable reports whether the transport last reached the host at a
// Raft address (true until it has failed to).
func (h *Host) Reachable(raftAddr string) bool {
	h.peers.mu.Lock()
	defer h.peers.mu.Unlock()
	return !h.peers.unreachable[raftAddr]
}

// SendingSnapshot reports whether a snapshot is on its way to a replica:
// it is too far behind to catch up from the log.
func (h *Host) SendingSnapshot(shardID, replicaID uint64) bool {
	h.peers.mu.Lock()
	defer h.peers.mu.Unlock()
	return h.peers.sending[[2]uint64{shardID, replicaID}] > 0
}

// sysListener receives dragonboat's system events on its own goroutine.
type sysListener Host

func (l *sysListener) reach(info raftio.ConnectionInfo, ok bool) {
	if info.SnapshotConnection {
		return
	}
	p := &(*Host)(l).peers
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unreachable == nil {
		p.unreachable = map[string]bool{}
	}
	if ok {
		delete(p.unreachable, info.Address)
	} else {
		p.unreachable[info.Address] = true
	}
}

func (l *sysListener) snapshot(info raftio.SnapshotInfo, delta int) {
	p := &(*Host)(l).peers
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sending == nil {
		p.sending = map[[2]uint64]int{}
	}
	k := [2]uint64{info.ShardID, info.ReplicaID}
	if p.sending[k] += delta; p.sending[k] <= 0 {
		delete(p.sending, k)
	}
}

func (l *sysListener) ConnectionEstablished(info raftio.ConnectionInfo) { l.reach(info, true) }
func (l *sysListener) ConnectionFailed(info raftio.ConnectionInfo)      { l.reach(info, false) }
func (l *sysListener) SendSnapshotStarted(info raftio.SnapshotInfo)     { l.snapshot(info, 1) }
func (l *sysListener) SendSnapshotCompleted(info raftio.SnapshotInfo)   { l.snapshot(info, -1) }
func (l *sysListener) SendSnapshotAborted(info raftio.SnapshotInfo)     { l.snapshot(info, -1) }

func (l *sysListener) NodeHostShuttingDown()                 {}
func (l *sysListener) NodeUnloaded(raftio.NodeInfo)          {}
func (l *sysListener) NodeDeleted(raftio.NodeInfo)           {}
func (l *sysListener) NodeReady(raftio.NodeInfo)             {}
func (l *sysListener) MembershipChanged(raftio.NodeInfo)     {}
func (l *sysListener) SnapshotReceived(raftio.SnapshotInfo)  {}
func (l *sysListener) SnapshotRecovered(raftio.SnapshotInfo) {}
func (l *sysListener) SnapshotCreated(raftio.SnapshotInfo)   {}
func (l *sysListener) SnapshotCompacted(raftio.SnapshotInfo) {}
func (l *sysListener) LogCompacted(raftio.EntryInfo)         {}
func (l *sysListener) LogDBCompacted(raftio.EntryInfo)       {}
