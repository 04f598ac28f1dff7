package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"
)

// ErrFull is Pick's error when no live node (or not the node asked) has
// room for another call.
var ErrFull = errors.New("cluster: every node is at its call limit")

// Config configures a Member. Join works on a copy.
type Config struct {
	// ID is this node's id: [A-Za-z0-9_-]+. Required.
	ID string
	// Registry is the cluster's shared state. Required. The Member does
	// not close it.
	Registry Registry
	// Bus carries requests between nodes. Required. The Member does not
	// close it.
	Bus Bus
	// Logger receives what the Member does in the background (registry
	// errors, orphans). Nil means none.
	Logger *slog.Logger
	// Info returns the node's heartbeat now (URL, Calls, MaxCalls, Load);
	// the Member sets ID and Started. Nil means zeros. It is called from
	// the Member's goroutine at every heartbeat and must not block.
	Info func() NodeInfo
	// Live reports whether this node has call id live now. It is asked
	// about entries of this node's that the Member does not hold (a
	// previous life's, after a restart): those that are not live are
	// reported through OnOrphan. Nil means none is live.
	Live func(id string) bool
	// OnOrphan is called exactly once in the whole cluster for each call
	// whose node died (its heartbeat expired) or that a restarted node no
	// longer has, with the entry as it was written as final: Status =
	// FailedStatus, Final, Reason ("node X stopped answering" / "node X
	// restarted"). The member that won the compare-and-set calls it (from
	// its liveness goroutine, or from Join for a previous life's calls),
	// then deletes the entry and its claims. Entries already Final are
	// just deleted (no call). Nil means none. It may block for a while
	// (a webhook): that delays the next liveness check, never a
	// heartbeat; it must not call Close.
	OnOrphan func(c Call)
	// FailedStatus is the Status of orphans. "" means "FAILED".
	FailedStatus string
	// OnChange is called for every change of the shared view, in order,
	// from one goroutine of the Member's (deleted true: the entry was
	// removed; only ID is set then). It must not block. Nil means none.
	OnChange func(c Call, deleted bool)
	// OnConnection is called when the registry becomes unreachable
	// (false) and reachable again (true), from the goroutine of OnChange.
	// Nil means none.
	OnConnection func(ok bool)
	// Heartbeat is the period of heartbeats; it must be shorter than the
	// registry's TTL. 0 means the registry's TTL / 3.
	Heartbeat time.Duration
	// Linger is how long a final entry stays after its call ended (find
	// on other nodes shows it), then the owner deletes it. 0 means 10 s.
	Linger time.Duration
}

// Member runs one node's part of a cluster: it heartbeats, writes the
// node's calls behind the callers' backs, watches the shared view, places
// new calls, reports the calls of nodes that died (exactly once in the
// cluster) and reconciles after a restart or an outage of the registry.
// Its methods are safe for concurrent use.
//
// The liveness rule: a node is dead only when this member has been
// connected and heartbeating for longer than the TTL plus one heartbeat
// period without a break, and that node's heartbeat is absent from the
// registry (it expired: TTL after its last beat) at two liveness checks
// in a row (a check every TTL/6, or every heartbeat period if shorter),
// by this member's clock. So a dead node's calls are reported about TTL
// + 2 × TTL/6 after its last beat, and an outage of the registry itself,
// during which every heartbeat may expire, fails no call.
type Member struct {
	cfg     Config
	id      string
	reg     Registry
	bus     Bus
	log     *slog.Logger
	ttl     time.Duration
	hb      time.Duration // heartbeat period
	poll    time.Duration // liveness check period
	grace   time.Duration // how long since it was last listed a node must stay absent
	linger  time.Duration
	failed  string
	started time.Time

	ctx    context.Context // ends when the Member stops
	cancel context.CancelFunc
	loops  sync.WaitGroup // heartbeats, checks, writer, notifier
	wake   chan struct{}  // the writer has work
	nwake  chan struct{}  // the notifier has work

	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	closed    bool
	view      map[string]Call   // the shared view, from the watch
	names     map[string]string // name -> call id
	pushes    map[string]string // push id -> call id
	gen       uint64            // the watch's generation
	staging   map[string]Call   // a new watch's present entries, until it has given them all
	stopWatch context.CancelFunc
	watching  bool // a watch is running and the view is current
	nodes     []NodeInfo
	seen      map[string]time.Time // when each node was last in Nodes
	up        bool                 // connected and heartbeating
	upSince   time.Time
	owned     map[string]*ownedCall
	claiming  map[string]int  // ids whose Claim is running
	drops     map[string]Call // deletions to retry (Revision compared when set)
	expect    map[string]expectation
	notes     []func()
	stopServe func()

	stats memberStats
}

