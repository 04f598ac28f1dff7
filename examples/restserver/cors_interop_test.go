//go:build interop && linux

package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sip/siptest"
)

// wcsClientPage is a page written the way a client of the product's REST
// API is (wcs-docs 000, "Call flow": fetch POSTs of JSON bodies to
// /call/startup, /call/find and /call/terminate, booleans as strings),
// served from an origin other than the API's. With the admin's login
// (Authorization) and Content-Type: application/json every request needs a
// CORS preflight. The page on the allowed origin places a call and follows
// it to ESTABLISHED, then opens the same page on the origin that is not
// allowed (DENIED), which tries to place a call and read the calls list.
// Each reports to its own origin's /report.
const wcsClientPage = `<!doctype html>
<html><body><pre id="log"></pre>
<script>
"use strict";
const api = "API", callee = "CALLEE", auth = "Basic " + btoa("LOGIN");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function rest(method, body) {
  const resp = await fetch(api + "/rest-api" + method, {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": auth},
    body: JSON.stringify(body),
  });
  const text = await resp.text();
  let json;
  try { json = JSON.parse(text); } catch (e) { json = undefined; }
  return {status: resp.status, json: json};
}
function typeOf(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}
async function allowed(r) {
  const callId = "cors-" + Date.now();
  r.callId = callId;
  const s = await rest("/call/startup", {callId: callId, callee: callee, toStream: callId, hasAudio: "true", hasVideo: "true",
    sipLogin: "1000", sipAuthenticationName: "1000", sipPassword: "1234", appKey: "defaultApp", sipRegisterRequired: "false"});
  r.startup = s.status;
  r.startupBody = JSON.stringify(s.json);
  r.statuses = [];
  for (let i = 0; i < 400; i++) {
    const f = await rest("/call/find", {callId: callId});
    if (f.status === 200 && Array.isArray(f.json) && f.json.length === 1) {
      const c = f.json[0];
      if (r.statuses[r.statuses.length - 1] !== c.status) r.statuses.push(c.status);
      if (c.status === "ESTABLISHED" || c.status === "FAILED" || c.status === "FINISH") {
        r.members = Object.keys(c);
        r.types = {};
        for (const k of r.members) r.types[k] = typeOf(c[k]);
        r.call = {callId: c.callId, caller: c.caller, callee: c.callee, visibleName: c.visibleName, appKey: c.appKey,
          streamName: c.streamName, sipStatus: c.sipStatus, mediaProvider: c.mediaProvider};
        break;
      }
    }
    await sleep(50);
  }
  const t = await rest("/call/terminate", {callId: callId});
  r.terminate = t.status;
  for (let i = 0; i < 200; i++) {
    const f = await rest("/call/find", {callId: callId});
    r.afterTerminate = f.status;
    if (f.status === 404) break;
    await sleep(50);
  }
}
async function denied(r) {
  try {
    const s = await rest("/call/startup", {callId: "cors-denied", callee: callee, hasAudio: "true", hasVideo: "true"});
    r.startup = s.status;
    r.startupError = "not blocked";
  } catch (e) {
    r.startupError = "blocked: " + e.name + ": " + e.message;
  }
  try {
    const f = await rest("/call/find_all", {});
    r.readError = "not blocked: " + f.status;
  } catch (e) {
    r.readError = "blocked: " + e.name;
  }
}
(async () => {
  const role = new URLSearchParams(location.search).get("role") || "allowed";
  const r = {role: role, origin: location.origin};
  try {
    if (role === "allowed") await allowed(r); else await denied(r);
  } catch (e) {
    r.error = e.name + ": " + e.message;
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(r)});
  if (role === "allowed") location.href = "DENIED/client.html?role=denied";
})();
</script>
</body></html>`

// corsReport is what wcsClientPage reports.
type corsReport struct {
	Role         string            `json:"role"`
	Origin       string            `json:"origin"`
	Error        string            `json:"error"`
	CallID       string            `json:"callId"`
	Startup      int               `json:"startup"`
	StartupBody  string            `json:"startupBody"`
	Statuses     []string          `json:"statuses"`
	Members      []string          `json:"members"`
	Types        map[string]string `json:"types"`
	Call         map[string]any    `json:"call"`
	Terminate    int               `json:"terminate"`
	AfterTerm    int               `json:"afterTerminate"`
	StartupError string            `json:"startupError"`
	ReadError    string            `json:"readError"`
}

