package meta

import "fmt"

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommittedOffset is a consumer group's committed position in one partition.
type CommittedOffset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitMs    int64 // the proposer's clock when committed
}

// GroupOffset is one committed offset in GroupOffsets' answer.
type GroupOffset struct {
	TopicPartition
	CommittedOffset
}

// groupOffsets is one group's offsets, topic → partition → offset, so that
// deleting a topic costs a lookup per group, not a scan of every offset.
type groupOffsets map[string]map[int32]CommittedOffset

// checkGroup refuses the group ids the state will not hold.
func checkGroup(group string) error {
	if group == "" || len(group) > MaxNameLen {
		return fmt.Errorf("%w: %q: length must be 1 to %d", ErrInvalidGroup, group, MaxNameLen)
	}
	return nil
}

// partitionExists reports whether topic has partition p.
func (s *State) partitionExists(topic string, p int32) bool {
	_, ok := s.ShardID(topic, p)
	return ok
}

func (s *State) commitOffsets(c CommitOffsets) Result {
	if err := checkGroup(c.Group); err != nil {
		return refuse(err)
	}
	var items []Code
	if len(c.Offsets) > 0 {
		items = make([]Code, len(c.Offsets))
	}
	g := s.groups[c.Group]
	committed, changed := 0, false
	for i, o := range c.Offsets {
		switch {
		case !s.partitionExists(o.Topic, o.Partition):
			items[i] = CodeUnknownTopic
			continue
		case len(o.Metadata) > MaxMetadataBytes:
			items[i] = CodeMetadataTooLarge
			continue
		}
		if g == nil {
			g = groupOffsets{}
			s.groups[c.Group] = g
		}
		parts := g[o.Topic]
		if parts == nil {
			parts = map[int32]CommittedOffset{}
			g[o.Topic] = parts
		}
		v := CommittedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: c.NowMs}
		if old, ok := parts[o.Partition]; !ok || old != v {
			parts[o.Partition] = v
			changed = true
		}
		committed++
	}
	if changed {
		s.changed()
	}
	return Result{Value: uint64(committed), Items: items}
}

func (s *State) deleteGroup(c DeleteGroup) Result {
	if err := checkGroup(c.Group); err != nil {
		return refuse(err)
	}
	g, ok := s.groups[c.Group]
	if !ok {
		return refuse(fmt.Errorf("%w: %q", ErrGroupNotFound, c.Group))
	}
	delete(s.groups, c.Group)
	s.changed()
	return success(uint64(g.count()))
}

func (s *State) deleteOffsets(c DeleteOffsets) Result {
	if err := checkGroup(c.Group); err != nil {
		return refuse(err)
	}
	g, ok := s.groups[c.Group]
	if !ok {
		return refuse(fmt.Errorf("%w: %q", ErrGroupNotFound, c.Group))
	}
	var items []Code
	if len(c.Partitions) > 0 {
		items = make([]Code, len(c.Partitions))
	}
	deleted := 0
	for i, p := range c.Partitions {
		if !s.partitionExists(c.Topic, p) {
			items[i] = CodeUnknownTopic
			continue
		}
		if _, ok := g[c.Topic][p]; ok {
			delete(g[c.Topic], p)
			deleted++
		}
	}
	if len(g[c.Topic]) == 0 {
		delete(g, c.Topic)
	}
	if len(g) == 0 {
		delete(s.groups, c.Group)
	}
	if deleted > 0 {
		s.changed()
	}
	return Result{Value: uint64(deleted), Items: items}
}

// dropTopicOffsets deletes every group's offsets for topic, and the groups
// left with none.
func (s *State) dropTopicOffsets(topic string) {
	for name, g := range s.groups {
		delete(g, topic)
		if len(g) == 0 {
			delete(s.groups, name)
		}
	}
}

// Groups returns the groups that have committed offsets, sorted.
// Groups that only have members live in the coordinator, not here.
func (s *State) Groups() []string { return sortedKeys(s.groups) }

// GroupOffsets returns a group's committed offsets sorted by topic, then
// partition; nil for a group without any.
func (s *State) GroupOffsets(group string) []GroupOffset {
	g := s.groups[group]
	var out []GroupOffset
	for _, topic := range sortedKeys(g) {
		for _, p := range sortedKeys(g[topic]) {
			out = append(out, GroupOffset{TopicPartition{topic, p}, g[topic][p]})
		}
	}
	return out
}

// CommittedOffset returns one committed offset without copying the group:
// the lookup for OffsetFetch.
func (s *State) CommittedOffset(group, topic string, partition int32) (CommittedOffset, bool) {
	o, ok := s.groups[group][topic][partition]
	return o, ok
}

// count is the number of offsets the group holds.
func (g groupOffsets) count() int {
	n := 0
	for _, parts := range g {
		n += len(parts)
	}
	return n
}