// ownedCall is the state of one of this node's calls. Guarded by
// Member.mu.
type ownedCall struct {
	c        Call      // the latest state
	seq      uint64    // incremented by every Set
	written  uint64    // the seq last stored
	created  bool      // the entry exists in the registry (as far as known)
	fixed    bool      // the entry was created once: its claims are c's
	conflict bool      // another node holds its callId: never written
	deleteAt time.Time // final and stored: when to delete it
}

// dirty reports whether o's latest state is not stored yet.
func (o *ownedCall) dirty() bool { return !o.conflict && o.written != o.seq }

// expectation is what Pick expects a node to count: calls it sent there
// that the view may not show yet.
type expectation struct {
	calls int
	at    time.Time
}

// pickWindow is how long Pick counts the calls it sent to a node that
// the view and the heartbeats do not show yet.
const pickWindow = 5 * time.Second

// Join makes this node a member: it makes sure no live node has its id
// (ErrIDInUse; when the heartbeat of a previous life is still there, this
// takes a heartbeat period and a half, half a TTL at least), writes the first heartbeat (an
// error if the registry is away), starts watching the shared view, reconciles
// the node's stale entries (a previous life's that Live does not have:
// OnOrphan with "node X restarted") and starts heartbeating. ctx bounds
// Join only.
func Join(ctx context.Context, cfg Config) (*Member, error) {
	if err := checkNodeID(cfg.ID); err != nil {
		return nil, err
	}
	if cfg.Registry == nil {
		return nil, errors.New("cluster: Config.Registry is required")
	}
	if cfg.Bus == nil {
		return nil, errors.New("cluster: Config.Bus is required")
	}
	ttl := cfg.Registry.TTL()
	if ttl <= 0 {
		return nil, fmt.Errorf("cluster: the registry's TTL %v is not positive", ttl)
	}
	hb := cfg.Heartbeat
	if hb < 0 {
		return nil, fmt.Errorf("cluster: Config.Heartbeat %v is negative", hb)
	}
	if hb == 0 {
		hb = ttl / 3
	}
	if hb >= ttl {
		return nil, fmt.Errorf("cluster: Config.Heartbeat %v must be shorter than the registry's TTL %v", hb, ttl)
	}
	if cfg.Linger < 0 {
		return nil, fmt.Errorf("cluster: Config.Linger %v is negative", cfg.Linger)
	}
	m := &Member{
		cfg:      cfg,
		id:       cfg.ID,
		reg:      cfg.Registry,
		bus:      cfg.Bus,
		log:      cfg.Logger,
		ttl:      ttl,
		hb:       hb,
		poll:     max(ttl/6, 10*time.Millisecond),
		linger:   cfg.Linger,
		failed:   cfg.FailedStatus,
		started:  time.Now(),
		wake:     make(chan struct{}, 1),
		nwake:    make(chan struct{}, 1),
		view:     make(map[string]Call),
		names:    make(map[string]string),
		pushes:   make(map[string]string),
		seen:     make(map[string]time.Time),
		owned:    make(map[string]*ownedCall),
		claiming: make(map[string]int),
		drops:    make(map[string]Call),
		expect:   make(map[string]expectation),
	}
	m.poll = min(m.poll, hb)
	m.grace = m.poll // absent at two checks in a row
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.linger == 0 {
		m.linger = 10 * time.Second
	}
	if m.failed == "" {
		m.failed = "FAILED"
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())

	fail := func(err error) (*Member, error) {
		m.mu.Lock()
		stop := m.stopWatch
		m.mu.Unlock()
		if stop != nil {
			stop()
		}
		m.cancel()
		return nil, err
	}
	if err := m.checkIDFree(ctx); err != nil {
		return fail(err)
	}
	if err := m.reg.Heartbeat(ctx, m.info()); err != nil {
		return fail(fmt.Errorf("cluster: joining as node %q: %w", m.id, err))
	}
	m.mu.Lock()
	m.up, m.upSince = true, time.Now()
	m.mu.Unlock()
	m.loops.Add(1)
	go m.notifier()
	if err := m.watch(ctx); err != nil {
		m.cancel()
		m.loops.Wait()
		_ = m.reg.Leave(ctx, m.id)
		return fail(fmt.Errorf("cluster: joining as node %q: watching the registry: %w", m.id, err))
	}
	m.check(ctx, false)
	m.reconcile(ctx)
	m.loops.Add(3)
	go m.every(m.hb, m.beat)
	go m.every(m.poll, m.checkNow)
	go m.writer()
	return m, nil
}

// ErrIDInUse is Join's error when another live process heartbeats as
// the same node: two nodes of one id would report each other's calls as
// stale.
var ErrIDInUse = errors.New("cluster: the node id is in use by a live node")

