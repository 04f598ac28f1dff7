package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSConfig configures NewNATS. The zero value is usable: cluster
// "sipstream", heartbeats living 6 s, one replica, 2 s per operation.
// Every node of a cluster must use the same Cluster and TTL.
type NATSConfig struct {
	// Cluster is the cluster's name ([A-Za-z0-9_-]+): the buckets and
	// subjects are prefixed "sipstream_" + Cluster. "" means the prefix
	// "sipstream".
	Cluster string
	// TTL is how long a heartbeat lives (the nodes bucket's MaxAge). Zero
	// means 6 s; it must be at least 100 ms.
	TTL time.Duration
	// Replicas is the buckets' number of replicas: 1 for one server, 3 for
	// a JetStream cluster of three. Zero means 1. It applies when a bucket
	// is created or its configuration updated.
	Replicas int
	// Timeout bounds each operation whose context has no deadline (a Bus
	// request included). Zero means 2 s.
	Timeout time.Duration
}

// NATS is a Registry and a Bus over a NATS connection with JetStream.
//
// The entries and claims are kept in the key-value bucket
// "<prefix>_calls" (history 1, file storage): "call.<id>" holds the JSON
// of a Call (ids are base64url encoded in keys), "stream.<hex SHA-256 of
// Stream>" and "name.<name, base64url>" hold claims naming the call and
// its node. Heartbeats are kept in "<prefix>_nodes", whose MaxAge is the
// TTL. A node's requests travel on the subject "<prefix>.node.<id>.req".
// Both buckets are created when missing.
//
// Create writes the entry first, then its claims; a claim taken undoes
// what was written. A claim whose call no longer names it (left by a
// process that died between the steps) is taken over, so no crash keeps a
// key forever. Watch follows the bucket with a KV watcher, re-created
// whenever the connection comes back (a nats-server restart): the present
// entries are then given again, and the entries that went away meanwhile
// as deletions.
//
// NATS needs nats-server 2.9 or later (no per-key TTL, no batch is
// used). It does not close the connection: the caller owns it.
type NATS struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	calls jetstream.KeyValue
	nodes jetstream.KeyValue
	// nodesStream is the stream under nodes.
	nodesStream jetstream.Stream
	prefix      string
	ttl         time.Duration
	timeout     time.Duration
	mu          sync.Mutex
	closed      bool
	done        chan struct{}
	ctx         context.Context // ended by Close
	cancel      context.CancelFunc
	servers     map[string]*natsServer
	wg          sync.WaitGroup // watchers and the sweeper

	checkEvery time.Duration // checkEvery; tests shorten it
	resyncs    atomic.Int64  // watchers re-created after a silence
}

// natsServer is one Serve of a NATS bus.
type natsServer struct {
	sub    *nats.Subscription
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the handlers running
}

