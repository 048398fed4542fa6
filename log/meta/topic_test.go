package meta

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCreateTopic(t *testing.T) {
	long := strings.Repeat("a", MaxNameLen)
	cases := []struct {
		name  string
		setup []Command // applied first, each must succeed
		cmd   CreateTopic
		err   error
	}{
		{"one partition", nil, topic("t", 1, 1), nil},
		{"three partitions, factor 3", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}}, nil},
		{"name of every allowed character", nil, topic("aZ09._-", 1, 1), nil},
		{"name of 249 characters", nil, topic(long, 1, 1), nil},
		{"with configs", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: placements(1, 1), Configs: map[string]string{"retention.ms": "-1"}}, nil},
		{"empty name", nil, topic("", 1, 1), ErrInvalidTopic},
		{"name .", nil, topic(".", 1, 1), ErrInvalidTopic},
		{"name ..", nil, topic("..", 1, 1), ErrInvalidTopic},
		{"name with a space", nil, topic("a b", 1, 1), ErrInvalidTopic},
		{"name with a slash", nil, topic("a/b", 1, 1), ErrInvalidTopic},
		{"name not ASCII", nil, topic("thé", 1, 1), ErrInvalidTopic},
		{"name of 250 characters", nil, topic(long+"a", 1, 1), ErrInvalidTopic},
		{"exists", []Command{topic("t", 1, 1)}, topic("t", 2, 1), ErrTopicExists},
		{"zero id", nil, topic("t", 0, 1), ErrInvalidRequest},
		{"id of another topic", []Command{topic("u", 1, 1)}, topic("t", 1, 1), ErrInvalidRequest},
		{"no partitions", nil, CreateTopic{Name: "t", ID: uuid(1)}, ErrInvalidPartitions},
		{"no replicas", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{}}}, ErrInvalidReplicationFactor},
		{"factor above the nodes", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{1, 2, 3, 4}}}, ErrInvalidReplicationFactor},
		{"placements of unequal length", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{1, 2}, {1}}}, ErrInvalidReplicaAssignment},
		{"unregistered node", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{1, 9}}}, ErrInvalidReplicaAssignment},
		{"node twice", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: [][]uint64{{2, 2}}}, ErrInvalidReplicaAssignment},
		{"unknown config", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: placements(1, 1), Configs: map[string]string{"retention.minutes": "1"}}, ErrInvalidConfig},
		{"bad config value", nil, CreateTopic{Name: "t", ID: uuid(1), Placements: placements(1, 1), Configs: map[string]string{"retention.ms": "-2"}}, ErrInvalidConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := cluster(t, 3)
			for _, cmd := range c.setup {
				mustApply(t, s, cmd)
			}
			first := s.NextShardID()
			r := apply(t, s, c.cmd)
			if c.err != nil {
				require.ErrorIs(t, r.Err(), c.err)
				return
			}
			require.NoError(t, r.Err())
			require.Equal(t, first, r.Value)
			got, ok := s.Topic(c.cmd.Name)
			require.True(t, ok)
			require.Equal(t, c.cmd.ID, got.ID)
			require.Equal(t, c.cmd.NowMs, got.CreatedMs)
			require.Equal(t, int16(len(c.cmd.Placements[0])), got.ReplicationFactor)
			require.Len(t, got.Partitions, len(c.cmd.Placements))
			for i, p := range got.Partitions {
				require.Equal(t, first+uint64(i), p.ShardID)
				shard, ok := s.ShardID(c.cmd.Name, int32(i))
				require.True(t, ok)
				require.Equal(t, p.ShardID, shard)
				for j, r := range p.Replicas {
					require.Equal(t, Replica{ReplicaID: c.cmd.Placements[i][j], NodeID: c.cmd.Placements[i][j]}, r)
				}
			}
			require.Equal(t, len(c.cmd.Configs), len(got.Configs))
			name, ok := s.TopicName(c.cmd.ID)
			require.True(t, ok)
			require.Equal(t, c.cmd.Name, name)
		})
	}
}

