package callmgr

import "sync"

// mailbox is an unbounded FIFO whose push never blocks, so callbacks from
// the SIP, media and sink goroutines can hand work to a call's run loop (or
// events to its dispatcher) without ever waiting for it. It holds only
// control messages (statuses, requests, events), a handful per second at
// most, so unbounded is safe.
type mailbox[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	ready  chan struct{} // signalled (capacity 1) after push and close
}

func newMailbox[T any]() *mailbox[T] {
	return &mailbox[T]{ready: make(chan struct{}, 1)}
}

// push appends v; it reports false (and drops v) after close.
func (b *mailbox[T]) push(v T) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.items = append(b.items, v)
	b.mu.Unlock()
	b.signal()
	return true
}

func (b *mailbox[T]) signal() {
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// drain takes everything queued and reports whether the mailbox is closed
// (then nothing more will ever be queued).
func (b *mailbox[T]) drain() ([]T, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.items
	b.items = nil
	return items, b.closed
}

// close stops further pushes; what is queued can still be drained.
func (b *mailbox[T]) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
}
