package connectors

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Acknowledgements in any order move the watermark only over contiguous
// batches; batches without messages count as acknowledged.
func TestAckTracker(t *testing.T) {
	var tr ackTracker[filePos]
	p := func(off int64) filePos { return filePos{Ordinal: 1, Offset: off} }
	a := tr.issue(p(10), false)
	b := tr.issue(p(20), false)
	tr.issue(p(25), true)
	c := tr.issue(p(30), false)
	require.Equal(t, 3, tr.unacked)
	tr.ack(c)
	tr.ack(b)
	require.Equal(t, filePos{}, tr.acked)
	tr.ack(a)
	require.Equal(t, p(30), tr.acked)
	require.Zero(t, tr.unacked)
	tr.ack(a) // again: ignored
	tr.issue(p(40), true)
	require.Equal(t, p(40), tr.acked)
}

// Batches forgotten at a kill do not move the watermark when their
// acknowledgements come late.
func TestAckTrackerForget(t *testing.T) {
	var a ackTracker[[]byte]
	s1 := a.issue([]byte("1"), false)
	s2 := a.issue([]byte("2"), false)
	s3 := a.issue([]byte("3"), false)
	a.ack(s2)
	require.Nil(t, a.acked)
	a.ack(s1)
	require.Equal(t, []byte("2"), a.acked)
	a.forgetPending()
	a.ack(s3) // forgotten: read again
	require.Equal(t, []byte("2"), a.acked)
	require.Zero(t, a.unacked)
	s4 := a.issue([]byte("3"), false)
	a.ack(s4)
	require.Equal(t, []byte("3"), a.acked)
}

// testSource is the smallest source: a lock, a wake-up and a done channel
// around an inflight of int positions.
type testSource struct {
	mu   sync.Mutex
	wake chan struct{}
	done chan struct{}
	fl   inflight[int]
}

func newTestSource() *testSource {
	s := &testSource{wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.fl.init(&s.mu, s.wake, s.done)
	return s
}

func (s *testSource) acked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fl.ackedLocked()
}

// Out-of-order acknowledgements complete in order: the acknowledged
// position is the end of the longest acknowledged prefix.
func TestInflightAcksInOrder(t *testing.T) {
	s := newTestSource()
	var acks []func()
	thens := 0
	for i := 1; i <= 4; i++ {
		ack, tk, ok := s.fl.issue(i*10, false, func() { thens++ })
		require.True(t, ok)
		require.True(t, tk.Live())
		acks = append(acks, func() { require.NoError(t, ack(context.Background(), nil)) })
	}
	acks[3]()
	acks[1]()
	require.Zero(t, s.acked())
	acks[0]()
	require.Equal(t, 20, s.acked())
	acks[2]()
	require.Equal(t, 40, s.acked())
	require.Equal(t, 4, thens)
	s.mu.Lock()
	require.Zero(t, s.fl.unackedLocked())
	s.mu.Unlock()
}

