//go:build interop && linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sip/siptest"
)

// Issue 18 (a cluster of gateways): inbound SIP spread over several
// gateways by kamailio's dispatcher, run with kamailio-dispatcher.cfg as
// users copy it (only its listen address and gateway list given with -A).

// dispatcherGateways is how many gateways the test puts behind kamailio.
const dispatcherGateways = 3

// incomingCalls returns the gateway's calls (/call/find_all; its 404 is
// none).
func incomingCalls(t *testing.T, base string) []wcsapi.Call {
	t.Helper()
	code, body := rest(t, base, "/call/find_all", map[string]any{})
	if code == http.StatusNotFound {
		return nil
	}
	require.Equal(t, http.StatusOK, code, string(body))
	var calls []wcsapi.Call
	require.NoError(t, json.Unmarshal(body, &calls))
	return calls
}

// gatewayOf returns the index of the one gateway whose /call/find_all has
// callID live (a gateway that refused it may list it ended).
func gatewayOf(t *testing.T, gws []*serverProcess, callID string) int {
	t.Helper()
	var holders []int
	for i, gw := range gws {
		if gw.p.Exited() {
			continue
		}
		for _, c := range incomingCalls(t, gw.base) {
			if c.CallID == callID && c.Status != "FAILED" && c.Status != "BUSY" && c.Status != "FINISH" {
				require.True(t, c.Incoming, "%+v", c)
				holders = append(holders, i)
			}
		}
	}
	require.Len(t, holders, 1, "gateways holding call %s", callID)
	return holders[0]
}

// waitEnded waits until callID is FINISH or gone on gw.
func waitEnded(t *testing.T, gw *serverProcess, callID string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, ok := findCall(t, gw.base, callID)
		return !ok || c.Status == "FINISH"
	}, 15*time.Second, 50*time.Millisecond, "call %s did not end on its gateway after the caller's BYE", callID)
}

