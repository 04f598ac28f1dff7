package wcsapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeCalls is an in-memory callService with the product's conflict rules.
type fakeCalls struct {
	mu      sync.Mutex
	calls   []Call
	params  []startParams
	dtmf    []string
	pushes  []Push
	nextID  int
	onStart func(p startParams)

	controls []string
}

func (f *fakeCalls) Start(ctx context.Context, p startParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c.CallID == p.CallID {
			return fmt.Errorf("call %s: %w", p.CallID, errConflict)
		}
		if p.RTMPURL != "" && c.RTMPURL == p.RTMPURL && c.RTMPStream == p.RTMPStream {
			return fmt.Errorf("stream already published: %w", errConflict)
		}
	}
	f.params = append(f.params, p)
	f.calls = append(f.calls, Call{
		CallID: p.CallID, Status: "TRYING", Callee: p.Callee, Caller: p.SIPLogin,
		RTMPURL: p.RTMPURL, RTMPStream: p.RTMPStream, StreamName: p.ToStream,
		HasAudio: p.HasAudio, HasVideo: p.HasVideo, VisibleName: p.VisibleName, AppKey: p.AppKey,
	})
	if f.onStart != nil {
		f.onStart(p)
	}
	return nil
}

func (f *fakeCalls) find(id string) (int, bool) {
	for i, c := range f.calls {
		if c.CallID == id {
			return i, true
		}
	}
	return 0, false
}

func (f *fakeCalls) Terminate(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.find(id)
	if !ok {
		return fmt.Errorf("call %s: %w", id, errNotFound)
	}
	f.calls[i].Status = "FINISH"
	return nil
}

func (f *fakeCalls) SendDTMF(ctx context.Context, id, digits, typ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.find(id); !ok {
		return fmt.Errorf("call %s: %w", id, errNotFound)
	}
	f.dtmf = append(f.dtmf, id+":"+digits+":"+typ)
	return nil
}

func (f *fakeCalls) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

func (f *fakeCalls) PushStart(ctx context.Context, p pushParams) (Push, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c.StreamName == p.StreamName || c.CallID == p.StreamName {
			f.nextID++
			o := Push{MediaSessionID: fmt.Sprintf("push-%d", f.nextID), StreamName: p.StreamName,
				RTMPURL: p.RTMPURL, Status: "RTMP_STREAM_WAIT", Muted: p.Muted, CallID: c.CallID, Options: p.Options}
			f.pushes = append(f.pushes, o)
			return o, nil
		}
	}
	return Push{}, fmt.Errorf("stream %s: %w", p.StreamName, errNotFound)
}

