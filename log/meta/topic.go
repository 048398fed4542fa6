package meta

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// ValidateTopicName applies Kafka's rules: 1 to 249 of [a-zA-Z0-9._-], and
// not "." or "..", which would be directory names. CreateTopic applies it;
// it is exported so that a proposer can refuse early (and answer
// validate-only requests) without a round trip through Raft.
func ValidateTopicName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q: length must be 1 to %d", ErrInvalidTopic, name, MaxNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: only ASCII letters, digits, '.', '_' and '-' are allowed", ErrInvalidTopic, name)
		}
	}
	return nil
}

// checkPlacements checks the replica lists of new partitions, numbered
// from first: each has rf replicas, on registered nodes, no node twice.
func (s *State) checkPlacements(first int, placements [][]uint64, rf int) error {
	for i, nodes := range placements {
		p := first + i
		if len(nodes) != rf {
			return fmt.Errorf("%w: partition %d has %d replicas, the replication factor is %d", ErrInvalidReplicaAssignment, p, len(nodes), rf)
		}
		for j, n := range nodes {
			if _, ok := s.nodes[n]; !ok {
				return fmt.Errorf("%w: partition %d: node %d is not registered", ErrInvalidReplicaAssignment, p, n)
			}
			for _, m := range nodes[:j] {
				if m == n {
					return fmt.Errorf("%w: partition %d: node %d appears twice", ErrInvalidReplicaAssignment, p, n)
				}
			}
		}
	}
	return nil
}

// newPartitions allocates a shard per placement. Replica ids are node
// ids: a node holds at most one replica of a shard.
func (s *State) newPartitions(placements [][]uint64) []Partition {
	out := make([]Partition, len(placements))
	for i, nodes := range placements {
		rs := make([]Replica, len(nodes))
		for j, n := range nodes {
			rs[j] = Replica{ReplicaID: n, NodeID: n}
		}
		out[i] = Partition{ShardID: s.nextShardID, Replicas: rs}
		s.nextShardID++
	}
	return out
}

func (s *State) createTopic(c CreateTopic) Result {
	if err := ValidateTopicName(c.Name); err != nil {
		return refuse(err)
	}
	if _, ok := s.topics[c.Name]; ok {
		return refuse(fmt.Errorf("%w: %q", ErrTopicExists, c.Name))
	}
	if c.ID == ([16]byte{}) {
		return refuse(fmt.Errorf("%w: topic %q: zero topic id", ErrInvalidRequest, c.Name))
	}
	if other, ok := s.byID[c.ID]; ok {
		return refuse(fmt.Errorf("%w: topic %q: id already used by topic %q", ErrInvalidRequest, c.Name, other))
	}
	if len(c.Placements) == 0 || len(c.Placements) > math.MaxInt32 {
		return refuse(fmt.Errorf("%w: topic %q: %d partitions, need at least 1", ErrInvalidPartitions, c.Name, len(c.Placements)))
	}
	rf := len(c.Placements[0])
	if rf < 1 || rf > math.MaxInt16 || rf > len(s.nodes) {
		return refuse(fmt.Errorf("%w: topic %q: replication factor %d, need 1 to %d (the registered nodes)", ErrInvalidReplicationFactor, c.Name, rf, len(s.nodes)))
	}
	if err := s.checkPlacements(0, c.Placements, rf); err != nil {
		return refuse(fmt.Errorf("topic %q: %w", c.Name, err))
	}
	if err := ValidateConfigs(c.Configs); err != nil {
		return refuse(err)
	}
	first := s.nextShardID
	t := &Topic{
		Name:              c.Name,
		ID:                c.ID,
		Partitions:        s.newPartitions(c.Placements),
		ReplicationFactor: int16(rf),
		Configs:           cloneConfigs(c.Configs),
		CreatedMs:         c.NowMs,
	}
	s.topics[t.Name] = t
	s.byID[t.ID] = t.Name
	s.changed()
	return success(first)
}

