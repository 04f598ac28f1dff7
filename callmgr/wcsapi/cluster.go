package wcsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/cluster"
)

// ClusterConfig makes a Handler one node of a cluster of gateways (package
// cluster): the node's calls are written to the shared Registry, /call/find
// and /call/find_all answer with every node's calls (nodeId says whose),
// /push/find and /push/find_all ask every node, and a request naming a
// call, a stream or a push of another node (/call/terminate, send_dtmf,
// hold, unhold, transfer, inject_*, /push/*, /viewer/token) is carried over
// the Bus to its owner and answered with the owner's answer. /call/startup
// places the call on the node its nodeId names, else on the least-loaded
// live node with room (503 when every node is at its limit); callId, the
// RTMP target (rtmpUrl + rtmpStream) and the stream name (toStream) are
// unique across the cluster (409). When a node dies, one survivor reports
// each of its calls FAILED (a CallStatusEvent to the webhook and /events,
// once in the cluster) and frees them.
//
// The Handler's Config.NodeID is the node's id (letters, digits, '-' and
// '_'); every node must have its own.
type ClusterConfig struct {
	// Registry and Bus are the cluster's shared state and request
	// carrier (cluster.NewNATS gives both; cluster.NewMemory and
	// NewMemoryBus within one process). Required.
	Registry cluster.Registry
	Bus      cluster.Bus
	// URL returns this node's HTTP base URL as clients reach it
	// ("http://10.0.0.5:8081"), asked at every heartbeat (a server may
	// learn its port after it joined): viewers of its calls who ask
	// another node (WHEP, HLS) are redirected there (307). Nil or "" means
	// they get 404 elsewhere.
	URL func() string
	// MaxCalls is this node's call limit, told to the others for
	// placement (the Manager's Config.MaxCalls). Zero means none.
	MaxCalls int
	// Timeout bounds a request carried to another node. Zero means 10 s.
	Timeout time.Duration
	// Heartbeat and Linger are the cluster.Config fields of the same
	// names (zero: their defaults).
	Heartbeat, Linger time.Duration
}

// forwardedKey marks a request carried from another node: it is served
// here, never carried again.
type forwardedKey struct{}

// clusterNode is the Handler's part of the cluster.
type clusterNode struct {
	member  *cluster.Member
	svc     *managerService
	srv     *server
	log     *slog.Logger
	timeout time.Duration
	// internal serves the requests other nodes carry here: the REST
	// endpoints without the login (the entry node checked it).
	internal http.Handler
	// forwarded counts the requests carried to other nodes, by endpoint
	// and result; orphans the dead nodes' calls this node reported.
	forwarded *prometheus.CounterVec
}