// waitRoom holds the reader while more than n batches are unacknowledged,
// and lets it go at an acknowledgement, at a kill, or when the source
// closes.
func TestInflightRoom(t *testing.T) {
	s := newTestSource()
	ack1, _, _ := s.fl.issue(1, false, nil)
	_, tk2, _ := s.fl.issue(2, false, nil)

	waited := func(n int) <-chan error {
		c := make(chan error, 1)
		go func() { c <- s.fl.waitRoom(context.Background(), n) }()
		return c
	}
	w := waited(1)
	select {
	case err := <-w:
		t.Fatalf("waitRoom returned %v with 2 batches in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, ack1(context.Background(), nil))
	require.NoError(t, <-w)

	w = waited(0)
	select {
	case err := <-w:
		t.Fatalf("waitRoom returned %v with a batch in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.True(t, tk2.Fail(errors.New("boom")))
	require.NoError(t, <-w, "a kill frees the reader")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s2 := newTestSource()
	_, _, _ = s2.fl.issue(1, false, nil)
	require.ErrorIs(t, s2.fl.waitRoom(ctx, 0), context.Canceled)
	close(s2.done)
	require.ErrorIs(t, s2.fl.waitRoom(context.Background(), 0), context.Canceled)
}

// A failure kills the generation: nothing more is issued, the batches in
// flight are forgotten (their late acknowledgements change nothing), the
// reader is woken, and the rewind returns the acknowledged position and
// issues live tickets of the next generation.
func TestInflightKillRewind(t *testing.T) {
	s := newTestSource()
	ack1, _, _ := s.fl.issue(10, false, nil)
	ack2, tk2, _ := s.fl.issue(20, false, nil)
	ack3, tk3, _ := s.fl.issue(30, false, nil)
	require.NoError(t, ack1(context.Background(), nil))
	require.Equal(t, 10, s.acked())

	require.NoError(t, ack2(context.Background(), errors.New("write failed")))
	require.False(t, tk2.Live())
	require.False(t, tk3.Live(), "the whole generation dies")
	select {
	case <-s.wake:
	default:
		t.Fatal("the reader was not woken")
	}
	_, _, ok := s.fl.issue(40, false, nil)
	require.False(t, ok, "a batch read after the failed one must not go out")
	require.NoError(t, ack3(context.Background(), nil))
	require.Equal(t, 10, s.acked(), "a dead batch's acknowledgement moves nothing")
	require.False(t, tk3.Fail(errors.New("again")), "a dead generation dies once")

	pos, rewound, err := s.fl.rewindIfFailed(context.Background(), quietLogger(), "rewind")
	require.NoError(t, err)
	require.True(t, rewound)
	require.Equal(t, 10, pos)
	_, rewound, err = s.fl.rewindIfFailed(context.Background(), quietLogger(), "rewind")
	require.NoError(t, err)
	require.False(t, rewound, "one failure, one rewind")

	ack4, tk4, ok := s.fl.issue(20, false, nil)
	require.True(t, ok)
	require.True(t, tk4.Live())
	s.fl.killed(tk2.gen, errors.New("late news of the old generation"))
	s.mu.Lock()
	require.False(t, s.fl.failedLocked(), "a late kill of an old generation is ignored")
	s.mu.Unlock()
	require.NoError(t, ack4(context.Background(), nil))
	require.Equal(t, 20, s.acked())
}

// The wait before a rewind doubles while failures go on, up to its cap,
// and starts again after an acknowledgement.
func TestInflightRewindWait(t *testing.T) {
	s := newTestSource()
	var waits []time.Duration
	for range 9 {
		s.fl.failCurrent(errors.New("down"))
		why, wait := s.fl.failure()
		require.Error(t, why)
		waits = append(waits, wait)
		s.mu.Lock()
		s.fl.rewoundLocked()
		s.mu.Unlock()
	}
	require.Equal(t, []time.Duration{
		50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second,
	}, waits)
	ack, _, ok := s.fl.issue(1, false, nil)
	require.True(t, ok)
	require.NoError(t, ack(context.Background(), nil))
	s.fl.failCurrent(errors.New("down"))
	_, wait := s.fl.failure()
	require.Equal(t, minRewindWait, wait)

	why, wait := newTestSource().fl.failure()
	require.NoError(t, why)
	require.Zero(t, wait)
}

// A source's reader, acknowledgements from many goroutines in any order
// and failures, under the race detector: every batch is issued in order,
// what goes out of a generation after its kill is never acknowledged as
// stored, and the acknowledged position only moves forward over batches
// acknowledged live, in order.
func TestInflightConcurrent(t *testing.T) {
	s := newTestSource()
	const batches, maxInFlight = 1000, 4
	var (
		wg       sync.WaitGroup
		storedMu sync.Mutex
		stored   = map[int]bool{} // batches acknowledged while live
	)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	next := 1
	for next <= batches {
		require.NoError(t, s.fl.waitRoom(ctx, maxInFlight-1))
		pos, rewound, err := s.fl.rewindIfFailed(ctx, quietLogger(), "rewind")
		require.NoError(t, err)
		if rewound {
			next = pos + 1
			continue
		}
		end := next
		ack, _, ok := s.fl.issue(end, false, func() { stored[end] = true })
		if !ok {
			continue
		}
		next++
		fail := rng.IntN(100) == 0
		delay := time.Duration(rng.IntN(200)) * time.Microsecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			var err error
			if fail {
				err = errors.New("injected")
			}
			storedMu.Lock() // orders the map with the test's reads
			defer storedMu.Unlock()
			_ = ack(ctx, err)
		}()
	}
	wg.Wait()
	require.NoError(t, s.fl.waitRoom(ctx, 0))
	if _, rewound, _ := s.fl.rewindIfFailed(ctx, quietLogger(), "rewind"); rewound {
		t.Log("the last batch failed")
	}
	acked := s.acked()
	storedMu.Lock()
	defer storedMu.Unlock()
	for i := 1; i <= acked; i++ {
		require.True(t, stored[i], "batch %d is below the acknowledged position %d but was not acknowledged live", i, acked)
	}
	require.Greater(t, acked, batches/2)
}