func (f *fakeCalls) PushTerminate(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.pushes {
		if p.MediaSessionID == id {
			f.pushes = append(f.pushes[:i], f.pushes[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("push %s: %w", id, errNotFound)
}

func (f *fakeCalls) PushMute(ctx context.Context, id string, mute bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.pushes {
		if p.MediaSessionID == id {
			f.pushes[i].Muted = mute
			return nil
		}
	}
	return fmt.Errorf("push %s: %w", id, errNotFound)
}

func (f *fakeCalls) Pushes() []Push {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Push(nil), f.pushes...)
}

// control records the call-control requests: "hold id", "transfer id
// target replaces", "sound id file loop", "stream id name", "pushsound id
// file loop".
func (f *fakeCalls) control(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprint(args[0])
	if _, ok := f.find(id); !ok && !strings.HasPrefix(format, "pushsound") {
		return fmt.Errorf("call %s: %w", id, errNotFound)
	}
	f.controls = append(f.controls, fmt.Sprintf(format, args...))
	return nil
}

func (f *fakeCalls) Hold(ctx context.Context, id string, on bool) error {
	return f.control("hold %s %t", id, on)
}

func (f *fakeCalls) Transfer(ctx context.Context, id, target, replaces string) error {
	return f.control("transfer %s %s %s", id, target, replaces)
}

func (f *fakeCalls) InjectSound(ctx context.Context, id, file string, loop bool) error {
	return f.control("sound %s %s %t", id, file, loop)
}

func (f *fakeCalls) InjectStream(ctx context.Context, id, stream string) error {
	return f.control("stream %s %s", id, stream)
}

func (f *fakeCalls) PushSound(ctx context.Context, id, file string, loop bool) error {
	return f.control("pushsound %s %s %t", id, file, loop)
}

type apiResult struct {
	status int
	body   string
	header http.Header
}

func newTestServer(t *testing.T, o serverOptions) (*fakeCalls, *server, *httptest.Server) {
	t.Helper()
	return newTestServerWHEP(t, o, nil)
}

// newTestServerWHEP is newTestServer serving ws's streams at /whep/.
func newTestServerWHEP(t *testing.T, o serverOptions, ws *webrtcStreams) (*fakeCalls, *server, *httptest.Server) {
	t.Helper()
	f := &fakeCalls{}
	if o.AuthUser == "" {
		o.NoAuth = true // tests of other things; auth_test.go tests the login
	}
	s := newServer(f, o)
	ts := httptest.NewServer(testHandler(s, ws))
	t.Cleanup(func() {
		ts.Close()
		s.close()
	})
	return f, s, ts
}

func call(t *testing.T, ts *httptest.Server, path, body string) apiResult {
	t.Helper()
	return callAuth(t, ts, path, body, "", "")
}

func callAuth(t *testing.T, ts *httptest.Server, path, body, user, pass string) apiResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return apiResult{status: resp.StatusCode, body: string(b), header: resp.Header}
}

func errorBody(t *testing.T, r apiResult) ErrorBody {
	t.Helper()
	var e ErrorBody
	require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
	require.Equal(t, r.status, e.Status)
	require.NotEmpty(t, e.Error)
	require.NotZero(t, e.Timestamp)
	require.True(t, strings.HasPrefix(e.Path, "/rest-api/"), e.Path)
	return e
}

const startBody = `{"callId":"c1","callee":"1001","rtmpUrl":"rtmp://127.0.0.1:1935/live","rtmpStream":"s1",
	"hasAudio":"true","hasVideo":"false","sipLogin":"alice","sipAuthenticationName":"alice-auth",
	"sipPassword":"s3cret-pass","sipDomain":"pbx.example.com","sipOutboundProxy":"10.0.0.1:5070",
	"sipPort":"5060","appKey":"defaultApp","sipRegisterRequired":"false","visibleName":"Alice A",
	"toStream":"call1","sipHeaders":{"X-Tenant":"42"}}`

func TestStartupAcceptsStringForms(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup", startBody)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.JSONEq(t, `{}`, r.body)
	require.Len(t, f.params, 1)
	p := f.params[0]
	require.Equal(t, "c1", p.CallID)
	require.Equal(t, "1001", p.Callee)
	require.True(t, p.HasAudio)
	require.False(t, p.HasVideo)
	require.Equal(t, 5060, p.SIPPort)
	require.Equal(t, "alice-auth", p.SIPAuthName)
	require.Equal(t, "s3cret-pass", p.SIPPassword)
	require.Equal(t, "10.0.0.1:5070", p.SIPOutboundProxy)
	require.Equal(t, [][2]string{{"X-Tenant", "42"}}, p.Headers)
	require.Equal(t, "call1", p.ToStream)
}

func TestStartupAcceptsJSONBooleansAndNumbers(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup",
		`{"callId":"c2","callee":1002,"sipDomain":"pbx.example.com","hasAudio":false,"hasVideo":true,"sipPort":5080,"sipRegisterRequired":false,"unknownField":{"x":[1,2]}}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	p := f.params[0]
	require.Equal(t, "1002", p.Callee)
	require.False(t, p.HasAudio)
	require.True(t, p.HasVideo)
	require.Equal(t, 5080, p.SIPPort)
}

func TestStartupDefaults(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup", `{"callId":"c3","callee":"sip:bob@127.0.0.1:5090"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	p := f.params[0]
	require.True(t, p.HasAudio, "hasAudio defaults to true")
	require.True(t, p.HasVideo, "hasVideo defaults to true")
	require.False(t, p.SIPRegisterRequired)
}

func TestStartupNestedConnection(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup", `{"callId":"c4","callee":"1003","rtmpUrl":"rtmp://h/live","rtmpStream":"x",
		"hasAudio":"true","hasVideo":"true","connection":{"sipLogin":"bob","sipAuthenticationName":"bob","sipPassword":"pw",
		"sipDomain":"10.1.1.1","sipOutboundProxy":"10.1.1.1","sipPort":"5060","appKey":"defaultApp","sipRegisterRequired":"true"}}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	p := f.params[0]
	require.Equal(t, "bob", p.SIPLogin)
	require.Equal(t, "pw", p.SIPPassword)
	require.Equal(t, "10.1.1.1", p.SIPDomain)
	require.Equal(t, 5060, p.SIPPort)
	require.True(t, p.SIPRegisterRequired)
	require.Equal(t, "defaultApp", p.AppKey)
}

func TestStartupBadRequests(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{})
	cases := []struct {
		name, body, want string
	}{
		{"empty body", ``, "callId: is required"},
		{"not json", `{"callId":`, "malformed JSON"},
		{"array", `[1,2]`, "JSON object"},
		{"trailing", `{"callId":"a","callee":"1"} {}`, "data after the object"},
		{"missing callee", `{"callId":"a"}`, "callee: is required"},
		{"login with space", `{"callId":"a","callee":"1","sipLogin":"bad user"}`, "sipLogin"},
		{"login with angle brackets", `{"callId":"a","callee":"1","sipLogin":"<alice>"}`, "sipLogin"},
		{"auth name with quote", `{"callId":"a","callee":"1","sipAuthenticationName":"a\"b"}`, "sipAuthenticationName"},
		{"callee with brackets", `{"callId":"a","callee":"<sip:x@y>"}`, "callee"},
		{"bad bool", `{"callId":"a","callee":"1","hasAudio":"maybe"}`, "not a boolean"},
		{"bad port", `{"callId":"a","callee":"1","sipPort":"50a"}`, "not an integer"},
		{"port range", `{"callId":"a","callee":"1","sipPort":70000}`, "sipPort"},
		{"bad transport", `{"callId":"a","callee":"1","sipTransport":"sctp"}`, "sipTransport"},
		{"bad rtmp url", `{"callId":"a","callee":"1","rtmpUrl":"http://x/live"}`, "rtmpUrl"},
		{"callee object", `{"callId":"a","callee":{"x":1}}`, "object or array"},
		{"register without login", `{"callId":"a","callee":"1","sipRegisterRequired":true}`, "sipRegisterRequired"},
		{"header injection", `{"callId":"a","callee":"1@h","sipHeaders":{"X-A":"1\r\nBYE"}}`, "sipHeaders: the value of X-A: control character"},
		{"reserved header", `{"callId":"a","callee":"1@h","sipHeaders":{"Call-ID":"1"}}`, "sipHeaders: \"Call-ID\": header Call-ID is set by the user agent"},
		{"compact reserved header", `{"callId":"a","callee":"1@h","sipHeaders":{"i":"1"}}`, "sipHeaders"},
		{"bare callee without domain", `{"callId":"a","callee":"1"}`, "callee: required when the callee is a bare user"},
		{"tel callee", `{"callId":"a","callee":"tel:+15551234"}`, "callee"},
		{"call id with curly bracket", `{"callId":"a{b}","callee":"1@h"}`, "callId: must not contain quotes"},
		{"call id too long", `{"callId":"` + strings.Repeat("c", 257) + `","callee":"1@h"}`, "callId"},
		{"call id with space", `{"callId":"a b","callee":"1"}`, "callId"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, ts, "/rest-api/call/startup", tc.body)
			require.Equal(t, http.StatusBadRequest, r.status, r.body)
			e := errorBody(t, r)
			require.Contains(t, e.Message, tc.want)
		})
	}
}

