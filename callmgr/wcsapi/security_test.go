package wcsapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sink/whep"
)

// After 5 failed logins from one address, that address gets 429 with
// Retry-After, even with the right password, for a delay that doubles with
// each further failure; other addresses are not affected; a success after
// the delay forgets the failures.
func TestLoginThrottle(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	_, s, ts := newTestServer(t, serverOptions{AuthUser: "admin", AuthPass: "right-pass", Now: clock})
	for i := 0; i < throttleFails; i++ {
		require.Equal(t, http.StatusUnauthorized, callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "wrong").status, i)
	}
	r := callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "right-pass")
	require.Equal(t, http.StatusTooManyRequests, r.status, "blocked even with the right password")
	require.Equal(t, "1", r.header.Get("Retry-After"))
	// Another address is not blocked.
	req := httptest.NewRequest("POST", "/rest-api/call/find_all", strings.NewReader(""))
	req.RemoteAddr = "192.0.2.9:4000"
	req.Host = "localhost"
	req.SetBasicAuth("admin", "right-pass")
	rec := httptest.NewRecorder()
	testHandler(s, nil).ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotFound, rec.Code)

	advance(2 * time.Second)
	require.Equal(t, http.StatusUnauthorized, callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "wrong").status)
	r = callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "right-pass")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "2", r.header.Get("Retry-After"), "the delay doubles")
	advance(3 * time.Second)
	require.Equal(t, http.StatusNotFound, callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "right-pass").status)
	require.Equal(t, http.StatusUnauthorized, callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "wrong").status, "a success forgot the failures")
	// No credentials at all (a browser's first request) is not a failure.
	for i := 0; i < 10; i++ {
		require.Equal(t, http.StatusUnauthorized, call(t, ts, "/rest-api/call/find_all", ``).status)
	}
	require.Equal(t, http.StatusNotFound, callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "right-pass").status)
	require.Contains(t, scrape(t, s), `sipstream_http_rejected_total{reason="throttled"} 2`)
}

func TestThrottleTableBounded(t *testing.T) {
	th := newThrottle(nil)
	th.maxClients = 100
	for i := 0; i < 1000; i++ {
		th.fail(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String())
	}
	require.LessOrEqual(t, len(th.clients), 100)
}

