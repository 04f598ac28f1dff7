package wcsapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/sip"
)

// offeredCall is the incoming call the dial-in tests decide on.
func offeredCall() callmgr.IncomingCall {
	return callmgr.IncomingCall{
		CallID: "in-1@phone", Caller: "alice", CallerName: "Alice A", CallerURI: "sip:alice@192.0.2.9",
		Callee: "studio1", CalleeURI: "sip:studio1@gw.example", RequestURI: "sip:studio1@192.0.2.1:5060",
		Headers: []sip.Header{{Name: "X-Room", Value: "7"}, {Name: "Subject", Value: "live"}, {Name: "X-Room", Value: "8"}},
		Source:  netip.MustParseAddrPort("192.0.2.9:5062"), Transport: "udp", AuthUser: "alice",
		Audio: true, Video: true,
	}
}

// dialinHook is a dial-in hook answering with answer (status code, body),
// recording what it was POSTed.
type dialinHook struct {
	*httptest.Server
	mu     sync.Mutex
	paths  []string
	bodies []map[string]any
	raw    []string
}

func newDialinHook(t *testing.T, code int, answer string, hdr ...string) *dialinHook {
	h := &dialinHook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		h.mu.Lock()
		h.paths = append(h.paths, r.Method+" "+r.URL.Path)
		h.bodies = append(h.bodies, m)
		h.raw = append(h.raw, string(b))
		h.mu.Unlock()
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *dialinHook) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.paths...)
}

// dialinRig is an Inbound attached to a server without a Manager, with
// a webhook at hook (none when empty) and its log in logs.
type dialinRig struct {
	in   *Inbound
	srv  *server
	logs *testenv.SyncBuffer
}

func newDialinRig(t *testing.T, cfg DialinConfig, hook string, o serverOptions, recording bool, soundDir string) (*dialinRig, error) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	o.Log = slog.New(slog.NewTextHandler(logs, nil))
	srv := newServer(&fakeCalls{}, o)
	t.Cleanup(srv.close)
	if hook != "" {
		srv.webhook = newWebhook(hook, o.Log, 0)
	}
	svc := &managerService{recording: recording, log: o.Log, now: time.Now, nodeID: "node-1", soundDir: soundDir}
	d, err := newDialin(cfg, o.AllowRTMPHosts, svc)
	if err != nil {
		return nil, err
	}
	d.srv = srv
	in := new(Inbound)
	in.d.Store(d)
	return &dialinRig{in: in, srv: srv, logs: logs}, nil
}

func mustDialinRig(t *testing.T, cfg DialinConfig, hook string) *dialinRig {
	t.Helper()
	r, err := newDialinRig(t, cfg, hook, serverOptions{NoAuth: true}, false, "")
	require.NoError(t, err)
	return r
}

func (r *dialinRig) decide(t *testing.T) callmgr.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := r.in.OnIncoming(ctx, offeredCall())
	require.NoError(t, err)
	return d
}

// The defaults: -inbound-rtmp-url publishes to {app}/{Request-URI user};
// without it and without a hook the call gets 480; an Inbound no Handler
// uses refuses with 480 too.
func TestDialinDefaults(t *testing.T) {
	d, err := new(Inbound).OnIncoming(context.Background(), offeredCall())
	require.NoError(t, err)
	require.Equal(t, callmgr.RejectWith(480, "Temporarily Unavailable"), d)

	r := mustDialinRig(t, DialinConfig{}, "")
	require.Equal(t, callmgr.RejectWith(480, "Temporarily Unavailable"), r.decide(t))

	r = mustDialinRig(t, DialinConfig{RTMPURL: " rtmp://live.example/app/ ", Ring: 2 * time.Second, EarlyMedia: true}, "")
	d = r.decide(t)
	require.Equal(t, callmgr.ActionAnswer, d.Action)
	require.Equal(t, callmgr.CallParams{RTMPURL: "rtmp://live.example/app", RTMPStream: "studio1", ToStream: "studio1", HasAudio: true, HasVideo: true}, d.Params)
	require.Equal(t, 2*time.Second, d.Ring)
	require.True(t, d.EarlyMedia)
	require.Nil(t, d.EarlySound, "silence")

	// No user in the Request-URI: nothing to name the stream after.
	in := offeredCall()
	in.Callee = ""
	d, err = r.in.OnIncoming(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, callmgr.RejectWith(404, "Not Found"), d)

	// With a hook but Hook false, the hook is never asked.
	hook := newDialinHook(t, 200, `{"reject":true}`)
	r = mustDialinRig(t, DialinConfig{RTMPURL: "rtmp://live.example/app"}, hook.URL)
	require.Equal(t, callmgr.ActionAnswer, r.decide(t).Action)
	require.Empty(t, hook.requests())
}

