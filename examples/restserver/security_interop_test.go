//go:build interop && linux

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

// csrfPage is the attacker's page (served from another origin, under the
// name evil.test): it tries every way a web page has to start a call on the
// server at TARGET (a -demo server on loopback, which needs no login, so
// the browser's own checks and the server's are all that stand in the way),
// and reads nothing back but what the browser lets it see.
const csrfPage = `<!doctype html>
<html><body>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" target="sink" action="TARGET/rest-api/call/startup">
<input type="hidden" name='{"callId":"csrf-form","callee":"CALLEE","x":"' value='"}'>
</form>
<iframe id="rebind"></iframe>
<script>
"use strict";
const target = "TARGET";
const body = (id) => JSON.stringify({callId: id, callee: "CALLEE", toStream: id});
async function attempt(name, fn) {
  try { return await fn(); } catch (e) { return "blocked: " + e.name; }
}
function loaded(el, start) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), 10000);
    el.onload = () => { clearTimeout(timer); resolve("loaded"); };
    start();
  });
}
(async () => {
  const r = {};
  // A JSON POST needs a CORS preflight: the server refuses it.
  r.jsonFetch = await attempt("json", async () => {
    const resp = await fetch(target + "/rest-api/call/startup", {method: "POST", headers: {"Content-Type": "application/json"}, body: body("csrf-json")});
    return "status " + resp.status;
  });
  // A "simple" POST goes out without a preflight; the browser hides the
  // answer, the server must refuse it.
  r.noCors = await attempt("nocors", async () => {
    const resp = await fetch(target + "/rest-api/call/startup", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: body("csrf-plain")});
    return "opaque " + resp.type;
  });
  // Reading the calls list with CORS.
  r.read = await attempt("read", async () => {
    const resp = await fetch(target + "/rest-api/call/find_all", {method: "POST"});
    return "status " + resp.status + " " + (await resp.text());
  });
  // The classic: a text/plain form whose body is JSON.
  r.form = await loaded(document.getElementById("sink"), () => document.getElementById("f").submit());
  // DNS rebinding: the server reached under the attacker's name.
  r.rebindFetch = await attempt("rebind", async () => {
    const resp = await fetch("REBIND/rest-api/call/startup", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: body("csrf-rebind")});
    return "opaque " + resp.type;
  });
  const fr = document.getElementById("rebind");
  r.rebindPage = await loaded(fr, () => { fr.src = "REBIND/"; });
  await fetch("/report", {method: "POST", body: JSON.stringify(r)});
})();
</script>
</body></html>`

// A real Chromium opens a page from another origin that tries to start a
// call on a -demo server (loopback, no login): a JSON fetch (its preflight
// is refused), a no-cors text/plain fetch, a text/plain form post into an
// iframe, and the same under a rebound name (evil.test resolving to the
// server). No call is started (the server's calls list stays empty), the
// browser reports the JSON fetch and the read blocked, and the server
// counts the refusals (origin, host).
func TestInteropChromiumCSRF(t *testing.T) {
	srv := startServerProcess(t, "-demo")
	// The demo callee: had any attempt got through, it would really be
	// called.
	code, def := getJSON(t, srv.base+"/defaults")
	require.Equal(t, http.StatusOK, code)
	callee, _ := def["callee"].(string)
	require.NotEmpty(t, callee)

	port := srv.addr[strings.LastIndex(srv.addr, ":")+1:]
	reports := make(chan map[string]string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /attack.html", func(w http.ResponseWriter, r *http.Request) {
		page := strings.NewReplacer("TARGET", "http://"+srv.addr, "CALLEE", callee, "REBIND", "http://evil.test:"+port).Replace(csrfPage)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var res map[string]string
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&res); err != nil {
			res = map[string]string{"error": err.Error()}
		}
		select {
		case reports <- res:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	attacker := httptest.NewServer(mux)
	defer attacker.Close()
	attackerPort := attacker.URL[strings.LastIndex(attacker.URL, ":")+1:]

	testenv.StartChromium(t, testenv.ChromiumConfig{
		URL:       "http://evil.test:" + attackerPort + "/attack.html",
		HostRules: "MAP evil.test 127.0.0.1",
	})
	var res map[string]string
	select {
	case res = <-reports:
	case <-time.After(90 * time.Second):
		t.Fatalf("chromium reported nothing within 90 s\n%s", srv.log())
	}
	t.Logf("browser: %v", res)
	require.Empty(t, res["error"])
	require.True(t, strings.HasPrefix(res["jsonFetch"], "blocked"), "the JSON POST's preflight is refused: %v", res)
	require.True(t, strings.HasPrefix(res["read"], "blocked"), "the calls list cannot be read: %v", res)
	require.Equal(t, "loaded", res["form"], "the form post went out (and was refused)")

	// Nothing was started: the server has no calls at all.
	time.Sleep(time.Second)
	code, body := rest(t, srv.base, "/call/find_all", map[string]any{})
	require.Equal(t, http.StatusNotFound, code, "calls were started: %s", body)
	metrics := getMetrics(t, srv.base)
	origin := metricValue(t, metrics, `sipstream_http_rejected_total{reason="origin"}`)
	host := metricValue(t, metrics, `sipstream_http_rejected_total{reason="host"}`)
	t.Logf("refused by the server: origin %v, host %v", origin, host)
	// The JSON preflight, the no-cors POST, the read and the form post
	// reached the server and were refused for their origin; the rebound
	// fetch and page for their Host.
	require.GreaterOrEqual(t, origin, 4.0)
	require.GreaterOrEqual(t, host, 2.0)
	require.NotContains(t, srv.log(), "call starting", "no call was even attempted")
	srv.interrupt(t)
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}