// Viewers play with a token the admin asked for: without one, with a
// forged, expired or other stream's token, or once the stream belongs to
// another call, WHEP answers 401. The token holds no stream key.
func TestViewerTokens(t *testing.T) {
	ws := newWebRTCStreams(whep.Config{MediaWait: 50 * time.Millisecond})
	require.NoError(t, ws.reserve("show", "call-1"))
	sink, err := ws.newSink(true, func() {})
	require.NoError(t, err)
	defer sink.Close(context.Background())
	require.True(t, ws.mux.Attach("show", "call-1", sink, "sink-1"))

	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f, s, ts := newTestServerWHEP(t, serverOptions{AuthUser: "admin", AuthPass: "pw-123456", StreamCall: ws.mux.Owner, Now: clock}, ws)
	f.calls = []Call{{CallID: "call-1", Status: "ESTABLISHED", StreamName: "show", RTMPURL: "rtmp://h/live", RTMPStream: "SECRET-KEY-1"}}

	r := callAuth(t, ts, "/rest-api/viewer/token", `{"streamName":"show","ttl":60}`, "admin", "pw-123456")
	require.Equal(t, http.StatusOK, r.status, r.body)
	var tr ViewerToken
	require.NoError(t, json.Unmarshal([]byte(r.body), &tr))
	require.Equal(t, "call-1", tr.CallID)
	payload, _, _ := strings.Cut(tr.Token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "SECRET-KEY-1")
	require.NotContains(t, r.body, "SECRET-KEY-1")
	require.Equal(t, "/whep/show?token="+tr.Token, tr.WHEPURL)

	// Viewers cannot ask for tokens.
	require.Equal(t, http.StatusUnauthorized, call(t, ts, "/rest-api/viewer/token", `{"streamName":"show"}`).status)
	require.Equal(t, http.StatusNotFound, callAuth(t, ts, "/rest-api/viewer/token", `{"streamName":"nope"}`, "admin", "pw-123456").status)

	offer := func(url string, hdr map[string]string) int {
		code, _, _ := do(t, "POST", url, "application/sdp", "v=0\r\n", hdr)
		return code
	}
	require.Equal(t, http.StatusUnauthorized, offer(ts.URL+"/whep/show", nil), "no token")
	// With a token the request reaches the sink (which has no media yet:
	// 503).
	require.Equal(t, http.StatusServiceUnavailable, offer(ts.URL+"/whep/show", map[string]string{"Authorization": "Bearer " + tr.Token}))
	require.Equal(t, http.StatusServiceUnavailable, offer(ts.URL+tr.WHEPURL, nil))
	require.Equal(t, http.StatusServiceUnavailable, offer(withAuth(ts.URL, "admin", "pw-123456")+"/whep/show", nil), "the admin plays too")
	forged := tr.Token[:len(tr.Token)-2] + "AA"
	require.Equal(t, http.StatusUnauthorized, offer(ts.URL+"/whep/show", map[string]string{"Authorization": "Bearer " + forged}))
	other := s.tokens.issue("other", "call-1", clock().Add(time.Hour))
	require.Equal(t, http.StatusUnauthorized, offer(ts.URL+"/whep/show?token="+other, nil), "another stream's token")
	stale := s.tokens.issue("show", "call-0", clock().Add(time.Hour))
	require.Equal(t, http.StatusUnauthorized, offer(ts.URL+"/whep/show?token="+stale, nil), "an earlier call's token")
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	code, body, _ := do(t, "POST", ts.URL+tr.WHEPURL, "application/sdp", "v=0\r\n", nil)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, body, "expired")
	require.Contains(t, scrape(t, s), `sipstream_http_rejected_total{reason="token"} 4`)
}