// checkIDFree makes sure no live process heartbeats as this node: a
// heartbeat of this id (a previous life's, after a restart) must not be
// written again within a heartbeat period and a half (half a TTL at
// least).
func (m *Member) checkIDFree(ctx context.Context) error {
	seen := func() (time.Time, bool, error) {
		nodes, err := m.reg.Nodes(ctx)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("cluster: joining as node %q: %w", m.id, err)
		}
		for _, n := range nodes {
			if n.ID == m.id {
				return n.Seen, true, nil
			}
		}
		return time.Time{}, false, nil
	}
	first, ok, err := seen()
	if err != nil || !ok {
		return err
	}
	wait := time.NewTimer(max(m.hb+m.hb/2, m.ttl/2))
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-ctx.Done():
		return fmt.Errorf("cluster: joining as node %q: waiting for its previous heartbeat to age: %w", m.id, ctx.Err())
	}
	again, ok, err := seen()
	if err != nil || !ok || again.Equal(first) {
		return err
	}
	return fmt.Errorf("%w: node %q beat at %v and again at %v", ErrIDInUse, m.id,
		first.UTC().Format(time.RFC3339Nano), again.UTC().Format(time.RFC3339Nano))
}

// ID returns the node's id.
func (m *Member) ID() string { return m.id }

// info is the heartbeat to write now.
func (m *Member) info() NodeInfo {
	var n NodeInfo
	if m.cfg.Info != nil {
		n = m.cfg.Info()
	}
	n.ID, n.Started, n.Seen = m.id, m.started, time.Time{}
	return n
}

// Claim creates c's entry for this node (c.Node is set to ID) at once,
// claiming c.ID, c.Stream and c.Name across the cluster: a *ClaimError
// (ErrExists) when one is taken, ErrUnavailable when the registry is away
// (the caller should refuse the call: uniqueness cannot be checked). The
// call is this node's from then on: Set records its next states, Drop
// deletes it.
func (m *Member) Claim(ctx context.Context, c Call) (Call, error) {
	if c.ID == "" {
		return Call{}, errEmptyID
	}
	c.Node = m.id
	c.Revision = 0
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return Call{}, ErrClosed
	}
	m.claiming[c.ID]++
	m.mu.Unlock()
	out, err := m.reg.Create(ctx, c)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claiming[c.ID]--; m.claiming[c.ID] == 0 {
		delete(m.claiming, c.ID)
	}
	if err != nil {
		if !errors.Is(err, ErrExists) {
			m.stats.registryErrors.Add(1)
		}
		return Call{}, err
	}
	out.Stream = c.Stream
	delete(m.drops, c.ID) // an earlier Drop's retry must not delete this entry
	if o, ok := m.owned[c.ID]; ok && o.seq > 0 {
		// Set ran while Create did: its state is newer.
		o.created, o.fixed = true, true
		o.c = m.withClaims(o.c, out)
		m.signal()
		return cloneCall(out), nil
	}
	m.owned[c.ID] = &ownedCall{c: cloneCall(out), created: true, fixed: true}
	return cloneCall(out), nil
}

// withClaims returns c with the claims (Stream, StreamHash, Name) of the
// stored entry e: they cannot change once created.
func (m *Member) withClaims(c, e Call) Call {
	c.Stream, c.StreamHash, c.Name = e.Stream, e.StreamHash, e.Name
	return c
}

// Set records the latest state of one of this node's calls (after Claim,
// or a call the node took without Claim, an incoming one: its entry is
// created then). It never blocks: the state is written behind the
// caller's back, the latest state wins, and writes are retried until
// stored (a registry that is away loses nothing: the latest state is
// written when it is back). A Final entry is deleted Linger after it was
// stored. c.Node is set to ID; the claims of a created entry (Stream,
// Name) cannot change.
func (m *Member) Set(c Call) {
	if c.ID == "" {
		return
	}
	c = cloneCall(c)
	c.Node = m.id
	c.Revision = 0
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	delete(m.drops, c.ID)
	o, ok := m.owned[c.ID]
	if !ok {
		o = &ownedCall{}
		m.owned[c.ID] = o
	}
	if o.conflict {
		// Never shared (another node holds its callId): forgotten once it
		// ends.
		if c.Final {
			delete(m.owned, c.ID)
		}
		return
	}
	if o.fixed {
		c = m.withClaims(c, o.c)
	}
	o.c = c
	o.seq++
	if !c.Final {
		o.deleteAt = time.Time{}
	}
	m.signal()
}

// signal wakes the writer. m.mu need not be held.
func (m *Member) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Drop deletes one of this node's entries at once (a start that failed
// after Claim) and forgets the call. If the registry is away, the
// deletion is retried in the background and the error says why it failed
// now. An entry of another node's is not touched (ErrNotFound).
func (m *Member) Drop(ctx context.Context, id string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	o, ok := m.owned[id]
	delete(m.owned, id)
	m.mu.Unlock()
	var c Call
	var err error
	if ok {
		c = o.c
		c.Revision = 0
	} else {
		// Not held here: the entry is deleted only if it is this node's
		// (a previous life's), as it is now.
		c, err = m.reg.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			m.stats.registryErrors.Add(1)
			return fmt.Errorf("cluster: deleting call %q: %w", id, err)
		case c.Node != m.id:
			return fmt.Errorf("cluster: call %q is node %q's: %w", id, c.Node, ErrNotFound)
		}
	}
	err = m.reg.Delete(ctx, c)
	if errors.Is(err, ErrRevision) {
		return nil // written again meanwhile: no longer this Drop's
	}
	if err != nil {
		m.stats.registryErrors.Add(1)
		m.mu.Lock()
		if _, again := m.owned[id]; !again && !m.closed {
			m.drops[id] = c
			m.signal()
		}
		m.mu.Unlock()
		return fmt.Errorf("cluster: deleting call %q (retried in the background): %w", id, err)
	}
	return nil
}