// NewNATS opens the cluster's buckets on nc (creating them when missing)
// and returns the Registry and Bus over them. ctx bounds the setup.
func NewNATS(ctx context.Context, nc *nats.Conn, cfg NATSConfig) (*NATS, error) {
	if nc == nil {
		return nil, errors.New("cluster: nil NATS connection")
	}
	prefix := "sipstream"
	if cfg.Cluster != "" {
		if err := checkNodeID(cfg.Cluster); err != nil {
			return nil, fmt.Errorf("cluster: the cluster name %q: only letters, digits, '_' and '-' are allowed", cfg.Cluster)
		}
		prefix = "sipstream_" + cfg.Cluster
	}
	ttl := cfg.TTL
	switch {
	case ttl == 0:
		ttl = 6 * time.Second
	case ttl < 100*time.Millisecond:
		return nil, fmt.Errorf("cluster: TTL %v is below 100 ms", ttl)
	}
	replicas := cfg.Replicas
	switch {
	case replicas == 0:
		replicas = 1
	case replicas < 0 || replicas > 5:
		return nil, fmt.Errorf("cluster: %d replicas (1 to 5)", replicas)
	}
	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = 2 * time.Second
	case timeout < 0:
		return nil, fmt.Errorf("cluster: negative timeout %v", timeout)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: jetstream: %w", ErrUnavailable, err)
	}
	n := &NATS{nc: nc, js: js, prefix: prefix, ttl: ttl, timeout: timeout,
		done: make(chan struct{}), servers: make(map[string]*natsServer)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.checkEvery = checkEvery
	sctx, cancel := n.opCtx(ctx)
	defer cancel()
	n.calls, err = js.CreateOrUpdateKeyValue(sctx, jetstream.KeyValueConfig{
		Bucket:      prefix + "_calls",
		Description: "sipstream cluster: call entries and their claims",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: the bucket %s_calls: %w", ErrUnavailable, prefix, err)
	}
	n.nodes, err = js.CreateOrUpdateKeyValue(sctx, jetstream.KeyValueConfig{
		Bucket:      prefix + "_nodes",
		Description: "sipstream cluster: node heartbeats",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: the bucket %s_nodes: %w", ErrUnavailable, prefix, err)
	}
	n.nodesStream, err = js.Stream(sctx, "KV_"+n.nodes.Bucket())
	if err != nil {
		return nil, fmt.Errorf("%w: the bucket %s_nodes: %w", ErrUnavailable, prefix, err)
	}
	n.wg.Add(1)
	go n.sweeper(sweepEvery, markerAge)
	return n, nil
}

// The calls bucket keeps a delete marker for every key ever deleted
// (one to three per call), which List and every new watcher would read
// for ever: each NATS removes the markers older than markerAge every
// sweepEvery.
const (
	sweepEvery = 10 * time.Minute
	markerAge  = 10 * time.Minute
)

// sweeper runs sweep every period until n closes.
func (n *NATS) sweeper(every, age time.Duration) {
	defer n.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*n.timeout)
		stop := context.AfterFunc(n.ctx, cancel) // Close cancels it
		_ = n.sweep(ctx, age)                    // a failure is retried at the next tick
		stop()
		cancel()
	}
}

// sweep removes the delete markers of the calls bucket older than age.
func (n *NATS) sweep(ctx context.Context, age time.Duration) error {
	w, err := n.calls.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return n.fail(err)
	}
	type marker struct {
		key string
		rev uint64
	}
	var markers []marker
	limit := time.Now().Add(-age)
	func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok || e == nil {
					return
				}
				if e.Operation() != jetstream.KeyValuePut && !e.Created().After(limit) {
					markers = append(markers, marker{e.Key(), e.Revision()})
				}
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
		}
	}()
	if err != nil {
		return n.fail(err)
	}
	for _, m := range markers {
		if err := n.purgeMarker(ctx, m.key, m.rev); err != nil {
			return err
		}
	}
	return nil
}

// purgeMarker removes key's messages up to its delete marker of revision
// rev, and nothing written after it (a key created again meanwhile
// stays).
func (n *NATS) purgeMarker(ctx context.Context, key string, rev uint64) error {
	st, err := n.js.Stream(ctx, "KV_"+n.calls.Bucket())
	if err != nil {
		return n.fail(err)
	}
	err = st.Purge(ctx, jetstream.WithPurgeSubject("$KV."+n.calls.Bucket()+"."+key), jetstream.WithPurgeSequence(rev+1))
	return n.fail(err)
}

// opCtx bounds ctx by the configured timeout when it has no deadline.
func (n *NATS) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.timeout)
}

// begin checks that n is open and returns ctx bounded by the timeout.
func (n *NATS) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return nil, nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := n.opCtx(ctx)
	return ctx, cancel, nil
}

// fail maps an error of the KV store: the logical ones to this package's
// errors, anything else (connection lost, no JetStream, a timeout) to
// ErrUnavailable.
func (n *NATS) fail(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return ErrNotFound
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return ErrRevision
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrRevision), errors.Is(err, ErrExists),
		errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return err
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Keys of the calls bucket.
func callKey(id string) string   { return "call." + base64.RawURLEncoding.EncodeToString([]byte(id)) }
func nameKey(name string) string { return "name." + base64.RawURLEncoding.EncodeToString([]byte(name)) }
func streamKey(hash string) string {
	return "stream." + hash
}

// claimValue is what a claim key holds.
type claimValue struct {
	ID   string `json:"id"`
	Node string `json:"node"`
}

// encodeEntry returns the stored form of c (JSON; Stream and Revision
// are not stored).
func encodeEntry(c Call) ([]byte, error) {
	return json.Marshal(c)
}

