package meta

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// groupState has topic t with 2 partitions and topic u with 1.
func groupState(t *testing.T) *State {
	t.Helper()
	s := cluster(t, 1)
	mustApply(t, s, topic("t", 1, 2))
	mustApply(t, s, topic("u", 2, 1))
	return s
}

func TestCommitOffsets(t *testing.T) {
	meta4k := strings.Repeat("m", MaxMetadataBytes)
	cases := []struct {
		name  string
		cmd   CommitOffsets
		err   error
		items []Code
		want  []GroupOffset
	}{
		{
			name:  "two partitions",
			cmd:   CommitOffsets{Group: "g", NowMs: 9, Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 10, LeaderEpoch: 3, Metadata: "m"}, {Topic: "u", Partition: 0, Offset: 4}}},
			items: []Code{CodeOK, CodeOK},
			want:  []GroupOffset{{TopicPartition{"t", 1}, CommittedOffset{10, 3, "m", 9}}, {TopicPartition{"u", 0}, CommittedOffset{4, 0, "", 9}}},
		},
		{
			name:  "metadata at the limit",
			cmd:   CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Offset: 1, Metadata: meta4k}}},
			items: []Code{CodeOK},
			want:  []GroupOffset{{TopicPartition{"t", 0}, CommittedOffset{Offset: 1, Metadata: meta4k}}},
		},
		{
			name:  "refused entries beside an accepted one",
			cmd:   CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "x", Offset: 1}, {Topic: "t", Partition: 2}, {Topic: "t", Partition: -1}, {Topic: "t", Metadata: meta4k + "m"}, {Topic: "u", Offset: 8}}},
			items: []Code{CodeUnknownTopic, CodeUnknownTopic, CodeUnknownTopic, CodeMetadataTooLarge, CodeOK},
			want:  []GroupOffset{{TopicPartition{"u", 0}, CommittedOffset{Offset: 8}}},
		},
		{
			name:  "every entry refused",
			cmd:   CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "x"}}},
			items: []Code{CodeUnknownTopic},
		},
		{
			name: "no entries",
			cmd:  CommitOffsets{Group: "g"},
		},
		{name: "empty group", cmd: CommitOffsets{Offsets: []OffsetCommit{{Topic: "t"}}}, err: ErrInvalidGroup},
		{name: "group too long", cmd: CommitOffsets{Group: strings.Repeat("g", MaxNameLen+1), Offsets: []OffsetCommit{{Topic: "t"}}}, err: ErrInvalidGroup},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := groupState(t)
			v := s.Version()
			r := apply(t, s, c.cmd)
			if c.err != nil {
				require.ErrorIs(t, r.Err(), c.err)
				return
			}
			require.NoError(t, r.Err())
			require.Equal(t, c.items, r.Items)
			for i, code := range c.items {
				require.Equal(t, code.Err(), r.ItemErr(i))
			}
			require.Equal(t, uint64(len(c.want)), r.Value)
			require.Equal(t, c.want, s.GroupOffsets("g"))
			if len(c.want) == 0 {
				require.Empty(t, s.Groups(), "a group without offsets is not created")
				require.Equal(t, v, s.Version())
			} else {
				require.Equal(t, []string{"g"}, s.Groups())
				require.Equal(t, v+1, s.Version())
				o, ok := s.CommittedOffset("g", c.want[0].Topic, c.want[0].Partition)
				require.True(t, ok)
				require.Equal(t, c.want[0].CommittedOffset, o)
			}
		})
	}
}

func TestDeleteGroup(t *testing.T) {
	s := groupState(t)
	mustApply(t, s, CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t"}, {Topic: "t", Partition: 1}}})
	mustApply(t, s, CommitOffsets{Group: "h", Offsets: []OffsetCommit{{Topic: "t"}}})

	require.ErrorIs(t, apply(t, s, DeleteGroup{Group: "nope"}).Err(), ErrGroupNotFound)
	require.ErrorIs(t, apply(t, s, DeleteGroup{}).Err(), ErrInvalidGroup)
	require.Equal(t, uint64(2), mustApply(t, s, DeleteGroup{Group: "g"}).Value)
	require.Equal(t, []string{"h"}, s.Groups())
	require.Nil(t, s.GroupOffsets("g"))
	require.ErrorIs(t, apply(t, s, DeleteGroup{Group: "g"}).Err(), ErrGroupNotFound)
}

func TestDeleteOffsets(t *testing.T) {
	commit := CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t"}, {Topic: "t", Partition: 1}, {Topic: "u"}}}
	cases := []struct {
		name    string
		cmd     DeleteOffsets
		err     error
		items   []Code
		deleted uint64
		left    []TopicPartition
	}{
		{"one partition", DeleteOffsets{Group: "g", Topic: "t", Partitions: []int32{1}}, nil, []Code{CodeOK}, 1, []TopicPartition{{"t", 0}, {"u", 0}}},
		{"a whole topic", DeleteOffsets{Group: "g", Topic: "t", Partitions: []int32{0, 1}}, nil, []Code{CodeOK, CodeOK}, 2, []TopicPartition{{"u", 0}}},
		{"unknown partitions beside a known one", DeleteOffsets{Group: "g", Topic: "t", Partitions: []int32{5, 0, -1}}, nil, []Code{CodeUnknownTopic, CodeOK, CodeUnknownTopic}, 1, []TopicPartition{{"t", 1}, {"u", 0}}},
		{"unknown topic", DeleteOffsets{Group: "g", Topic: "x", Partitions: []int32{0}}, nil, []Code{CodeUnknownTopic}, 0, []TopicPartition{{"t", 0}, {"t", 1}, {"u", 0}}},
		{"unknown group", DeleteOffsets{Group: "h", Topic: "t", Partitions: []int32{0}}, ErrGroupNotFound, nil, 0, nil},
		{"invalid group", DeleteOffsets{Topic: "t", Partitions: []int32{0}}, ErrInvalidGroup, nil, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := groupState(t)
			mustApply(t, s, commit)
			r := apply(t, s, c.cmd)
			if c.err != nil {
				require.ErrorIs(t, r.Err(), c.err)
				return
			}
			require.NoError(t, r.Err())
			require.Equal(t, c.items, r.Items)
			require.Equal(t, c.deleted, r.Value)
			var left []TopicPartition
			for _, o := range s.GroupOffsets("g") {
				left = append(left, o.TopicPartition)
			}
			require.Equal(t, c.left, left)
		})
	}

	t.Run("the last offset takes the group", func(t *testing.T) {
		s := groupState(t)
		mustApply(t, s, CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "u"}}})
		mustApply(t, s, DeleteOffsets{Group: "g", Topic: "u", Partitions: []int32{0}})
		require.Empty(t, s.Groups())
	})
}