// Calls returns the shared view: every node's entries as the watch gave
// them, with this node's own calls in their latest state (written or
// not), sorted by ID.
func (m *Member) Calls() []Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Call, 0, len(m.view)+len(m.owned))
	for id, c := range m.view {
		if o, ok := m.owned[id]; ok && !o.conflict {
			c = o.c
		}
		out = append(out, cloneCall(c))
	}
	for id, o := range m.owned {
		if _, ok := m.view[id]; !ok && !o.conflict {
			out = append(out, cloneCall(o.c))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Call returns the entry of id from the shared view (this node's own
// calls in their latest state).
func (m *Member) Call(id string) (Call, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookup(id)
}

// lookup is Call with m.mu held.
func (m *Member) lookup(id string) (Call, bool) {
	if o, ok := m.owned[id]; ok && !o.conflict {
		return cloneCall(o.c), true
	}
	c, ok := m.view[id]
	return cloneCall(c), ok
}

// ByName returns the call whose stream name (toStream) is name.
func (m *Member) ByName(name string) (Call, bool) {
	return m.find(name, m.names, func(c Call) bool { return c.Name == name })
}

// ByPush returns the call that has a push (an extra output) of id
// (mediaSessionId).
func (m *Member) ByPush(id string) (Call, bool) {
	return m.find(id, m.pushes, func(c Call) bool { return slices.Contains(c.Pushes, id) })
}

// find returns the call that match says has key: one of this node's own,
// else the view's through index (m.names or m.pushes, only read under
// m.mu).
func (m *Member) find(key string, index map[string]string, match func(Call) bool) (Call, bool) {
	if key == "" {
		return Call{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.owned {
		if !o.conflict && match(o.c) {
			return cloneCall(o.c), true
		}
	}
	if id, ok := index[key]; ok {
		return m.lookup(id)
	}
	return Call{}, false
}

// Nodes returns the live nodes (as the last liveness check found them,
// every TTL/6 at most), sorted by ID.
func (m *Member) Nodes() []NodeInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.nodes)
}

// Pick places a new call. With node "", it returns the least-loaded live
// node with room: its calls are counted as the larger of its heartbeat's
// and of its live entries in the view, plus the calls Pick sent it in the
// last few seconds that neither shows yet; ties go to the lower Load,
// then the lower ID. A node named must be alive (else ErrNotFound) and
// have room. ErrFull when no node has room.
func (m *Member) Pick(node string) (NodeInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	live := make(map[string]int)
	for _, c := range m.view {
		if !c.Final {
			live[c.Node]++
		}
	}
	ownLive := 0
	for _, o := range m.owned {
		if !o.c.Final && !o.conflict {
			ownLive++
		}
	}
	live[m.id] = max(live[m.id], ownLive)
	count := func(n NodeInfo) int {
		k := max(n.Calls, live[n.ID])
		if e, ok := m.expect[n.ID]; ok && now.Sub(e.at) < pickWindow {
			k = max(k, e.calls)
		}
		return k
	}
	room := func(n NodeInfo, k int) bool { return n.MaxCalls <= 0 || k < n.MaxCalls }
	best, bestCalls := -1, 0
	for i, n := range m.nodes {
		if node != "" && n.ID != node {
			continue
		}
		k := count(n)
		if !room(n, k) {
			if node != "" {
				return NodeInfo{}, fmt.Errorf("cluster: node %q has %d calls of %d: %w", node, k, n.MaxCalls, ErrFull)
			}
			continue
		}
		if best < 0 || k < bestCalls || k == bestCalls && (n.Load < m.nodes[best].Load || n.Load == m.nodes[best].Load && n.ID < m.nodes[best].ID) {
			best, bestCalls = i, k
		}
	}
	if best < 0 {
		if node != "" {
			return NodeInfo{}, fmt.Errorf("cluster: node %q is not alive: %w", node, ErrNotFound)
		}
		return NodeInfo{}, ErrFull
	}
	n := m.nodes[best]
	m.expect[n.ID] = expectation{calls: bestCalls + 1, at: now}
	n.Calls = bestCalls
	return n, nil
}

// Request sends req to node and returns its answer (see Bus.Request).
func (m *Member) Request(ctx context.Context, node string, req []byte) ([]byte, error) {
	return m.bus.Request(ctx, node, req)
}

// Serve answers the requests sent to this node with h until Close. It may
// be called once.
func (m *Member) Serve(h Handler) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.stopServe != nil {
		return fmt.Errorf("cluster: node %q is already served", m.id)
	}
	stop, err := m.bus.Serve(m.id, h)
	if err != nil {
		return err
	}
	m.stopServe = stop
	return nil
}

// Connected reports whether the registry is reachable now (the last
// heartbeat and liveness check succeeded).
func (m *Member) Connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up
}

// Close flushes the pending writes (bounded by ctx), deletes the node's
// remaining entries, removes its heartbeat, stops serving and ends its
// goroutines. It does not close the Registry or the Bus. It may be called
// again (it returns the first result).
func (m *Member) Close(ctx context.Context) error {
	m.closeOnce.Do(func() { m.closeErr = m.close(ctx) })
	return m.closeErr
}

func (m *Member) close(ctx context.Context) error {
	// The loops stop first: nothing else writes.
	m.mu.Lock()
	m.closed = true
	stop := m.stopServe
	m.mu.Unlock()
	if stop != nil {
		stop()
	}
	m.cancel()
	m.loops.Wait()

	var errs []error
	gone := false // the registry is away or ctx ended: give up
	// The latest states, so that other nodes see how the calls ended.
	for _, w := range m.pending(time.Now(), true) {
		if err := m.perform(ctx, w); err != nil {
			errs = append(errs, fmt.Errorf("cluster: storing call %q: %w", w.c.ID, err))
			if gone = away(err) || ctx.Err() != nil; gone {
				break
			}
		}
	}
	m.mu.Lock()
	var del []Call
	for _, o := range m.owned {
		if !o.conflict {
			del = append(del, o.c)
		}
	}
	for _, c := range m.drops {
		del = append(del, c)
	}
	for id, c := range m.view {
		if c.Node == m.id {
			if _, ok := m.owned[id]; !ok {
				del = append(del, Call{ID: id, Node: m.id, Revision: c.Revision})
			}
		}
	}
	m.mu.Unlock()
	for _, c := range del {
		if gone {
			break
		}
		if c.Node == m.id {
			c.Revision = 0
		}
		if err := m.reg.Delete(ctx, c); err != nil && !errors.Is(err, ErrRevision) {
			errs = append(errs, fmt.Errorf("cluster: deleting call %q: %w", c.ID, err))
			gone = away(err) || ctx.Err() != nil
		}
	}
	if err := m.reg.Leave(ctx, m.id); err != nil {
		errs = append(errs, fmt.Errorf("cluster: leaving: %w", err))
	}
	m.mu.Lock()
	if m.stopWatch != nil {
		m.stopWatch()
	}
	m.watching = false
	m.up = false
	m.mu.Unlock()
	return errors.Join(errs...)
}

// kill stops the Member as a crash would (a test hook): no write, no
// Leave; its heartbeat expires and its entries stay for survivors.
func (m *Member) kill() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		stop := m.stopServe
		if m.stopWatch != nil {
			m.stopWatch()
		}
		m.mu.Unlock()
		if stop != nil {
			stop()
		}
		m.cancel()
		m.loops.Wait()
		m.closeErr = ErrClosed
	})
}

