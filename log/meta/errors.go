package meta

import (
	"errors"
	"fmt"
)

// Refusals: a command that gets one of these changes nothing (for the
// per-item results of CommitOffsets and DeleteOffsets, nothing for that
// item). Each has a Code so that it survives the trip through a Raft
// result, and each maps to at most one Kafka error code, named in its
// comment; engine/kafka/errors.go owns that mapping.
var (
	// ErrBadCommand means the command bytes do not decode: a proposer bug,
	// never a user's mistake (UNKNOWN_SERVER_ERROR).
	ErrBadCommand = errors.New("meta: malformed command")
	// ErrInvalidRequest means a field is out of range or malformed in a way
	// no more specific error describes: a node id of 0, a producer-id block
	// of 0, an over-long pipeline name (INVALID_REQUEST).
	ErrInvalidRequest = errors.New("meta: invalid request")
	// ErrInvalidTopic means the topic name breaks Kafka's rules
	// (INVALID_TOPIC_EXCEPTION).
	ErrInvalidTopic = errors.New("meta: invalid topic name")
	// ErrTopicExists means a topic of that name exists
	// (TOPIC_ALREADY_EXISTS).
	ErrTopicExists = errors.New("meta: topic already exists")
	// ErrUnknownTopic means there is no such topic, or no such partition of
	// it (UNKNOWN_TOPIC_OR_PARTITION).
	ErrUnknownTopic = errors.New("meta: unknown topic or partition")
	// ErrInvalidPartitions means a partition count below 1, or a new count
	// not above the current one (INVALID_PARTITIONS).
	ErrInvalidPartitions = errors.New("meta: invalid partitions")
	// ErrInvalidReplicationFactor means a replication factor below 1 or
	// above the number of registered nodes (INVALID_REPLICATION_FACTOR).
	ErrInvalidReplicationFactor = errors.New("meta: invalid replication factor")
	// ErrInvalidReplicaAssignment means a placement names an unknown node,
	// names a node twice, or differs in length from the others
	// (INVALID_REPLICA_ASSIGNMENT).
	ErrInvalidReplicaAssignment = errors.New("meta: invalid replica assignment")
	// ErrInvalidConfig means an unknown topic config, or a value its
	// validator refuses (INVALID_CONFIG).
	ErrInvalidConfig = errors.New("meta: invalid config")
	// ErrInvalidGroup means an empty or over-long group id (INVALID_GROUP_ID).
	ErrInvalidGroup = errors.New("meta: invalid group id")
	// ErrGroupNotFound means the group has no committed offsets here
	// (GROUP_ID_NOT_FOUND).
	ErrGroupNotFound = errors.New("meta: group not found")
	// ErrMetadataTooLarge means a commit's metadata string is longer than
	// MaxMetadataBytes (OFFSET_METADATA_TOO_LARGE).
	ErrMetadataTooLarge = errors.New("meta: offset metadata too large")
	// ErrUnknownPipeline means there is no pipeline of that name (no Kafka
	// code: the admin API answers 404).
	ErrUnknownPipeline = errors.New("meta: unknown pipeline")
	// ErrInvalidSchema means an empty or over-long schema or subject (no
	// Kafka code: the schema registry's 42201, invalid schema).
	ErrInvalidSchema = errors.New("meta: invalid schema")
	// ErrNoReassignment means a partition has no move in progress to
	// cancel or carry on (NO_REASSIGNMENT_IN_PROGRESS).
	ErrNoReassignment = errors.New("meta: no reassignment in progress")
	// ErrUnknownNode means no node of that id is registered
	// (BROKER_ID_NOT_REGISTERED).
	ErrUnknownNode = errors.New("meta: unknown node")
	// ErrNodeInUse means a node to remove still holds replicas, or is the
	// target of a move (INVALID_REQUEST).
	ErrNodeInUse = errors.New("meta: node in use")
	// ErrConcurrentTransactions means the transactional id's transaction
	// is open or still being completed (CONCURRENT_TRANSACTIONS: retry).
	ErrConcurrentTransactions = errors.New("meta: concurrent transactions")
	// ErrProducerFenced means the producer's epoch is not the
	// transactional id's current one: a newer instance took over
	// (PRODUCER_FENCED; INVALID_PRODUCER_EPOCH to older clients).
	ErrProducerFenced = errors.New("meta: producer fenced")
	// ErrInvalidProducerIDMapping means the transactional id is unknown or
	// has another producer id (INVALID_PRODUCER_ID_MAPPING).
	ErrInvalidProducerIDMapping = errors.New("meta: invalid producer id mapping")
	// ErrInvalidTxnState means the request does not fit the transaction's
	// state: committing what was aborted, offsets for a group not added
	// (INVALID_TXN_STATE).
	ErrInvalidTxnState = errors.New("meta: invalid transaction state")
	// ErrInvalidTxnTimeout means a transaction timeout outside 1 ms to
	// MaxTxnTimeoutMs (INVALID_TRANSACTION_TIMEOUT).
	ErrInvalidTxnTimeout = errors.New("meta: invalid transaction timeout")
)