// decodeEntry parses the entry stored under key at revision rev. The
// bucket is shared with other processes: anything may be there.
func decodeEntry(key string, data []byte, rev uint64) (Call, error) {
	id, err := decodeCallKey(key)
	if err != nil {
		return Call{}, err
	}
	var c Call
	if err := json.Unmarshal(data, &c); err != nil {
		return Call{}, fmt.Errorf("cluster: the entry of call %q: %w", id, err)
	}
	if c.ID != id {
		return Call{}, fmt.Errorf("cluster: the entry under the key of call %q names call %q", id, c.ID)
	}
	if c.StreamHash != "" && !isHexHash(c.StreamHash) {
		return Call{}, fmt.Errorf("cluster: the entry of call %q has a bad stream hash", id)
	}
	c.Stream = ""
	c.Revision = rev
	return c, nil
}

// decodeCallKey returns the call id of a "call.<base64url>" key.
func decodeCallKey(key string) (string, error) {
	enc, ok := strings.CutPrefix(key, "call.")
	if !ok {
		return "", fmt.Errorf("cluster: %q is not a call's key", key)
	}
	id, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(id) == 0 {
		return "", fmt.Errorf("cluster: %q is not a call's key", key)
	}
	return string(id), nil
}

// isHexHash reports whether s is a hex SHA-256 as streamHash forms it.
func isHexHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// get reads the entry of id.
func (n *NATS) get(ctx context.Context, id string) (Call, error) {
	e, err := n.calls.Get(ctx, callKey(id))
	if err != nil {
		return Call{}, n.fail(err)
	}
	return decodeEntry(e.Key(), e.Value(), e.Revision())
}

// Create implements Registry. It writes the entry, then claims its
// stream and name; a claim taken deletes what was written, so a watcher
// may see a refused call's entry come and go.
func (n *NATS) Create(ctx context.Context, c Call) (Call, error) {
	if c.ID == "" {
		return Call{}, errEmptyID
	}
	ctx, cancel, err := n.begin(ctx)
	if err != nil {
		return Call{}, err
	}
	defer cancel()
	c.StreamHash = ""
	if c.Stream != "" {
		c.StreamHash = streamHash(c.Stream)
	}
	data, err := encodeEntry(c)
	if err != nil {
		return Call{}, fmt.Errorf("cluster: encoding call %q: %w", c.ID, err)
	}
	rev, err := n.calls.Create(ctx, callKey(c.ID), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		holder, gerr := n.get(ctx, c.ID)
		if gerr != nil && !errors.Is(gerr, ErrNotFound) {
			return Call{}, gerr
		}
		return Call{}, &ClaimError{Kind: KindCallID, CallID: c.ID, Node: holder.Node}
	}
	if err != nil {
		return Call{}, n.fail(err)
	}
	c.Revision = rev

	type taken struct {
		key string
		rev uint64
	}
	var claims []taken
	undo := func() {
		// Best effort: what is left is freed by Delete of the entry or
		// taken over as stale by the next claimant.
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), n.timeout)
		defer ucancel()
		for _, t := range claims {
			_ = n.calls.Delete(uctx, t.key, jetstream.LastRevision(t.rev))
		}
		_ = n.calls.Delete(uctx, callKey(c.ID), jetstream.LastRevision(c.Revision))
	}
	val, err := json.Marshal(claimValue{ID: c.ID, Node: c.Node})
	if err != nil {
		undo()
		return Call{}, err
	}
	for _, cl := range []struct{ kind, key string }{
		{KindStream, streamKey(c.StreamHash)}, {KindName, nameKey(c.Name)},
	} {
		if cl.key == "stream." || cl.key == "name." {
			continue
		}
		rev, err := n.claim(ctx, cl.kind, cl.key, c, val)
		if err != nil {
			undo()
			return Call{}, err
		}
		claims = append(claims, taken{cl.key, rev})
	}
	return c, nil
}