// Stream keys, URL credentials and queries never reach the events, the
// webhook (unless -webhook-secrets), error texts or the log; the admin's
// /call/find still returns them, as the product does.
func TestSecretsRedacted(t *testing.T) {
	const (
		key   = "SECRET-STREAM-KEY-9"
		upass = "SECRET-URL-PASS"
		tok   = "SECRET-QUERY-TOKEN"
	)
	rtmpURL := "rtmp://bob:" + upass + "@rtmp.example.com/live?token=" + tok
	pushURL := "rtmp://bob:" + upass + "@rtmp.example.com/live/" + key + "?token=" + tok
	for _, secretsOn := range []bool{false, true} {
		got := make(chan StatusEvent, 16)
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var ev StatusEvent
			if json.NewDecoder(r.Body).Decode(&ev) == nil {
				got <- ev
			}
		}))
		var logBuf testenv.SyncBuffer
		sec := NewSecrets()
		log := slog.New(NewRedactingHandler(slog.NewTextHandler(&logBuf, nil), sec))
		f, s, ts := newTestServer(t, serverOptions{Webhook: hook.URL, WebhookSecrets: secretsOn, Log: log, Secrets: sec})
		f.onStart = func(p startParams) {
			log.Info("starting", "url", p.RTMPURL, "err", io.ErrUnexpectedEOF, "key", "publishing "+p.RTMPStream)
		}
		body := `{"callId":"c1","callee":"1001@pbx.example.com","rtmpUrl":"` + rtmpURL + `","rtmpStream":"` + key + `","sipPassword":"SECRET-SIP-PASS"}`
		require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", body).status)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		rd := bufio.NewReader(resp.Body)
		var sse bytes.Buffer
		readUntil := func(marker string) {
			for !strings.Contains(sse.String(), marker) {
				line, err := rd.ReadString('\n')
				require.NoError(t, err)
				sse.WriteString(line)
			}
		}
		readUntil("event: snapshot")
		readUntil("\n\n")
		s.notify(StatusEvent{Type: "RtmpStatusEvent", CallID: "c1", Status: "ESTABLISHED", RTMPURL: pushURL,
			RTMPStreamStatus: "RTMP_CONNECTION_FAILED", Info: "dial tcp 10.1.2.3:1935: connect: connection refused"},
			Call{CallID: "c1", Status: "ESTABLISHED", RTMPURL: rtmpURL, RTMPStream: key,
				RTMPStatusInfo: "publish " + rtmpURL + "/" + key + " failed"})
		readUntil("event: call")
		readUntil("}\n\n")
		resp.Body.Close()
		cancel()
		var ev StatusEvent
		select {
		case ev = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("no webhook event")
		}
		hook.Close()

		for _, secret := range []string{key, upass, tok, "SECRET-SIP-PASS"} {
			require.NotContains(t, sse.String(), secret, "SSE")
			require.NotContains(t, logBuf.String(), secret, "log")
		}
		require.Contains(t, sse.String(), `"rtmpUrl":"rtmp://rtmp.example.com/live?***"`)
		require.Contains(t, logBuf.String(), "url=rtmp://rtmp.example.com/live?***")
		require.Equal(t, "connection failed", ev.Info, "no connection details (port scanning)")
		if secretsOn {
			require.Equal(t, pushURL, ev.RTMPURL, "-webhook-secrets")
		} else {
			require.Equal(t, "rtmp://rtmp.example.com/live/***?***", ev.RTMPURL)
		}
		// The admin's find returns the call as started.
		r := call(t, ts, "/rest-api/call/find", `{"callId":"c1"}`)
		require.Contains(t, r.body, key)
		require.NotContains(t, r.body, "SECRET-SIP-PASS")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"rtmp://a.rtmp.youtube.com/live2":                      "rtmp://a.rtmp.youtube.com/live2",
		"rtmp://a.rtmp.youtube.com/live2/abcd-efgh":            "rtmp://a.rtmp.youtube.com/live2/***",
		"rtmps://u:p@live-api-s.facebook.com:443/rtmp/KEY?s=1": "rtmps://live-api-s.facebook.com:443/rtmp/***?***",
		"https://hook.example.com/x?sig=abc":                   "https://hook.example.com/x?***",
		"not a url":                                            "***",
		"":                                                     "",
	} {
		require.Equal(t, want, redactURL(in), in)
	}
	sec := NewSecrets()
	sec.Add("short", "long-secret-1")
	require.Equal(t, "short *** rtmp://h/app/***", sec.Scrub("short long-secret-1 rtmp://x:y@h/app/key"))
	require.Equal(t, "connection failed", publicReason("dial tcp 10.0.0.1:22: i/o timeout", sec))
	require.Equal(t, "connection failed", publicReason("lookup internal.corp: no such host", sec))
	require.Equal(t, "NetStream.Publish.BadName", publicReason("NetStream.Publish.BadName", sec))
}