func (s *State) deleteTopic(c DeleteTopic) Result {
	t, ok := s.topics[c.Name]
	if !ok {
		return refuse(fmt.Errorf("%w: topic %q", ErrUnknownTopic, c.Name))
	}
	delete(s.topics, t.Name)
	delete(s.byID, t.ID)
	s.dropTopicOffsets(t.Name)
	s.changed()
	return Result{}
}

func (s *State) createPartitions(c CreatePartitions) Result {
	t, ok := s.topics[c.Name]
	if !ok {
		return refuse(fmt.Errorf("%w: topic %q", ErrUnknownTopic, c.Name))
	}
	cur := len(t.Partitions)
	if int(c.Total) <= cur {
		return refuse(fmt.Errorf("%w: topic %q has %d partitions; the new count %d must be more", ErrInvalidPartitions, c.Name, cur, c.Total))
	}
	if want := int(c.Total) - cur; len(c.Placements) != want {
		return refuse(fmt.Errorf("%w: topic %q: growing from %d to %d partitions needs %d placements, got %d", ErrInvalidReplicaAssignment, c.Name, cur, c.Total, want, len(c.Placements)))
	}
	if err := s.checkPlacements(cur, c.Placements, int(t.ReplicationFactor)); err != nil {
		return refuse(fmt.Errorf("topic %q: %w", c.Name, err))
	}
	first := s.nextShardID
	t.Partitions = append(t.Partitions, s.newPartitions(c.Placements)...)
	s.changed()
	return success(first)
}

func (s *State) alterConfigs(c AlterConfigs) Result {
	t, ok := s.topics[c.Name]
	if !ok {
		return refuse(fmt.Errorf("%w: topic %q", ErrUnknownTopic, c.Name))
	}
	if c.Replace && len(c.Delete) > 0 {
		return refuse(fmt.Errorf("%w: topic %q: Replace with keys to delete", ErrInvalidRequest, c.Name))
	}
	for _, k := range c.Delete {
		if configIndex(k) == nil {
			return refuse(fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, k))
		}
		if _, ok := c.Set[k]; ok {
			return refuse(fmt.Errorf("%w: topic %q: config %q both set and deleted", ErrInvalidRequest, c.Name, k))
		}
	}
	if err := ValidateConfigs(c.Set); err != nil {
		return refuse(err)
	}
	next := cloneConfigs(c.Set)
	if !c.Replace {
		next = cloneConfigs(t.Configs)
		maps.Copy(next, c.Set)
		for _, k := range c.Delete {
			delete(next, k)
		}
	}
	if maps.Equal(next, t.Configs) {
		return Result{}
	}
	t.Configs = next
	s.changed()
	return Result{}
}

// cloneConfigs copies a config map, never returning nil.
func cloneConfigs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	maps.Copy(out, m)
	return out
}

// clone returns a deep copy of t.
func (t *Topic) clone() Topic {
	c := *t
	c.Configs = cloneConfigs(t.Configs)
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		c.Partitions[i] = Partition{ShardID: p.ShardID, Replicas: append([]Replica(nil), p.Replicas...), Leader: p.Leader, LeaderTerm: p.LeaderTerm, Target: slices.Clone(p.Target)}
	}
	return c
}

// Topics returns every topic, by name.
func (s *State) Topics() []Topic {
	out := make([]Topic, 0, len(s.topics))
	for _, name := range sortedKeys(s.topics) {
		out = append(out, s.topics[name].clone())
	}
	return out
}

// Topic returns one topic.
func (s *State) Topic(name string) (Topic, bool) {
	t, ok := s.topics[name]
	if !ok {
		return Topic{}, false
	}
	return t.clone(), true
}

// TopicName returns the name of the topic with a Kafka topic id, for
// requests that name topics by id (Fetch v13+, Metadata v10+).
func (s *State) TopicName(id [16]byte) (string, bool) {
	name, ok := s.byID[id]
	return name, ok
}

// ShardID returns the shard of one partition without copying the topic:
// the lookup on the produce and fetch paths.
func (s *State) ShardID(topic string, partition int32) (uint64, bool) {
	t, ok := s.topics[topic]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return 0, false
	}
	return t.Partitions[partition].ShardID, true
}
