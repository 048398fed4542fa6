package kafka_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReassignmentRefusals drives the membership APIs on one node where
// nothing can move: each refusal comes back as the Kafka code a Kafka
// tool expects, and a reassignment to the replicas a partition has is
// over at once.
func TestReassignmentRefusals(t *testing.T) {
	n := startNode(t)
	createTopic(t, n, "stay", 2, nil)
	cl := client(t, n)
	adm := kadm.NewClient(cl)
	ctx := ctxT(t, 30*time.Second)

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("stay", 0, []int32{1})    // what it has: done at once
	req.Assign("stay", 1, []int32{1, 2}) // a replication factor change
	req.Assign("nope", 0, []int32{1})
	res, err := adm.AlterPartitionAssignments(ctx, req)
	require.NoError(t, err)
	require.NoError(t, res["stay"][0].Err)
	require.ErrorIs(t, res["stay"][1].Err, kerr.InvalidReplicaAssignment)
	require.ErrorIs(t, res["nope"][0].Err, kerr.UnknownTopicOrPartition)

	req = nil
	req.Assign("stay", 1, nil) // cancel: nothing to cancel
	res, err = adm.AlterPartitionAssignments(ctx, req)
	require.NoError(t, err)
	require.ErrorIs(t, res["stay"][1].Err, kerr.NoReassignmentInProgress)

	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"stay": {0: {}, 1: {}}})
	require.NoError(t, err)
	require.Empty(t, listed, "nothing is moving")

	unreg := kmsg.NewPtrUnregisterBrokerRequest()
	unreg.BrokerID = 7
	uresp, err := unreg.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.ErrorIs(t, kerr.ErrorForCode(uresp.ErrorCode), kerr.BrokerIDNotRegistered)
	unreg.BrokerID = 1
	uresp, err = unreg.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.ErrorIs(t, kerr.ErrorForCode(uresp.ErrorCode), kerr.InvalidRequest, "a node does not remove itself")

	add := kmsg.NewPtrAddRaftVoterRequest()
	add.VoterID = 2
	aresp, err := add.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.ErrorIs(t, kerr.ErrorForCode(aresp.ErrorCode), kerr.InvalidRequest, "no Raft address")
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = "RAFT", "127.0.0.1", 1
	add.VoterID, add.Listeners = 1, []kmsg.AddRaftVoterRequestListener{l}
	aresp, err = add.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.ErrorIs(t, kerr.ErrorForCode(aresp.ErrorCode), kerr.DuplicateBrokerRegistration, "node 1 is a member")
}
