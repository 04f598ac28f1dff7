package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/sip/siptest"
)

// readyRE finds the SIP address in the server's "ready" line.
var readyRE = regexp.MustCompile(`msg=ready sip=(\S+)`)

// sipAddr is the running server's SIP address (host:port, UDP).
func (s *runningServer) sipAddr(t *testing.T) string {
	t.Helper()
	m := readyRE.FindStringSubmatch(s.log.String())
	require.NotNil(t, m, "no SIP address in the log:\n%s", s.log.String())
	return m[1]
}

// dialinHook is the application's hook of the dial-in tests: it answers
// OnCallEvent with what answer returns and records every event.
type dialinHook struct {
	srv    *httptest.Server
	answer atomic.Pointer[string]
	mu     sync.Mutex
	offers []map[string]any
	events []wcsapi.StatusEvent
}

func newDialinHook(t *testing.T, answer string) *dialinHook {
	h := &dialinHook{}
	h.answer.Store(&answer)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.URL.Path == "/OnCallEvent" {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			h.offers = append(h.offers, m)
			_, _ = io.WriteString(w, *h.answer.Load())
			return
		}
		var ev wcsapi.StatusEvent
		if json.Unmarshal(b, &ev) == nil {
			h.events = append(h.events, ev)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// statuses are the CallStatusEvents' statuses of callID (no repeats in a
// row), and whether each said incoming.
func (h *dialinHook) statuses(callID string) (st []string, allIncoming bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	allIncoming = true
	for _, ev := range h.events {
		if ev.CallID != callID || ev.Type != "CallStatusEvent" {
			continue
		}
		allIncoming = allIncoming && ev.Incoming
		if len(st) == 0 || st[len(st)-1] != ev.Status {
			st = append(st, ev.Status)
		}
	}
	return st, allIncoming
}

// incomingCall returns the call object of the incoming call from caller,
// polling /call/find_all until cond holds.
func incomingCall(t *testing.T, base, caller, what string, cond func(wcsapi.Call) bool) wcsapi.Call {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last []wcsapi.Call
	for time.Now().Before(deadline) {
		code, body := rest(t, base, "/call/find_all", struct{}{})
		if code == http.StatusOK {
			last = nil
			require.NoError(t, json.Unmarshal(body, &last))
			for _, c := range last {
				if c.Incoming && c.Caller == caller && cond(c) {
					return c
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("incoming call from %s: %s did not happen within 60 s; calls %+v", caller, what, last)
	return wcsapi.Call{}
}

// A phone (a siptest peer) calls the server started with -inbound-rtmp-url
// and -inbound-allow, the WCS way too (-webhook: the hook is asked first):
// the hook's empty answer leaves it to the defaults, the call rings, is
// answered and published to {app}/{Request-URI user}, shows in
// /call/find_all with incoming true, its CallStatusEvents say incoming, and
// /call/terminate ends it (the phone gets our BYE). The hook's answers
// then decide the next calls: another stream name, a refusal.
func TestIncomingCall(t *testing.T) {
	rs, rtmpURL := startRTMPServer(t)
	hook := newDialinHook(t, "{}")
	srv := startRun(t, "-inbound-rtmp-url", rtmpURL, "-inbound-allow", "127.0.0.1/32", "-webhook", hook.srv.URL,
		"-inbound-ring", "300ms")
	target := "sip:studio1@" + srv.sipAddr(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.log.String())
		}
	})
	phone := startPeer(t, siptest.Script{})
	media := siptest.Script{Audio: true, Video: true, SendSR: true}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sub := rs.Subscribe("live", "studio1", 0)
	defer sub.Close()
	pc, err := phone.Call(ctx, target, siptest.CallOptions{User: "alice", DisplayName: "Alice", Script: media})
	require.NoError(t, err)

	c := incomingCall(t, srv.base, "alice", "ESTABLISHED + RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	require.Equal(t, pc.CallID(), c.CallID, "the SIP Call-ID is the call's id")
	require.Equal(t, "studio1", c.Callee)
	require.Equal(t, "studio1", c.StreamName)
	require.Equal(t, rtmpURL, c.RTMPURL)
	require.Equal(t, "studio1", c.RTMPStream)
	var audio, video bool
	for !(audio && video) {
		tag, err := sub.ReadTag(ctx)
		require.NoError(t, err, "published tags")
		audio = audio || tag.Type == 8
		video = video || tag.Type == 9
	}

	code, body := rest(t, srv.base, "/call/find", map[string]any{"callId": c.CallID})
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"incoming":true`)
	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": c.CallID})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, pc.WaitBye(ctx), "the phone got our BYE")

	deadline := time.Now().Add(30 * time.Second)
	for {
		st, incoming := hook.statuses(c.CallID)
		if len(st) > 0 && st[len(st)-1] == "FINISH" {
			require.True(t, incoming, "every CallStatusEvent says incoming: %v", st)
			require.True(t, inOrder(st, []string{"RING", "ESTABLISHED", "FINISH"}), "%v", st)
			break
		}
		require.True(t, time.Now().Before(deadline), "no FINISH: %v", st)
		time.Sleep(20 * time.Millisecond)
	}
	hook.mu.Lock()
	require.Len(t, hook.offers, 1)
	offer := hook.offers[0]
	hook.mu.Unlock()
	require.Equal(t, "OnCallEvent", offer["type"])
	require.Equal(t, true, offer["incoming"])
	require.Equal(t, "RING", offer["status"])
	require.Equal(t, c.CallID, offer["callId"])
	require.Equal(t, "alice", offer["caller"])
	require.Equal(t, "studio1", offer["callee"])
	require.Equal(t, "Alice", offer["visibleName"])
	require.True(t, strings.HasPrefix(offer["source"].(string), "127.0.0.1:"), "%v", offer["source"])

	// The hook names another stream, audio only back to the phone.
	hookAnswer := `{"rtmpUrl":"` + rtmpURL + `","rtmpStream":"from-hook","toStream":"hooked","hasVideo":false}`
	hook.answer.Store(&hookAnswer)
	sub2 := rs.Subscribe("live", "from-hook", 0)
	defer sub2.Close()
	pc, err = phone.Call(ctx, target, siptest.CallOptions{User: "bob", Script: media})
	require.NoError(t, err)
	c = incomingCall(t, srv.base, "bob", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
	require.Equal(t, "hooked", c.StreamName)
	require.Equal(t, "from-hook", c.RTMPStream)
	_, err = sub2.ReadTag(ctx)
	require.NoError(t, err, "published to the hook's stream")
	require.NoError(t, pc.Hangup(ctx), "the phone hangs up")
	waitGone(t, srv.base, c.CallID)

	// The hook refuses.
	busy := `{"reject":true,"sipStatus":486,"reason":"Studio Busy"}`
	hook.answer.Store(&busy)
	_, err = phone.Call(ctx, target, siptest.CallOptions{User: "carol", Script: media})
	var se *siptest.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, 486, se.Code)
	require.Equal(t, "Studio Busy", se.Reason)

	metrics := getMetrics(t, srv.base)
	require.Contains(t, metrics, `sipstream_incoming_calls_total{result="answered"} 2`+"\n")
	require.Contains(t, metrics, `sipstream_incoming_calls_total{result="rejected"} 1`+"\n")
}
