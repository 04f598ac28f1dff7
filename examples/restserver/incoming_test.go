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

	"github.com/pion/webrtc/v4"
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
	srv       *httptest.Server
	answer    atomic.Pointer[string]
	mu        sync.Mutex
	offers    []map[string]any
	events    []wcsapi.StatusEvent
	regEvents []wcsapi.RegistrationEvent
	raw       []string
}

func newDialinHook(t *testing.T, answer string) *dialinHook {
	h := &dialinHook{}
	h.answer.Store(&answer)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		h.mu.Lock()
		defer h.mu.Unlock()
		h.raw = append(h.raw, string(b))
		if r.URL.Path == "/RegistrationStatusEvent" {
			var ev wcsapi.RegistrationEvent
			if json.Unmarshal(b, &ev) == nil {
				h.regEvents = append(h.regEvents, ev)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
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
	studio := newDialinHook(t, "{}") // the application the hook hands the second call to
	srv := startRun(t, "-inbound-rtmp-url", rtmpURL, "-inbound-allow", "127.0.0.1/32", "-webhook", hook.srv.URL,
		"-inbound-ring", "300ms", "-app-webhook", "studio="+studio.srv.URL)
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

	// It plays in browsers (WHEP at /whep/{toStream}) like a placed call.
	viewer := playWHEP(t, srv.base+"/whep/studio1")
	viewer.wait(t, 10, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	viewer.stop(t, srv.base)

	// The incoming call is driven like any other: DTMF to the phone, a push
	// of its stream, hold and unhold (re-INVITEs to the phone).
	code, body = rest(t, srv.base, "/call/send_dtmf", map[string]any{"callId": c.CallID, "dtmf": "42", "type": "RFC2833"})
	require.Equal(t, http.StatusOK, code, string(body))
	digits, err := pc.WaitDTMF(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, "42", digits)
	pushSub := rs.Subscribe("live", "rtmp_studio1", 0)
	defer pushSub.Close()
	code, body = rest(t, srv.base, "/push/startup", map[string]any{"streamName": "studio1", "rtmpUrl": rtmpURL})
	require.Equal(t, http.StatusOK, code, string(body))
	_, err = pushSub.ReadTag(ctx)
	require.NoError(t, err, "the push publishes")
	code, body = rest(t, srv.base, "/call/hold", map[string]any{"callId": c.CallID})
	require.Equal(t, http.StatusOK, code, string(body))
	code, body = rest(t, srv.base, "/call/unhold", map[string]any{"callId": c.CallID})
	require.Equal(t, http.StatusOK, code, string(body))
	_, err = pc.WaitReinvites(ctx, 2)
	require.NoError(t, err, "hold and unhold reached the phone")

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

	// The hook names another stream, audio only back to the phone, and
	// hands the call to the "studio" application (its hook gets the call's
	// events).
	hookAnswer := `{"rtmpUrl":"` + rtmpURL + `","rtmpStream":"from-hook","toStream":"hooked","hasVideo":false,"appKey":"studio"}`
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
	require.Equal(t, "studio", c.AppKey)
	require.NoError(t, pc.Hangup(ctx), "the phone hangs up")
	waitGone(t, srv.base, c.CallID)
	deadline = time.Now().Add(30 * time.Second)
	for {
		st, incoming := studio.statuses(c.CallID)
		if len(st) > 0 && st[len(st)-1] == "FINISH" {
			require.True(t, incoming)
			break
		}
		require.True(t, time.Now().Before(deadline), "the studio application's hook got no FINISH: %v", st)
		time.Sleep(20 * time.Millisecond)
	}
	other, _ := hook.statuses(c.CallID)
	require.Empty(t, other, "the default hook was asked (OnCallEvent), the call's events went to studio's")

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
	require.Contains(t, metrics, `sipstream_dialin_hook_answers_total{result="none"} 1`+"\n")
	require.Contains(t, metrics, `sipstream_dialin_hook_answers_total{result="decided"} 2`+"\n")
	require.Contains(t, metrics, `sipstream_dialin_hook_answers_total{result="failed"} 0`+"\n")
}

// Registrations on the real stack: an -accounts file account registers at
// start to a registrar (a siptest peer with digest), /registration/startup
// adds one with a wrong password (FAILED, no password anywhere),
// /registration/terminate unREGISTERs; a phone registers to the gateway
// (-registrar) and shows as an inbound binding; the webhook gets
// RegistrationStatusEvents; /metrics counts the states.
func TestRegistrations(t *testing.T) {
	registrar, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Users: map[string]string{"gw": "Reg-Pw-1", "bob": "Bob-Pw-2"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = registrar.Close() })
	hook := newDialinHook(t, "{}")
	accounts := writeFile(t, t.TempDir(), "accounts", "sip:gw:Reg-Pw-1@"+registrar.Addr()+"\n")
	users := writeFile(t, t.TempDir(), "users", "phone1:Phone-Pw-3\n")
	srv := startRun(t, "-accounts", accounts, "-webhook", hook.srv.URL, "-inbound-users", users, "-registrar")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.log.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	waitReg := func(filter map[string]any, what string, cond func(wcsapi.Registration) bool) wcsapi.Registration {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var last string
		for time.Now().Before(deadline) {
			code, body := rest(t, srv.base, "/registration/find", filter)
			last = string(body)
			var regs []wcsapi.Registration
			if code == http.StatusOK && json.Unmarshal(body, &regs) == nil && len(regs) == 1 && cond(regs[0]) {
				return regs[0]
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("registration %v: %s did not happen within 30 s; last %s", filter, what, last)
		return wcsapi.Registration{}
	}
	host := strings.Split(registrar.Addr(), ":")[0]
	gw := waitReg(map[string]any{"account": "gw@" + host}, "REGISTERED", func(r wcsapi.Registration) bool { return r.State == "REGISTERED" })
	require.Greater(t, gw.Expires, time.Now().UnixMilli(), "granted until later")
	require.False(t, gw.Inbound)
	regs, err := registrar.WaitRegistrations(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "gw", regs[0].User)

	code, body := rest(t, srv.base, "/registration/startup", map[string]any{"account": "bob-acct", "sipLogin": "bob",
		"sipPassword": "Wrong-Pw-4", "sipDomain": registrar.Addr()})
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"state":"REGISTERING"`)
	bob := waitReg(map[string]any{"account": "bob-acct"}, "FAILED", func(r wcsapi.Registration) bool { return r.State == "FAILED" })
	require.NotEmpty(t, bob.LastError)
	code, _ = rest(t, srv.base, "/registration/startup", map[string]any{"account": "bob-acct", "sipLogin": "bob", "sipDomain": registrar.Addr()})
	require.Equal(t, http.StatusConflict, code)

	// A phone registers to the gateway.
	phone := startPeer(t, siptest.Script{})
	require.NoError(t, phone.Register(ctx, siptest.RegisterRequest{Registrar: srv.sipAddr(t), User: "phone1", Password: "Phone-Pw-3"}))
	in := waitReg(map[string]any{"inbound": true}, "the phone's binding", func(r wcsapi.Registration) bool { return r.User == "phone1" })
	require.Equal(t, "REGISTERED", in.State)
	require.Contains(t, in.Contact, "phone1@127.0.0.1")

	metrics := getMetrics(t, srv.base)
	require.Contains(t, metrics, `sipstream_registrations{inbound="false",state="REGISTERED"} 1`+"\n")
	require.Contains(t, metrics, `sipstream_registrations{inbound="false",state="FAILED"} 1`+"\n")
	require.Contains(t, metrics, `sipstream_registrations{inbound="true",state="REGISTERED"} 1`+"\n")

	code, body = rest(t, srv.base, "/registration/terminate", map[string]any{"account": "gw@" + host})
	require.Equal(t, http.StatusOK, code, string(body))
	regs, err = registrar.WaitRegistrations(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, 0, regs[len(regs)-1].Expires, "unREGISTER")
	code, _ = rest(t, srv.base, "/registration/find", map[string]any{"account": "gw@" + host})
	require.Equal(t, http.StatusNotFound, code)

	// The hook heard of each registration's states.
	deadline := time.Now().Add(10 * time.Second)
	for {
		hook.mu.Lock()
		n := len(hook.regEvents)
		hook.mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	hook.mu.Lock()
	states := map[string][]string{}
	for _, ev := range hook.regEvents {
		states[ev.Account] = append(states[ev.Account], ev.Status)
	}
	hook.mu.Unlock()
	// (The -accounts account may have registered before the Handler
	// followed the Manager's events: the Handler then tells its state when
	// it starts, so REGISTERED reaches the hook either way.)
	require.True(t, inOrder(states["gw@"+host], []string{"REGISTERED", "UNREGISTERED"}), "%v", states)
	require.Equal(t, []string{"REGISTERED"}, states["phone1"], "%v", states)
	require.True(t, inOrder(states["bob-acct"], []string{"REGISTERING", "FAILED"}), "%v", states)
	for _, secret := range []string{"Reg-Pw-1", "Wrong-Pw-4", "Phone-Pw-3"} {
		require.NotContains(t, srv.log.String(), secret)
		require.NotContains(t, metrics, secret)
	}
	hook.mu.Lock()
	for _, raw := range hook.raw {
		require.NotContains(t, raw, "Reg-Pw-1")
		require.NotContains(t, raw, "Wrong-Pw-4")
	}
	hook.mu.Unlock()
}

// Passwords of the dial-in flags on the command line are warned about and
// never logged, even when a caller's digest attempt is: a phone that
// authenticates as a -inbound-user is let in, one with a wrong password is
// refused (403), and neither password appears in the log.
func TestInboundSecretsOnArgv(t *testing.T) {
	_, rtmpURL := startRTMPServer(t)
	srv := startRun(t, "-inbound-rtmp-url", rtmpURL, "-inbound-user", "alice:Argv-Pw-1", "-account", "sip:gw:Argv-Pw-2@127.0.0.1:9",
		"-log-level", "debug")
	log := srv.log.String()
	require.Contains(t, log, "-inbound-user on the command line is visible to every user of this machine (ps)")
	require.Contains(t, log, "-account on the command line is visible to every user of this machine (ps)")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	phone := startPeer(t, siptest.Script{})
	target := "sip:room9@" + srv.sipAddr(t)
	_, err := phone.Call(ctx, target, siptest.CallOptions{User: "alice", Password: "Wrong-Pw-3"})
	var se *siptest.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Equal(t, 403, se.Code)
	pc, err := phone.Call(ctx, target, siptest.CallOptions{User: "alice", Password: "Argv-Pw-1", Script: siptest.Script{Audio: true}})
	require.NoError(t, err)
	c := incomingCall(t, srv.base, "alice", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
	require.Equal(t, "room9", c.Callee)
	require.NoError(t, pc.Hangup(ctx))
	waitGone(t, srv.base, c.CallID)
	for _, secret := range []string{"Argv-Pw-1", "Argv-Pw-2", "Wrong-Pw-3"} {
		require.NotContains(t, srv.log.String(), secret)
	}
}