// away reports whether err says the registry cannot be reached (rather
// than refusing one operation).
func away(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// opContext bounds one background registry operation.
func (m *Member) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(m.ctx, m.ttl)
}

// every calls f every d until the Member stops. The heartbeats have a
// goroutine of their own (so that no callback, no slow operation delays
// one), the liveness checks another.
func (m *Member) every(d time.Duration, f func()) {
	defer m.loops.Done()
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

// checkNow checks liveness, after healing when the registry came back.
func (m *Member) checkNow() {
	m.mu.Lock()
	up, watching := m.up, m.watching
	m.mu.Unlock()
	if up && !watching {
		m.heal()
	}
	ctx, cancel := m.opContext()
	m.check(ctx, true)
	cancel()
}

// beat writes the heartbeat. The first that succeeds after a failure
// makes the next liveness check heal.
func (m *Member) beat() {
	ctx, cancel := m.opContext()
	defer cancel()
	err := m.reg.Heartbeat(ctx, m.info())
	if m.ctx.Err() != nil {
		return
	}
	if err != nil {
		m.unreachable("heartbeat", err)
		return
	}
	m.setUp(true)
}

// unreachable records that what failed with err: the registry is taken
// for unreachable until a heartbeat succeeds.
func (m *Member) unreachable(what string, err error) {
	m.stats.registryErrors.Add(1)
	m.log.Warn("cluster: "+what+" failed", "node", m.id, "err", err)
	m.setUp(false)
}

// setUp records whether the registry is reachable; it reports whether it
// just came back.
func (m *Member) setUp(ok bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.up == ok || m.closed {
		return false
	}
	m.up = ok
	if ok {
		m.upSince = time.Now()
		m.watching = false // the view may have missed changes: the next check heals
		m.log.Info("cluster: registry reachable again", "node", m.id)
	} else {
		m.upSince = time.Time{}
		m.log.Warn("cluster: registry unreachable", "node", m.id)
	}
	if f := m.cfg.OnConnection; f != nil {
		m.queue(func() { f(ok) })
	}
	return ok
}

// heal runs when the registry is back: the view is watched afresh (the
// entries deleted meanwhile go), every call of this node's is written
// again (entries a survivor deleted come back) and the node's stale
// entries are reconciled.
func (m *Member) heal() {
	ctx, cancel := m.opContext()
	err := m.watch(ctx)
	cancel()
	if err != nil {
		if m.ctx.Err() == nil {
			m.unreachable("watching the registry", err)
		}
		return
	}
	m.mu.Lock()
	for _, o := range m.owned {
		if !o.conflict {
			o.seq++
		}
	}
	m.mu.Unlock()
	m.signal()
	m.reconcile(m.ctx)
}

// watch (re)starts the watch of the shared view: the present entries
// replace the view once the registry has given them all.
func (m *Member) watch(ctx context.Context) error {
	wctx, cancel := context.WithCancel(m.ctx)
	m.mu.Lock()
	m.gen++
	gen := m.gen
	old := m.stopWatch
	m.stopWatch = cancel
	m.watching = false
	m.staging = make(map[string]Call)
	m.mu.Unlock()
	if old != nil {
		old()
	}
	// wctx is the watch's life; ctx bounds its start only.
	stopBound := context.AfterFunc(ctx, cancel)
	err := m.reg.Watch(wctx, func(c Call, deleted bool) { m.apply(gen, c, deleted) })
	if !stopBound() && err == nil {
		err = fmt.Errorf("cluster: watch started too late: %w", context.Cause(ctx))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		cancel()
		return nil
	}
	if err != nil {
		cancel()
		m.staging = nil
		return err
	}
	fresh := m.staging
	m.staging = nil
	m.watching = true
	for id, c := range m.view {
		if _, ok := fresh[id]; !ok {
			m.unindex(c)
			delete(m.view, id)
			m.changed(Call{ID: id}, true)
		}
	}
	for id, c := range fresh {
		if old, ok := m.view[id]; ok && old.Revision == c.Revision && c.Revision != 0 {
			continue
		}
		m.put(c)
	}
	return nil
}

// apply takes one change of the watch of generation gen.
func (m *Member) apply(gen uint64, c Call, deleted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return
	}
	if m.staging != nil {
		if deleted {
			delete(m.staging, c.ID)
		} else {
			m.staging[c.ID] = c
		}
		return
	}
	if deleted {
		old, ok := m.view[c.ID]
		if !ok {
			return
		}
		m.unindex(old)
		delete(m.view, c.ID)
		m.changed(Call{ID: c.ID}, true)
		m.lostOwn(c.ID)
		return
	}
	m.put(c)
}

