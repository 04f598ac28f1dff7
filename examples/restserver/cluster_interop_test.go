//go:build interop

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sip/siptest"
)

// clusterTTL is the heartbeat TTL the cluster tests give the nodes
// (-cluster-ttl): a dead node's calls are reported within about this.
const clusterTTL = 3 * time.Second

// startNode starts a restserver process as node id of the cluster on nats.
func startNode(t *testing.T, nats *testenv.NATS, id string, args ...string) *serverProcess {
	t.Helper()
	return startServerProcess(t, append([]string{"-nats", nats.URL(), "-node-id", id,
		"-cluster-ttl", clusterTTL.String(), "-webrtc=false", "-whip=false"}, args...)...)
}

var clusterNodesRE = regexp.MustCompile(`(?m)^sipstream_cluster_nodes (\d+)`)

// waitNodes waits until every node's /metrics counts n live nodes.
func waitNodes(t *testing.T, n int, nodes ...*serverProcess) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range nodes {
		for {
			_, text := getText(t, p.base+"/metrics")
			if m := clusterNodesRE.FindStringSubmatch(text); m != nil && m[1] == strconv.Itoa(n) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not see %d nodes: %s", p.addr, n, clusterNodesRE.FindString(text))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// count is how many of the webhook's CallStatusEvents for callID say st.
func (w *webhookRecorder) count(callID, st string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ev := range w.events {
		if ev.Type == "CallStatusEvent" && ev.CallID == callID && ev.Status == st {
			n++
		}
	}
	return n
}

// Three restserver processes on one nats-server (JetStream): one REST API.
// A call started on A for A is found on B with A's nodeId; its callId and
// its RTMP stream are refused on C (409); DTMF asked of C and a push asked
// of B reach A's call; B's terminate makes A send the SIP peer its BYE.
// Calls asked of one node without a nodeId spread evenly. Restarting
// nats-server mid-call: the call keeps streaming (ffprobe decodes it
// after), no FAILED is reported, and the registry works again (a new call,
// found on another node). kill -9 of A: B or C reports each of A's calls
// FAILED once, within the TTL and a second, and frees their keys.
func TestInteropClusterNATS(t *testing.T) {
	nats := testenv.StartNATS(t, testenv.NATSConfig{})
	ngx := testenv.StartNginxRTMP(t)
	hook := newWebhookRecorder(t)
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	a := startNode(t, nats, "A", "-webhook", hook.srv.URL)
	b := startNode(t, nats, "B", "-webhook", hook.srv.URL)
	c := startNode(t, nats, "C", "-webhook", hook.srv.URL)
	waitNodes(t, 3, a, b, c)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	start := func(p *serverProcess, id, node, stream string) (int, string) {
		body := map[string]any{"callId": id, "callee": peer.URI(), "hasAudio": true, "hasVideo": true}
		if node != "" {
			body["nodeId"] = node
		}
		if stream != "" {
			body["rtmpUrl"], body["rtmpStream"] = ngx.RTMPURL(), stream
		}
		code, out := rest(t, p.base, "/call/startup", body)
		return code, string(out)
	}

	// Start on A, find on B.
	code, out := start(a, "cl-1", "A", "cl1")
	require.Equal(t, http.StatusOK, code, out)
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	call := waitCall(t, b.base, "cl-1", "ESTABLISHED and streaming, seen from B", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	require.Equal(t, "A", call.NodeID)
	// A viewer asking B for A's stream is sent to A (307), token kept,
	// once A's heartbeat told its URL (A listens on a port chosen at run
	// time, known after it joined: at most one heartbeat later).
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	require.Eventually(t, func() bool {
		resp, err := noFollow.Get(b.base + "/hls/cl-1/index.m3u8?token=x")
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode == http.StatusTemporaryRedirect &&
			resp.Header.Get("Location") == "http://"+a.addr+"/hls/cl-1/index.m3u8?token=x"
	}, 2*clusterTTL, 100*time.Millisecond, "B redirects A's HLS viewers to A")

	// Unique across the cluster.
	code, out = start(c, "cl-1", "", "")
	require.Equal(t, http.StatusConflict, code, out)
	code, out = start(c, "cl-1b", "C", "cl1")
	require.Equal(t, http.StatusConflict, code, "the same RTMP stream from another node: %s", out)
	require.Contains(t, out, "cl-1")

	// DTMF via C, a push via B: both reach A's call.
	code, body := rest(t, c.base, "/call/send_dtmf", map[string]any{"callId": "cl-1", "dtmf": "5", "type": "INFO"})
	require.Equal(t, http.StatusOK, code, string(body))
	infos, err := pc.WaitInfos(ctx, 1)
	require.NoError(t, err)
	require.Contains(t, string(infos[0].Body), "5")
	code, body = rest(t, b.base, "/push/startup", map[string]any{"streamName": "cl-1", "rtmpUrl": ngx.RTMPURL()})
	require.Equal(t, http.StatusOK, code, string(body))
	var push wcsapi.Push
	require.NoError(t, json.Unmarshal(body, &push))
	require.Equal(t, "cl-1", push.CallID)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body = rest(t, c.base, "/push/find", map[string]any{"mediaSessionId": push.MediaSessionID})
		if code == http.StatusOK && strings.Contains(string(body), "RTMP_STREAM_ACTIVE") {
			break
		}
		require.True(t, time.Now().Before(deadline), "C never saw B's push to A's call active: %d %s", code, body)
		time.Sleep(100 * time.Millisecond)
	}
	code, body = rest(t, c.base, "/push/terminate", map[string]any{"mediaSessionId": push.MediaSessionID})
	require.Equal(t, http.StatusOK, code, string(body))

	// Placement: six calls asked of B, two per node.
	for i := range 6 {
		code, out = start(b, fmt.Sprintf("pl-%d", i), "", "")
		require.Equal(t, http.StatusOK, code, out)
	}
	perNode := map[string]int{}
	for i := range 6 {
		perNode[waitCall(t, c.base, fmt.Sprintf("pl-%d", i), "placed", func(c wcsapi.Call) bool { return c.NodeID != "" }).NodeID]++
	}
	require.Equal(t, map[string]int{"A": 2, "B": 2, "C": 2}, perNode, "six calls through B's API")
	for i := range 6 {
		code, body = rest(t, a.base, "/call/terminate", map[string]any{"callId": fmt.Sprintf("pl-%d", i)})
		require.Equal(t, http.StatusOK, code, string(body))
	}

	// nats-server restarts mid-call: the call streams on, nobody reports
	// it FAILED, the registry works again.
	nats.Restart(t)
	require.Eventually(t, func() bool {
		code, out := start(c, "cl-2", "C", "")
		if code != http.StatusOK {
			t.Logf("a new call after the restart: %d %s", code, out)
		}
		return code == http.StatusOK
	}, 30*time.Second, 500*time.Millisecond, "a new call after nats-server restarted")
	waitCall(t, a.base, "cl-2", "C's new call seen from A", func(c wcsapi.Call) bool { return c.NodeID == "C" })
	streams := probeLive(t, ngx.RTMPURL()+"/cl1")
	require.Equal(t, "h264", streams["video"].CodecName, "cl-1 streams after the restart")
	require.Equal(t, "aac", streams["audio"].CodecName)
	call = waitCall(t, b.base, "cl-1", "A's call listed again", func(c wcsapi.Call) bool { return c.NodeID == "A" })
	require.Equal(t, "ESTABLISHED", call.Status)
	require.Zero(t, hook.count("cl-1", "FAILED"), "a registry restart fails no call")

	// Terminate on B: A sends the peer its BYE.
	code, body = rest(t, b.base, "/call/terminate", map[string]any{"callId": "cl-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, pc.WaitBye(ctx))
	hook.waitStatus(t, "cl-1", "FINISH")

	// kill -9 of A with two live calls.
	for _, id := range []string{"k-1", "k-2"} {
		code, out = start(b, id, "A", "k"+id)
		require.Equal(t, http.StatusOK, code, out)
		waitCall(t, c.base, id, "ESTABLISHED on A", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" && c.NodeID == "A" })
	}
	a.p.Kill()
	killed := time.Now()
	var took []time.Duration
	for _, id := range []string{"k-1", "k-2"} {
		hook.waitStatus(t, id, "FAILED")
		took = append(took, time.Since(killed))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("A's calls reported FAILED %v after kill -9 (TTL %v)", took, clusterTTL)
	require.Less(t, took[1], clusterTTL+2*time.Second, "reported within the TTL (and the polling)")
	time.Sleep(2 * time.Second) // any second report would be in by now
	for _, id := range []string{"k-1", "k-2"} {
		require.Equal(t, 1, hook.count(id, "FAILED"), "one FAILED for %s", id)
		_, found := findCall(t, b.base, id)
		require.False(t, found, "%s left the registry", id)
	}
	// Their keys are free: the callId and the stream again, on B.
	code, out = start(c, "k-1", "B", "kk-1")
	require.Equal(t, http.StatusOK, code, out)
	code, body = rest(t, c.base, "/call/terminate", map[string]any{"callId": "k-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	waitNodes(t, 2, b, c)
}

// The load test of the cluster: three nodes, N calls (SIPSTREAM_CLUSTER_CALLS,
// default 30) started through one node's API as fast as one client sends
// them, each with audio and video from a SIP peer. They spread evenly (no
// node more than one over N/3), all get ESTABLISHED, find_all on another
// node lists them all, and terminate through the same API ends them all.
// The figures (startup latency, time to all ESTABLISHED, per node) go to
// the log:
//
//	SIPSTREAM_CLUSTER_CALLS=150 go test -tags interop -run TestInteropClusterLoad -v ./examples/restserver
func TestInteropClusterLoad(t *testing.T) {
	n := 30
	if v, err := strconv.Atoi(getenvDefault("SIPSTREAM_CLUSTER_CALLS", "30")); err == nil && v > 0 {
		n = v
	}
	nats := testenv.StartNATS(t, testenv.NATSConfig{})
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	rtp := func(i int) string { return fmt.Sprintf("%d-%d", 40000+i*2000, 40000+i*2000+1999) }
	var nodes []*serverProcess
	for i, id := range []string{"L1", "L2", "L3"} {
		nodes = append(nodes, startNode(t, nats, id, "-max-calls", "0", "-hls=false", "-rtp-ports", rtp(i)))
	}
	waitNodes(t, 3, nodes...)
	entry, other := nodes[0], nodes[1]

	var lat []time.Duration
	began := time.Now()
	for i := range n {
		t0 := time.Now()
		code, body := rest(t, entry.base, "/call/startup", map[string]any{"callId": fmt.Sprintf("load-%d", i), "callee": peer.URI(), "hasAudio": true, "hasVideo": true})
		lat = append(lat, time.Since(t0))
		require.Equal(t, http.StatusOK, code, string(body))
	}
	sent := time.Since(began)
	var all []wcsapi.Call
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := rest(t, other.base, "/call/find_all", map[string]any{})
		all = nil
		if code == http.StatusOK {
			require.NoError(t, json.Unmarshal(body, &all))
		}
		up := 0
		for _, c := range all {
			if c.Status == "ESTABLISHED" {
				up++
			}
		}
		if up == n {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d of %d calls ESTABLISHED after 60 s", up, n)
		time.Sleep(100 * time.Millisecond)
	}
	established := time.Since(began)
	perNode := map[string]int{}
	for _, c := range all {
		perNode[c.NodeID]++
	}
	for _, id := range []string{"L1", "L2", "L3"} {
		require.LessOrEqual(t, perNode[id], (n+2)/3+1, "calls per node %v", perNode)
		require.GreaterOrEqual(t, perNode[id], n/3-1, "calls per node %v", perNode)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("cluster load: %d calls through one API: per node %v; /call/startup latency median %v, p99 %v, max %v; all sent in %v, all ESTABLISHED (seen from another node) after %v",
		n, perNode, lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond),
		sent.Round(time.Millisecond), established.Round(time.Millisecond))
	for i := range n {
		code, body := rest(t, entry.base, "/call/terminate", map[string]any{"callId": fmt.Sprintf("load-%d", i)})
		require.Equal(t, http.StatusOK, code, string(body))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, pc := range peer.Calls() {
		require.NoError(t, pc.WaitBye(ctx))
	}
}

// getenvDefault is the environment variable name, or def when unset.
func getenvDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