// claim creates the claim key for c, taking over a stale one (whose call
// does not name it any more); a live one gives a *ClaimError.
func (n *NATS) claim(ctx context.Context, kind, key string, c Call, val []byte) (uint64, error) {
	for attempt := 0; ; attempt++ {
		rev, err := n.calls.Create(ctx, key, val)
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, n.fail(err)
		}
		e, err := n.calls.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // freed meanwhile
		}
		if err != nil {
			return 0, n.fail(err)
		}
		var holder claimValue
		stale := json.Unmarshal(e.Value(), &holder) != nil || holder.ID == ""
		if !stale {
			h, err := n.get(ctx, holder.ID)
			switch {
			case errors.Is(err, ErrNotFound):
				stale = true
			case err != nil && errors.Is(err, ErrUnavailable):
				return 0, err
			case err != nil:
				stale = true // an entry that cannot be read claims nothing
			case kind == KindStream && h.StreamHash != c.StreamHash,
				kind == KindName && h.Name != c.Name:
				stale = true
			default:
				if attempt >= 3 || h.ID != c.ID {
					return 0, &ClaimError{Kind: kind, CallID: h.ID, Node: h.Node}
				}
				// Our own id holds it: a previous life of this call
				// whose entry we just replaced; take it over.
				stale = true
			}
		}
		if attempt >= 3 {
			return 0, &ClaimError{Kind: kind, CallID: holder.ID, Node: holder.Node}
		}
		if stale {
			err := n.calls.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
			if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return 0, n.fail(err)
			}
		}
	}
}

// Update implements Registry.
func (n *NATS) Update(ctx context.Context, c Call) (Call, error) {
	if c.ID == "" {
		return Call{}, errEmptyID
	}
	ctx, cancel, err := n.begin(ctx)
	if err != nil {
		return Call{}, err
	}
	defer cancel()
	for {
		old, err := n.get(ctx, c.ID)
		if err != nil {
			return Call{}, err
		}
		if c.Revision != 0 && c.Revision != old.Revision {
			return Call{}, ErrRevision
		}
		c.StreamHash, c.Name = old.StreamHash, old.Name
		data, err := encodeEntry(c)
		if err != nil {
			return Call{}, fmt.Errorf("cluster: encoding call %q: %w", c.ID, err)
		}
		rev, err := n.calls.Update(ctx, callKey(c.ID), data, old.Revision)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && c.Revision == 0 {
			continue // written meanwhile: whatever it is now
		}
		if err != nil {
			return Call{}, n.fail(err)
		}
		c.Revision = rev
		return c, nil
	}
}

// Delete implements Registry.
func (n *NATS) Delete(ctx context.Context, c Call) error {
	ctx, cancel, err := n.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if c.ID == "" {
		return nil
	}
	e, err := n.calls.Get(ctx, callKey(c.ID))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil
	}
	if err != nil {
		return n.fail(err)
	}
	if c.Revision != 0 && c.Revision != e.Revision() {
		return ErrRevision
	}
	old, derr := decodeEntry(e.Key(), e.Value(), e.Revision())
	if err := n.calls.Delete(ctx, e.Key(), jetstream.LastRevision(e.Revision())); err != nil {
		return n.fail(err)
	}
	if derr != nil {
		return nil // a bad entry names no claims
	}
	// Free the claims still naming this call. A failure here leaves a
	// stale claim that the next claimant takes over.
	for _, key := range []string{streamKey(old.StreamHash), nameKey(old.Name)} {
		if key == "stream." || key == "name." {
			continue
		}
		ce, err := n.calls.Get(ctx, key)
		if err != nil {
			continue
		}
		var holder claimValue
		if json.Unmarshal(ce.Value(), &holder) == nil && holder.ID == c.ID {
			_ = n.calls.Delete(ctx, key, jetstream.LastRevision(ce.Revision()))
		}
	}
	return nil
}

// Get implements Registry.
func (n *NATS) Get(ctx context.Context, id string) (Call, error) {
	if id == "" {
		return Call{}, ErrNotFound
	}
	ctx, cancel, err := n.begin(ctx)
	if err != nil {
		return Call{}, err
	}
	defer cancel()
	return n.get(ctx, id)
}