// put stores c in the view and tells OnChange. m.mu must be held.
func (m *Member) put(c Call) {
	if old, ok := m.view[c.ID]; ok {
		m.unindex(old)
	}
	m.view[c.ID] = c
	if c.Name != "" {
		m.names[c.Name] = c.ID
	}
	for _, p := range c.Pushes {
		m.pushes[p] = c.ID
	}
	m.changed(cloneCall(c), false)
}

// unindex removes c from the indexes. m.mu must be held.
func (m *Member) unindex(c Call) {
	if c.Name != "" && m.names[c.Name] == c.ID {
		delete(m.names, c.Name)
	}
	for _, p := range c.Pushes {
		if m.pushes[p] == c.ID {
			delete(m.pushes, p)
		}
	}
}

// lostOwn handles the deletion of one of this node's entries by someone
// else (a survivor that took the node for dead): a call still live is
// written again. m.mu must be held.
func (m *Member) lostOwn(id string) {
	o, ok := m.owned[id]
	if !ok || m.closed || o.conflict || o.c.Final || !o.created {
		return
	}
	o.created = false
	o.seq++
	m.signal()
}

// changed queues OnChange(c, deleted). m.mu must be held.
func (m *Member) changed(c Call, deleted bool) {
	if f := m.cfg.OnChange; f != nil {
		m.queue(func() { f(c, deleted) })
	}
}

// queue queues f for the notifier. m.mu must be held.
func (m *Member) queue(f func()) {
	m.notes = append(m.notes, f)
	select {
	case m.nwake <- struct{}{}:
	default:
	}
}

// notifier calls OnChange and OnConnection in order, until the Member
// stops.
func (m *Member) notifier() {
	defer m.loops.Done()
	for {
		m.mu.Lock()
		notes := m.notes
		m.notes = nil
		m.mu.Unlock()
		for _, f := range notes {
			f()
		}
		select {
		case <-m.ctx.Done():
			return
		case <-m.nwake:
		}
	}
}