// The hook gets OnCallEvent with the call object and what the INVITE said,
// and each form of its answer becomes the decision.
func TestDialinHookAnswers(t *testing.T) {
	defaults := DialinConfig{RTMPURL: "rtmp://def.example/in", Hook: true, Ring: time.Second}
	for _, tc := range []struct {
		name   string
		answer string
		want   callmgr.Decision
	}{
		{"target", `{"rtmpUrl":"rtmp://h.example/app/","rtmpStream":"key-1","toStream":"s1","hasVideo":false,"record":false,"appKey":"sales"}`,
			callmgr.Decision{Action: callmgr.ActionAnswer, Ring: time.Second,
				Params: callmgr.CallParams{RTMPURL: "rtmp://h.example/app", RTMPStream: "key-1", ToStream: "s1", HasAudio: true, AppKey: "sales"}}},
		{"rtmpUrl only", `{"rtmpUrl":"rtmps://h.example/app"}`,
			callmgr.Decision{Action: callmgr.ActionAnswer, Ring: time.Second,
				Params: callmgr.CallParams{RTMPURL: "rtmps://h.example/app", RTMPStream: "studio1", ToStream: "studio1", HasAudio: true, HasVideo: true}}},
		{"rtmpStream only: the default URL", `{"rtmpStream":"key-2"}`,
			callmgr.Decision{Action: callmgr.ActionAnswer, Ring: time.Second,
				Params: callmgr.CallParams{RTMPURL: "rtmp://def.example/in", RTMPStream: "key-2", ToStream: "studio1", HasAudio: true, HasVideo: true}}},
		{"toStream only (WebRTC, HLS)", `{"toStream":"watch-me"}`,
			callmgr.Decision{Action: callmgr.ActionAnswer, Ring: time.Second,
				Params: callmgr.CallParams{ToStream: "watch-me", HasAudio: true, HasVideo: true}}},
		{"reject", `{"reject":true,"sipStatus":486,"reason":"Busy Here"}`, callmgr.RejectWith(486, "Busy Here")},
		{"reject, no status", `{"reject":true}`, callmgr.RejectWith(0, "")},
		{"reject, status out of range", `{"reject":true,"sipStatus":200,"reason":"OK"}`, callmgr.RejectWith(0, "OK")},
		{"reject, reason with CRLF", `{"reject":true,"sipStatus":403,"reason":"No\r\nBYE sip:x"}`, callmgr.RejectWith(403, "")},
		{"reject wins", `{"reject":true,"sipStatus":486,"rtmpUrl":"rtmp://h.example/app"}`, callmgr.RejectWith(486, "")},
		{"redirect", `{"redirect":"sip:desk@pbx.example"}`, callmgr.RedirectTo("sip:desk@pbx.example")},
		{"empty object: defaults", `{}`, defaultAnswer(time.Second)},
		{"empty body: defaults", ``, defaultAnswer(time.Second)},
		{"nulls: defaults", `{"rtmpUrl":null,"record":null,"reject":null}`, defaultAnswer(time.Second)},
		{"the call object echoed: defaults", `{"callId":"in-1@phone","incoming":true,"status":"RING","sipStatus":0,"rtmpUrl":null,"hasAudio":true,"sipHeaders":{"X-Room":"7"}}`, defaultAnswer(time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := newDialinHook(t, 200, tc.answer)
			r := mustDialinRig(t, defaults, hook.URL+"/app?k=1")
			require.Equal(t, tc.want, r.decide(t))
			require.Equal(t, []string{"POST /app/OnCallEvent"}, hook.requests())
			result := "decided"
			if reflect.DeepEqual(tc.want, defaultAnswer(time.Second)) {
				result = "none"
			}
			require.Equal(t, 1.0, hookAnswers(t, r.in, result), result)
			hook.mu.Lock()
			ev, raw := hook.bodies[0], hook.raw[0]
			hook.mu.Unlock()
			require.Equal(t, "OnCallEvent", ev["type"])
			require.Equal(t, true, ev["incoming"])
			require.Equal(t, "RING", ev["status"])
			require.Equal(t, "in-1@phone", ev["callId"])
			require.Equal(t, "alice", ev["caller"])
			require.Equal(t, "studio1", ev["callee"])
			require.Equal(t, "Alice A", ev["visibleName"])
			require.Equal(t, "node-1", ev["nodeId"])
			require.Equal(t, true, ev["hasAudio"])
			require.Equal(t, "sip:studio1@192.0.2.1:5060", ev["requestUri"])
			require.Equal(t, "sip:alice@192.0.2.9", ev["callerUri"])
			require.Equal(t, "192.0.2.9:5062", ev["source"])
			require.Equal(t, "alice", ev["authUser"])
			require.Equal(t, map[string]any{"X-Room": "7, 8", "Subject": "live"}, ev["sipHeaders"])
			require.Nil(t, ev["rtmpUrl"], "the product's nulls")
			require.True(t, strings.HasPrefix(raw, `{"nodeId":"node-1","appKey":null,"sessionId":null,"callId":"in-1@phone","incoming":true`), raw)
		})
	}
}