// List implements Registry: the entries sorted by ID. Entries that
// cannot be decoded are left out.
func (n *NATS) List(ctx context.Context) ([]Call, error) {
	ctx, cancel, err := n.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	var out []Call
	err = n.snapshot(ctx, n.calls, "call.>", func(e jetstream.KeyValueEntry) {
		if c, err := decodeEntry(e.Key(), e.Value(), e.Revision()); err == nil {
			out = append(out, c)
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// snapshot gives fn every present value of kv's keys matching filter.
func (n *NATS) snapshot(ctx context.Context, kv jetstream.KeyValue, filter string, fn func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return n.fail(err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return n.fail(nats.ErrConnectionClosed)
			}
			if e == nil {
				return nil
			}
			fn(e)
		case <-ctx.Done():
			return n.fail(ctx.Err())
		}
	}
}

// Watch implements Registry. The watch is re-created each time the
// connection comes back, and when the KV watcher ends.
func (n *NATS) Watch(ctx context.Context, fn func(c Call, deleted bool)) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.wg.Add(1)
	n.mu.Unlock()
	status := n.nc.StatusChanged(nats.CONNECTED)
	wctx, cancel := context.WithCancel(ctx)
	nw := &natsWatch{n: n, fn: fn, known: make(map[string]uint64), junk: make(map[string]uint64),
		checkEvery: n.checkEvery}
	first, err := nw.start(wctx, true)
	if err != nil {
		cancel()
		n.nc.RemoveStatusListener(status)
		n.wg.Done()
		if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed) {
			return err
		}
		return n.fail(err)
	}
	go func() {
		defer n.wg.Done()
		defer n.nc.RemoveStatusListener(status)
		defer cancel()
		nw.run(wctx, first, status)
	}()
	return nil
}

// natsWatch is one Watch: known holds the revision of every id given as
// present.
type natsWatch struct {
	n     *NATS
	fn    func(Call, bool)
	known map[string]uint64
	// junk holds the revision of the entries that could not be decoded
	// (never given, and not missing either).
	junk       map[string]uint64
	checkEvery time.Duration
}

// checkEvery is how often a watch compares what it gave with the bucket
// (keys and revisions only): a KV watcher whose consumer was lost with a
// server of a JetStream cluster goes silent without an error, and two
// checks in a row that find the same change missing re-create it.
const checkEvery = 3 * time.Second

// start creates a KV watcher living as long as ctx, waits (at most the
// timeout) for the present entries and gives them (all of them when all,
// else those whose revision is not the one given last), and as deleted
// the known ones that are gone; it returns the watcher for run.
func (w *natsWatch) start(ctx context.Context, all bool) (jetstream.KeyWatcher, error) {
	// The watcher lives as long as kctx; the timer bounds its creation
	// and the present entries (a consumer request to a JetStream that
	// lost its leader may otherwise wait as long as ctx).
	kctx, kcancel := context.WithCancel(ctx)
	expired := make(chan struct{})
	timer := time.AfterFunc(w.n.timeout, func() { close(expired); kcancel() })
	kw, err := w.n.calls.WatchFiltered(kctx, []string{"call.>"})
	if err != nil {
		timer.Stop()
		kcancel()
		return nil, w.n.fail(err)
	}
	kw = &kvWatch{KeyWatcher: kw, cancel: kcancel}
	present := make(map[string]Call)
	var order []string
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case e, ok = <-kw.Updates():
		case <-ctx.Done():
			_ = kw.Stop()
			return nil, w.n.fail(ctx.Err())
		case <-expired:
			_ = kw.Stop()
			return nil, w.n.fail(context.DeadlineExceeded)
		}
		if !ok {
			_ = kw.Stop()
			return nil, w.n.fail(nats.ErrConnectionClosed)
		}
		if e == nil {
			if !timer.Stop() {
				_ = kw.Stop()
				return nil, w.n.fail(context.DeadlineExceeded)
			}
			break
		}
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		c, err := decodeEntry(e.Key(), e.Value(), e.Revision())
		if err != nil {
			w.noteJunk(e)
			continue
		}
		if _, dup := present[c.ID]; !dup {
			order = append(order, c.ID)
		}
		present[c.ID] = c
	}
	for id := range w.known {
		if _, ok := present[id]; !ok {
			delete(w.known, id)
			w.fn(Call{ID: id}, true)
		}
	}
	for _, id := range order {
		c := present[id]
		if !all && w.known[id] == c.Revision {
			continue
		}
		w.known[id] = c.Revision
		w.fn(c, false)
	}
	return kw, nil
}

// kvWatch is a KV watcher with the end of its context.
type kvWatch struct {
	jetstream.KeyWatcher
	cancel context.CancelFunc
}

// Stop stops the watcher and ends its context.
func (k *kvWatch) Stop() error {
	err := k.KeyWatcher.Stop()
	k.cancel()
	return err
}