// check lists the live nodes and, when orphan is set and the liveness
// rule allows, reports the calls of the dead ones.
func (m *Member) check(ctx context.Context, orphan bool) {
	nodes, err := m.reg.Nodes(ctx)
	if m.ctx.Err() != nil {
		return
	}
	if err != nil {
		m.unreachable("listing the nodes", err)
		return
	}
	now := time.Now()
	present := make(map[string]bool, len(nodes))
	m.mu.Lock()
	for _, n := range nodes {
		present[n.ID] = true
		m.seen[n.ID] = now
	}
	m.nodes = nodes
	for id, e := range m.expect {
		if now.Sub(e.at) >= pickWindow {
			delete(m.expect, id)
		}
	}
	if !orphan || !m.up || now.Sub(m.upSince) <= m.ttl+m.hb {
		m.mu.Unlock()
		return
	}
	var dead []Call
	for _, c := range m.view {
		if c.Node == m.id || present[c.Node] {
			continue
		}
		last := m.seen[c.Node]
		if last.Before(m.upSince) {
			last = m.upSince // a node never seen counts from the connection
		}
		if now.Sub(last) > m.grace {
			dead = append(dead, c)
		}
	}
	for id, t := range m.seen {
		if !present[id] && now.Sub(t) > m.ttl+m.linger {
			delete(m.seen, id)
		}
	}
	m.mu.Unlock()
	sort.Slice(dead, func(i, j int) bool { return dead[i].ID < dead[j].ID })
	for _, c := range dead {
		if m.ctx.Err() != nil {
			return
		}
		octx, cancel := context.WithTimeout(m.ctx, m.ttl)
		m.orphan(octx, c, fmt.Sprintf("node %s stopped answering", c.Node))
		cancel()
	}
}

// reconcile reports this node's entries that it does not hold and Live
// does not have (a previous life's) as orphans, and deletes its final
// ones. ctx bounds it; each operation takes a TTL at most.
func (m *Member) reconcile(ctx context.Context) {
	m.mu.Lock()
	var stale []Call
	for id, c := range m.view {
		if c.Node != m.id || m.claiming[id] > 0 {
			continue
		}
		if _, ok := m.drops[id]; ok {
			continue // a Drop that failed: deleted when the writer retries
		}
		if _, ok := m.owned[id]; ok {
			continue
		}
		stale = append(stale, c)
	}
	m.mu.Unlock()
	sort.Slice(stale, func(i, j int) bool { return stale[i].ID < stale[j].ID })
	for _, c := range stale {
		if !c.Final && m.cfg.Live != nil && m.cfg.Live(c.ID) {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, m.ttl)
		m.orphan(octx, c, fmt.Sprintf("node %s restarted", m.id))
		cancel()
	}
}

// orphan ends c for a node that is gone: a compare-and-set to the final
// failed state, whose winner calls OnOrphan and deletes the entry. A
// final entry is just deleted.
func (m *Member) orphan(ctx context.Context, c Call, reason string) {
	if c.Revision == 0 {
		return // no revision to compare: it cannot be done exactly once
	}
	if c.Final {
		if err := m.reg.Delete(ctx, c); err != nil && !errors.Is(err, ErrRevision) {
			m.stats.registryErrors.Add(1)
		}
		return
	}
	f := cloneCall(c)
	f.Status, f.Final, f.Reason = m.failed, true, reason
	out, err := m.reg.Update(ctx, f)
	switch {
	case errors.Is(err, ErrRevision) || errors.Is(err, ErrNotFound):
		return // another member won, or the owner wrote again
	case err != nil:
		m.stats.registryErrors.Add(1)
		m.log.Warn("cluster: failing an orphaned call", "node", m.id, "call", c.ID, "owner", c.Node, "err", err)
		return
	}
	m.stats.orphaned.Add(1)
	m.log.Info("cluster: call failed: its node is gone", "node", m.id, "call", c.ID, "owner", c.Node, "reason", reason)
	if f := m.cfg.OnOrphan; f != nil {
		f(cloneCall(out))
	}
	if err := m.reg.Delete(ctx, out); err != nil && !errors.Is(err, ErrRevision) {
		m.stats.registryErrors.Add(1)
		m.mu.Lock()
		if !m.closed {
			m.drops[out.ID] = out
			m.signal()
		}
		m.mu.Unlock()
	}
}

// work is one write of the writer: store c, or delete it.
type work struct {
	c       Call
	seq     uint64
	created bool
	del     bool // delete c (a final entry's linger is over, or a drop)
	drop    bool // c is a drop (not owned)
}