func defaultAnswer(ring time.Duration) callmgr.Decision {
	d := callmgr.AnswerWith(callmgr.CallParams{RTMPURL: "rtmp://def.example/in", RTMPStream: "studio1", ToStream: "studio1", HasAudio: true, HasVideo: true})
	d.Ring = ring
	return d
}

// A hook that fails, is slow, answers malformed JSON (strict types) or
// redirects counts as no answer: the defaults decide, the reason is logged
// (without the hook's URL, which may carry credentials), and a redirect is
// never followed.
func TestDialinHookFailures(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = io.WriteString(w, `{"rtmpUrl":"rtmp://evil.example/x"}`)
	}))
	defer other.Close()
	big := `{"rtmpUrl":"rtmp://h.example/app","pad":"` + strings.Repeat("x", maxHookAnswer) + `"}`
	for _, tc := range []struct {
		name, answer string
		code         int
		hdr          []string
		log          string
	}{
		{"500", `{"rtmpUrl":"rtmp://h.example/app"}`, 500, nil, "webhook answered 500"},
		{"not JSON", `<html>hi</html>`, 200, nil, "malformed answer"},
		{"a string for a bool", `{"record":"true","rtmpUrl":"rtmp://h.example/app"}`, 200, nil, `field \"record\" must not be a JSON string`},
		{"a number for a string", `{"rtmpUrl":5}`, 200, nil, "malformed answer"},
		{"an array", `[{"reject":true}]`, 200, nil, "malformed answer"},
		{"two objects", `{"reject":true} {}`, 200, nil, "data after the object"},
		{"truncated", `{"reject":tr`, 200, nil, "malformed answer"},
		{"too large", big, 200, nil, "answer larger than"},
		{"redirect (SSRF)", ``, 307, []string{"Location", other.URL + "/steal"}, "redirect, which is not followed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := newDialinHook(t, tc.code, tc.answer, tc.hdr...)
			r := mustDialinRig(t, DialinConfig{RTMPURL: "rtmp://def.example/in", Hook: true}, withAuth(hook.URL, "hookuser", "hook-Secret-99"))
			require.Equal(t, defaultAnswer(0), r.decide(t))
			require.Len(t, hook.requests(), 1, "asked once, no retry: the caller waits")
			require.Equal(t, 1.0, hookAnswers(t, r.in, "failed"))
			logs := r.logs.String()
			require.Contains(t, logs, "dial-in hook: no usable answer")
			require.Contains(t, logs, tc.log)
			require.NotContains(t, logs, "hook-Secret-99")
			require.NotContains(t, logs, hook.URL)
		})
	}
	require.Zero(t, elsewhere.Load(), "the redirect was not followed")

	// A slow hook: the decision's context (the Manager's DecisionTimeout)
	// ends the request and the defaults decide at once.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	r := mustDialinRig(t, DialinConfig{RTMPURL: "rtmp://def.example/in", Hook: true}, slow.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	d, err := r.in.OnIncoming(ctx, offeredCall())
	require.NoError(t, err)
	require.Equal(t, defaultAnswer(0), d)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Contains(t, r.logs.String(), "context deadline exceeded")

	// The hook gone: no defaults either, so 480.
	gone := httptest.NewServer(http.NotFoundHandler())
	url := gone.URL
	gone.Close()
	r = mustDialinRig(t, DialinConfig{Hook: true}, url)
	require.Equal(t, callmgr.RejectWith(480, "Temporarily Unavailable"), r.decide(t))
}

