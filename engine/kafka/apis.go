package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// api is one supported API: the versions it accepts and its handler.
// ApiVersions advertises exactly this table.
type api struct {
	key      int16
	min, max int16
	// handle answers a request; it runs on its own goroutine.
	handle func(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error)
	// start, when set instead of handle, runs on the connection's reader
	// goroutine in request order and returns what finishes the request on
	// its own goroutine: Produce proposes in order, then waits; Fetch
	// answers with file sections rather than a kmsg.Response.
	start func(ctx context.Context, c *conn, req kmsg.Request) func() (reply, error)
}

// apiTable builds the table of supported APIs. The ranges were checked against
// franz-go, sarama, kafka-go, librdkafka and kafkajs; staying below the
// topic-id versions (Metadata < 10, Fetch < 13) keeps every client working.
func (s *Server) apiTable() map[int16]*api {
	table := []*api{
		{key: 0, min: 3, max: 7, start: s.startProduce},
		{key: 1, min: 4, max: 11, start: s.startFetch},
		{key: 2, min: 1, max: 3, handle: s.handleListOffsets},
		{key: 3, min: 1, max: 8, handle: s.handleMetadata},
		{key: 8, min: 2, max: 7, handle: s.handleOffsetCommit},
		{key: 9, min: 1, max: 5, handle: s.handleOffsetFetch},
		{key: 10, min: 0, max: 2, handle: s.handleFindCoordinator},
		{key: 11, min: 0, max: 5, handle: s.handleJoinGroup},
		{key: 12, min: 0, max: 3, handle: s.handleHeartbeat},
		{key: 13, min: 0, max: 3, handle: s.handleLeaveGroup},
		{key: 14, min: 0, max: 3, handle: s.handleSyncGroup},
		{key: 15, min: 0, max: 4, handle: s.handleDescribeGroups},
		{key: 16, min: 0, max: 2, handle: s.handleListGroups},
		{key: 18, min: 0, max: 3, handle: s.handleApiVersions},
		{key: 19, min: 0, max: 4, handle: s.handleCreateTopics},
		{key: 20, min: 0, max: 3, handle: s.handleDeleteTopics},
		{key: 21, min: 0, max: 1, handle: s.handleDeleteRecords},
		{key: 22, min: 0, max: 4, handle: s.handleInitProducerID},
		{key: 23, min: 0, max: 3, handle: s.handleOffsetForLeaderEpoch},
		{key: 24, min: 0, max: 3, handle: s.handleAddPartitionsToTxn},
		{key: 25, min: 0, max: 1, handle: s.handleAddOffsetsToTxn},
		{key: 26, min: 0, max: 1, handle: s.handleEndTxn},
		{key: 27, min: 0, max: 1, handle: s.handleWriteTxnMarkers},
		{key: 28, min: 0, max: 2, handle: s.handleTxnOffsetCommit},
		{key: 32, min: 0, max: 3, handle: s.handleDescribeConfigs},
		{key: 33, min: 0, max: 1, handle: s.handleAlterConfigs},
		{key: 37, min: 0, max: 1, handle: s.handleCreatePartitions},
		{key: 42, min: 0, max: 1, handle: s.handleDeleteGroups},
		{key: 43, min: 0, max: 2, handle: s.handleElectLeaders},
		{key: 44, min: 0, max: 1, handle: s.handleIncrementalAlterConfigs},
		{key: 45, min: 0, max: 0, handle: s.handleAlterPartitionReassignments},
		{key: 46, min: 0, max: 0, handle: s.handleListPartitionReassignments},
		{key: 60, min: 0, max: 0, handle: s.handleDescribeCluster},
		{key: 64, min: 0, max: 0, handle: s.handleUnregisterBroker},
		{key: 80, min: 0, max: 0, handle: s.handleAddRaftVoter},
	}
	m := make(map[int16]*api, len(table))
	for _, a := range table {
		m[a.key] = a
	}
	return m
}