// ErrBadSnapshot means a snapshot does not decode or describes an
// impossible state; Load leaves the state as it was.
var ErrBadSnapshot = errors.New("meta: bad snapshot")

// ErrBadResult means result bytes do not decode (DecodeResult).
var ErrBadResult = errors.New("meta: malformed result")

// Code identifies a refusal inside a Result, one value per refusal
// sentinel, so that it can cross a Raft result as a number. The values are
// part of the result encoding: never renumber them.
type Code uint16

// Codes, one per sentinel above.
const (
	CodeOK Code = iota
	CodeBadCommand
	CodeInvalidRequest
	CodeInvalidTopic
	CodeTopicExists
	CodeUnknownTopic
	CodeInvalidPartitions
	CodeInvalidReplicationFactor
	CodeInvalidReplicaAssignment
	CodeInvalidConfig
	CodeInvalidGroup
	CodeGroupNotFound
	CodeMetadataTooLarge
	CodeUnknownPipeline
	CodeInvalidSchema
	CodeNoReassignment
	CodeUnknownNode
	CodeNodeInUse
	CodeConcurrentTransactions
	CodeProducerFenced
	CodeInvalidProducerIDMapping
	CodeInvalidTxnState
	CodeInvalidTxnTimeout
	numCodes
)

// sentinels is indexed by Code.
var sentinels = [numCodes]error{
	CodeOK:                       nil,
	CodeBadCommand:               ErrBadCommand,
	CodeInvalidRequest:           ErrInvalidRequest,
	CodeInvalidTopic:             ErrInvalidTopic,
	CodeTopicExists:              ErrTopicExists,
	CodeUnknownTopic:             ErrUnknownTopic,
	CodeInvalidPartitions:        ErrInvalidPartitions,
	CodeInvalidReplicationFactor: ErrInvalidReplicationFactor,
	CodeInvalidReplicaAssignment: ErrInvalidReplicaAssignment,
	CodeInvalidConfig:            ErrInvalidConfig,
	CodeInvalidGroup:             ErrInvalidGroup,
	CodeGroupNotFound:            ErrGroupNotFound,
	CodeMetadataTooLarge:         ErrMetadataTooLarge,
	CodeUnknownPipeline:          ErrUnknownPipeline,
	CodeInvalidSchema:            ErrInvalidSchema,
	CodeNoReassignment:           ErrNoReassignment,
	CodeUnknownNode:              ErrUnknownNode,
	CodeNodeInUse:                ErrNodeInUse,
	CodeConcurrentTransactions:   ErrConcurrentTransactions,
	CodeProducerFenced:           ErrProducerFenced,
	CodeInvalidProducerIDMapping: ErrInvalidProducerIDMapping,
	CodeInvalidTxnState:          ErrInvalidTxnState,
	CodeInvalidTxnTimeout:        ErrInvalidTxnTimeout,
}

// Err returns the sentinel for c: nil for CodeOK and for codes this
// version does not know.
func (c Code) Err() error {
	if c >= numCodes {
		return nil
	}
	return sentinels[c]
}

// String names the code after its sentinel.
func (c Code) String() string {
	if c == CodeOK {
		return "ok"
	}
	if err := c.Err(); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("meta: code %d", uint16(c))
}

// CodeOf returns the code of the first sentinel err wraps: CodeOK for nil,
// CodeBadCommand for an error that wraps none, which is a bug.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	for c := Code(1); c < numCodes; c++ {
		if errors.Is(err, sentinels[c]) {
			return c
		}
	}
	return CodeBadCommand
}