func TestStartupBodyTooLarge(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{})
	big := `{"callId":"a","callee":"1","x":"` + strings.Repeat("a", maxBody) + `"}`
	r := call(t, ts, "/rest-api/call/startup", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, r.body)
	errorBody(t, r)
}

func TestStartupConflicts(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{})
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)
	r := call(t, ts, "/rest-api/call/startup", startBody)
	require.Equal(t, http.StatusConflict, r.status, r.body)
	errorBody(t, r)
	// Another call ID, same RTMP URL and stream.
	other := strings.Replace(startBody, `"callId":"c1"`, `"callId":"c9"`, 1)
	r = call(t, ts, "/rest-api/call/startup", other)
	require.Equal(t, http.StatusConflict, r.status, r.body)
}

func TestFindNeverReturnsPassword(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{})
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)
	for _, path := range []string{"/rest-api/call/find", "/rest-api/call/find_all"} {
		r := call(t, ts, path, `{"callId":"c1"}`)
		require.Equal(t, http.StatusOK, r.status, r.body)
		require.NotContains(t, r.body, "s3cret-pass")
		require.NotContains(t, strings.ToLower(r.body), "password")
		var calls []map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.body), &calls))
		require.Len(t, calls, 1)
		for _, k := range []string{"callId", "incoming", "status", "sipStatus", "rtmpUrl", "rtmpStream", "streamName", "caller", "callee", "hasAudio", "hasVideo", "visibleName", "appKey"} {
			require.Contains(t, calls[0], k)
		}
		require.Equal(t, "c1", calls[0]["callId"])
	}
}

