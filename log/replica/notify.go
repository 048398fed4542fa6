package replica

import "sync"

// notifier wakes every waiter at once: Wait returns a channel that the
// next Broadcast closes. Long-polling fetches wait on it for new records.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) Wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// Broadcast wakes the current waiters. It allocates only if someone waits.
func (n *notifier) Broadcast() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}