// CSRF and DNS rebinding: a body that is not JSON is refused (415) whatever
// its origin; a browser request from another origin is refused (403), its
// preflight too, unless -cors-origins lists it; a Host that is not this
// server's is refused (421). Nothing refused starts a call.
func TestCSRFAndHost(t *testing.T) {
	f, s, ts := newTestServer(t, serverOptions{CORSOrigins: []string{"https://app.example.com"}})
	startup := ts.URL + "/rest-api/call/startup"
	body := `{"callId":"x1","callee":"1001@pbx.example.com"}`

	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		code, out, _ := do(t, "POST", startup, ct, body, nil)
		require.Equal(t, http.StatusUnsupportedMediaType, code, "%q: %s", ct, out)
		require.Contains(t, out, "Content-Type: application/json")
	}
	code, _, _ := do(t, "POST", startup, "text/plain", body, map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = do(t, "POST", startup, "application/json", body, map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = do(t, "POST", startup, "application/json", body, map[string]string{"Origin": "null"})
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = do(t, "POST", startup, "text/plain", body, map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = do(t, "OPTIONS", startup, "", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = do(t, "POST", startup, "application/json", body, map[string]string{"Host": "evil.example:80"})
	require.Equal(t, http.StatusMisdirectedRequest, code)
	code, _, _ = do(t, "GET", ts.URL+"/", "", "", map[string]string{"Host": "rebind.evil.example"})
	require.Equal(t, http.StatusMisdirectedRequest, code)
	require.Empty(t, f.Calls(), "nothing refused started a call")

	// Allowed: the listed origin (with its preflight), the page's own
	// origin, localhost, an empty body without a type.
	code, _, hdr := do(t, "OPTIONS", startup, "", "", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	require.Equal(t, http.StatusNoContent, code)
	require.Equal(t, "https://app.example.com", hdr.Get("Access-Control-Allow-Origin"))
	require.Contains(t, hdr.Get("Access-Control-Allow-Headers"), "Content-Type")
	code, _, hdr = do(t, "POST", startup, "application/json", body, map[string]string{"Origin": "https://app.example.com"})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "https://app.example.com", hdr.Get("Access-Control-Allow-Origin"))
	code, _, _ = do(t, "POST", startup, "application/json; charset=utf-8", `{"callId":"x2","callee":"1002@pbx.example.com"}`, map[string]string{"Origin": ts.URL})
	require.Equal(t, http.StatusOK, code)
	port := ts.URL[strings.LastIndex(ts.URL, ":"):]
	code, _, _ = do(t, "POST", ts.URL+"/rest-api/call/find_all", "", "", map[string]string{"Host": "localhost" + port})
	require.Equal(t, http.StatusOK, code)
	require.Len(t, f.Calls(), 2)
	m := scrape(t, s)
	require.Contains(t, m, `sipstream_http_rejected_total{reason="origin"} 5`)
	require.Contains(t, m, `sipstream_http_rejected_total{reason="host"} 2`)
}

func TestHostPolicy(t *testing.T) {
	pub := netip.MustParseAddr("203.0.113.7")
	local := []netip.Addr{netip.MustParseAddr("10.9.8.7")}
	h := newHostPolicy([]string{"sip.example.com", "*.corp.example"}, []string{"0.0.0.0:8081", "192.0.2.1:8444"}, pub, local)
	for host, want := range map[string]bool{
		"localhost:8081": true, "127.0.0.1": true, "[::1]:8081": true, "app.localhost": true,
		"203.0.113.7:8081": true, "10.9.8.7:8081": true, "192.0.2.1:8444": true,
		"sip.example.com": true, "SIP.example.com.:8081": true, "a.corp.example": true,
		"evil.example": false, "198.51.100.1:8081": false, "sip.example.com.evil": false, "corp.example": false,
	} {
		require.Equal(t, want, h.allowed(host), host)
	}
	only := newHostPolicy(nil, []string{"192.0.2.1:8081"}, netip.Addr{}, local)
	require.False(t, only.allowed("10.9.8.7:8081"), "not listening on every address")
	require.True(t, newHostPolicy([]string{"*"}, nil, netip.Addr{}, nil).allowed("anything.example"))
}

// -allow-callees and -allow-rtmp-hosts: a callee, domain, proxy or RTMP host
// not listed is a 403 that names the field; nothing is dialled.
func TestAllowLists(t *testing.T) {
	callees, err := newAllowList(strings.Split("pbx.example.com, 1???@*.trunk.example", ","))
	require.NoError(t, err)
	hosts, err := newAllowList(strings.Split("*.rtmp.youtube.com,127.0.0.1", ","))
	require.NoError(t, err)
	f, _, ts := newTestServer(t, serverOptions{AllowCallees: callees, AllowRTMPHosts: hosts})
	for body, want := range map[string]string{
		`{"callId":"a","callee":"sip:900@evil.example"}`:                                      "callee",
		`{"callId":"b","callee":"12345@a.trunk.example"}`:                                     "callee",
		`{"callId":"c","callee":"1001","sipDomain":"evil.example"}`:                           "callee",
		`{"callId":"d","callee":"1001@pbx.example.com","sipOutboundProxy":"10.0.0.1:5060"}`:   "sipOutboundProxy",
		`{"callId":"e","callee":"1001@pbx.example.com","rtmpUrl":"rtmp://10.0.0.5:22/live"}`:  "rtmpUrl",
		`{"callId":"f","callee":"1001@pbx.example.com","rtmpUrl":"rtmp://evil.example/live"}`: "rtmpUrl",
		`{"callId":"g","callee":"1001@PBX.example.com:5070","sipDomain":"other.example"}`:     "sipDomain",
	} {
		r := call(t, ts, "/rest-api/call/startup", body)
		require.Equal(t, http.StatusForbidden, r.status, body)
		require.Contains(t, errorBody(t, r).Message, want+": ", body)
	}
	require.Empty(t, f.Calls())
	for _, body := range []string{
		`{"callId":"h","callee":"sip:1001@PBX.example.com:5070"}`,
		`{"callId":"i","callee":"1234@a.trunk.example","rtmpUrl":"rtmp://a.rtmp.youtube.com/live2","rtmpStream":"k"}`,
		`{"callId":"j","callee":"1001","sipDomain":"pbx.example.com","sipOutboundProxy":"pbx.example.com:5060"}`,
	} {
		r := call(t, ts, "/rest-api/call/startup", body)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", body, r.body)
	}
	r := call(t, ts, "/rest-api/push/startup", `{"streamName":"h","rtmpUrl":"rtmp://169.254.169.254/live"}`)
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/push/startup", `{"streamName":"h","rtmpUrl":"rtmp://127.0.0.1/live"}`).status)
	_, err = newAllowList([]string{"[bad"})
	require.Error(t, err)
}

// -max-sse: one subscriber too many gets 503; the event stream outlives
// the server's read and write timeouts (its own per-write deadline).
func TestEventStreamCapAndTimeouts(t *testing.T) {
	s := newServer(&fakeCalls{}, serverOptions{NoAuth: true, MaxSSE: 1})
	defer s.close()
	hs := &http.Server{Handler: testHandler(s, nil), ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond, IdleTimeout: time.Second}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = hs
	ts.Start()
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "event: snapshot\n", line)

	code, body, _ := do(t, "GET", ts.URL+"/events", "", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "-max-sse")

	time.Sleep(time.Second) // past the read and write timeouts
	s.notify(StatusEvent{Type: "CallStatusEvent", CallID: "late", Status: "RING"}, Call{CallID: "late", Status: "RING"})
	for !strings.Contains(line, `"late"`) {
		line, err = rd.ReadString('\n')
		require.NoError(t, err, "the stream outlived the timeouts")
	}
	require.Contains(t, scrape(t, s), "sipstream_sse_refused_total 1")
}

// A full webhook queue drops events, counts them in a metric and logs it.
func TestWebhookDropsCountedAndLogged(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hook.Close()
	defer close(release)
	var logBuf testenv.SyncBuffer
	s := newServer(&fakeCalls{}, serverOptions{NoAuth: true, Webhook: hook.URL, WebhookQueue: 2,
		Log: slog.New(slog.NewTextHandler(&logBuf, nil))})
	for i := 0; i < 10; i++ {
		s.notify(StatusEvent{Type: "CallStatusEvent", CallID: "c", Status: "RING"}, Call{CallID: "c"})
	}
	m := scrape(t, s)
	require.Regexp(t, `sipstream_webhook_dropped_total [78]\n`, m)
	require.Contains(t, logBuf.String(), "webhook queue full: events dropped")
	release <- struct{}{}
	s.close()
}

// The REST answer to a call over -max-calls is 503 with a clear message;
// pushes over -max-pushes are refused.
func TestMapErrTooManyCalls(t *testing.T) {
	status, msg := statusOf(mapErr(errorsJoinTooMany()))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, msg, "-max-calls")
}

func errorsJoinTooMany() error { return fmt.Errorf("start: %w", callmgr.ErrTooManyCalls) }
