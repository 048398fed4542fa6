package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestErrorCode(t *testing.T) {
	cases := []struct {
		err  error
		want *kerr.Error
	}{
		{fmt.Errorf("wrapped: %w", replog.ErrNotLeader), kerr.NotLeaderForPartition},
		{errors.Join(replog.ErrLeaderNotAvailable, errors.New("dragonboat: not ready")), kerr.LeaderNotAvailable},
		{meta.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
		{replog.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
		{replog.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{replog.ErrStorage, kerr.KafkaStorageError},
		{meta.ErrInvalidConfig, kerr.InvalidConfig},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), kerr.RequestTimedOut},
		{kerr.RebalanceInProgress, kerr.RebalanceInProgress},
		{errors.New("something else"), kerr.UnknownServerError},
	}
	for _, c := range cases {
		require.Equal(t, c.want.Code, errorCode(c.err), "%v", c.err)
	}
	require.Zero(t, errorCode(nil))
	// Every entry of the table is reachable: no earlier entry shadows it.
	for i, e := range errorCodes {
		require.Equal(t, e.code.Code, errorCode(e.err), "entry %d (%v)", i, e.err)
	}
}
