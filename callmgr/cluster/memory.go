package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is a Registry kept in this process: several Members of one
// process share it (tests; services that run several Managers in one
// process). Entries are kept as a registry that stores them would give
// them back: without Stream (only its hash). Safe for concurrent use.
type Memory struct {
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	rev      uint64            // the last revision given
	calls    map[string]Call   // by call id, Stream cleared
	streams  map[string]string // stream hash -> call id
	names    map[string]string // name -> call id
	nodes    map[string]NodeInfo
	watchers map[*memWatcher]struct{}
	fail     error // the partition of Fail, nil when healed
	closed   bool
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
}

// NewMemory returns an empty Memory whose heartbeats expire ttl after
// their writing by the clock now (nil: time.Now). A ttl of 0 or less
// means 6 s.
func NewMemory(ttl time.Duration, now func() time.Time) *Memory {
	if ttl <= 0 {
		ttl = 6 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{
		ttl:      ttl,
		now:      now,
		calls:    make(map[string]Call),
		streams:  make(map[string]string),
		names:    make(map[string]string),
		nodes:    make(map[string]NodeInfo),
		watchers: make(map[*memWatcher]struct{}),
		done:     make(chan struct{}),
	}
}

// Fail is a test hook that simulates a partition: while err is not nil,
// every method (but TTL and Close) returns err wrapped in ErrUnavailable
// and watchers get nothing. Fail(nil) heals it: every watcher then gets
// the present entries again (deleted false), after what it had been given.
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	healed := m.fail != nil && err == nil
	m.fail = err
	if !healed {
		return
	}
	present := m.sortedCalls()
	for w := range m.watchers {
		for _, c := range present {
			w.queue = append(w.queue, memEvent{call: c})
		}
		w.wake()
	}
}

// check returns the error every method returns now: ErrClosed, the
// partition of Fail, or nil. m.mu must be held.
func (m *Memory) check() error {
	if m.closed {
		return ErrClosed
	}
	if m.fail != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, m.fail)
	}
	return nil
}

// begin locks m and checks it and ctx; on error m is unlocked again.
func (m *Memory) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if err := m.check(); err != nil {
		m.mu.Unlock()
		return err
	}
	return nil
}

// Create implements Registry.
func (m *Memory) Create(ctx context.Context, c Call) (Call, error) {
	if c.ID == "" {
		return Call{}, errEmptyID
	}
	if err := m.begin(ctx); err != nil {
		return Call{}, err
	}
	defer m.mu.Unlock()
	if old, ok := m.calls[c.ID]; ok {
		return Call{}, &ClaimError{Kind: KindCallID, CallID: c.ID, Node: old.Node}
	}
	c.StreamHash = ""
	if c.Stream != "" {
		c.StreamHash = streamHash(c.Stream)
		if id, ok := m.streams[c.StreamHash]; ok {
			return Call{}, &ClaimError{Kind: KindStream, CallID: id, Node: m.calls[id].Node}
		}
	}
	if c.Name != "" {
		if id, ok := m.names[c.Name]; ok {
			return Call{}, &ClaimError{Kind: KindName, CallID: id, Node: m.calls[id].Node}
		}
	}
	if c.StreamHash != "" {
		m.streams[c.StreamHash] = c.ID
	}
	if c.Name != "" {
		m.names[c.Name] = c.ID
	}
	m.rev++
	c.Revision = m.rev
	m.store(c)
	return c, nil
}

// store keeps a copy of c (without Stream) and tells the watchers. m.mu
// must be held.
func (m *Memory) store(c Call) {
	c.Stream = ""
	c = cloneCall(c)
	m.calls[c.ID] = c
	m.notify(memEvent{call: c})
}

// notify queues ev for every watcher. m.mu must be held.
func (m *Memory) notify(ev memEvent) {
	for w := range m.watchers {
		w.queue = append(w.queue, ev)
		w.wake()
	}
}