// A well-formed answer the server's rules refuse rejects the call with an
// error (callmgr answers 500 and logs it): the rules of /call/startup.
func TestDialinHookRefused(t *testing.T) {
	hosts, err := newAllowList([]string{"*.allowed.example"})
	require.NoError(t, err)
	for _, tc := range []struct{ answer, want string }{
		{`{"rtmpUrl":"ftp://x.allowed.example/app"}`, "rtmpUrl: must be an rtmp:// or rtmps:// URL"},
		{`{"rtmpUrl":"rtmp://other.example/app"}`, "host not allowed"},
		{`{"toStream":"s","record":true}`, "recording is off"},
		{`{"redirect":"http://x.example/"}`, "redirect must be a sip: or sips: URI"},
		{`{"redirect":"sip:a b@c"}`, "redirect must be a sip: or sips: URI"},
	} {
		hook := newDialinHook(t, 200, tc.answer)
		r, err := newDialinRig(t, DialinConfig{Hook: true}, hook.URL, serverOptions{NoAuth: true, AllowRTMPHosts: hosts}, false, "")
		require.NoError(t, err)
		_, err = r.in.OnIncoming(context.Background(), offeredCall())
		require.ErrorContains(t, err, tc.want, tc.answer)
	}
	hook := newDialinHook(t, 200, `{"rtmpUrl":"rtmp://a.allowed.example/app","rtmpStream":"key-77","record":true}`)
	r, err := newDialinRig(t, DialinConfig{Hook: true}, hook.URL, serverOptions{NoAuth: true, AllowRTMPHosts: hosts}, true, "")
	require.NoError(t, err)
	d := r.decide(t)
	require.True(t, d.Params.Record)
	require.Equal(t, "rtmp://a.allowed.example/app", d.Params.RTMPURL)
	require.NotContains(t, r.srv.secrets.Scrub("stream key-77"), "key-77", "the hook's stream key is a secret now")

	// The default stream name is the callee's, no secret.
	r = mustDialinRig(t, DialinConfig{RTMPURL: "rtmp://def.example/in"}, "")
	require.Equal(t, "studio1", r.decide(t).Params.RTMPStream)
	require.Equal(t, "call to studio1", r.srv.secrets.Scrub("call to studio1"))
}

// The configuration is checked up front: the default URL's form and host,
// recording, the prompt file; the prompt plays (looped) as early media.
func TestDialinConfig(t *testing.T) {
	hosts, err := newAllowList([]string{"live.example"})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "wait.wav"), testmedia.WAV(testmedia.Tone(500, 8000, 0, 2400, 0.5), 8000), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.wav"), []byte("not a sound"), 0o600))
	for _, tc := range []struct {
		cfg       DialinConfig
		recording bool
		want      string
	}{
		{DialinConfig{RTMPURL: "http://live.example/app"}, false, "Dialin.RTMPURL rtmpUrl: must be an rtmp://"},
		{DialinConfig{RTMPURL: "rtmp://other.example/app"}, false, "not in AllowRTMPHosts"},
		{DialinConfig{Record: true}, false, "Dialin.Record needs Config.Record"},
		{DialinConfig{Ring: -time.Second}, false, "Ring must not be negative"},
		{DialinConfig{Prompt: "missing.wav"}, false, "Dialin.Prompt"},
		{DialinConfig{Prompt: "../etc/passwd"}, false, "inside the server's sound folder"},
		{DialinConfig{Prompt: "junk.wav"}, false, "not a sound file"},
	} {
		_, err := newDialinRig(t, tc.cfg, "", serverOptions{NoAuth: true, AllowRTMPHosts: hosts}, tc.recording, dir)
		require.ErrorContains(t, err, tc.want, "%+v", tc.cfg)
	}
	r, err := newDialinRig(t, DialinConfig{RTMPURL: "rtmp://live.example/app", Prompt: "wait.wav", Ring: 3 * time.Second, Record: true},
		"", serverOptions{NoAuth: true, AllowRTMPHosts: hosts}, true, dir)
	require.NoError(t, err)
	d := r.decide(t)
	require.True(t, d.EarlyMedia, "a prompt is early media")
	require.True(t, d.Params.Record)
	require.NotNil(t, d.EarlySound)
	// The prompt is heard: 500 Hz, looped past the file's 300 ms (whole
	// periods, so the seams keep the phase).
	buf := make([]int16, 8000)
	n := 0
	for n < len(buf) {
		k, err := d.EarlySound.Read(buf[n:])
		require.NoError(t, err)
		require.Positive(t, k)
		n += k
	}
	for i := 0; i+800 <= len(buf); i += 800 {
		require.Greater(t, testmedia.Goertzel(buf[i:i+800], 8000, 500), 0.9, "the prompt at %d ms, looped", i/8)
	}
}

// hookAnswers is in's count of hook answers with result.
func hookAnswers(t *testing.T, in *Inbound, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(in.d.Load().hookAsks)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no result %q", result)
	return 0
}