// pending returns the writes due at now: the dirty calls, the final ones
// whose linger is over (all finals with all), the drops.
func (m *Member) pending(now time.Time, all bool) []work {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []work
	for _, o := range m.owned {
		switch {
		case o.dirty():
			out = append(out, work{c: cloneCall(o.c), seq: o.seq, created: o.created})
		case !all && !o.deleteAt.IsZero() && !now.Before(o.deleteAt):
			c := cloneCall(o.c)
			c.Revision = 0 // this node's own: whatever it is now
			out = append(out, work{c: c, seq: o.seq, del: true})
		}
	}
	if !all {
		for _, c := range m.drops {
			out = append(out, work{c: c, del: true, drop: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].c.ID < out[j].c.ID })
	return out
}

// nextDue returns when the next linger ends (zero: none).
func (m *Member) nextDue() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	for _, o := range m.owned {
		if !o.deleteAt.IsZero() && (next.IsZero() || o.deleteAt.Before(next)) {
			next = o.deleteAt
		}
	}
	return next
}

// writer stores this node's calls behind the callers' backs until the
// Member stops.
func (m *Member) writer() {
	defer m.loops.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	logged := make(map[string]string) // the error last logged for each call
	for {
		failed := false
		for _, w := range m.pending(time.Now(), false) {
			ctx, cancel := m.opContext()
			err := m.perform(ctx, w)
			cancel()
			if m.ctx.Err() != nil {
				return
			}
			if err == nil {
				delete(logged, w.c.ID)
				continue
			}
			failed = true
			if logged[w.c.ID] != err.Error() {
				logged[w.c.ID] = err.Error()
				m.log.Warn("cluster: storing a call failed (retried)", "node", m.id, "call", w.c.ID, "err", err)
			}
			if away(err) {
				break // the others would fail alike
			}
		}
		wait := time.Hour
		if failed {
			wait = m.poll
		} else if next := m.nextDue(); !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-m.ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// perform does one write and records its outcome.
func (m *Member) perform(ctx context.Context, w work) error {
	if w.del {
		err := m.reg.Delete(ctx, w.c)
		if err != nil && !errors.Is(err, ErrRevision) {
			m.stats.registryErrors.Add(1)
			return err
		}
		m.mu.Lock()
		if w.drop {
			if d, ok := m.drops[w.c.ID]; ok && d.Revision == w.c.Revision {
				delete(m.drops, w.c.ID)
			}
		} else if o, ok := m.owned[w.c.ID]; ok && o.seq == w.seq {
			delete(m.owned, w.c.ID)
		}
		m.mu.Unlock()
		return nil
	}
	out, err := m.store(ctx, w.c, w.created)
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.owned[w.c.ID]
	if !ok {
		// Dropped meanwhile: its Delete may have come before this write.
		if err == nil && !m.closed {
			m.drops[w.c.ID] = Call{ID: out.ID, Node: m.id, StreamHash: out.StreamHash, Name: out.Name}
			m.signal()
		}
		return nil
	}
	var ce *ClaimError
	if errors.As(err, &ce) {
		// Another node holds this callId: this node's call cannot be
		// shared (it goes on here).
		m.stats.registryErrors.Add(1)
		m.log.Error("cluster: a call of this node cannot be registered", "node", m.id, "call", w.c.ID, "err", err)
		o.conflict = true
		return nil
	}
	if err != nil {
		m.stats.registryErrors.Add(1)
		return err
	}
	o.created, o.fixed = true, true
	o.c = m.withClaims(o.c, out)
	if o.seq == w.seq {
		o.written = w.seq
		o.c.Revision = out.Revision
		if out.Final && o.deleteAt.IsZero() {
			o.deleteAt = time.Now().Add(m.linger)
		}
	}
	return nil
}

// store writes c: an Update of the entry when it exists, a Create when
// it does not. A stream or name claimed by another call is given up (the
// call goes on, shared without it); a callId held by another node gives
// a *ClaimError.
func (m *Member) store(ctx context.Context, c Call, created bool) (Call, error) {
	if created {
		out, err := m.reg.Update(ctx, c)
		if !errors.Is(err, ErrNotFound) {
			out.Stream = c.Stream
			return out, err
		}
	}
	for range 4 {
		out, err := m.reg.Create(ctx, c)
		if err == nil {
			out.Stream = c.Stream
			return out, nil
		}
		var ce *ClaimError
		if !errors.As(err, &ce) {
			return Call{}, err
		}
		switch ce.Kind {
		case KindStream:
			m.log.Warn("cluster: the call's RTMP stream is claimed by another call: shared without its claim", "node", m.id, "call", c.ID, "holder", ce.CallID)
			c.Stream, c.StreamHash = "", ""
		case KindName:
			m.log.Warn("cluster: the call's stream name is claimed by another call: shared without its claim", "node", m.id, "call", c.ID, "holder", ce.CallID)
			c.Name = ""
		default:
			if ce.Node != m.id {
				return Call{}, err
			}
			out, err := m.reg.Update(ctx, c)
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile: create it again
			}
			out.Stream = c.Stream
			return out, err
		}
	}
	return Call{}, fmt.Errorf("cluster: storing call %q: the registry keeps changing", c.ID)
}
