package replica

import (
	"errors"

	"github.com/lni/dragonboat/v4"
)

// Errors of proposals and shard management. Retryable ones say so.
var (
	// ErrNotReady means the shard has no leader right now (an election is
	// under way, or the shard is still starting): retry.
	ErrNotReady = errors.New("replica: shard has no leader")
	// ErrBusy means the shard's proposal queue is full: retry later.
	ErrBusy = errors.New("replica: shard too busy")
	// ErrTimeout means the proposal's outcome is unknown: it may still
	// commit. Idempotent producers make the retry safe.
	ErrTimeout = errors.New("replica: proposal timed out")
	// ErrClosed means the host or the shard is shutting down.
	ErrClosed = errors.New("replica: closed")
	// ErrUnknownShard means this host runs no replica of the shard.
	ErrUnknownShard = errors.New("replica: no local replica of the shard")
	// ErrRejected means dragonboat refused the request as invalid.
	ErrRejected = errors.New("replica: request rejected")
)

// mapError turns dragonboat's errors into this package's.
func mapError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dragonboat.ErrShardNotReady), errors.Is(err, dragonboat.ErrShardNotInitialized):
		return errors.Join(ErrNotReady, err)
	case errors.Is(err, dragonboat.ErrSystemBusy):
		return errors.Join(ErrBusy, err)
	case errors.Is(err, dragonboat.ErrTimeout):
		return errors.Join(ErrTimeout, err)
	case errors.Is(err, dragonboat.ErrClosed), errors.Is(err, dragonboat.ErrShardClosed):
		return errors.Join(ErrClosed, err)
	case errors.Is(err, dragonboat.ErrShardNotFound):
		return errors.Join(ErrUnknownShard, err)
	case errors.Is(err, dragonboat.ErrRejected):
		return errors.Join(ErrRejected, err)
	}
	return err
}
