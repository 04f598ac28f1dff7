package wcsapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Input and semantics the product's clients rely on (issue 16), each as the
// product's documentation has it: wcs-docs/001 ("Stream capturing from a SIP
// call") and WCS-API.md.

// CORS: the product answers with Access-Control-Allow-Origin (wcs-docs/001,
// Known issues 3). A listed origin gets its origin echoed with credentials,
// "*" (opt-in) gets "*" on every response, an origin not allowed stays 403;
// preflights need no login and never get 405.
func TestCompatCORS(t *testing.T) {
	const user, pass = "admin", "pw-123456"
	_, s, ts := newTestServer(t, serverOptions{AuthUser: user, AuthPass: pass, CORSOrigins: []string{"https://app.example.com"}})
	startup := ts.URL + "/rest-api/call/startup"

	// Preflight from a listed origin: no login, 204, the headers.
	code, _, hdr := do(t, "OPTIONS", startup, "", "", map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization, content-type"})
	require.Equal(t, http.StatusNoContent, code)
	require.Equal(t, "https://app.example.com", hdr.Get("Access-Control-Allow-Origin"))
	require.Contains(t, hdr.Get("Access-Control-Allow-Methods"), "POST")
	require.Contains(t, hdr.Get("Access-Control-Allow-Headers"), "Authorization")
	require.Contains(t, hdr.Get("Access-Control-Allow-Headers"), "Content-Type")
	require.Equal(t, "true", hdr.Get("Access-Control-Allow-Credentials"))
	require.Contains(t, hdr.Values("Vary"), "Origin")

	// A bare OPTIONS (no Access-Control-Request-Method): 204, not 405/401.
	code, _, hdr = do(t, "OPTIONS", startup, "", "", nil)
	require.Equal(t, http.StatusNoContent, code)
	require.Contains(t, hdr.Get("Allow"), "POST")
	require.Empty(t, hdr.Get("Access-Control-Allow-Origin"), "no CORS header without an allowed cross origin")

	// The actual request from the listed origin carries the headers, errors too.
	code, _, hdr = do(t, "POST", withAuth(ts.URL, user, pass)+"/rest-api/call/find_all", "application/json", "{}",
		map[string]string{"Origin": "https://app.example.com"})
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "https://app.example.com", hdr.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", hdr.Get("Access-Control-Allow-Credentials"))

	// Not listed: refused, preflight and request, with no CORS header.
	code, _, hdr = do(t, "OPTIONS", startup, "", "", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	require.Equal(t, http.StatusForbidden, code)
	require.Empty(t, hdr.Get("Access-Control-Allow-Origin"))
	code, _, _ = do(t, "POST", withAuth(ts.URL, user, pass)+"/rest-api/call/find_all", "application/json", "{}",
		map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, scrape(t, s), `sipstream_http_rejected_total{reason="origin"} 2`)

	// "*": the product's header, literally, on every response, and no
	// credentials (a cached login is not sent cross-origin).
	_, _, any := newTestServer(t, serverOptions{AuthUser: user, AuthPass: pass, CORSOrigins: []string{"*"}})
	code, _, hdr = do(t, "OPTIONS", any.URL+"/rest-api/call/startup", "", "", map[string]string{"Origin": "https://anywhere.example", "Access-Control-Request-Method": "POST"})
	require.Equal(t, http.StatusNoContent, code)
	require.Equal(t, "*", hdr.Get("Access-Control-Allow-Origin"))
	require.Empty(t, hdr.Get("Access-Control-Allow-Credentials"))
	code, _, hdr = do(t, "POST", withAuth(any.URL, user, pass)+"/rest-api/call/find_all", "application/json", "{}", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "*", hdr.Get("Access-Control-Allow-Origin"))
	code, _, _ = do(t, "POST", any.URL+"/rest-api/call/find_all", "application/json", "{}", map[string]string{"Origin": "https://anywhere.example"})
	require.Equal(t, http.StatusUnauthorized, code, "the login is still required")

	// Default (no CORSOrigins): no CORS header, cross origins refused.
	_, _, def := newTestServer(t, serverOptions{})
	code, _, hdr = do(t, "POST", def.URL+"/rest-api/call/find_all", "application/json", "{}", nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Empty(t, hdr.Get("Access-Control-Allow-Origin"))
	code, _, _ = do(t, "OPTIONS", def.URL+"/rest-api/call/startup", "", "", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
	require.Equal(t, http.StatusForbidden, code)
}

// The product's own /call/startup example (wcs-docs/001, REST table) is
// accepted as sent: "rtmpUrl": "rtmp://localhost:1935/live /".
func TestCompatStartupDocExample(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup", `{ "callId": "123456711", "callee": "10000", "toStream": "stream1", "rtmpUrl": "rtmp://localhost:1935/live /", "rtmpStream": "rtmp_stream1", "hasAudio": "true", "hasVideo": "true", "sipLogin": "10009", "sipAuthenticationName": "10009", "sipPassword": "1234", "sipDomain": "226.226.225.226", "sipOutboundProxy": "226.226.225.226", "sipPort": "5060", "appKey": "defaultApp", "sipRegisterRequired": "false" }`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "{}\n", r.body)
	require.Equal(t, "rtmp://localhost:1935/live", f.params[0].RTMPURL)
	require.Equal(t, "rtmp_stream1", f.params[0].RTMPStream)
	// /call/find by the URL as the example wrote it finds the call.
	r = call(t, ts, "/rest-api/call/find", `{"rtmpUrl":"rtmp://localhost:1935/live /"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = call(t, ts, "/rest-api/call/find", `{"rtmpUrl":"rtmp://localhost:1935/live"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
}

// An application URL with a query ("Also, in RTMP URL the instance name and
// the query string can be specified", wcs-docs/001, Parameters) and a
// separate rtmpStream is accepted; the query stays with the URL (package
// rtmp sends it in the app and tcUrl, TestAppURLWithQuery in rtmpsink).
func TestCompatRTMPURLWithQuery(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup", `{"callId":"q1","callee":"1001@pbx.example.com","rtmpUrl":"rtmp://rtmp.example.com:1935/live/_definst_?param1=value1&param2=value2","rtmpStream":"streamName2"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "rtmp://rtmp.example.com:1935/live/_definst_?param1=value1&param2=value2", f.params[0].RTMPURL)
	require.Equal(t, "streamName2", f.params[0].RTMPStream)
	r = call(t, ts, "/rest-api/call/startup", `{"callId":"q2","callee":"1001@pbx.example.com","rtmpUrl":"rtmp://host/live?x=1","rtmpStream":"s"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "rtmp://host/live?x=1", f.params[1].RTMPURL)
}

// sipVisibleName (wcs-docs/001, Known issues 3) is the display name;
// visibleName (the REST table's name) wins when both are sent; a bad one is
// refused under the name it was sent as.
func TestCompatSIPVisibleName(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup", `{"callId":"v1","callee":"1001@pbx.example.com","sipLogin":"Ralf_C12441","sipAuthenticationName":"Ralf_C","sipPassword":"demo","sipVisibleName":"Ralf C"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "Ralf C", f.params[0].VisibleName)
	r = call(t, ts, "/rest-api/call/startup", `{"callId":"v2","callee":"1001@pbx.example.com","visibleName":"Alice","sipVisibleName":"Ralf C"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "Alice", f.params[1].VisibleName)
	r = call(t, ts, "/rest-api/call/startup", `{"callId":"v3","callee":"1001@pbx.example.com","connection":{"sipVisibleName":"Nested N"}}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "Nested N", f.params[2].VisibleName)
	r = call(t, ts, "/rest-api/call/startup", `{"callId":"v4","callee":"1001@pbx.example.com","sipVisibleName":"bad\r\nX-Evil: 1"}`)
	require.Equal(t, http.StatusBadRequest, r.status, r.body)
	require.Contains(t, errorBody(t, r).Message, "sipVisibleName")
}

// Error bodies carry the product's "exception" field (wcs-docs/001, Known
// issues 3: "com.flashphoner.rest.server.exception.InternalErrorException").
func TestCompatErrorException(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/find", `{"callId":"nope"}`)
	require.Equal(t, http.StatusNotFound, r.status)
	e := errorBody(t, r)
	require.Equal(t, "com.flashphoner.rest.server.exception.NotFoundException", e.Exception)
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.body), &raw))
	for _, k := range []string{"error", "exception", "message", "path", "status", "timestamp"} {
		require.Contains(t, raw, k)
	}
	require.Equal(t, "com.flashphoner.rest.server.exception.InternalErrorException", exceptionOf(http.StatusInternalServerError))
	require.Equal(t, "com.flashphoner.rest.server.exception.ConflictException", exceptionOf(http.StatusConflict))
	require.Equal(t, "com.flashphoner.rest.server.exception.BadRequestException", exceptionOf(http.StatusBadRequest))
}

// managerPushes is fakeCalls with pushes reported as managerService does
// (pushObjectOf): the published stream name appended to rtmpUrl.
type managerPushes struct{ *fakeCalls }

func (m managerPushes) PushStart(ctx context.Context, p pushParams) (Push, error) {
	if !p.FullURL {
		p.RTMPURL = strings.TrimSuffix(p.RTMPURL, "/") + "/" + pushPrefix + p.StreamName
	}
	return m.fakeCalls.PushStart(ctx, p)
}

func newPushServer(t *testing.T) (*fakeCalls, *httptest.Server) {
	t.Helper()
	f := &fakeCalls{}
	s := newServer(managerPushes{f}, serverOptions{NoAuth: true})
	ts := httptest.NewServer(testHandler(s, nil))
	t.Cleanup(func() {
		ts.Close()
		s.close()
	})
	return f, ts
}

// /push/startup of a stream already pushed to the same place: 409
// (WCS-API.md 4.2); /push/find by the rtmpUrl the client sent finds it.
func TestCompatPushDuplicateAndFind(t *testing.T) {
	_, ts := newPushServer(t)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)

	r := call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"rtmp://h/live"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"rtmp://h/live/"}`)
	require.Equal(t, http.StatusConflict, r.status, r.body)
	require.Equal(t, "com.flashphoner.rest.server.exception.ConflictException", errorBody(t, r).Exception)
	r = call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"rtmp://h/live/rtmp_call1","rtmpTransponderFullUrl":true}`)
	require.Equal(t, http.StatusConflict, r.status, "the same target written in full: %s", r.body)
	r = call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"rtmp://h/other"}`)
	require.Equal(t, http.StatusOK, r.status, "another URL is another push: %s", r.body)
	r = call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"rtmp://h/live/key","rtmpTransponderFullUrl":"true"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"rtmp://h/live/key","rtmpTransponderFullUrl":"true"}`)
	require.Equal(t, http.StatusConflict, r.status, r.body)

	find := func(body string) []Push {
		t.Helper()
		r := call(t, ts, "/rest-api/push/find", body)
		if r.status == http.StatusNotFound {
			return nil
		}
		require.Equal(t, http.StatusOK, r.status, r.body)
		var out []Push
		require.NoError(t, json.Unmarshal([]byte(r.body), &out))
		return out
	}
	got := find(`{"rtmpUrl":"rtmp://h/live"}`)
	require.Len(t, got, 1, "by the URL the client sent")
	require.Equal(t, "rtmp://h/live/rtmp_call1", got[0].RTMPURL)
	require.Len(t, find(`{"rtmpUrl":"rtmp://h/live/"}`), 1)
	require.Len(t, find(`{"rtmpUrl":"rtmp://h/live/rtmp_call1"}`), 1, "by the URL it reports")
	require.Len(t, find(`{"rtmpUrl":"rtmp://h/live/key"}`), 1, "a full URL by itself")
	require.Len(t, find(`{"streamName":"call1","rtmpUrl":"rtmp://h/other"}`), 1)
	require.Empty(t, find(`{"rtmpUrl":"rtmp://h/nothing"}`))
}

