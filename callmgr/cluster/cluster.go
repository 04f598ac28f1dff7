// Package cluster lets several sipstream gateways act as one: each node owns
// its calls (their SIP dialogs and media), and what must be shared is kept in
// a Registry every node reads and writes: which node owns which call, the
// call's public object, the claims that keep callIds, RTMP targets and stream
// names unique across the cluster, and the nodes' heartbeats. Requests for a
// call owned by another node travel over a Bus (request/reply) to the owner.
//
// Two implementations are provided: Memory (one process, several nodes: the
// default of tests and of services that run several Managers in one
// process) and NATS (NATS JetStream key-value buckets and NATS request/reply,
// for nodes on different machines). A Member runs one node's part: it
// heartbeats, writes its calls behind the callers' backs (a call's changes
// never wait for the registry, and a registry that is away loses nothing:
// the latest state of each call is written when it is back), watches the
// shared view, places new calls on the least-loaded node, and when a node
// disappears, exactly one survivor reports each of that node's calls FAILED
// and frees its keys.
//
// A service joins with Join and then, for each call it places: Pick a node
// (the least-loaded live node with room; capacity limits hold cluster-wide
// because each node's count is the larger of what its heartbeat says and
// what the shared view shows), Claim the call's keys on the chosen node
// (a *ClaimError when the callId, the RTMP target or the stream name is
// taken anywhere; ErrUnavailable when the registry is away: refuse the
// call then, uniqueness cannot be checked), and Set each new state of the
// call (never blocking). Calls, Call, ByName and ByPush answer from the
// shared view; Request carries a request to the owner of a call.
//
// Liveness: a node is dead only when this member has been connected and
// heartbeating for longer than the TTL plus one heartbeat period without a
// break, and the node's heartbeat is absent (it expires TTL after the
// node's last beat) at two liveness checks in a row (a check every TTL/6):
// so a dead node's calls are reported about TTL + TTL/3 after its last
// beat, and an outage of the registry (say a restart of nats-server, during
// which every heartbeat may expire) fails no call. The survivors then try a
// compare-and-set of each of the dead node's entries to its final failed
// state: the one that wins calls Config.OnOrphan and deletes the entry with
// its claims. A node that restarts reports the entries of its previous life
// that it no longer has the same way, and after an outage every node writes
// its live calls again (entries deleted meanwhile come back).
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Call is one call's entry in the registry.
type Call struct {
	// ID is the call's callId (any string; implementations encode it in
	// their keys as they need).
	ID string `json:"id"`
	// Node is the owner's node id.
	Node string `json:"node"`
	// Status is the call's status as the service names it (for the REST
	// API: TRYING ... ESTABLISHED, FINISH, FAILED); opaque to this package.
	Status string `json:"status"`
	// Final is true once the call has ended (its Status is its last).
	Final bool `json:"final,omitempty"`
	// Reason says why a call was ended by the cluster (its node died).
	Reason string `json:"reason,omitempty"`
	// Stream is the unique key of the call's RTMP target (rtmpUrl +
	// "/" + rtmpStream, as the service forms it); "" claims none. Only
	// its hash is stored: it may hold a stream key.
	Stream string `json:"-"`
	// StreamHash is the claim's key for Stream (set by Create; kept
	// through Update and used by Delete).
	StreamHash string `json:"streamHash,omitempty"`
	// Name is the call's stream name (toStream), unique across the
	// cluster; "" claims none.
	Name string `json:"name,omitempty"`
	// Pushes are the ids (mediaSessionId) of the call's extra outputs, so
	// that requests naming one reach the owner.
	Pushes []string `json:"pushes,omitempty"`
	// Object is the call's public object (for the REST API, the call
	// object /call/find returns, without secrets); opaque to this
	// package.
	Object json.RawMessage `json:"object,omitempty"`
	// Revision is the entry's revision in the registry (set by Create,
	// Update, Get, List and Watch); Update and Delete compare it.
	Revision uint64 `json:"-"`
}

// NodeInfo is one node's heartbeat.
type NodeInfo struct {
	ID string `json:"id"`
	// URL is the node's HTTP base URL ("http://10.0.0.5:8080"), where
	// viewers of its calls are sent; "" means none known.
	URL string `json:"url,omitempty"`
	// Calls is the number of live calls the node owns; MaxCalls its
	// limit (0: none).
	Calls    int `json:"calls"`
	MaxCalls int `json:"maxCalls,omitempty"`
	// Load is the node's CPU use, 0..1 per core summed over cores
	// divided by the cores (0 when unknown).
	Load float64 `json:"load,omitempty"`
	// Started is when the node's process started; Seen when it last
	// beat (set by the registry when it lists nodes).
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
}

