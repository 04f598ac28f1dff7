package siptest

import (
	"context"
	"sync"
)

// notifier lets goroutines wait for a condition on state guarded by mu: every
// change calls broadcast, waiters re-check their condition.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// broadcast wakes every waiter. The caller holds mu.
func (n *notifier) broadcast() {
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// wait blocks until cond (called with mu held) is true, ctx ends or stop is
// closed. It returns nil when cond became true.
func (n *notifier) wait(ctx context.Context, stop <-chan struct{}, cond func() bool) error {
	for {
		n.mu.Lock()
		if cond() {
			n.mu.Unlock()
			return nil
		}
		if n.ch == nil {
			n.ch = make(chan struct{})
		}
		ch := n.ch
		n.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			n.mu.Lock()
			ok := cond()
			n.mu.Unlock()
			if ok {
				return nil
			}
			return ErrClosed
		}
	}
}