// TestInteropDispatcherSpreadsDialIn: three gateways (-inbound-allow
// 127.0.0.0/8, -inbound-rtmp-url to nginx) behind kamailio running
// kamailio-dispatcher.cfg. A phone (siptest) calls three times through
// kamailio, the calls up at once: round-robin gives each gateway one call
// (/call/find_all of each), each call's tone (its own frequency) is
// published at live/{dialled user} and decoded (ffprobe, Goertzel), and
// each caller's BYE (routed through kamailio by the Record-Route) ends the
// call on its gateway. Then the gateway next in turn is killed (SIGKILL):
// a call placed at once is answered by a survivor (kamailio fails over
// after its 2 s timeout, or its OPTIONS probe already marked the gateway
// down), kamailio logs the gateway down, and the calls after that go to
// the two survivors in turn, none to the dead one. Restarted on its
// address, the gateway is marked up again by kamailio's OPTIONS probe and
// offered calls again: refusing one 503 (its hook says so), the call
// fails over to another gateway. Killed once more with no call to meet
// it, the probe alone marks it down and the next call goes to a survivor
// without a failover.
func TestInteropDispatcherSpreadsDialIn(t *testing.T) {
	t0 := time.Now()
	ngx := testenv.StartNginxRTMP(t)
	gws := make([]*serverProcess, dispatcherGateways)
	gwURI := make([]string, dispatcherGateways)
	var list strings.Builder
	list.WriteString("# setid destination flags priority attributes\n")
	for i := range gws {
		gws[i] = startServerProcess(t, "-inbound-allow", "127.0.0.0/8", "-inbound-rtmp-url", ngx.RTMPURL())
		gwURI[i] = "sip:" + sipAddrOf(t, gws[i])
		fmt.Fprintf(&list, "1 %s 0 0 duid=gw%d\n", gwURI[i], i+1)
	}
	listFile := filepath.Join(t.TempDir(), "dispatcher.list")
	require.NoError(t, os.WriteFile(listFile, []byte(list.String()), 0o600))
	cfg, err := filepath.Abs("kamailio-dispatcher.cfg")
	require.NoError(t, err)
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Script: cfg, Defines: map[string]string{"DISPATCHER_LIST": strconv.Quote(listFile)}})
	t.Logf("%d gateways and kamailio up in %v: %s", dispatcherGateways, time.Since(t0).Round(time.Millisecond), strings.Join(gwURI, " "))

	phone, err := siptest.NewPeer(siptest.Config{User: "phone"})
	require.NoError(t, err)
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := func(stream string, tone float64) *siptest.PeerCall {
		t.Helper()
		c, err := phone.Call(ctx, "sip:"+stream+"@"+kam.Addr, siptest.CallOptions{NoVideo: true, Script: siptest.Script{Audio: true, ToneHz: tone}})
		require.NoError(t, err, "call %s through kamailio\n%s", stream, kam.Log())
		return c
	}

	// One call per gateway, each with a tone of its own, all up at once.
	tones := []float64{500, 700, 900}
	calls := make([]*siptest.PeerCall, dispatcherGateways)
	recs := make([]*testenv.Recording, dispatcherGateways)
	owner := make([]int, dispatcherGateways)
	for i := range calls {
		stream := fmt.Sprintf("spread%d", i+1)
		recs[i] = testenv.RecordStream(t, ngx.RTMPURL()+"/"+stream, 2*time.Second)
		calls[i] = call(stream, tones[i])
		owner[i] = gatewayOf(t, gws, calls[i].CallID())
	}
	for i, gw := range gws {
		n := len(incomingCalls(t, gw.base))
		t.Logf("gateway %d (%s): %d call(s)", i+1, gwURI[i], n)
		assert.Equal(t, 1, n, "round-robin gives gateway %d one of the first %d calls", i+1, dispatcherGateways)
	}
	for i, rec := range recs {
		checkTonePublished(t, rec, tones[i])
	}
	for i, c := range calls {
		require.NoError(t, c.Hangup(ctx))
		waitEnded(t, gws[owner[i]], c.CallID())
		// The BYE followed the Record-Route through kamailio.
		assert.Contains(t, kam.Log(), "dispatcher: BYE "+c.CallID()+" to ")
	}
	t.Logf("%d calls spread, published, decoded and hung up: %v", dispatcherGateways, time.Since(t0).Round(time.Millisecond))

	// Round-robin's next turn is the first call's gateway: it dies. A call
	// placed at once meets it (kamailio's probe needs up to ds_ping_interval
	// + fr_timer to notice): no answer within fr_timer (2 s), the call
	// fails over to the next gateway and marks the dead one down.
	dead := owner[0]
	deadAddr := strings.TrimPrefix(gwURI[dead], "sip:")
	gws[dead].p.Kill()
	killed := time.Now()
	c := call("after-kill", 600)
	got := gatewayOf(t, gws, c.CallID())
	assert.NotEqual(t, dead, got)
	t.Logf("call placed at the kill answered by gateway %d after %v (failed over: %v)", got+1,
		time.Since(killed).Round(time.Millisecond), strings.Contains(kam.Log(), "INVITE "+c.CallID()+" failed over"))
	require.NoError(t, c.Hangup(ctx))
	waitEnded(t, gws[got], c.CallID())
	downLine := "dispatcher: gateway " + gwURI[dead] + " down"
	require.Eventually(t, func() bool { return strings.Contains(kam.Log(), downLine) }, 10*time.Second, 50*time.Millisecond,
		"kamailio did not mark the dead gateway down")
	t.Logf("kamailio: %s", grepLines(kam.Log(), downLine))

	// From then on, new calls go straight to the survivors, in turn.
	seen := map[int]int{}
	for i := range dispatcherGateways - 1 {
		c := call(fmt.Sprintf("survivor%d", i+1), 600)
		g := gatewayOf(t, gws, c.CallID())
		seen[g]++
		require.NoError(t, c.Hangup(ctx))
		waitEnded(t, gws[g], c.CallID())
	}
	assert.NotContains(t, seen, dead)
	assert.Len(t, seen, dispatcherGateways-1, "the survivors take the calls in turn: %v", seen)
	_, afterDown, _ := strings.Cut(kam.Log(), downLine)
	assert.NotContains(t, afterDown, "to "+gwURI[dead]+"\n", "kamailio relayed a call to the gateway it marked down")
	t.Logf("calls after the kill per gateway index: %v", seen)

	// The gateway comes back on its address: kamailio's OPTIONS probe finds
	// it answering and marks it up, with no change to kamailio. It is full
	// now (its hook refuses every call 503): a call round-robin gives it
	// fails over to another gateway.
	full := newSippHook(t, `{"reject": true, "sipStatus": 503, "reason": "Service Unavailable"}`)
	back := time.Now()
	gws[dead] = startServerProcess(t, "-sip", deadAddr, "-webhook", full.srv.URL, "-inbound-allow", "127.0.0.0/8", "-inbound-rtmp-url", ngx.RTMPURL())
	upLine := "dispatcher: gateway " + gwURI[dead] + " up (OPTIONS answered)"
	require.Eventually(t, func() bool { return strings.Contains(kam.Log(), upLine) }, 10*time.Second, 50*time.Millisecond,
		"kamailio's probing did not see the gateway back")
	t.Logf("the restarted gateway was marked up %v after its start", time.Since(back).Round(time.Millisecond))
	for i := 0; len(full.calls()) == 0; i++ {
		require.Less(t, i, dispatcherGateways, "round-robin gave the gateway back no call")
		c := call(fmt.Sprintf("back%d", i+1), 600)
		g := gatewayOf(t, gws, c.CallID())
		assert.NotEqual(t, dead, g)
		if len(full.calls()) > 0 {
			assert.Contains(t, kam.Log(), "INVITE "+c.CallID()+" failed over", "the 503 was not failed over")
			t.Logf("call %d after the return: refused 503 by the restarted gateway, answered by gateway %d", i+1, g+1)
		}
		require.NoError(t, c.Hangup(ctx))
		waitEnded(t, gws[g], c.CallID())
	}

	// It dies again with no call to meet it: the probe alone marks it down,
	// and the next call goes to a survivor at once, without a failover.
	gws[dead].p.Kill()
	killed = time.Now()
	probeDown := downLine + " (OPTIONS unanswered)"
	require.Eventually(t, func() bool { return strings.Contains(kam.Log(), probeDown) }, 10*time.Second, 50*time.Millisecond,
		"kamailio's probing did not mark the dead gateway down")
	t.Logf("kamailio's probe marked the gateway down %v after its death", time.Since(killed).Round(time.Millisecond))
	placed := time.Now()
	c = call("after-probe", 600)
	g := gatewayOf(t, gws, c.CallID())
	assert.NotEqual(t, dead, g)
	assert.NotContains(t, kam.Log(), "INVITE "+c.CallID()+" failed over", "the call met the gateway the probe marked down")
	t.Logf("the next call was answered by gateway %d in %v; whole test %v", g+1,
		time.Since(placed).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	require.NoError(t, c.Hangup(ctx))
	waitEnded(t, gws[g], c.CallID())
}
