package meta

import (
	"fmt"
	"slices"
)

// Lagging replicas. A node checks its follower replicas now and then
// (each a Raft ReadIndex: has it applied what its leader has committed?)
// and reports the partition shards where it is behind; the in-sync
// replica sets leave those replicas out. A report replaces the node's
// previous one, and nodes report only when their set changes.

// MaxLaggingShards bounds one ReportLagging.
const MaxLaggingShards = 1 << 16

// ReportLagging records the partition shards whose replica on a node is
// behind its leader.
type ReportLagging struct {
	NodeID uint64
	Shards []uint64
}

func (ReportLagging) op() string { return "report_lagging" }

func (s *State) reportLagging(c ReportLagging) Result {
	if _, ok := s.nodes[c.NodeID]; !ok {
		return refuse(fmt.Errorf("%w: node %d", ErrUnknownNode, c.NodeID))
	}
	if len(c.Shards) > MaxLaggingShards {
		return refuse(fmt.Errorf("%w: %d shards in one report (at most %d)", ErrInvalidRequest, len(c.Shards), MaxLaggingShards))
	}
	shards := slices.Compact(slices.Sorted(slices.Values(c.Shards)))
	if slices.Equal(shards, s.lagging[c.NodeID]) {
		return success(0)
	}
	if len(shards) == 0 {
		delete(s.lagging, c.NodeID)
	} else {
		s.lagging[c.NodeID] = shards
	}
	s.changed()
	return success(0)
}

// Lagging returns, by node, the partition shards whose replica on the node
// last reported being behind its leader.
func (s *State) Lagging() map[uint64][]uint64 {
	out := make(map[uint64][]uint64, len(s.lagging))
	for n, shards := range s.lagging {
		out[n] = slices.Clone(shards)
	}
	return out
}

type snapLagging struct {
	NodeID uint64
	Shards []uint64
}

func (s *State) saveLagging() []snapLagging {
	var out []snapLagging
	for _, n := range sortedKeys(s.lagging) {
		out = append(out, snapLagging{n, s.lagging[n]})
	}
	return out
}

func (snap *snapshot) restoreLagging(s *State) error {
	if err := ascending("lagging node", keysOf(snap.Lagging, func(l snapLagging) uint64 { return l.NodeID })); err != nil {
		return err
	}
	for _, l := range snap.Lagging {
		if _, ok := s.nodes[l.NodeID]; !ok {
			return fmt.Errorf("lagging shards of unknown node %d", l.NodeID)
		}
		if len(l.Shards) == 0 || ascending("lagging shard", l.Shards) != nil {
			return fmt.Errorf("node %d: lagging shards empty or out of order", l.NodeID)
		}
		s.lagging[l.NodeID] = l.Shards
	}
	return nil
}