// missing returns the changes of the bucket the watch has not given: id
// to the revision in the bucket (0: deleted there).
func (w *natsWatch) missing(ctx context.Context) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, w.n.timeout)
	defer cancel()
	kw, err := w.n.calls.WatchFiltered(ctx, []string{"call.>"}, jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = kw.Stop() }()
	seen := make(map[string]bool)
	out := make(map[string]uint64)
	for {
		select {
		case e, ok := <-kw.Updates():
			if !ok {
				return nil, nats.ErrConnectionClosed
			}
			if e == nil {
				for id := range w.known {
					if !seen[id] {
						out[id] = 0
					}
				}
				return out, nil
			}
			id, err := decodeCallKey(e.Key())
			if err != nil {
				continue
			}
			seen[id] = true
			if w.known[id] < e.Revision() && w.junk[id] != e.Revision() {
				out[id] = e.Revision()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// noteJunk remembers an entry that cannot be decoded, so that the checks
// do not take it for a missed change.
func (w *natsWatch) noteJunk(e jetstream.KeyValueEntry) {
	if id, err := decodeCallKey(e.Key()); err == nil {
		w.junk[id] = e.Revision()
	}
}

// run follows kw until ctx ends, re-creating it when the connection comes
// back (giving every entry again), when it ends, or when it went silent
// (giving what it missed).
func (w *natsWatch) run(ctx context.Context, kw jetstream.KeyWatcher, status <-chan nats.Status) {
	defer func() {
		if kw != nil {
			_ = kw.Stop()
		}
	}()
	var retry <-chan time.Time
	restart := func(all bool) {
		if kw != nil {
			_ = kw.Stop()
			kw = nil
		}
		nkw, err := w.start(ctx, all)
		if err != nil {
			retry = time.After(250 * time.Millisecond)
			return
		}
		kw, retry = nkw, nil
	}
	check := time.NewTicker(w.checkEvery)
	defer check.Stop()
	var suspect map[string]uint64 // changes missing at the last check
	for {
		var updates <-chan jetstream.KeyValueEntry
		if kw != nil {
			updates = kw.Updates()
		}
		select {
		case <-ctx.Done():
			return
		case <-w.n.done:
			return
		case <-status:
			restart(true)
		case <-retry:
			restart(true)
		case <-check.C:
			if kw == nil {
				continue
			}
			miss, err := w.missing(ctx)
			if err != nil {
				continue // the connection's events handle an outage
			}
			stalled := false
			for id, rev := range suspect {
				if got, ok := miss[id]; ok && got == rev {
					stalled = true
				}
			}
			suspect = miss
			if stalled {
				suspect = nil
				w.n.resyncs.Add(1)
				restart(false)
			}
		case e, ok := <-updates:
			if !ok {
				kw = nil
				retry = time.After(250 * time.Millisecond)
				continue
			}
			if e == nil || ctx.Err() != nil {
				continue
			}
			w.give(e)
		}
	}
}

// give passes one change of the KV watcher on to fn.
func (w *natsWatch) give(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		id, err := decodeCallKey(e.Key())
		delete(w.junk, id)
		if _, ok := w.known[id]; err == nil && ok {
			delete(w.known, id)
			w.fn(Call{ID: id}, true)
		}
		return
	}
	c, err := decodeEntry(e.Key(), e.Value(), e.Revision())
	if err != nil {
		w.noteJunk(e)
		return
	}
	delete(w.junk, c.ID)
	w.known[c.ID] = c.Revision
	w.fn(c, false)
}

// Heartbeat implements Registry.
func (n *NATS) Heartbeat(ctx context.Context, info NodeInfo) error {
	if err := checkNodeID(info.ID); err != nil {
		return err
	}
	ctx, cancel, err := n.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	info.Seen = time.Time{}
	data, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("cluster: encoding the heartbeat of %q: %w", info.ID, err)
	}
	_, err = n.nodes.Put(ctx, info.ID, data)
	return n.fail(err)
}

// Leave implements Registry.
func (n *NATS) Leave(ctx context.Context, id string) error {
	if checkNodeID(id) != nil {
		return nil // never beat
	}
	ctx, cancel, err := n.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return n.fail(n.nodes.Purge(ctx, id))
}

// Nodes implements Registry: the live nodes sorted by ID; Seen is when
// the server stored the heartbeat. It asks for the bucket's subjects and
// reads each heartbeat (no consumer is created: members poll Nodes
// often, and a consumer is a proposal to a JetStream cluster's leader).
func (n *NATS) Nodes(ctx context.Context) ([]NodeInfo, error) {
	ctx, cancel, err := n.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	pre := "$KV." + n.nodes.Bucket() + "."
	info, err := n.nodesStream.Info(ctx, jetstream.WithSubjectFilter(pre+">"))
	if err != nil {
		return nil, n.fail(err)
	}
	out := make([]NodeInfo, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		e, err := n.nodes.Get(ctx, strings.TrimPrefix(subj, pre))
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // left, or expired meanwhile
		}
		if err != nil {
			return nil, n.fail(err)
		}
		var node NodeInfo
		if json.Unmarshal(e.Value(), &node) != nil || node.ID != e.Key() {
			continue
		}
		node.Seen = e.Created()
		out = append(out, node)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// TTL implements Registry.
func (n *NATS) TTL() time.Duration { return n.ttl }

// subject is the subject of node id's requests.
func (n *NATS) subject(id string) string { return n.prefix + ".node." + id + ".req" }

// deadlineHeader carries a request's deadline (Unix nanoseconds) to the
// handler's context.
const deadlineHeader = "Sipstream-Deadline"

// Serve implements Bus: each request runs h on a goroutine of its own,
// with a context that ends at the requester's deadline or when stop is
// called. Several processes serving one id share its requests (a queue
// group); one NATS serves an id once at a time. stop waits for the
// handlers running: do not call it from a handler.
func (n *NATS) Serve(id string, h Handler) (stop func(), err error) {
	if err := checkNodeID(id); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("cluster: nil handler")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if _, ok := n.servers[id]; ok {
		return nil, fmt.Errorf("cluster: node %q is already served here", id)
	}
	s := &natsServer{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	sub, err := n.nc.QueueSubscribe(n.subject(id), "sipstream", func(m *nats.Msg) {
		if s.ctx.Err() != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ctx, cancel := s.ctx, context.CancelFunc(func() {})
			if d, err := strconv.ParseInt(m.Header.Get(deadlineHeader), 10, 64); err == nil {
				ctx, cancel = context.WithDeadline(s.ctx, time.Unix(0, d))
			}
			defer cancel()
			ans := h(ctx, m.Data)
			_ = m.Respond(ans)
		}()
	})
	if err != nil {
		s.cancel()
		return nil, n.fail(err)
	}
	// Make sure the server has the interest before requests are sent.
	if err := n.nc.FlushTimeout(n.timeout); err != nil {
		_ = sub.Unsubscribe()
		s.cancel()
		return nil, n.fail(err)
	}
	s.sub = sub
	n.servers[id] = s
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			if n.servers[id] == s {
				delete(n.servers, id)
			}
			n.mu.Unlock()
			s.stop(n.nc, n.timeout)
		})
	}, nil
}

