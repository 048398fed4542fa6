package kafka

import (
	"context"
	"errors"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/partition"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCodes is the one mapping from Samsa's errors to Kafka's error
// codes. The first entry that matches (errors.Is) wins.
var errorCodes = []struct {
	err  error
	code *kerr.Error
}{
	{replog.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{replog.ErrNotLeader, kerr.NotLeaderForPartition},
	{replog.ErrLeaderNotAvailable, kerr.LeaderNotAvailable},
	{replog.ErrClosed, kerr.NotLeaderForPartition}, // shutting down: go elsewhere
	{replog.ErrTimeout, kerr.RequestTimedOut},
	{replog.ErrStorage, kerr.KafkaStorageError},
	{replog.ErrMessageTooLarge, kerr.MessageTooLarge},
	{partition.ErrTooLarge, kerr.MessageTooLarge},
	{replog.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{replog.ErrCorruptMessage, kerr.CorruptMessage},
	{replog.ErrInvalidRecord, kerr.InvalidRecord},
	{replog.ErrSourceOverlap, kerr.InvalidRecord},
	{partition.ErrBadEntry, kerr.CorruptMessage},
	{replog.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{replog.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{meta.ErrTopicExists, kerr.TopicAlreadyExists},
	{meta.ErrInvalidTopic, kerr.InvalidTopicException},
	{meta.ErrInvalidPartitions, kerr.InvalidPartitions},
	{meta.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{meta.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{meta.ErrInvalidConfig, kerr.InvalidConfig},
	{meta.ErrInvalidGroup, kerr.InvalidGroupID},
	{meta.ErrGroupNotFound, kerr.GroupIDNotFound},
	{meta.ErrMetadataTooLarge, kerr.OffsetMetadataTooLarge},
	{meta.ErrInvalidRequest, kerr.InvalidRequest},
	{meta.ErrNoReassignment, kerr.NoReassignmentInProgress},
	{meta.ErrUnknownNode, kerr.BrokerIDNotRegistered},
	{meta.ErrNodeInUse, kerr.InvalidRequest},
	{replog.ErrNodeExists, kerr.DuplicateBrokerRegistration},
	{meta.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{meta.ErrConcurrentTransactions, kerr.ConcurrentTransactions},
	{meta.ErrProducerFenced, kerr.InvalidProducerEpoch}, // PRODUCER_FENCED where the version allows: txnErrCode
	{meta.ErrInvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
	{meta.ErrInvalidTxnState, kerr.InvalidTxnState},
	{meta.ErrInvalidTxnTimeout, kerr.InvalidTransactionTimeout},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{context.Canceled, kerr.RequestTimedOut},
}

// errorCode returns the Kafka error code for err: 0 for nil, and
// UNKNOWN_SERVER_ERROR for anything this table does not name.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// errCode is errorCode for the server: an error that maps to nothing
// better than UNKNOWN_SERVER_ERROR is logged, since the client learns
// nothing from that code.
func (s *Server) errCode(err error) int16 {
	code := errorCode(err)
	if code == kerr.UnknownServerError.Code {
		s.logger.Warn("answering UNKNOWN_SERVER_ERROR", "err", err)
	}
	return code
}

// errorMessage is the text for a response's error_message field.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