// busRequest is what one node asks another: an HTTP request to replay
// (Op "http") or the owner's pushes (Op "pushes").
type busRequest struct {
	Op   string          `json:"op"`
	Path string          `json:"path,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// busAnswer is the owner's answer.
type busAnswer struct {
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// joinCluster makes this Handler's node: it joins the cluster and serves
// the requests other nodes carry here.
func (h *Handler) joinCluster(cc ClusterConfig, nodeID string) error {
	if cc.Registry == nil || cc.Bus == nil {
		return errors.New("wcsapi: ClusterConfig needs Registry and Bus")
	}
	svc, srv := h.svc, h.srv
	n := &clusterNode{svc: svc, srv: srv, log: srv.log, timeout: cc.Timeout}
	if n.timeout <= 0 {
		n.timeout = 10 * time.Second
	}
	n.forwarded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipstream", Subsystem: "cluster", Name: "forwarded_total",
		Help: "REST requests carried to the node owning their call, by endpoint and result (the owner's HTTP status, or timeout, unreachable).",
	}, []string{"endpoint", "result"})
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := cluster.Join(ctx, cluster.Config{
		ID:       nodeID,
		Registry: cc.Registry,
		Bus:      cc.Bus,
		Logger:   srv.log,
		Info: func() cluster.NodeInfo {
			ni := cluster.NodeInfo{Calls: svc.liveCount(), MaxCalls: cc.MaxCalls, Started: started}
			if cc.URL != nil {
				ni.URL = cc.URL()
			}
			return ni
		},
		Live: func(id string) bool {
			c, ok := svc.m.Call(id)
			return ok && !c.Info().Status.Final()
		},
		OnOrphan:  n.orphan,
		OnChange:  n.changed,
		Heartbeat: cc.Heartbeat,
		Linger:    cc.Linger,
		OnConnection: func(ok bool) {
			if ok {
				srv.log.Info("cluster registry reachable again; live calls were kept and are written back", "node", nodeID)
			} else {
				srv.log.Warn("cluster registry unreachable (partition?): live calls go on; new calls are refused until it is back", "node", nodeID)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("wcsapi: joining the cluster: %w", err)
	}
	n.member = m
	n.internal = srv.internalHandler()
	if err := m.Serve(n.serve); err != nil {
		_ = m.Close(context.Background())
		return fmt.Errorf("wcsapi: serving the cluster's requests: %w", err)
	}
	srv.cluster = n
	svc.cluster = n
	// Calls that began before the node joined (none in a fresh process).
	for _, ci := range svc.m.FindAll() {
		n.write(ci)
	}
	return nil
}

// liveCount is the number of this node's calls that have not ended.
func (s *managerService) liveCount() int {
	n := 0
	for _, ci := range s.m.FindAll() {
		if !ci.Status.Final() {
			n++
		}
	}
	return n
}

// write records a call's latest state in the registry (behind its back).
// The registry holds what any API caller may read: no stream key, no URL
// credentials (the owner's /call/find has them).
func (n *clusterNode) write(ci callmgr.CallInfo) {
	c := n.srv.publicCall(callObjectOf(ci, n.svc.nodeID, n.svc.now))
	obj, err := json.Marshal(c)
	if err != nil {
		return
	}
	e := cluster.Call{
		ID:     ci.CallID,
		Node:   n.svc.nodeID,
		Status: c.Status,
		Final:  ci.Status.Final(),
		Stream: callmgr.StreamKey(ci.RTMPURL, ci.RTMPStream),
		Name:   ci.ToStream,
		Object: obj,
	}
	for _, si := range n.svc.m.FindSinks(callmgr.SinkFilter{CallID: ci.CallID, Kind: callmgr.SinkKindRTMP}) {
		if !si.Primary {
			e.Pushes = append(e.Pushes, si.ID)
		}
	}
	n.member.Set(e)
}

// claim reserves a new call's keys in the cluster before it starts here.
func (n *clusterNode) claim(ctx context.Context, p startParams) error {
	name := p.ToStream
	if name == "" {
		name = p.CallID
	}
	_, err := n.member.Claim(ctx, cluster.Call{
		ID: p.CallID, Node: n.svc.nodeID, Status: "TRYING",
		Stream: callmgr.StreamKey(p.RTMPURL, p.RTMPStream), Name: name,
	})
	var ce *cluster.ClaimError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		switch ce.Kind {
		case cluster.KindStream:
			return fmt.Errorf("%w: call %q on node %q already publishes to this rtmpUrl and rtmpStream", errConflict, ce.CallID, ce.Node)
		case cluster.KindName:
			return fmt.Errorf("%w: call %q on node %q already streams as %q", errConflict, ce.CallID, ce.Node, name)
		}
		return fmt.Errorf("%w: callId %q is already used on node %q", errConflict, p.CallID, ce.Node)
	case errors.Is(err, cluster.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return errStatus(http.StatusServiceUnavailable, "the cluster's registry is unreachable: a new call cannot be checked for uniqueness; the live calls go on; retry later")
	}
	return err
}

// orphan reports a call of a dead node (or of this node's previous life) as
// FAILED: once in the cluster, by the node that won the registry's
// compare-and-set.
func (n *clusterNode) orphan(e cluster.Call) {
	var c Call
	if len(e.Object) > 0 {
		_ = json.Unmarshal(e.Object, &c)
	}
	if c.CallID == "" {
		c = Call{Custom: map[string]any{}, CallID: e.ID, MediaProvider: mediaProvider}
	}
	c.NodeID = e.Node
	c.Status = "FAILED"
	c.Info = e.Reason
	n.log.Warn("call of a lost node reported FAILED", "callID", e.ID, "node", e.Node, "reason", e.Reason)
	fn := n.svc.notify.Load()
	if fn == nil {
		return
	}
	(*fn)(StatusEvent{
		Type: "CallStatusEvent", NodeID: e.Node, AppKey: c.AppKey, CallID: e.ID, Incoming: c.Incoming,
		Status: "FAILED", SIPStatus: c.SIPStatus, RTMPURL: c.RTMPURL, RTMPStream: c.RTMPStream,
		RTMPStreamStatus: c.RTMPStreamStatus, Caller: c.Caller, Callee: c.Callee, HasAudio: c.HasAudio,
		HasVideo: c.HasVideo, VisibleName: c.VisibleName, MediaProvider: mediaProvider,
		SIPMessage: e.Reason, Info: e.Reason,
	}, c)
}

// changed tells the page of other nodes' calls as they change.
func (n *clusterNode) changed(e cluster.Call, deleted bool) {
	if deleted || e.Node == n.svc.nodeID || len(e.Object) == 0 {
		return
	}
	n.srv.hub.publish(sseMessage("call", e.Object))
}

// remoteCalls are the other nodes' calls in the shared view.
func (n *clusterNode) remoteCalls(local []Call) []Call {
	have := make(map[string]bool, len(local))
	for _, c := range local {
		have[c.CallID] = true
	}
	var out []Call
	for _, e := range n.member.Calls() {
		if e.Node == n.svc.nodeID || have[e.ID] || len(e.Object) == 0 {
			continue
		}
		var c Call
		if json.Unmarshal(e.Object, &c) != nil || c.CallID == "" {
			continue
		}
		c.NodeID = e.Node
		out = append(out, c)
	}
	return out
}

// remotePushes asks every other live node for its pushes.
func (n *clusterNode) remotePushes() []Push {
	var (
		mu  sync.Mutex
		out []Push
		wg  sync.WaitGroup
	)
	req, _ := json.Marshal(busRequest{Op: "pushes"})
	for _, node := range n.member.Nodes() {
		if node.ID == n.svc.nodeID {
			continue
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			b, err := n.member.Request(ctx, id, req)
			var a busAnswer
			var ps []Push
			if err == nil {
				err = json.Unmarshal(b, &a)
			}
			if err == nil {
				err = json.Unmarshal(a.Body, &ps)
			}
			if err != nil {
				n.log.Warn("cluster: a node did not list its pushes", "node", id, "err", err)
				return
			}
			mu.Lock()
			out = append(out, ps...)
			mu.Unlock()
		}(node.ID)
	}
	wg.Wait()
	return out
}

// serve answers a request another node carried here.
func (n *clusterNode) serve(ctx context.Context, b []byte) []byte {
	answer := func(status int, body any) []byte {
		raw, _ := json.Marshal(body)
		out, _ := json.Marshal(busAnswer{Status: status, Body: raw})
		return out
	}
	var req busRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return answer(http.StatusBadRequest, busError(errStatus(http.StatusBadRequest, "malformed cluster request")))
	}
	switch req.Op {
	case "pushes":
		ps := n.svc.Pushes()
		if ps == nil {
			ps = []Push{}
		}
		return answer(http.StatusOK, ps)
	case "http":
		if !strings.HasPrefix(req.Path, "/rest-api/") {
			return answer(http.StatusNotFound, busError(errStatus(http.StatusNotFound, "no such endpoint")))
		}
		body := []byte(req.Body)
		if len(body) == 0 {
			body = []byte("{}")
		}
		r, err := http.NewRequestWithContext(context.WithValue(ctx, forwardedKey{}, true), http.MethodPost, req.Path, bytes.NewReader(body))
		if err != nil {
			return answer(http.StatusBadRequest, busError(errStatus(http.StatusBadRequest, "malformed cluster request")))
		}
		r.Header.Set("Content-Type", "application/json")
		rec := &bufferWriter{header: http.Header{}, status: http.StatusOK}
		n.internal.ServeHTTP(rec, r)
		out, _ := json.Marshal(busAnswer{Status: rec.status, Body: json.RawMessage(validJSON(rec.buf.Bytes()))})
		return out
	}
	return answer(http.StatusBadRequest, busError(errStatus(http.StatusBadRequest, "unknown cluster request")))
}

// validJSON is b, or null when b is not JSON (a RawMessage must be).
func validJSON(b []byte) []byte {
	if len(bytes.TrimSpace(b)) == 0 || !json.Valid(b) {
		return []byte("null")
	}
	return b
}

// busError is the product's error object for err (as writeError writes it).
func busError(err error) map[string]any {
	status, msg := statusOf(err)
	return map[string]any{"error": http.StatusText(status), "message": msg, "status": status, "timestamp": time.Now().UnixMilli()}
}

// bufferWriter is the http.ResponseWriter of a carried request.
type bufferWriter struct {
	header http.Header
	buf    bytes.Buffer
	status int
	wrote  bool
}

func (w *bufferWriter) Header() http.Header { return w.header }
func (w *bufferWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.buf.Write(b)
}
func (w *bufferWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
}

// Which key of a request names its call, by endpoint.
var (
	routeByCallID = []string{"/call/terminate", "/call/send_dtmf", "/call/hold", "/call/unhold", "/call/transfer",
		"/call/inject_sound", "/call/inject_sound/terminate", "/call/inject_stream", "/call/inject_stream/startup",
		"/call/inject_stream/terminate", "/call/stats", "/call/log", "/call/record/startup", "/call/record/terminate"}
	routeByPush = []string{"/push/terminate", "/push/mute", "/push/unmute", "/push/sound_on", "/push/sound_off"}
)

// routeKeys are the fields a request is routed by.
type routeKeys struct {
	CallID         flexString `json:"callId"`
	StreamName     flexString `json:"streamName"`
	ToStream       flexString `json:"toStream"`
	MediaSessionID flexString `json:"mediaSessionId"`
	NodeID         flexString `json:"nodeId"`
}

// route serves h here, or carries the request to the node owning what it
// names and writes that node's answer.
func (s *server) route(path string, h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	if !slices.Contains(routeByCallID, path) && !slices.Contains(routeByPush, path) &&
		path != "/push/startup" && path != "/viewer/token" && path != "/call/startup" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		n := s.cluster
		if n == nil || r.Context().Value(forwardedKey{}) != nil {
			return h(w, r)
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		r.Body = io.NopCloser(bytes.NewReader(body))
		var k routeKeys
		if err != nil || !jsonBody(r) || decodeJSON(body, &k) != nil {
			return h(w, r) // the endpoint says what is wrong
		}
		owner, err := n.owner(path, k)
		if err != nil {
			return err
		}
		if owner == "" || owner == n.svc.nodeID {
			return h(w, r)
		}
		return n.forward(w, r.Context(), owner, r.URL.Path, path, body)
	}
}

// owner is the node a request belongs to; "" means here.
func (n *clusterNode) owner(path string, k routeKeys) (string, error) {
	byCall := func(id string) string {
		if _, ok := n.svc.m.Call(id); ok || id == "" {
			return ""
		}
		if e, ok := n.member.Call(id); ok {
			return e.Node
		}
		return ""
	}
	byName := func(name string) string {
		if _, ok := n.svc.callFor(name); ok || name == "" {
			return ""
		}
		if e, ok := n.member.ByName(name); ok {
			return e.Node
		}
		return byCall(name)
	}
	switch {
	case path == "/call/startup":
		node, err := n.member.Pick(strings.TrimSpace(string(k.NodeID)))
		switch {
		case errors.Is(err, cluster.ErrFull):
			return "", errStatus(http.StatusServiceUnavailable, "too many calls: every node of the cluster is at its limit of live calls (-max-calls); retry when a call ends")
		case errors.Is(err, cluster.ErrNotFound):
			return "", badField("nodeId", "names no live node of the cluster")
		case err != nil:
			return "", errStatus(http.StatusServiceUnavailable, "the cluster cannot place the call now: "+err.Error())
		}
		return node.ID, nil
	case slices.Contains(routeByCallID, path):
		return byCall(strings.TrimSpace(string(k.CallID))), nil
	case slices.Contains(routeByPush, path):
		id := strings.TrimSpace(string(k.MediaSessionID))
		if id == "" || len(n.svc.m.FindSinks(callmgr.SinkFilter{ID: id})) > 0 {
			return "", nil
		}
		if e, ok := n.member.ByPush(id); ok {
			return e.Node, nil
		}
	case path == "/push/startup":
		return byName(strings.TrimSpace(string(k.StreamName))), nil
	case path == "/viewer/token":
		name := strings.TrimSpace(string(k.StreamName))
		if name == "" {
			name = strings.TrimSpace(string(k.ToStream))
		}
		if name != "" {
			return byName(name), nil
		}
		return byCall(strings.TrimSpace(string(k.CallID))), nil
	}
	return "", nil
}

// forward carries a request to node and writes its answer.
func (n *clusterNode) forward(w http.ResponseWriter, ctx context.Context, node, urlPath, endpoint string, body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	req, _ := json.Marshal(busRequest{Op: "http", Path: urlPath, Body: body})
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	b, err := n.member.Request(ctx, node, req)
	var a busAnswer
	if err == nil {
		err = json.Unmarshal(b, &a)
	}
	switch {
	case err == nil && a.Status >= 100:
	case errors.Is(err, cluster.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		n.forwarded.WithLabelValues(endpoint, "timeout").Inc()
		return errStatus(http.StatusGatewayTimeout, fmt.Sprintf("node %q did not answer in time; the request may have been carried out there (find the call by its callId)", node))
	case errors.Is(err, cluster.ErrNoNode):
		n.forwarded.WithLabelValues(endpoint, "unreachable").Inc()
		return errStatus(http.StatusServiceUnavailable, fmt.Sprintf("node %q, which owns this call, is not answering (it may have stopped: its calls are reported FAILED when its heartbeat expires)", node))
	default:
		n.forwarded.WithLabelValues(endpoint, "unreachable").Inc()
		return errStatus(http.StatusServiceUnavailable, fmt.Sprintf("node %q cannot be reached through the cluster now; retry later", node))
	}
	n.forwarded.WithLabelValues(endpoint, fmt.Sprint(a.Status)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Sipstream-Node", node)
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
	return nil
}

// clusterService is the call service of a node: the Manager's, with new
// calls claimed in the cluster first and the other nodes' calls and pushes
// listed with this node's.
type clusterService struct {
	*managerService
}

func (c *clusterService) Start(ctx context.Context, p startParams) error {
	n := c.cluster
	if n == nil {
		return c.managerService.Start(ctx, p)
	}
	if err := n.claim(ctx, p); err != nil {
		return err
	}
	err := c.managerService.Start(ctx, p)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if derr := n.member.Drop(dctx, p.CallID); derr != nil {
			n.log.Warn("cluster: freeing the keys of a call that did not start", "callID", p.CallID, "err", derr)
		}
	}
	return err
}

func (c *clusterService) Calls() []Call {
	local := c.managerService.Calls()
	if c.cluster == nil {
		return local
	}
	return append(local, c.cluster.remoteCalls(local)...)
}

func (c *clusterService) Pushes() []Push {
	local := c.managerService.Pushes()
	if c.cluster == nil {
		return local
	}
	return append(local, c.cluster.remotePushes()...)
}

// Member is the cluster member of this node; nil without Config.Cluster.
func (h *Handler) Member() *cluster.Member {
	if h.srv.cluster == nil {
		return nil
	}
	return h.srv.cluster.member
}

// Viewers returns next (the WHEP or HLS routes mounted at prefix, such as
// "/whep/" or "/hls/") with viewers of a stream another node of the cluster
// publishes redirected there (307, query and token kept): the stream's
// node's ClusterConfig.URL + the request's path. Without Config.Cluster it
// is next.
func (h *Handler) Viewers(prefix string, next http.Handler) http.Handler {
	if h.srv.cluster == nil {
		return next
	}
	n := h.srv.cluster
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, prefix), "/")
		if name != "" {
			if _, ok := n.svc.callFor(name); !ok {
				if e, ok := n.member.ByName(name); ok && e.Node != n.svc.nodeID && !e.Final {
					for _, node := range n.member.Nodes() {
						if node.ID == e.Node && node.URL != "" {
							http.Redirect(w, r, strings.TrimRight(node.URL, "/")+r.URL.RequestURI(), http.StatusTemporaryRedirect)
							return
						}
					}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Node is one node of the cluster as /rest-api/cluster/nodes lists it.
type Node struct {
	NodeID   string `json:"nodeId"`
	URL      string `json:"url,omitempty"`
	Calls    int    `json:"calls"`
	MaxCalls int    `json:"maxCalls"`
	// Self is true for the node that answered.
	Self    bool  `json:"self"`
	Started int64 `json:"started"` // Unix milliseconds
	Seen    int64 `json:"seen"`    // the last heartbeat, Unix milliseconds
}

// clusterNodes answers /rest-api/cluster/nodes: the live nodes (404 on a
// single server).
func (s *server) clusterNodes(w http.ResponseWriter, r *http.Request) error {
	if err := s.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	n := s.cluster
	if n == nil {
		return errStatus(http.StatusNotFound, "this server is not a node of a cluster (-nats)")
	}
	out := []Node{}
	for _, ni := range n.member.Nodes() {
		out = append(out, Node{NodeID: ni.ID, URL: ni.URL, Calls: ni.Calls, MaxCalls: ni.MaxCalls,
			Self: ni.ID == n.svc.nodeID, Started: ni.Started.UnixMilli(), Seen: ni.Seen.UnixMilli()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
