package replog

import (
	"errors"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/partition"
	"github.com/samsa-io/samsa/log/segment"
)

// Errors, each meaning one Kafka error code. Those that come from the
// packages below are the same values, so errors.Is works either way.
var (
	// ErrNotLeader means this node does not lead the partition: the client
	// should refresh its metadata (NOT_LEADER_OR_FOLLOWER).
	ErrNotLeader = errors.New("replog: not the leader of the partition")
	// ErrLeaderNotAvailable means the partition has no leader right now, an
	// election is under way (LEADER_NOT_AVAILABLE).
	ErrLeaderNotAvailable = errors.New("replog: the partition has no leader")
	// ErrTimeout means a write's outcome is unknown (REQUEST_TIMED_OUT).
	ErrTimeout = errors.New("replog: request timed out")
	// ErrStorage means the disk cannot take the write (KAFKA_STORAGE_ERROR).
	ErrStorage = errors.New("replog: storage error")
	// ErrClosed means the node is shutting down.
	ErrClosed = errors.New("replog: closed")
	// ErrMessageTooLarge means a batch exceeds max.message.bytes.
	ErrMessageTooLarge = errors.New("replog: batch larger than max.message.bytes")

	ErrUnknownTopicOrPartition = meta.ErrUnknownTopic
	ErrOffsetOutOfRange        = segment.ErrOffsetOutOfRange
	ErrCorruptMessage          = partition.ErrCorrupt
	ErrInvalidRecord           = partition.ErrInvalidRecord
	ErrOutOfOrderSequence      = partition.ErrOutOfOrderSequence
	ErrInvalidProducerEpoch    = partition.ErrInvalidProducerEpoch
	ErrSourceOverlap           = partition.ErrSourceOverlap
	ErrTopicExists             = meta.ErrTopicExists
	ErrInvalidTopic            = meta.ErrInvalidTopic
	ErrInvalidPartitions       = meta.ErrInvalidPartitions
	ErrInvalidReplication      = meta.ErrInvalidReplicationFactor
	ErrInvalidReplicaAssign    = meta.ErrInvalidReplicaAssignment
	ErrInvalidConfig           = meta.ErrInvalidConfig
	ErrInvalidGroup            = meta.ErrInvalidGroup
	ErrGroupNotFound           = meta.ErrGroupNotFound
	ErrOffsetMetadataTooBig    = meta.ErrMetadataTooLarge
	ErrInvalidRequest          = meta.ErrInvalidRequest
)
