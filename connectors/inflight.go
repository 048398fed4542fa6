package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// inflight is what every source keeps of its batches between reading them
// and their acknowledgement, generic over the source's position P (a file
// offset, an SQL row's cursor, a CDC mark; MQTT, which tracks each message,
// has none):
//
//   - the generations and their tickets (see MetaTicket): issue refuses a
//     batch while the generation being read is killed;
//   - the acknowledged position: acknowledgements of batches, in any
//     order, move it over the contiguous prefix of acknowledged batches;
//   - the room: waitRoom holds the reader while max_in_flight batches are
//     unacknowledged;
//   - the kill → rewind handshake: a failure of a batch kills its
//     generation, forgets the batches in flight and wakes the reader, which
//     waits (50ms doubling to 5s while failures go on) and reads again from
//     the acknowledged position in the generation that is current then.
//
// How to read, and how to go back to a position, stay with the source.
//
// Its state is guarded by the source's own lock (mu), so that a source can
// read and change it together with its own state; the methods ending in
// Locked run under it, the others take it.
type inflight[P any] struct {
	mu    *sync.Mutex
	gens  generations
	wake  chan struct{}   // the reader's wake-up, signalled at a kill
	done  <-chan struct{} // closed when the source closes
	acked chan struct{}   // a batch was acknowledged or killed

	// Under *mu.
	acks   ackTracker[P]
	rewind error         // why the source must read again; nil: no need (or killed has not run yet)
	wait   time.Duration // before the next rewind
}

// init sets f up for a source whose lock is mu, whose reader waits on
// wake, and which closes done when it closes.
func (f *inflight[P]) init(mu *sync.Mutex, wake chan struct{}, done <-chan struct{}) {
	f.mu, f.wake, f.done = mu, wake, done
	f.acked = make(chan struct{}, 1)
	f.gens.onKill = f.killed
}

// ackedLocked is the acknowledged position: every batch issued up to it is
// acknowledged.
func (f *inflight[P]) ackedLocked() P { return f.acks.acked }

// setAckedLocked moves the acknowledged position to p: the checkpoint's,
// at load, or one the source decides (a CDC snapshot turned off).
func (f *inflight[P]) setAckedLocked(p P) { f.acks.acked = p }

// unackedLocked counts the batches issued and not acknowledged.
func (f *inflight[P]) unackedLocked() int { return f.acks.unacked }

// failedLocked reports whether a batch of the generation being read
// failed (killed may not have run yet): nothing may be issued before the
// source reads again from the acknowledged position.
func (f *inflight[P]) failedLocked() bool {
	return f.rewind != nil || f.gens.failedLocked()
}

// issue is issueLocked under the lock.
func (f *inflight[P]) issue(end P, done bool, then func()) (ack service.AckFunc, tk *ticket, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issueLocked(end, done, then)
}

// issueLocked records a batch ending at end, done at once if it has no
// messages, and returns its acknowledgement function and ticket (nil for a
// done batch). It refuses (ok false) while a failed batch waits to be read
// again: what was read after it must not go out. then, if not nil, runs
// under the lock when the batch is acknowledged while its generation is
// live.
func (f *inflight[P]) issueLocked(end P, done bool, then func()) (ack service.AckFunc, tk *ticket, ok bool) {
	if f.failedLocked() {
		return nil, nil, false
	}
	seq := f.acks.issue(end, done)
	if done {
		return nil, nil, true
	}
	tk = f.gens.issueLocked()
	return func(_ context.Context, err error) error {
		if err != nil {
			tk.Fail(err)
			return nil
		}
		f.mu.Lock()
		if tk.Live() {
			f.acks.ack(seq)
			f.wait = 0
			if then != nil {
				then()
			}
		}
		f.mu.Unlock()
		signal(f.acked)
		return nil
	}, tk, true
}

// killed is the generations' onKill: the batches in flight are forgotten
// (their tickets are dead, so they are not written) and the reader is
// woken to read again from the acknowledged position. A kill that arrives
// after the reader moved to a newer generation is old news.
func (f *inflight[P]) killed(gen uint64, err error) {
	f.mu.Lock()
	if f.gens.killedLocked(gen) {
		f.rewind = err
		f.acks.forgetPending()
	}
	f.mu.Unlock()
	signal(f.acked)
	signal(f.wake)
}