// blockingDTMF is fakeCalls whose SendDTMF takes its time, or fails.
type blockingDTMF struct {
	*fakeCalls
	release chan struct{}
	fail    error
	mu      sync.Mutex
	sent    []string
}

func (b *blockingDTMF) SendDTMF(ctx context.Context, id, digits, typ string) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, digits)
	return b.fail
}

func (b *blockingDTMF) got() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sent...)
}

// /call/send_dtmf answers 200 at once for a live call (the digits go out in
// the background, in order; a failure is logged, not answered) and 404 for
// an unknown or ended call: the product's "200 - DTMF is sent, 404 - call is
// not found" (wcs-docs/001, REST table).
func TestCompatSendDTMF(t *testing.T) {
	f := &fakeCalls{}
	b := &blockingDTMF{fakeCalls: f, release: make(chan struct{}), fail: errors.New("not established")}
	s := newServer(b, serverOptions{NoAuth: true})
	ts := httptest.NewServer(testHandler(s, nil))
	defer func() {
		ts.Close()
		s.close()
	}()
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)

	start := time.Now()
	for _, d := range []string{"1", "2", "3#"} {
		r := call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"c1","dtmf":"`+d+`","type":"RFC2833"}`)
		require.Equal(t, http.StatusOK, r.status, r.body)
		require.Equal(t, "{}\n", r.body)
	}
	require.Less(t, time.Since(start), 2*time.Second, "answered before the digits were sent")
	require.Empty(t, b.got())
	close(b.release)
	require.Eventually(t, func() bool { return len(b.got()) == 3 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"1", "2", "3#"}, b.got(), "in order, and the send error was not answered")

	require.Equal(t, http.StatusNotFound, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"zz","dtmf":"1"}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/terminate", `{"callId":"c1"}`).status)
	require.Equal(t, http.StatusNotFound, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"c1","dtmf":"1"}`).status, "an ended call")
	require.Equal(t, http.StatusBadRequest, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"c1","dtmf":"x"}`).status)
}

// Closing the server cancels digits still being sent and drops queued
// ones: no sender outlives it (goleak checks in TestMain).
func TestCompatSendDTMFClose(t *testing.T) {
	f := &fakeCalls{}
	b := &blockingDTMF{fakeCalls: f, release: make(chan struct{})}
	s := newServer(b, serverOptions{NoAuth: true})
	ts := httptest.NewServer(testHandler(s, nil))
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)
	for range 3 {
		require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"c1","dtmf":"1"}`).status)
	}
	ts.Close()
	done := make(chan struct{})
	go func() { s.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return")
	}
	require.Empty(t, b.got())
}