// Full reports whether n takes no more calls.
func (n NodeInfo) Full() bool { return n.MaxCalls > 0 && n.Calls >= n.MaxCalls }

// Errors of registries and buses.
var (
	// ErrExists: Create found a key taken (a *ClaimError says which).
	ErrExists = errors.New("cluster: already exists")
	// ErrNotFound: no such call or node.
	ErrNotFound = errors.New("cluster: not found")
	// ErrRevision: Update or Delete found another revision (someone else
	// wrote first).
	ErrRevision = errors.New("cluster: revision changed")
	// ErrUnavailable: the registry or bus cannot be reached now.
	ErrUnavailable = errors.New("cluster: registry unreachable")
	// ErrNoNode: a Bus request found no node of that id listening.
	ErrNoNode = errors.New("cluster: no such node listening")
	// ErrTimeout: a Bus request got no answer in time.
	ErrTimeout = errors.New("cluster: no answer in time")
	// ErrClosed: the registry, bus or member is closed.
	ErrClosed = errors.New("cluster: closed")
)

// Claim kinds of a ClaimError.
const (
	KindCallID = "callId"
	KindStream = "stream"
	KindName   = "name"
)

// ClaimError is Create's error when a key is taken: it matches ErrExists.
type ClaimError struct {
	// Kind is KindCallID, KindStream or KindName.
	Kind string
	// CallID is the call holding the key, when known; Node its owner.
	CallID, Node string
}

func (e *ClaimError) Error() string {
	switch e.Kind {
	case KindStream:
		return fmt.Sprintf("cluster: the RTMP stream is already published by call %q on node %q", e.CallID, e.Node)
	case KindName:
		return fmt.Sprintf("cluster: the stream name is already used by call %q on node %q", e.CallID, e.Node)
	}
	return fmt.Sprintf("cluster: callId already used on node %q", e.Node)
}

// Is makes a ClaimError match ErrExists.
func (e *ClaimError) Is(target error) bool { return target == ErrExists }

// Registry is the cluster's shared state. Every method is safe for
// concurrent use; ctx bounds each call.
type Registry interface {
	// Create claims c.ID, c.Stream (when set) and c.Name (when set) and
	// writes the entry, all or nothing: a key already taken gives a
	// *ClaimError (ErrExists) and leaves nothing behind. It returns c with
	// Revision and StreamHash set.
	Create(ctx context.Context, c Call) (Call, error)
	// Update writes c over the entry of c.ID if its revision is still
	// c.Revision (0: whatever it is); ErrRevision otherwise, ErrNotFound
	// when there is no entry. The claims stay (Stream and Name cannot
	// change). It returns c with the new Revision.
	Update(ctx context.Context, c Call) (Call, error)
	// Delete removes the entry of c.ID and its claims if its revision is
	// c.Revision (0: whatever it is); ErrRevision otherwise. No entry is
	// not an error.
	Delete(ctx context.Context, c Call) error
	// Get returns the entry of id (ErrNotFound).
	Get(ctx context.Context, id string) (Call, error)
	// List returns every entry.
	List(ctx context.Context) ([]Call, error)
	// Watch calls fn with every entry now (deleted false), then with
	// every change (deleted true when the entry was removed: only ID is
	// set then) until ctx ends or the registry closes, from one goroutine
	// in order. It returns once the present entries have been given.
	// A registry that was away gives the entries again when it is back
	// (changes missed in between may come as a fresh "now").
	Watch(ctx context.Context, fn func(c Call, deleted bool)) error

	// Heartbeat writes n's heartbeat; it lives TTL (the registry's) from
	// its writing.
	Heartbeat(ctx context.Context, n NodeInfo) error
	// Leave removes node id's heartbeat at once (a clean shutdown).
	Leave(ctx context.Context, id string) error
	// Nodes lists the nodes whose heartbeat is alive, Seen set.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// TTL is how long a heartbeat lives.
	TTL() time.Duration

	// Close releases the registry's resources (not the shared state).
	Close() error
}

// Handler answers one Bus request.
type Handler func(ctx context.Context, req []byte) []byte

// Bus carries requests to a node and its answer back.
type Bus interface {
	// Serve answers the requests to node id with h (on goroutines of the
	// bus's) until stop is called.
	Serve(id string, h Handler) (stop func(), err error)
	// Request sends req to node id and returns its answer: ErrNoNode
	// when nobody serves id, ErrTimeout when ctx ends first (a request
	// may have been carried out all the same), ErrUnavailable when the
	// bus is away.
	Request(ctx context.Context, id string, req []byte) ([]byte, error)
	// Close stops serving and releases the bus.
	Close() error
}
