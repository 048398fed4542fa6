package kafka_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestElectLeaders: on one node every partition is led by its preferred
// replica, so a preferred election is not needed; an unclean one is
// refused, since Raft has none; an unknown topic says so.
func TestElectLeaders(t *testing.T) {
	n := startNode(t)
	createTopic(t, n, "elect", 3, nil)
	adm := kadm.NewClient(client(t, n))

	res, err := adm.ElectLeaders(ctxT(t, 30*time.Second), kadm.ElectPreferredReplica, nil)
	require.NoError(t, err)
	require.Len(t, res["elect"], 3, "every partition, when none is named")
	for p, r := range res["elect"] {
		require.ErrorIs(t, r.Err, kerr.ElectionNotNeeded, "partition %d", p)
	}

	res, err = adm.ElectLeaders(ctxT(t, 30*time.Second), kadm.ElectLiveReplica, kadm.TopicsSet{"elect": {0: {}}})
	require.NoError(t, err)
	require.ErrorIs(t, res["elect"][0].Err, kerr.InvalidRequest)
	require.Contains(t, res["elect"][0].ErrMessage, "Raft")

	res, err = adm.ElectLeaders(ctxT(t, 30*time.Second), kadm.ElectPreferredReplica, kadm.TopicsSet{"nope": {0: {}}})
	require.NoError(t, err)
	require.ErrorIs(t, res["nope"][0].Err, kerr.UnknownTopicOrPartition)
}