// failCurrent kills the current generation, as a failure of a batch in it
// would: the source's own failure (a read that failed). If it was killed
// already, the reader is woken all the same.
func (f *inflight[P]) failCurrent(err error) {
	if !f.gens.failCurrent(err) {
		signal(f.wake)
	}
}

// waitRoom waits until at most n batches are unacknowledged, or a batch
// failed.
func (f *inflight[P]) waitRoom(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		ok := f.acks.unacked <= n || f.failedLocked()
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-f.acked:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
			return context.Canceled
		}
	}
}

// failure reports why the source must read again from its acknowledged
// position (nil: no batch failed) and how long to wait first; the wait
// doubles from minRewindWait up to maxRewindWait while failures go on, and
// starts again after an acknowledgement.
func (f *inflight[P]) failure() (why error, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	why, wait = f.rewind, f.wait
	if why == nil && f.gens.failedLocked() {
		why = errors.New("a batch failed") // killed has not run yet
	}
	if why == nil {
		return nil, 0
	}
	wait = max(wait, minRewindWait)
	f.wait = min(2*wait, maxRewindWait)
	return why, wait
}

// rewoundLocked moves the source to the current generation as it starts
// reading again from the acknowledged position, which it returns: what is
// read from here on is live, and a late kill of the old generation is
// ignored.
func (f *inflight[P]) rewoundLocked() P {
	f.rewind = nil
	f.gens.rewoundLocked()
	f.acks.forgetPending()
	return f.acks.acked
}

// rewindIfFailed, if a batch failed, logs it, waits (see failure) and
// returns the acknowledged position to read again from (rewound true).
func (f *inflight[P]) rewindIfFailed(ctx context.Context, logger *slog.Logger, msg string) (pos P, rewound bool, err error) {
	why, wait := f.failure()
	if why == nil {
		return pos, false, nil
	}
	args := []any{"after", wait, "err", why}
	f.mu.Lock()
	if s, ok := any(f.acks.acked).(fmt.Stringer); ok {
		args = append(args, "position", s.String())
	}
	f.mu.Unlock()
	logger.Warn(msg, args...)
	if err := pause(ctx, wait, nil, f.done); err != nil {
		return pos, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rewoundLocked(), true, nil
}

// ackTracker turns acknowledgements of batches, which may arrive in any
// order, into the acknowledged position: the end of the longest prefix of
// batches all acknowledged. Each batch covers what lies between the end of
// the previous one and its own end, so a record skipped inside it (a blank
// line, a CSV header) is covered too. Not safe for concurrent use.
type ackTracker[P any] struct {
	acked   P      // the watermark
	base    uint64 // sequence number of pending[0]
	pending []pendingBatch[P]
	unacked int
}

type pendingBatch[P any] struct {
	end  P
	done bool
}

// issue records a batch ending at end and returns its sequence number; a
// batch without messages is issued done.
func (t *ackTracker[P]) issue(end P, done bool) uint64 {
	seq := t.base + uint64(len(t.pending))
	t.pending = append(t.pending, pendingBatch[P]{end: end, done: done})
	if !done {
		t.unacked++
	}
	t.advance()
	return seq
}

// ack marks batch seq acknowledged; a batch forgotten since is ignored.
func (t *ackTracker[P]) ack(seq uint64) {
	if seq < t.base || seq-t.base >= uint64(len(t.pending)) {
		return
	}
	p := &t.pending[seq-t.base]
	if p.done {
		return
	}
	p.done = true
	t.unacked--
	t.advance()
}

// forgetPending drops the batches issued and not acknowledged: they will be
// issued again. The watermark stays.
func (t *ackTracker[P]) forgetPending() {
	t.base += uint64(len(t.pending))
	clear(t.pending) // positions may hold memory
	t.pending = t.pending[:0]
	t.unacked = 0
}

func (t *ackTracker[P]) advance() {
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		t.acked = t.pending[n].end
		n++
	}
	if n > 0 {
		m := copy(t.pending, t.pending[n:])
		clear(t.pending[m:])
		t.pending = t.pending[:m]
		t.base += uint64(n)
	}
}