// Update implements Registry.
func (m *Memory) Update(ctx context.Context, c Call) (Call, error) {
	if c.ID == "" {
		return Call{}, errEmptyID
	}
	if err := m.begin(ctx); err != nil {
		return Call{}, err
	}
	defer m.mu.Unlock()
	old, ok := m.calls[c.ID]
	if !ok {
		return Call{}, ErrNotFound
	}
	if c.Revision != 0 && c.Revision != old.Revision {
		return Call{}, ErrRevision
	}
	c.StreamHash, c.Name = old.StreamHash, old.Name
	m.rev++
	c.Revision = m.rev
	m.store(c)
	return c, nil
}

// Delete implements Registry.
func (m *Memory) Delete(ctx context.Context, c Call) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	old, ok := m.calls[c.ID]
	if !ok {
		return nil
	}
	if c.Revision != 0 && c.Revision != old.Revision {
		return ErrRevision
	}
	delete(m.calls, c.ID)
	if old.StreamHash != "" && m.streams[old.StreamHash] == c.ID {
		delete(m.streams, old.StreamHash)
	}
	if old.Name != "" && m.names[old.Name] == c.ID {
		delete(m.names, old.Name)
	}
	m.rev++
	m.notify(memEvent{call: Call{ID: c.ID}, deleted: true})
	return nil
}

// Get implements Registry.
func (m *Memory) Get(ctx context.Context, id string) (Call, error) {
	if err := m.begin(ctx); err != nil {
		return Call{}, err
	}
	defer m.mu.Unlock()
	c, ok := m.calls[id]
	if !ok {
		return Call{}, ErrNotFound
	}
	return cloneCall(c), nil
}

// List implements Registry: the entries sorted by ID.
func (m *Memory) List(ctx context.Context) ([]Call, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	return m.sortedCalls(), nil
}

// sortedCalls returns copies of the entries sorted by ID. m.mu must be
// held.
func (m *Memory) sortedCalls() []Call {
	out := make([]Call, 0, len(m.calls))
	for _, c := range m.calls {
		out = append(out, cloneCall(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Watch implements Registry. Each watcher has its own queue: a slow fn
// never blocks writers.
func (m *Memory) Watch(ctx context.Context, fn func(c Call, deleted bool)) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	w := &memWatcher{notify: make(chan struct{}, 1), synced: make(chan struct{})}
	for _, c := range m.sortedCalls() {
		w.queue = append(w.queue, memEvent{call: c})
	}
	w.queue = append(w.queue, memEvent{sync: true})
	m.watchers[w] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	go m.runWatcher(ctx, w, fn)
	select {
	case <-w.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return ErrClosed
	}
}

// runWatcher gives w's queue to fn in order until ctx ends or m closes.
func (m *Memory) runWatcher(ctx context.Context, w *memWatcher, fn func(Call, bool)) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	}()
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		var ev memEvent
		ok := len(w.queue) > 0 && m.fail == nil
		if ok {
			ev = w.queue[0]
			w.queue[0] = memEvent{}
			w.queue = w.queue[1:]
		}
		m.mu.Unlock()
		if !ok {
			select {
			case <-w.notify:
				continue
			case <-ctx.Done():
				return
			case <-m.done:
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		if ev.sync {
			close(w.synced)
			continue
		}
		fn(cloneCall(ev.call), ev.deleted)
	}
}

// Heartbeat implements Registry.
func (m *Memory) Heartbeat(ctx context.Context, n NodeInfo) error {
	if err := checkNodeID(n.ID); err != nil {
		return err
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	n.Seen = m.now()
	m.nodes[n.ID] = n
	return nil
}

// Leave implements Registry.
func (m *Memory) Leave(ctx context.Context, id string) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.nodes, id)
	return nil
}

// Nodes implements Registry: the live nodes sorted by ID.
func (m *Memory) Nodes(ctx context.Context) ([]NodeInfo, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := m.now()
	out := make([]NodeInfo, 0, len(m.nodes))
	for id, n := range m.nodes {
		if now.Sub(n.Seen) >= m.ttl {
			delete(m.nodes, id)
			continue
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// TTL implements Registry.
func (m *Memory) TTL() time.Duration { return m.ttl }

// Close implements Registry: it ends the watchers (and waits for their
// goroutines); the methods return ErrClosed after it. It may be called
// again.
func (m *Memory) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.done)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// memEvent is one change queued for a watcher; sync marks the end of the
// present entries given by Watch.
type memEvent struct {
	call    Call
	deleted bool
	sync    bool
}

// memWatcher is one Watch: its queue is guarded by Memory.mu.
type memWatcher struct {
	queue  []memEvent
	notify chan struct{}
	synced chan struct{}
}

// wake tells the watcher's goroutine there is something in its queue.
func (w *memWatcher) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// MemoryBus is a Bus inside this process: requests are handed to the
// serving node's Handler directly. Safe for concurrent use.
type MemoryBus struct {
	mu       sync.Mutex
	handlers map[string]*memServer
	fail     error
	closed   bool
}

// memServer is one Serve of a MemoryBus.
type memServer struct {
	h      Handler
	ctx    context.Context // ended by stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the handlers running
}

// NewMemoryBus returns a MemoryBus nobody serves yet.
func NewMemoryBus() *MemoryBus {
	return &MemoryBus{handlers: make(map[string]*memServer)}
}

// Fail is a test hook that simulates a partition: while err is not nil,
// Serve and Request return err wrapped in ErrUnavailable. Fail(nil)
// heals it.
func (b *MemoryBus) Fail(err error) {
	b.mu.Lock()
	b.fail = err
	b.mu.Unlock()
}

// check returns ErrClosed, the partition of Fail, or nil. b.mu must be
// held.
func (b *MemoryBus) check() error {
	if b.closed {
		return ErrClosed
	}
	if b.fail != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, b.fail)
	}
	return nil
}

// Serve implements Bus: h is called on a goroutine of its own for each
// request, with a context that ends when the request's does or stop is
// called. One id is served once at a time in a bus (an error otherwise).
// stop waits for the handlers running: do not call it from a handler.
func (b *MemoryBus) Serve(id string, h Handler) (stop func(), err error) {
	if err := checkNodeID(id); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("cluster: nil handler")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(); err != nil {
		return nil, err
	}
	if _, ok := b.handlers[id]; ok {
		return nil, fmt.Errorf("cluster: node %q is already served on this bus", id)
	}
	s := &memServer{h: h}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	b.handlers[id] = s
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			if b.handlers[id] == s {
				delete(b.handlers, id)
			}
			b.mu.Unlock()
			s.cancel()
			s.wg.Wait()
		})
	}, nil
}