func TestCreatePartitions(t *testing.T) {
	cases := []struct {
		name string
		cmd  CreatePartitions
		err  error
	}{
		{"two more", CreatePartitions{Name: "t", Total: 4, Placements: [][]uint64{{1, 2}, {2, 3}}}, nil},
		{"unknown topic", CreatePartitions{Name: "u", Total: 4, Placements: placements(2, 1, 2)}, ErrUnknownTopic},
		{"same count", CreatePartitions{Name: "t", Total: 2}, ErrInvalidPartitions},
		{"fewer", CreatePartitions{Name: "t", Total: 1}, ErrInvalidPartitions},
		{"negative", CreatePartitions{Name: "t", Total: -1}, ErrInvalidPartitions},
		{"placements for all partitions", CreatePartitions{Name: "t", Total: 4, Placements: placements(4, 1, 2)}, ErrInvalidReplicaAssignment},
		{"too few placements", CreatePartitions{Name: "t", Total: 4, Placements: placements(1, 1, 2)}, ErrInvalidReplicaAssignment},
		{"other factor", CreatePartitions{Name: "t", Total: 3, Placements: placements(1, 1)}, ErrInvalidReplicaAssignment},
		{"unregistered node", CreatePartitions{Name: "t", Total: 3, Placements: [][]uint64{{1, 7}}}, ErrInvalidReplicaAssignment},
		{"node twice", CreatePartitions{Name: "t", Total: 3, Placements: [][]uint64{{3, 3}}}, ErrInvalidReplicaAssignment},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := cluster(t, 3)
			mustApply(t, s, CreateTopic{Name: "t", ID: uuid(1), Placements: placements(2, 1, 2)})
			mustApply(t, s, topic("other", 2, 1)) // takes shard 1002
			r := apply(t, s, c.cmd)
			if c.err != nil {
				require.ErrorIs(t, r.Err(), c.err)
				return
			}
			require.NoError(t, r.Err())
			require.Equal(t, uint64(1003), r.Value)
			got, _ := s.Topic("t")
			require.Len(t, got.Partitions, int(c.cmd.Total))
			require.Equal(t, uint64(1004), got.Partitions[3].ShardID)
			require.Equal(t, []Replica{{ReplicaID: 2, NodeID: 2}, {ReplicaID: 3, NodeID: 3}}, got.Partitions[3].Replicas)
		})
	}
}

func TestDeleteTopic(t *testing.T) {
	s := cluster(t, 1)
	mustApply(t, s, topic("gone", 1, 2))
	mustApply(t, s, topic("kept", 2, 1))
	mustApply(t, s, CommitOffsets{Group: "only-gone", Offsets: []OffsetCommit{{Topic: "gone", Partition: 1, Offset: 5}}})
	mustApply(t, s, CommitOffsets{Group: "both", Offsets: []OffsetCommit{{Topic: "gone", Partition: 0, Offset: 5}, {Topic: "kept", Partition: 0, Offset: 7}}})

	require.ErrorIs(t, apply(t, s, DeleteTopic{Name: "never"}).Err(), ErrUnknownTopic)
	mustApply(t, s, DeleteTopic{Name: "gone"})

	_, ok := s.Topic("gone")
	require.False(t, ok)
	_, ok = s.TopicName(uuid(1))
	require.False(t, ok)
	_, ok = s.ShardID("gone", 0)
	require.False(t, ok)
	require.Equal(t, []string{"both"}, s.Groups())
	require.Equal(t, []GroupOffset{{TopicPartition{"kept", 0}, CommittedOffset{Offset: 7}}}, s.GroupOffsets("both"))
	require.ErrorIs(t, apply(t, s, DeleteTopic{Name: "gone"}).Err(), ErrUnknownTopic)
}

// TestShardIDsNeverReused: a recreated topic gets new shards, also on a
// replica restored from a snapshot, so it never meets the old shards' data.
func TestShardIDsNeverReused(t *testing.T) {
	s := cluster(t, 1)
	mustApply(t, s, topic("t", 1, 2))
	mustApply(t, s, DeleteTopic{Name: "t"})
	require.Equal(t, uint64(1002), mustApply(t, s, topic("t", 1, 2)).Value)
	mustApply(t, s, DeleteTopic{Name: "t"})

	restored := NewState()
	require.NoError(t, restored.Load(bytesReader(saved(t, s))))
	require.Equal(t, uint64(1004), mustApply(t, restored, topic("t", 1, 1)).Value)
}

