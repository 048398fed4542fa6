package meta

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReportLagging(t *testing.T) {
	s := cluster(t, 2)
	require.ErrorIs(t, s.apply(ReportLagging{NodeID: 9, Shards: []uint64{1000}}).Err(), ErrUnknownNode)
	mustApply(t, s, ReportLagging{NodeID: 2, Shards: []uint64{1002, 1000, 1002}})
	require.Equal(t, map[uint64][]uint64{2: {1000, 1002}}, s.Lagging())
	v := s.Version()
	mustApply(t, s, ReportLagging{NodeID: 2, Shards: []uint64{1000, 1002}})
	require.Equal(t, v, s.Version(), "the same report again changes nothing")

	restored := NewState()
	require.NoError(t, restored.Load(bytesReader(saved(t, s))))
	require.Equal(t, s.Lagging(), restored.Lagging())

	mustApply(t, s, ReportLagging{NodeID: 2})
	require.Empty(t, s.Lagging(), "an empty report clears the node's")
	mustApply(t, s, ReportLagging{NodeID: 2, Shards: []uint64{1000}})
	mustApply(t, s, RemoveNode{ID: 2})
	require.Empty(t, s.Lagging(), "a removed node's report goes with it")
}
