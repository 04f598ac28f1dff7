package wcsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/cluster"
	"github.com/sipstream/sipstream/sip/siptest"
)

// testNode is one node of an in-process cluster: a Manager, its Handler and
// an HTTP server.
type testNode struct {
	id  string
	m   *callmgr.Manager
	api *Handler
	url string
}

// startCluster starts n nodes sharing one Memory registry and bus, and
// waits until each sees them all.
func startCluster(t *testing.T, n int, maxCalls ...int) []*testNode {
	t.Helper()
	reg := cluster.NewMemory(3*time.Second, nil)
	bus := cluster.NewMemoryBus()
	t.Cleanup(func() {
		_ = reg.Close()
		_ = bus.Close()
	})
	var nodes []*testNode
	for i := range n {
		relay := new(callmgr.Relay)
		lo := 28000 + i*100
		limit := 0
		if len(maxCalls) > 0 {
			limit = maxCalls[0]
		}
		m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: lo, RTPPortMax: lo + 99, OnEvent: relay.OnEvent, MaxCalls: limit})
		require.NoError(t, err)
		nd := &testNode{id: fmt.Sprintf("n%d", i+1), m: m}
		ts := httptest.NewUnstartedServer(nil)
		nd.url = "http://" + ts.Listener.Addr().String()
		api, err := New(m, Config{Events: relay, NoAuth: true, NodeID: nd.id, Logger: discardLog(),
			Cluster: &ClusterConfig{Registry: reg, Bus: bus, URL: func() string { return nd.url }, Heartbeat: 200 * time.Millisecond, MaxCalls: limit}})
		require.NoError(t, err)
		nd.api = api
		ts.Config.Handler = api
		ts.Start()
		t.Cleanup(func() {
			ts.Close()
			_ = m.Close(context.Background())
			_ = api.Close()
		})
		nodes = append(nodes, nd)
	}
	require.Eventually(t, func() bool {
		for _, nd := range nodes {
			if len(nd.api.Member().Nodes()) != n {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "the nodes did not see each other")
	return nodes
}

// post sends a REST request to node nd.
func (nd *testNode) post(t *testing.T, path string, body any) (int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	code, out, _ := do(t, "POST", nd.url+"/rest-api"+path, "application/json", string(b), nil)
	return code, out
}

// find returns /call/find's object for id on nd.
func (nd *testNode) find(t *testing.T, id string) (Call, bool) {
	code, out := nd.post(t, "/call/find", map[string]string{"callId": id})
	if code != http.StatusOK {
		return Call{}, false
	}
	var cs []Call
	require.NoError(t, json.Unmarshal([]byte(out), &cs))
	return cs[0], len(cs) == 1
}

// Three nodes, one API: a call started on one node for another runs there,
// every node finds it with its nodeId, its keys are unique across the
// cluster (409), DTMF, pushes and terminate asked of any node reach the
// owner (the SIP peer gets INFO and BYE), and calls started without a
// nodeId are spread over the nodes.
func TestClusterOneAPI(t *testing.T) {
	peer := startPeer(t, siptest.Script{})
	nodes := startCluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	code, out := n1.post(t, "/call/startup", map[string]any{"callId": "c1", "callee": peer.URI(), "toStream": "show", "nodeId": "n2"})
	require.Equal(t, http.StatusOK, code, out)
	_, ok := n2.m.Call("c1")
	require.True(t, ok, "the call runs on the node asked")
	_, ok = n1.m.Call("c1")
	require.False(t, ok)
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, pc.WaitEstablished(ctx))
	require.Eventually(t, func() bool {
		c, ok := n3.find(t, "c1")
		return ok && c.Status == "ESTABLISHED" && c.NodeID == "n2"
	}, 10*time.Second, 20*time.Millisecond, "n3 finds n2's call")

	// A viewer asking n1 for n2's stream is sent to n2.
	rec := httptest.NewRecorder()
	n1.api.Viewers("/hls/", http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/hls/show/index.m3u8?token=t", nil))
	require.Equal(t, http.StatusTemporaryRedirect, rec.Code)
	require.Equal(t, n2.url+"/hls/show/index.m3u8?token=t", rec.Header().Get("Location"))

	// Unique across the cluster: the callId, the stream name.
	code, out = n3.post(t, "/call/startup", map[string]any{"callId": "c1", "callee": peer.URI(), "nodeId": "n3"})
	require.Equal(t, http.StatusConflict, code, out)
	require.Contains(t, out, `node \"n2\"`)
	code, out = n1.post(t, "/call/startup", map[string]any{"callId": "c1b", "callee": peer.URI(), "toStream": "show", "nodeId": "n1"})
	require.Equal(t, http.StatusConflict, code, out)
	code, out = n1.post(t, "/call/startup", map[string]any{"callId": "c1", "callee": peer.URI(), "nodeId": "n9"})
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out, "nodeId")

	// Requests for n2's call, asked of n1 and n3.
	code, out = n3.post(t, "/call/send_dtmf", map[string]any{"callId": "c1", "dtmf": "7", "type": "INFO"})
	require.Equal(t, http.StatusOK, code, out)
	infos, err := pc.WaitInfos(ctx, 1)
	require.NoError(t, err)
	require.Contains(t, string(infos[0].Body), "7")
	code, out = n1.post(t, "/call/hold", map[string]any{"callId": "c1"})
	require.Equal(t, http.StatusOK, code, out)
	_, err = pc.WaitReinvites(ctx, 1)
	require.NoError(t, err)
	code, out = n3.post(t, "/call/terminate", map[string]any{"callId": "c-unknown"})
	require.Equal(t, http.StatusNotFound, code, out)
	code, out = n1.post(t, "/call/terminate", map[string]any{"callId": "c1"})
	require.Equal(t, http.StatusOK, code, out)
	require.NoError(t, pc.WaitBye(ctx), "the owner sent BYE")
	require.Eventually(t, func() bool {
		c, ok := n3.find(t, "c1")
		return ok && c.Status == "FINISH"
	}, 10*time.Second, 20*time.Millisecond, "n3 sees the call end")

	// Placement: six calls asked of n1 alone, two on each node.
	for i := range 6 {
		code, out = n1.post(t, "/call/startup", map[string]any{"callId": fmt.Sprintf("p%d", i), "callee": peer.URI()})
		require.Equal(t, http.StatusOK, code, out)
	}
	for _, nd := range nodes {
		live := 0
		for _, ci := range nd.m.FindAll() {
			if !ci.Status.Final() && ci.CallID != "c1" {
				live++
			}
		}
		require.Equal(t, 2, live, "calls on %s", nd.id)
	}
	// find_all on any node lists every node's calls, with their nodeId.
	var last map[string]int
	require.Eventually(t, func() bool {
		code, out = n2.post(t, "/call/find_all", map[string]any{})
		var all []Call
		if code != http.StatusOK || json.Unmarshal([]byte(out), &all) != nil {
			return false
		}
		byNode := map[string]int{}
		for _, c := range all {
			if c.CallID != "c1" {
				byNode[c.NodeID]++
			}
		}
		last = byNode
		return byNode["n1"] == 2 && byNode["n2"] == 2 && byNode["n3"] == 2
	}, 10*time.Second, 20*time.Millisecond, "find_all on n2: calls by node %v", &last)
}

// The nodes' limits hold cluster-wide: with one call allowed per node, two
// nodes take two calls asked of one of them, and the third gets 503;
// /cluster/nodes lists both nodes, the one asked marked self.
func TestClusterFull(t *testing.T) {
	peer := startPeer(t, siptest.Script{})
	nodes := startCluster(t, 2, 1)
	for i := range 2 {
		code, out := nodes[0].post(t, "/call/startup", map[string]any{"callId": fmt.Sprintf("f%d", i), "callee": peer.URI()})
		require.Equal(t, http.StatusOK, code, out)
	}
	for _, nd := range nodes {
		require.Len(t, nd.m.FindAll(), 1, nd.id)
	}
	code, out := nodes[0].post(t, "/call/startup", map[string]any{"callId": "f2", "callee": peer.URI()})
	require.Equal(t, http.StatusServiceUnavailable, code, out)
	require.Contains(t, out, "every node")
	code, out = nodes[1].post(t, "/cluster/nodes", map[string]any{})
	require.Equal(t, http.StatusOK, code, out)
	var ns []Node
	require.NoError(t, json.Unmarshal([]byte(out), &ns))
	require.Len(t, ns, 2)
	require.Equal(t, "n2", ns[1].NodeID)
	require.True(t, ns[1].Self)
	require.False(t, ns[0].Self)
	require.Equal(t, nodes[0].url, ns[0].URL)
}