// stop unsubscribes (and flushes, so that the server has forgotten the
// interest when stop returns: requests then get ErrNoNode) and waits for
// the handlers running.
func (s *natsServer) stop(nc *nats.Conn, timeout time.Duration) {
	_ = s.sub.Unsubscribe()
	_ = nc.FlushTimeout(timeout)
	s.cancel()
	s.wg.Wait()
}

// Request implements Bus.
func (n *NATS) Request(ctx context.Context, id string, req []byte) ([]byte, error) {
	if checkNodeID(id) != nil {
		return nil, ErrNoNode
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	ctx, cancel := n.opCtx(ctx)
	defer cancel()
	m := nats.NewMsg(n.subject(id))
	m.Data = req
	if d, ok := ctx.Deadline(); ok {
		m.Header.Set(deadlineHeader, strconv.FormatInt(d.UnixNano(), 10))
	}
	ans, err := n.nc.RequestMsgWithContext(ctx, m)
	switch {
	case err == nil:
		return ans.Data, nil
	case errors.Is(err, nats.ErrNoResponders):
		return nil, ErrNoNode
	case errors.Is(err, nats.ErrMaxPayload):
		return nil, fmt.Errorf("cluster: a request of %d bytes is larger than the server takes (%d)", len(req), n.nc.MaxPayload())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return nil, n.fail(err)
}

// Close implements Registry and Bus: it stops the watchers and the
// serving (waiting for their goroutines); the methods return ErrClosed
// after it. It does not close the connection. It may be called again.
func (n *NATS) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.wg.Wait()
		return nil
	}
	n.closed = true
	close(n.done)
	n.cancel()
	servers := n.servers
	n.servers = nil
	n.mu.Unlock()
	for _, s := range servers {
		s.stop(n.nc, n.timeout)
	}
	n.wg.Wait()
	return nil
}