func TestFindFiltersAnd404(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{})
	require.Equal(t, http.StatusNotFound, call(t, ts, "/rest-api/call/find_all", ``).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/find", `{"callee":"1001"}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/find", `{"status":"trying"}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/find", `{"rtmpUrl":"rtmp://127.0.0.1:1935/live"}`).status)
	r := call(t, ts, "/rest-api/call/find", `{"callId":"nope"}`)
	require.Equal(t, http.StatusNotFound, r.status)
	errorBody(t, r)
	r = call(t, ts, "/rest-api/call/find", `{"status":"ESTABLISHED"}`)
	require.Equal(t, http.StatusNotFound, r.status)
}

func TestTerminateAndDTMF(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"c1","dtmf":"12#","type":"INFO_RELAY"}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"c1","dtmf":"5"}`).status)
	// Sent in the background, in order (compat_input_test.go).
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.dtmf) == 2
	}, 5*time.Second, 5*time.Millisecond)
	f.mu.Lock()
	require.Equal(t, []string{"c1:12#:INFO_RELAY", "c1:5:RFC2833"}, f.dtmf)
	f.mu.Unlock()
	require.Equal(t, http.StatusBadRequest, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"c1","dtmf":"x"}`).status)
	require.Equal(t, http.StatusBadRequest, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"c1","dtmf":"1","type":"SMS"}`).status)
	require.Equal(t, http.StatusNotFound, call(t, ts, "/rest-api/call/send_dtmf", `{"callId":"zz","dtmf":"1"}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/terminate", `{"callId":"c1"}`).status)
	require.Equal(t, http.StatusNotFound, call(t, ts, "/rest-api/call/terminate", `{"callId":"zz"}`).status)
	require.Equal(t, http.StatusBadRequest, call(t, ts, "/rest-api/call/terminate", `{}`).status)
}

func TestPushEndpoints(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{})
	require.Equal(t, http.StatusNotFound, call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"rtmp://h/live/x"}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)
	r := call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"rtmp://h/live/x","rtmpTransponderFullUrl":"true","options":{"action":"mute"}}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	var p Push
	require.NoError(t, json.Unmarshal([]byte(r.body), &p))
	require.NotEmpty(t, p.MediaSessionID)
	require.True(t, p.Muted)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/push/find", `{"streamName":"call1"}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/push/find_all", ``).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/push/unmute", `{"mediaSessionId":"`+p.MediaSessionID+`"}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/push/mute", `{"mediaSessionId":"`+p.MediaSessionID+`"}`).status)
	require.Equal(t, http.StatusBadRequest, call(t, ts, "/rest-api/push/mute", `{}`).status)
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/push/terminate", `{"mediaSessionId":"`+p.MediaSessionID+`"}`).status)
	require.Equal(t, http.StatusNotFound, call(t, ts, "/rest-api/push/terminate", `{"mediaSessionId":"`+p.MediaSessionID+`"}`).status)
	require.Equal(t, http.StatusNotFound, call(t, ts, "/rest-api/push/find_all", ``).status)
	require.Equal(t, http.StatusBadRequest, call(t, ts, "/rest-api/push/startup", `{"streamName":"call1","rtmpUrl":"http://x"}`).status)
}

func TestMethodAndUnknownEndpoint(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{})
	resp, err := ts.Client().Get(ts.URL + "/rest-api/call/find_all")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	r := call(t, ts, "/rest-api/call/nope", `{}`)
	require.Equal(t, http.StatusNotFound, r.status)
	errorBody(t, r)
}

func TestBasicAuth(t *testing.T) {
	_, _, ts := newTestServer(t, serverOptions{AuthUser: "admin", AuthPass: "pw"})
	r := call(t, ts, "/rest-api/call/find_all", ``)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, r.header.Get("WWW-Authenticate"), "Basic")
	require.Equal(t, http.StatusUnauthorized, callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "wrong").status)
	require.Equal(t, http.StatusNotFound, callAuth(t, ts, "/rest-api/call/find_all", ``, "admin", "pw").status)
	for _, path := range []string{"/metrics", "/events"} { // the page: the example's TestClosedByDefault
		resp, err := ts.Client().Get(ts.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}
}

func TestMetrics(t *testing.T) {
	_, s, ts := newTestServer(t, serverOptions{})
	require.Equal(t, http.StatusOK, call(t, ts, "/rest-api/call/startup", startBody).status)
	require.Contains(t, scrape(t, s), `sipstream_rest_requests_total{code="200",endpoint="/call/startup"} 1`)
}

func TestEventsAndWebhook(t *testing.T) {
	got := make(chan StatusEvent, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev StatusEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
			got <- ev
		}
	}))
	defer hook.Close()
	_, s, ts := newTestServer(t, serverOptions{Webhook: hook.URL})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	readEvent := func() (string, string) {
		var ev, data string
		for {
			line, err := rd.ReadString('\n')
			require.NoError(t, err)
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			case line == "" && ev != "":
				return ev, data
			}
		}
	}
	ev, data := readEvent()
	require.Equal(t, "snapshot", ev)
	require.Equal(t, "[]", data)

	for _, st := range []string{"TRYING", "RING", "ESTABLISHED"} {
		s.notify(StatusEvent{Type: "CallStatusEvent", CallID: "c1", Status: st}, Call{CallID: "c1", Status: st})
	}
	for _, want := range []string{"TRYING", "RING", "ESTABLISHED"} {
		ev, data := readEvent()
		require.Equal(t, "call", ev)
		var c Call
		require.NoError(t, json.Unmarshal([]byte(data), &c))
		require.Equal(t, want, c.Status)
		select {
		case h := <-got:
			require.Equal(t, want, h.Status, "webhook events arrive in order")
			require.Equal(t, "c1", h.CallID)
			require.NotZero(t, h.Timestamp)
		case <-ctx.Done():
			t.Fatal("webhook did not receive the event")
		}
	}
}

func TestWebhookRetries(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	got := make(chan StatusEvent, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var ev StatusEvent
		_ = json.NewDecoder(r.Body).Decode(&ev)
		got <- ev
	}))
	defer hook.Close()
	h := newWebhook(hook.URL, nil, 0)
	h.backoff = time.Millisecond
	defer h.close()
	require.True(t, h.post(StatusEvent{CallID: "x", Status: "FINISH"}))
	select {
	case ev := <-got:
		require.Equal(t, "FINISH", ev.Status)
	case <-time.After(10 * time.Second):
		t.Fatal("webhook not delivered after retries")
	}
}