// A real Chromium runs a WCS client page from another origin against the
// server started with -cors-origins naming that origin: the preflights
// pass, the call reaches the SIP peer (siptest, ringing for a second) and
// the page sees it go from RING to ESTABLISHED in /call/find's objects,
// with the product's members and JSON types, then ends it. The same page
// from an origin not listed is refused: the browser reports the fetches
// failed, and the server placed no call.
func TestInteropChromiumCrossOriginClient(t *testing.T) {
	testenv.LookPath(t, "chromium")
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0",
		Script: siptest.Script{Ring: time.Second, Audio: true, Video: true}})
	require.NoError(t, err)
	defer peer.Close()

	// The page names the API, known once the sites (whose origin the
	// server is told) are up: written before Chromium asks for it.
	var page atomic.Pointer[string]
	reports := newPageReports[corsReport](2)
	mux := reports.mux(map[string]func() string{"/client.html": func() string { return *page.Load() }})
	allowedSite, deniedSite := httptest.NewServer(mux), httptest.NewServer(mux)
	defer allowedSite.Close()
	defer deniedSite.Close()
	require.NotEqual(t, allowedSite.URL, deniedSite.URL, "two origins: two ports")

	srv := startRun(t, "-cors-origins", allowedSite.URL)
	text := strings.NewReplacer("API", "http://"+srv.addr, "CALLEE", peer.URI(),
		"LOGIN", testUser+":"+testPass, "DENIED", deniedSite.URL).Replace(wcsClientPage)
	page.Store(&text)
	chromium := testenv.StartChromium(t, testenv.ChromiumConfig{URL: allowedSite.URL + "/client.html"})
	defer chromium.Close()

	ok := reports.next(t, "the page on the allowed origin", 90*time.Second)
	t.Logf("allowed origin: %+v", ok)
	require.Empty(t, ok.Error)
	require.Equal(t, allowedSite.URL, ok.Origin)
	require.Equal(t, http.StatusOK, ok.Startup, "the startup's preflight and POST")
	require.Equal(t, "{}", ok.StartupBody)
	require.Equal(t, "ESTABLISHED", ok.Statuses[len(ok.Statuses)-1], "%v", ok.Statuses)
	require.Contains(t, ok.Statuses, "RING", "the page saw the call progress: %v", ok.Statuses)
	require.Equal(t, map[string]any{"callId": ok.CallID, "caller": "1000", "callee": peer.URI(), "visibleName": "1000",
		"appKey": "defaultApp", "streamName": ok.CallID, "sipStatus": float64(200), "mediaProvider": "Flash"}, ok.Call)
	// The product's members as the page's JavaScript sees them.
	for name, typ := range map[string]string{
		"custom": "object", "nodeId": "string", "appKey": "string", "sessionId": "null", "callId": "string",
		"parentCallId": "null", "incoming": "boolean", "status": "string", "sipStatus": "number",
		"rtmpUrl": "null", "rtmpStream": "null", "streamName": "string", "rtmpStreamStatus": "null",
		"caller": "string", "callee": "string", "hasAudio": "boolean", "hasVideo": "boolean", "sdp": "null",
		"visibleName": "string", "inviteParameters": "null", "mediaProvider": "string", "sipMessageRaw": "null",
		"isMsrp": "boolean", "target": "null", "holdForTransfer": "boolean",
	} {
		require.Equal(t, typ, ok.Types[name], "%s in %v", name, ok.Types)
	}
	product := []string{"custom", "nodeId", "appKey", "sessionId", "callId", "parentCallId", "incoming", "status",
		"sipStatus", "rtmpUrl", "rtmpStream", "streamName", "rtmpStreamStatus", "caller", "callee", "hasAudio",
		"hasVideo", "sdp", "visibleName", "inviteParameters", "mediaProvider", "sipMessageRaw", "isMsrp", "target",
		"holdForTransfer"}
	require.GreaterOrEqual(t, len(ok.Members), len(product))
	require.Equal(t, product, ok.Members[:len(product)], "the product's members first, in its order")
	require.Equal(t, http.StatusOK, ok.Terminate)
	require.Equal(t, http.StatusNotFound, ok.AfterTerm, "the call ended")
	require.Len(t, peer.Calls(), 1)

	bad := reports.next(t, "the page on the origin not allowed", 60*time.Second)
	t.Logf("origin not allowed: %+v", bad)
	require.Empty(t, bad.Error)
	require.Equal(t, deniedSite.URL, bad.Origin)
	require.True(t, strings.HasPrefix(bad.StartupError, "blocked: TypeError"), "the browser refused the startup: %+v", bad)
	require.True(t, strings.HasPrefix(bad.ReadError, "blocked: TypeError"), "the browser refused the read: %+v", bad)
	// The server refused the preflights (403), so nothing was sent and no
	// call was placed.
	time.Sleep(500 * time.Millisecond)
	code, body := rest(t, srv.base, "/call/find", map[string]string{"callId": "cors-denied"})
	require.Equal(t, http.StatusNotFound, code, "%s", body)
	require.Len(t, peer.Calls(), 1, "the peer got no second call")
	rejected := metricValue(t, getMetrics(t, srv.base), `sipstream_http_rejected_total{reason="origin"}`)
	require.GreaterOrEqual(t, rejected, 2.0, "the two preflights were refused for their origin")
}
