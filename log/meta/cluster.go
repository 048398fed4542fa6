package meta

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
)

// registerNode adds a node or updates its addresses. Two nodes may not
// share a Raft address: dragonboat would route one's messages to the other.
func (s *State) registerNode(c RegisterNode) Result {
	if c.ID == 0 || c.ID >= FirstMovedReplicaID {
		return refuse(fmt.Errorf("%w: node id %d outside [1, %d)", ErrInvalidRequest, c.ID, FirstMovedReplicaID))
	}
	if err := checkAddr("raft", c.RaftAddr); err != nil {
		return refuse(err)
	}
	if err := checkAddr("kafka", c.KafkaAddr); err != nil {
		return refuse(err)
	}
	for _, id := range sortedKeys(s.nodes) {
		if n := s.nodes[id]; id != c.ID && n.RaftAddr == c.RaftAddr {
			return refuse(fmt.Errorf("%w: raft address %q is node %d's", ErrInvalidRequest, c.RaftAddr, id))
		}
	}
	n := Node(c)
	if old, ok := s.nodes[c.ID]; ok && old == n {
		return Result{}
	}
	s.nodes[c.ID] = n
	s.changed()
	return Result{}
}

// checkAddr accepts host:port with a non-empty host and a port in
// [1, 65535]. It does not resolve the host: apply does no I/O.
func checkAddr(what, addr string) error {
	if len(addr) > MaxAddrLen {
		return fmt.Errorf("%w: %s address longer than %d bytes", ErrInvalidRequest, what, MaxAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %s address %q: %v", ErrInvalidRequest, what, addr, err)
	}
	p, err := strconv.Atoi(port)
	if host == "" || err != nil || p < 1 || p > math.MaxUint16 {
		return fmt.Errorf("%w: %s address %q is not host:port", ErrInvalidRequest, what, addr)
	}
	return nil
}

// allocateProducerIDs reserves a block of producer ids. Ids are never
// handed out twice, so a producer's id is unique for the cluster's life.
func (s *State) allocateProducerIDs(c AllocateProducerIDs) Result {
	if c.Count < 1 || c.Count > MaxProducerIDBlock {
		return refuse(fmt.Errorf("%w: producer id count %d outside [1, %d]", ErrInvalidRequest, c.Count, MaxProducerIDBlock))
	}
	first := s.nextProducerID
	if first > math.MaxInt64-c.Count {
		return refuse(fmt.Errorf("%w: producer ids exhausted", ErrInvalidRequest))
	}
	s.nextProducerID += c.Count
	s.changed()
	return success(uint64(first))
}

// reportLeaders records shards' leader. A shard's report from an
// earlier term than the recorded one is stale (its sender lost an
// election it has not heard of yet) and changes nothing. Every shard must
// exist and have a replica on the node, or nothing changes.
func (s *State) reportLeaders(c ReportLeaders) Result {
	if len(c.Shards) > MaxReportedLeaders {
		return refuse(fmt.Errorf("%w: %d shards in one report, at most %d", ErrInvalidRequest, len(c.Shards), MaxReportedLeaders))
	}
	byShard := map[uint64]*Partition{}
	for _, t := range s.topics {
		for i := range t.Partitions {
			byShard[t.Partitions[i].ShardID] = &t.Partitions[i]
		}
	}
	parts := make([]*Partition, len(c.Shards))
	for i, st := range c.Shards {
		parts[i] = byShard[st.ShardID]
		if parts[i] == nil {
			return refuse(fmt.Errorf("%w: no partition has shard %d", ErrInvalidRequest, st.ShardID))
		}
		if !slices.ContainsFunc(parts[i].Replicas, func(r Replica) bool { return r.NodeID == c.NodeID }) {
			return refuse(fmt.Errorf("%w: node %d has no replica of shard %d", ErrInvalidRequest, c.NodeID, st.ShardID))
		}
	}
	changed := false
	for i, st := range c.Shards {
		p := parts[i]
		if st.Term < p.LeaderTerm || (st.Term == p.LeaderTerm && c.NodeID == p.Leader) {
			continue
		}
		p.Leader, p.LeaderTerm = c.NodeID, st.Term
		changed = true
	}
	if changed {
		s.changed()
	}
	return Result{}
}
