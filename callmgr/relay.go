package callmgr

import (
	"sync"
	"sync/atomic"
)

// Relay hands a Manager's events to listeners made after the Manager (an
// HTTP API, metrics): give Relay.OnEvent to Config.OnEvent, then Subscribe
// each listener. Every listener gets every event in the Manager's order
// (per call), on the call's event goroutine (registration events on the
// Manager's), so it must not block. Events
// that come before a listener subscribes do not reach it. The zero value
// is ready to use.
type Relay struct {
	mu   sync.Mutex // serializes Subscribe and cancel
	subs atomic.Pointer[[]*relaySub]
}

type relaySub struct{ fn func(Event) }

// OnEvent passes ev to every subscriber, in the order they subscribed.
func (r *Relay) OnEvent(ev Event) {
	if p := r.subs.Load(); p != nil {
		for _, s := range *p {
			s.fn(ev)
		}
	}
}

// Subscribe adds fn; cancel removes it (events being delivered may still
// reach it).
func (r *Relay) Subscribe(fn func(Event)) (cancel func()) {
	s := &relaySub{fn: fn}
	r.mu.Lock()
	defer r.mu.Unlock()
	var next []*relaySub
	if p := r.subs.Load(); p != nil {
		next = append(next, *p...)
	}
	next = append(next, s)
	r.subs.Store(&next)
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		var rest []*relaySub
		if p := r.subs.Load(); p != nil {
			for _, o := range *p {
				if o != s {
					rest = append(rest, o)
				}
			}
		}
		r.subs.Store(&rest)
	}
}