func TestAlterConfigs(t *testing.T) {
	start := map[string]string{"retention.ms": "1000", "segment.bytes": "1048576"}
	cases := []struct {
		name string
		cmd  AlterConfigs
		want map[string]string
		err  error
	}{
		{"set one", AlterConfigs{Name: "t", Set: map[string]string{"retention.bytes": "5"}}, map[string]string{"retention.ms": "1000", "segment.bytes": "1048576", "retention.bytes": "5"}, nil},
		{"change one", AlterConfigs{Name: "t", Set: map[string]string{"retention.ms": "-1"}}, map[string]string{"retention.ms": "-1", "segment.bytes": "1048576"}, nil},
		{"delete one", AlterConfigs{Name: "t", Delete: []string{"retention.ms"}}, map[string]string{"segment.bytes": "1048576"}, nil},
		{"delete an unset key", AlterConfigs{Name: "t", Delete: []string{"segment.ms"}}, start, nil},
		{"replace", AlterConfigs{Name: "t", Set: map[string]string{"segment.ms": "60000"}, Replace: true}, map[string]string{"segment.ms": "60000"}, nil},
		{"replace with nothing", AlterConfigs{Name: "t", Replace: true}, map[string]string{}, nil},
		{"unknown topic", AlterConfigs{Name: "u", Set: map[string]string{"retention.ms": "1"}}, nil, ErrUnknownTopic},
		{"bad value", AlterConfigs{Name: "t", Set: map[string]string{"retention.ms": "soon"}}, nil, ErrInvalidConfig},
		{"unknown key", AlterConfigs{Name: "t", Set: map[string]string{"retention": "1"}}, nil, ErrInvalidConfig},
		{"delete an unknown key", AlterConfigs{Name: "t", Delete: []string{"retention"}}, nil, ErrInvalidConfig},
		{"set and delete one key", AlterConfigs{Name: "t", Set: map[string]string{"retention.ms": "1"}, Delete: []string{"retention.ms"}}, nil, ErrInvalidRequest},
		{"replace and delete", AlterConfigs{Name: "t", Replace: true, Delete: []string{"retention.ms"}}, nil, ErrInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := cluster(t, 1)
			mustApply(t, s, CreateTopic{Name: "t", ID: uuid(1), Placements: placements(1, 1), Configs: start})
			r := apply(t, s, c.cmd)
			if c.err != nil {
				require.ErrorIs(t, r.Err(), c.err)
				return
			}
			require.NoError(t, r.Err())
			got, _ := s.Topic("t")
			require.Equal(t, c.want, got.Configs)
		})
	}
}

func TestUnchangedKeepsVersion(t *testing.T) {
	s := cluster(t, 1)
	mustApply(t, s, CreateTopic{Name: "t", ID: uuid(1), Placements: placements(1, 1), Configs: map[string]string{"retention.ms": "1"}})
	v := s.Version()
	mustApply(t, s, AlterConfigs{Name: "t", Set: map[string]string{"retention.ms": "1"}})
	mustApply(t, s, node(1))
	require.Equal(t, v, s.Version())
	mustApply(t, s, AlterConfigs{Name: "t", Set: map[string]string{"retention.ms": "2"}})
	require.Equal(t, v+1, s.Version())
}

func TestReadsReturnCopies(t *testing.T) {
	s := cluster(t, 2)
	mustApply(t, s, CreateTopic{Name: "t", ID: uuid(1), Placements: placements(1, 1, 2), Configs: map[string]string{"retention.ms": "1"}})
	before := saved(t, s)
	got, _ := s.Topic("t")
	got.Configs["retention.ms"] = "2"
	got.Partitions[0].Replicas[0].NodeID = 9
	all := s.Topics()
	all[0].Partitions[0].ShardID = 5
	all[0].Configs["segment.ms"] = "1"
	require.Equal(t, before, saved(t, s))
}