// Request implements Bus.
func (b *MemoryBus) Request(ctx context.Context, id string, req []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	b.mu.Lock()
	if err := b.check(); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	s, ok := b.handlers[id]
	if !ok || s.ctx.Err() != nil {
		b.mu.Unlock()
		return nil, ErrNoNode
	}
	s.wg.Add(1)
	b.mu.Unlock()

	hctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	answer := make(chan []byte, 1)
	req = slices.Clone(req)
	go func() {
		defer s.wg.Done()
		defer cancel()
		defer stop()
		answer <- slices.Clone(s.h(hctx, req))
	}()
	select {
	case a := <-answer:
		return a, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
}

// Close implements Bus: it stops serving every node (waiting for the
// handlers running) and Request returns ErrClosed after it.
func (b *MemoryBus) Close() error {
	b.mu.Lock()
	b.closed = true
	servers := b.handlers
	b.handlers = make(map[string]*memServer)
	b.mu.Unlock()
	for _, s := range servers {
		s.cancel()
		s.wg.Wait()
	}
	return nil
}

var errEmptyID = errors.New("cluster: empty call id")

// streamHash is the claim key of a call's Stream: hex SHA-256, so the
// registry never holds the stream itself (it may carry a stream key).
func streamHash(stream string) string {
	sum := sha256.Sum256([]byte(stream))
	return hex.EncodeToString(sum[:])
}

// checkNodeID checks a node id (or a cluster name): [A-Za-z0-9_-]+, as
// NATS subjects and keys need.
func checkNodeID(id string) error {
	if id == "" {
		return errors.New("cluster: empty node id")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("cluster: node id %q: only letters, digits, '_' and '-' are allowed", id)
		}
	}
	return nil
}

// cloneCall returns c with its slices copied, so callers cannot change
// what a registry keeps.
func cloneCall(c Call) Call {
	c.Pushes = slices.Clone(c.Pushes)
	c.Object = slices.Clone(c.Object)
	return c
}
