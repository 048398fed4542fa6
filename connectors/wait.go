package connectors

import (
	"context"
	"log/slog"
	"time"
)

// The waits the sources share.

// pause waits for d, a wake-up on wake, until ctx is done (its error) or
// done closes (context.Canceled). A nil wake or done never fires.
func pause(ctx context.Context, d time.Duration, wake, done <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return context.Canceled
	}
	return nil
}

// signal wakes whoever waits on c, if no wake-up is pending.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// storeEvery calls store every interval, each call bounded by
// checkpointTimeout under ctx, until done closes; a failure is logged
// unless ctx is done (the source is closing).
func storeEvery(ctx context.Context, done <-chan struct{}, every time.Duration, logger *slog.Logger, store func(context.Context) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
			if err := store(sctx); err != nil && ctx.Err() == nil {
				logger.Warn("checkpoint", "err", err)
			}
			cancel()
		case <-done:
			return
		}
	}
}
