package callmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sip"
	"github.com/sipstream/sipstream/sip/sdp"
)

// inboundEnv is a Manager with fakes that takes calls: decide answers
// every INVITE (nil: AnswerWith an RTMP leg named after the callee).
type inboundEnv struct {
	*testEnv
	decisions atomic.Int32
	lastIn    chan IncomingCall
}

func newInboundEnv(t *testing.T, decide func(ctx context.Context, in IncomingCall) (Decision, error), mod func(*Config)) *inboundEnv {
	t.Helper()
	ie := &inboundEnv{lastIn: make(chan IncomingCall, 100)}
	if decide == nil {
		decide = func(ctx context.Context, in IncomingCall) (Decision, error) {
			return AnswerWith(CallParams{RTMPURL: "rtmp://127.0.0.1/live", RTMPStream: in.Callee, HasAudio: true, HasVideo: true}), nil
		}
	}
	ie.testEnv = newTestEnv(t, func(c *Config) {
		c.Inbound.AllowFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.OnIncoming = func(ctx context.Context, in IncomingCall) (Decision, error) {
			ie.decisions.Add(1)
			ie.lastIn <- in
			return decide(ctx, in)
		}
		if mod != nil {
			mod(c)
		}
	})
	return ie
}

// offer sends a fake INVITE from 127.0.0.1 with a sendrecv offer.
func (e *inboundEnv) offer(t *testing.T, callID, ruser string) *fakeInvite {
	t.Helper()
	inv := e.w.newInvite(callID, "alice", ruser, "127.0.0.1:5070", []byte("sendrecv"))
	require.True(t, e.w.send(inv), "no INVITE handler")
	return inv
}

func (e *inboundEnv) waitCall(t *testing.T, id string) *Call {
	t.Helper()
	var c *Call
	require.True(t, waitFor(func() bool {
		var ok bool
		c, ok = e.m.Call(id)
		return ok
	}), "call %s never started", id)
	return c
}

func TestIncomingAnswer(t *testing.T) {
	e := newInboundEnv(t, nil, nil)
	ctx := ctxT(t)
	inv := e.offer(t, "in-1@host", "room7")
	answers := inv.waitFinal(t)
	require.Len(t, answers, 1)
	assert.True(t, strings.HasPrefix(answers[0], "200 answer"), "answers %v", answers)

	in := <-e.lastIn
	assert.Equal(t, "in-1@host", in.CallID)
	assert.Equal(t, "alice", in.Caller)
	assert.Equal(t, "Alice", in.CallerName)
	assert.Equal(t, "sip:alice@example.com", in.CallerURI)
	assert.Equal(t, "room7", in.Callee)
	assert.Equal(t, "sip:room7@gw.example", in.CalleeURI)
	assert.Equal(t, "sip:room7@127.0.0.1", in.RequestURI)
	assert.Equal(t, []sip.Header{{Name: "X-Room", Value: "7"}}, in.Headers)
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.1:5070"), in.Source)
	assert.True(t, in.Audio)
	assert.True(t, in.Video)
	assert.False(t, in.DelayedOffer)
	assert.Empty(t, in.Account)
	assert.Empty(t, in.AuthUser)

	c := e.waitCall(t, "in-1@host")
	require.NoError(t, c.WaitEstablished(ctx))
	info := c.Info()
	assert.True(t, info.Incoming)
	assert.Equal(t, "alice", info.Caller)
	assert.Equal(t, "room7", info.Callee)
	assert.Equal(t, "in-1@host", info.ToStream)
	require.True(t, waitFor(func() bool { return e.w.rtmpSink("room7") != nil }), "the RTMP leg starts at the answer")
	assert.Len(t, e.m.Find(Filter{Callee: "room7"}), 1)

	// The caller hangs up.
	e.w.dialog("in-1@host").peerBye()
	waitDone(t, c)
	assert.ErrorIs(t, c.Err(), ErrRemoteHangup)
	assert.Equal(t, []Status{StatusRing, StatusEstablished, StatusFinish}, e.log.statuses("in-1@host"))
	assert.Equal(t, uint64(1), e.m.IncomingCounts()[IncomingAnswered])
	assert.Zero(t, e.m.pending.Load())
}

func TestIncomingRingAndEarlyMedia(t *testing.T) {
	tone := (&sound.Clip{SampleRate: 8000, Samples: testmedia.Tone(440, 8000, 0, 8000, 0.4)}).Play(8000, true)
	e := newInboundEnv(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		d := AnswerWith(CallParams{RTMPURL: "rtmp://127.0.0.1/live", RTMPStream: in.Callee, HasAudio: true})
		d.Ring = 150 * time.Millisecond
		if in.Callee == "early" {
			d.EarlyMedia = true
			d.EarlySound = tone
		}
		return d, nil
	}, nil)
	ctx := ctxT(t)

	inv := e.offer(t, "ring-1", "plain")
	require.Equal(t, []string{"180", "200 answer"}, inv.waitFinal(t))
	c := e.waitCall(t, "ring-1")
	require.NoError(t, c.WaitEstablished(ctx))
	evs := e.log.events("ring-1")
	require.NotEmpty(t, evs)
	assert.Equal(t, StatusRing, evs[0].Status)
	assert.Equal(t, 180, evs[0].SIPStatus)
	assert.True(t, evs[0].Info.Incoming)

	inv = e.offer(t, "early-1", "early")
	c = e.waitCall(t, "early-1")
	e.log.waitStatus(t, "early-1", StatusRingMedia)
	sess := e.w.session("early-1")
	require.NotNil(t, sess)
	assert.Equal(t, sound.Source(tone), sess.audioSource(), "the caller hears the early sound")
	assert.Nil(t, e.w.rtmpSink("early"), "no sink before the answer")
	require.Equal(t, []string{"183 answer", "200 answer"}, inv.waitFinal(t))
	require.NoError(t, c.WaitEstablished(ctx))
	assert.Nil(t, sess.audioSource(), "silence after the answer")
	require.True(t, waitFor(func() bool { return e.w.rtmpSink("early") != nil }))
	e.log.waitStatus(t, "early-1", StatusEstablished)
	assert.Equal(t, []Status{StatusRing, StatusRingMedia, StatusEstablished}, e.log.statuses("early-1"))
	sess.mu.Lock()
	starts := len(sess.specs)
	sess.mu.Unlock()
	assert.Equal(t, 2, starts, "started for early media, updated (timeouts restarted) at the answer")
}

func TestIncomingCancel(t *testing.T) {
	deciding := make(chan context.Context, 1)
	e := newInboundEnv(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		if in.Callee == "slow" {
			deciding <- ctx
			<-ctx.Done()
			return Decision{}, ctx.Err()
		}
		d := AnswerWith(CallParams{})
		d.Ring = time.Hour
		return d, nil
	}, nil)

	// CANCEL while ringing: FINISH 487, no answer sent.
	inv := e.offer(t, "cancel-ring", "ringing")
	c := e.waitCall(t, "cancel-ring")
	e.log.waitStatus(t, "cancel-ring", StatusRing)
	require.True(t, waitFor(func() bool { return len(inv.responses()) == 1 }))
	inv.cancelNow()
	waitDone(t, c)
	info := c.Info()
	assert.Equal(t, StatusFinish, info.Status)
	assert.Equal(t, 487, info.SIPStatus)
	assert.ErrorIs(t, c.Err(), ErrRemoteHangup)
	assert.Equal(t, []string{"180", "487"}, inv.responses())

	// CANCEL while OnIncoming decides: its ctx ends, nothing else is sent.
	inv = e.offer(t, "cancel-decide", "slow")
	ctx := <-deciding
	inv.cancelNow()
	<-ctx.Done()
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	require.True(t, waitFor(func() bool { return e.m.IncomingCounts()[IncomingCancelled] == 2 }), "%v", e.m.IncomingCounts())
	assert.Equal(t, []string{"487"}, inv.responses())
	assert.Zero(t, e.w.sessOpen.Load())
	require.True(t, waitFor(func() bool { return e.m.pending.Load() == 0 }))
}

func TestIncomingDecisionTimeout(t *testing.T) {
	e := newInboundEnv(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		<-ctx.Done()
		return AnswerWith(CallParams{}), nil // too late: ignored
	}, func(c *Config) { c.Inbound.DecisionTimeout = 50 * time.Millisecond })
	inv := e.offer(t, "slow-1", "x")
	assert.Equal(t, []string{"480 Temporarily Unavailable"}, inv.waitFinal(t))
	_, ok := e.m.Call("slow-1")
	assert.False(t, ok)
	// Counted once the answer has gone out: wait for it.
	require.True(t, waitFor(func() bool { return e.m.IncomingCounts()[IncomingRejected] == 1 }), "%v", e.m.IncomingCounts())
}

func TestIncomingDecisions(t *testing.T) {
	e := newInboundEnv(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		switch in.Callee {
		case "busy":
			return RejectWith(486, "Busy Here"), nil
		case "decline":
			return RejectWith(0, ""), nil
		case "nophrase":
			return RejectWith(404, ""), nil
		case "badcode":
			return RejectWith(200, "OK"), nil
		case "redirect":
			return RedirectTo("sip:desk@pbx.example"), nil
		case "error":
			return Decision{}, errors.New("database down")
		case "none":
			return Decision{}, nil
		case "badparams":
			return AnswerWith(CallParams{RTMPURL: "ftp://x"}), nil
		case "dupstream":
			return AnswerWith(CallParams{RTMPURL: "rtmp://127.0.0.1/live", RTMPStream: "taken"}), nil
		case "record":
			return AnswerWith(CallParams{Record: true}), nil
		}
		return AnswerWith(CallParams{RTMPURL: "rtmp://127.0.0.1/live", RTMPStream: "taken"}), nil
	}, func(c *Config) { c.RecordDir = "" })
	ctx := ctxT(t)
	first := e.offer(t, "keeper", "keeper")
	first.waitFinal(t)
	require.NoError(t, e.waitCall(t, "keeper").WaitEstablished(ctx))

	for callee, want := range map[string]string{
		"busy":      "486 Busy Here",
		"decline":   "603 Decline",
		"nophrase":  "404 Not Found",
		"badcode":   "500 Server Internal Error",
		"redirect":  "302 sip:desk@pbx.example",
		"error":     "500 Server Internal Error",
		"none":      "500 Server Internal Error",
		"badparams": "500 Server Internal Error",
		"dupstream": "486 Busy Here",
		"record":    "500 Server Internal Error",
	} {
		inv := e.offer(t, "d-"+callee, callee)
		assert.Equal(t, []string{want}, inv.waitFinal(t), callee)
		_, ok := e.m.Call("d-" + callee)
		assert.False(t, ok, callee)
	}
	assert.Len(t, e.m.FindAll(), 1)
	assert.Equal(t, int32(1), e.w.sessOpen.Load(), "refused calls release their media session")
	require.True(t, waitFor(func() bool { return e.m.IncomingCounts()[IncomingRejected] == 10 }), "%v", e.m.IncomingCounts())
	assert.Equal(t, uint64(1), e.m.IncomingCounts()[IncomingAnswered])
	assert.Contains(t, e.buf.String(), "database down")
}

func TestIncomingLimits(t *testing.T) {
	release := make(chan struct{})
	e := newInboundEnv(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		if in.Callee == "wait" {
			<-release
		}
		return AnswerWith(CallParams{}), nil
	}, func(c *Config) {
		c.Inbound.MaxPending = 1
		c.MaxCalls = 1
	})
	ctx := ctxT(t)
	waiting := e.offer(t, "p-1", "wait")
	require.True(t, waitFor(func() bool { return e.decisions.Load() == 1 }))
	over := e.offer(t, "p-2", "other")
	assert.Equal(t, []string{"503 Service Unavailable"}, over.waitFinal(t), "MaxPending")
	close(release)
	waiting.waitFinal(t)
	require.NoError(t, e.waitCall(t, "p-1").WaitEstablished(ctx))
	full := e.offer(t, "p-3", "other")
	assert.Equal(t, []string{"503 Service Unavailable"}, full.waitFinal(t), "MaxCalls")
	assert.Equal(t, uint64(2), e.m.IncomingCounts()[IncomingOverloaded])
	assert.Equal(t, int32(1), e.decisions.Load(), "refused before the decision")
}

// TestIncomingStrangers: every combination of the who-may-call checks; a
// refused INVITE never reaches OnIncoming nor allocates a media session.
func TestIncomingStrangers(t *testing.T) {
	type tc struct {
		name    string
		allow   string // AllowFrom
		users   bool
		account bool // a registered account at 127.0.0.9 for user "acct"
		binding bool // a registrar binding from 127.0.0.8
		src     string
		ruser   string
		auth    string
		want    string // first answer
	}
	cases := []tc{
		{name: "nothing configured", src: "10.0.0.1:5060", want: "403 Forbidden"},
		{name: "allowed network", allow: "10.0.0.0/8", src: "10.1.2.3:5060", want: "200"},
		{name: "other network", allow: "10.0.0.0/8", src: "192.168.1.1:5060", want: "403 Forbidden"},
		{name: "users, no credentials", users: true, src: "192.168.1.1:5060", want: "401"},
		{name: "users, wrong credentials", users: true, src: "192.168.1.1:5060", auth: "bad", want: "403"},
		{name: "users, authenticated", users: true, src: "192.168.1.1:5060", auth: "trunk", want: "200"},
		{name: "other network, users", allow: "10.0.0.0/8", users: true, src: "192.168.1.1:5060", want: "401"},
		{name: "account's registrar", account: true, src: "127.0.0.9:5060", ruser: "acct", want: "200"},
		{name: "account's registrar, other user", account: true, src: "127.0.0.9:5060", ruser: "other", want: "403 Forbidden"},
		{name: "account user, other source", account: true, src: "127.0.0.10:5060", ruser: "acct", want: "403 Forbidden"},
		{name: "binding source", binding: true, src: "127.0.0.8:6000", want: "200"},
		{name: "not a binding's source", binding: true, src: "127.0.0.7:6000", want: "403 Forbidden"},
		{name: "binding host, other port", binding: true, src: "127.0.0.8:6001", want: "403 Forbidden"},
		{name: "all, stranger", allow: "10.0.0.0/8", users: true, account: true, binding: true, src: "172.16.0.1:5060", ruser: "acct", want: "401"},
	}
	for _, k := range cases {
		t.Run(k.name, func(t *testing.T) {
			var got atomic.Pointer[IncomingCall]
			e := newTestEnv(t, func(c *Config) {
				c.OnIncoming = func(ctx context.Context, in IncomingCall) (Decision, error) {
					got.Store(&in)
					return AnswerWith(CallParams{}), nil
				}
				if k.allow != "" {
					c.Inbound.AllowFrom = []netip.Prefix{netip.MustParsePrefix(k.allow)}
				}
				if k.users {
					c.Inbound.Users = map[string]string{"trunk": "pw"}
				}
				if k.account {
					c.Accounts = []Account{{User: "acct", Domain: "127.0.0.9", Password: "pw"}}
				}
			})
			if k.binding {
				e.w.mu.Lock()
				e.w.bindings = []sip.Binding{{User: "phone", Contact: "sip:phone@127.0.0.8:6000", Source: netip.MustParseAddrPort("127.0.0.8:6000"), Transport: "udp", Expires: time.Now().Add(time.Hour)}}
				e.w.mu.Unlock()
			}
			if k.account {
				require.True(t, waitFor(func() bool { return len(e.m.Registrations()) > 0 && e.m.Registrations()[0].State == RegRegistered }))
			}
			ruser := k.ruser
			if ruser == "" {
				ruser = "room"
			}
			inv := e.w.newInvite("s-1", "mallory", ruser, k.src, []byte("sendrecv"))
			inv.auth = k.auth
			require.True(t, e.w.send(inv))
			answers := inv.waitFinal(t)
			require.NotEmpty(t, answers)
			assert.True(t, strings.HasPrefix(answers[0], k.want), "answers %v", answers)
			if k.want != "200" {
				assert.Nil(t, got.Load(), "OnIncoming called for a stranger")
				assert.Zero(t, e.w.sessOpen.Load())
				assert.True(t, waitFor(func() bool {
					counts := e.m.IncomingCounts()
					return counts[IncomingForbidden]+counts[IncomingUnauthorized] == 1
				}), "%v", e.m.IncomingCounts())
				return
			}
			in := got.Load()
			require.NotNil(t, in)
			if k.account {
				assert.Equal(t, "acct@127.0.0.9", in.Account)
			}
			if k.auth != "" {
				assert.Equal(t, k.auth, in.AuthUser)
			}
			c := (&inboundEnv{testEnv: e}).waitCall(t, "s-1")
			require.NoError(t, c.Terminate(ctxT(t)))
		})
	}
}

func TestIncomingTerminate(t *testing.T) {
	e := newInboundEnv(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		d := AnswerWith(CallParams{HasAudio: true})
		if in.Callee == "ring" {
			d.Ring = time.Hour
		}
		return d, nil
	}, nil)
	ctx := ctxT(t)

	// Before the answer: the INVITE is declined, the call ends FINISH.
	inv := e.offer(t, "t-ring", "ring")
	c := e.waitCall(t, "t-ring")
	e.log.waitStatus(t, "t-ring", StatusRing)
	require.NoError(t, e.m.Terminate(ctx, "t-ring"))
	assert.Equal(t, []string{"180", "603 Decline"}, inv.waitFinal(t))
	assert.Equal(t, StatusFinish, c.Info().Status)
	assert.Equal(t, 603, c.Info().SIPStatus)

	// After: BYE; DTMF and hold work as on a call we placed.
	inv = e.offer(t, "t-up", "up")
	inv.waitFinal(t)
	c = e.waitCall(t, "t-up")
	require.NoError(t, c.WaitEstablished(ctx))
	d := e.w.dialog("t-up")
	require.NoError(t, e.m.SendDTMF(ctx, "t-up", "12", DTMFInfo))
	require.NoError(t, e.m.SendDTMF(ctx, "t-up", "3", DTMFRFC2833))
	d.mu.Lock()
	assert.Equal(t, []string{"1/false", "2/false"}, d.digits)
	d.mu.Unlock()
	sess := e.w.session("t-up")
	sess.mu.Lock()
	assert.Equal(t, []string{"3"}, sess.dtmf)
	sess.mu.Unlock()
	require.NoError(t, c.Hold(ctx))
	assert.Equal(t, StatusHold, c.Info().Status)
	require.Len(t, d.reinviteOffers(), 1)
	assert.Contains(t, d.reinviteOffers()[0], "sendonly")
	require.NoError(t, c.Unhold(ctx))
	// The caller's DTMF (INFO) and its re-INVITE.
	d.req.OnDTMF('7')
	ans, err := d.req.OnReinvite([]byte("sendonly"))
	require.NoError(t, err)
	assert.Equal(t, "answer", string(ans))
	require.True(t, waitFor(func() bool { return c.Info().Status == StatusHold }))
	require.NoError(t, e.m.Terminate(ctx, "t-up"))
	assert.Equal(t, 1, d.byeCount())
	waitDone(t, c)
	var digits []rune
	for _, ev := range e.log.events("t-up") {
		if ev.Type == EventDTMF {
			digits = append(digits, ev.Digit)
		}
	}
	assert.Equal(t, []rune{'7'}, digits)
}

func TestIncomingCallIDAndDelayedOffer(t *testing.T) {
	e := newInboundEnv(t, nil, nil)
	ctx := ctxT(t)
	// A Call-ID no call can have: a generated ID.
	inv := e.w.newInvite("bad call id", "alice", "r1", "127.0.0.1:5070", []byte("sendrecv"))
	require.True(t, e.w.send(inv))
	inv.waitFinal(t)
	require.True(t, waitFor(func() bool { return len(e.m.FindAll()) == 1 }))
	id := e.m.FindAll()[0].CallID
	assert.NotEqual(t, "bad call id", id)
	assert.Len(t, id, 16)

	// One a live call has: generated too.
	_, err := e.m.StartCall(ctx, CallParams{CallID: "taken", Callee: "sip:answer@pbx.example"})
	require.NoError(t, err)
	inv = e.offer(t, "taken", "r2")
	inv.waitFinal(t)
	require.True(t, waitFor(func() bool { return len(e.m.Find(Filter{Callee: "r2"})) == 1 }))
	assert.NotEqual(t, "taken", e.m.Find(Filter{Callee: "r2"})[0].CallID)

	// A delayed offer: ours in the 200, the ACK's answer negotiated.
	inv = e.w.newInvite("delayed", "alice", "r3", "127.0.0.1:5070", nil)
	require.True(t, e.w.send(inv))
	answers := inv.waitFinal(t)
	require.Len(t, answers, 1)
	assert.Contains(t, answers[0], "200 audio 4", "our offer in the 200")
	in := <-e.lastIn
	for in.CallID != "delayed" {
		in = <-e.lastIn
	}
	assert.True(t, in.DelayedOffer)
	c := e.waitCall(t, "delayed")
	require.NoError(t, c.WaitEstablished(ctx))

	// An offer we cannot answer: 488 before any decision.
	n := e.decisions.Load()
	inv = e.w.newInvite("nocodec", "alice", "r4", "127.0.0.1:5070", []byte("garbage"))
	require.True(t, e.w.send(inv))
	assert.Equal(t, []string{"488 Not Acceptable Here"}, inv.waitFinal(t))
	assert.Equal(t, n, e.decisions.Load())

	// No ACK: the call fails.
	inv = e.w.newInvite("noack", "alice", "r5", "127.0.0.1:5070", []byte("sendrecv"))
	inv.noACK = true
	require.True(t, e.w.send(inv))
	inv.waitFinal(t)
	e.log.waitStatus(t, "noack", StatusFailed)
	evs := e.log.events("noack")
	assert.Equal(t, 408, evs[len(evs)-1].SIPStatus)
}

func TestIncomingOffWithoutHandler(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Inbound.AllowFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	inv := e.w.newInvite("x", "alice", "r", "127.0.0.1:5070", []byte("sendrecv"))
	assert.False(t, e.w.send(inv), "without OnIncoming the user agent keeps refusing (480)")
}

func TestInboundConfigValidation(t *testing.T) {
	for name, in := range map[string]InboundConfig{
		"negative timeout":   {DecisionTimeout: -1},
		"negative pending":   {MaxPending: -1},
		"bad user":           {Users: map[string]string{"a b": "x"}},
		"password with CRLF": {Users: map[string]string{"a": "x\r\n"}},
		"registrar no users": {Registrar: true},
		"bad prefix":         {AllowFrom: []netip.Prefix{{}}},
		"quote in realm":     {Realm: `a"b`},
	} {
		_, err := New(Config{ListenAddr: "127.0.0.1:0", Inbound: in, backend: newFakeWorld().backend()})
		assert.Error(t, err, name)
		if err != nil {
			assert.NotContains(t, err.Error(), "x\r\n", name)
		}
	}
}

// --- accounts ---

// regLog collects EventRegistration events.
type regLog struct {
	mu  sync.Mutex
	evs []RegistrationInfo
}

func (l *regLog) add(ev Event) {
	if ev.Type != EventRegistration {
		return
	}
	l.mu.Lock()
	l.evs = append(l.evs, ev.Registration)
	l.mu.Unlock()
}

func (l *regLog) states(account string) []RegState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []RegState
	for _, ri := range l.evs {
		if ri.Account == account {
			out = append(out, ri.State)
		}
	}
	return out
}

func TestAccounts(t *testing.T) {
	rl := &regLog{}
	var e *testEnv
	e = newTestEnv(t, func(c *Config) {
		c.OnEvent = rl.add
		c.accountRetry = 20 * time.Millisecond
		c.Accounts = []Account{{User: "1001", Domain: "127.0.0.1", Password: "secret-pw", Expires: 10 * time.Minute}}
		c.backend.sig.(*fakeSig).regFails = 2
	})
	ctx := ctxT(t)
	// Two failures, retried, then registered.
	require.True(t, waitFor(func() bool {
		r := e.m.Registrations()
		return len(r) == 1 && r[0].State == RegRegistered
	}))
	r := e.m.Registrations()[0]
	assert.Equal(t, "1001@127.0.0.1", r.Account)
	assert.Equal(t, "1001", r.User)
	assert.Equal(t, "127.0.0.1", r.Domain)
	assert.WithinDuration(t, time.Now().Add(time.Hour), r.Expires, time.Minute)
	assert.Contains(t, r.LastError, "403")
	require.True(t, waitFor(func() bool { return len(rl.states("1001@127.0.0.1")) == 6 }))
	assert.Equal(t, []RegState{RegRegistering, RegFailed, RegRegistering, RegFailed, RegRegistering, RegRegistered}, rl.states("1001@127.0.0.1"))
	e.w.mu.Lock()
	require.Len(t, e.w.registers, 3)
	got := e.w.registers[2]
	reg := e.w.regs[0]
	e.w.mu.Unlock()
	assert.Equal(t, 10*time.Minute, got.Expires)
	assert.Equal(t, "1001", got.AuthUser)

	// Refreshes: a failure, then success again.
	reg.acct.OnRefresh(errors.New("sip: 503 Service Unavailable"))
	assert.Equal(t, RegFailed, e.m.Registrations()[0].State)
	reg.acct.OnRefresh(nil)
	assert.Equal(t, RegRegistered, e.m.Registrations()[0].State)

	// An outgoing call for the account uses the registration.
	c, err := e.m.StartCall(ctx, CallParams{Callee: "sip:answer@127.0.0.1", SIPLogin: "1001", SIPDomain: "127.0.0.1", SIPRegisterRequired: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	e.w.mu.Lock()
	assert.Len(t, e.w.registers, 3, "no REGISTER of its own")
	e.w.mu.Unlock()
	require.NoError(t, c.Terminate(ctx))
	// Another login registers per call.
	c, err = e.m.StartCall(ctx, CallParams{Callee: "sip:answer@127.0.0.1", SIPLogin: "1002", SIPDomain: "127.0.0.1", SIPRegisterRequired: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	require.NoError(t, c.Terminate(ctx))
	e.w.mu.Lock()
	assert.Len(t, e.w.registers, 4)
	e.w.mu.Unlock()

	// Add and remove.
	assert.ErrorIs(t, e.m.AddAccount(ctx, Account{User: "1001", Domain: "127.0.0.1"}), ErrDuplicateAccount)
	assert.ErrorIs(t, e.m.AddAccount(ctx, Account{User: "bad user", Domain: "x"}), ErrInvalidParams)
	assert.ErrorIs(t, e.m.AddAccount(ctx, Account{User: "u"}), ErrInvalidParams)
	assert.ErrorIs(t, e.m.AddAccount(ctx, Account{User: "u", Domain: "x", Transport: "sctp"}), ErrInvalidParams)
	require.NoError(t, e.m.AddAccount(ctx, Account{Name: "second", User: "2002", Domain: "localhost"}))
	require.True(t, waitFor(func() bool {
		r := e.m.Registrations()
		return len(r) == 2 && r[1].State == RegRegistered
	}))
	assert.Equal(t, "second", e.m.Registrations()[1].Account)
	assert.Equal(t, int32(2), e.w.regOpen.Load())
	require.NoError(t, e.m.RemoveAccount(ctx, "second"))
	assert.ErrorIs(t, e.m.RemoveAccount(ctx, "second"), ErrAccountNotFound)
	assert.Equal(t, int32(1), e.w.regOpen.Load(), "unREGISTERed")
	assert.Len(t, e.m.Registrations(), 1)
	require.True(t, waitFor(func() bool { return len(rl.states("second")) == 3 }))
	assert.Equal(t, []RegState{RegRegistering, RegRegistered, RegUnregistered}, rl.states("second"))

	// Close unregisters the rest, its event delivered before Close returns.
	require.NoError(t, e.m.Close(ctx))
	assert.Zero(t, e.w.regOpen.Load())
	states := rl.states("1001@127.0.0.1")
	assert.Equal(t, RegUnregistered, states[len(states)-1])
	assert.ErrorIs(t, e.m.AddAccount(ctx, Account{User: "3003", Domain: "x"}), ErrClosed)
	rl.mu.Lock()
	for _, ri := range rl.evs {
		assert.NotContains(t, ri.LastError, "secret-pw")
	}
	rl.mu.Unlock()
	assert.NotContains(t, e.buf.String(), "secret-pw")
}

func TestAccountNeverRegistered(t *testing.T) {
	rl := &regLog{}
	e := newTestEnv(t, func(c *Config) {
		c.OnEvent = rl.add
		c.Accounts = []Account{{User: "1001", Domain: "no-such-host.invalid"}}
	})
	// New did not wait; the account fails to resolve and keeps trying
	// until Close.
	require.True(t, waitFor(func() bool { return len(rl.states("1001@no-such-host.invalid")) >= 2 }))
	r := e.m.Registrations()[0]
	assert.Equal(t, RegFailed, r.State)
	assert.Contains(t, r.LastError, "no-such-host.invalid")
	assert.True(t, r.Expires.IsZero())
}

func TestRegistrarBindings(t *testing.T) {
	rl := &regLog{}
	e := newTestEnv(t, func(c *Config) {
		c.OnEvent = rl.add
		c.Inbound.Users = map[string]string{"trunk": "pw"}
		c.Inbound.Registrar = true
	})
	e.w.mu.Lock()
	serve := e.w.serve
	exp := time.Now().Add(time.Hour)
	b := sip.Binding{User: "trunk", Contact: "sip:trunk@127.0.0.5:5080", Source: netip.MustParseAddrPort("127.0.0.5:5080"), Expires: exp}
	e.w.bindings = []sip.Binding{b}
	e.w.mu.Unlock()
	assert.True(t, serve.Registrar)
	assert.Equal(t, "sipstream", serve.Realm)
	assert.Nil(t, serve.OnInvite, "no OnIncoming: INVITEs stay refused")
	serve.OnBinding(b, false)
	r := e.m.Registrations()
	require.Len(t, r, 1)
	assert.True(t, r[0].Inbound)
	assert.Equal(t, "sip:trunk@127.0.0.5:5080", r[0].Contact)
	assert.Equal(t, RegRegistered, r[0].State)
	assert.Equal(t, exp, r[0].Expires)
	serve.OnBinding(b, true)
	require.True(t, waitFor(func() bool { return len(rl.states("trunk")) == 2 }))
	assert.Equal(t, []RegState{RegRegistered, RegUnregistered}, rl.states("trunk"))
}

// The offer's media, as IncomingCall reports them (real SDP).
func TestIncomingDescribeRealSDP(t *testing.T) {
	w := newFakeWorld()
	var got atomic.Pointer[IncomingCall]
	e := newTestEnv(t, func(c *Config) {
		c.backend = w.realBackend()
		c.PublicIP = netip.MustParseAddr("127.0.0.1")
		c.Inbound.AllowFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.OnIncoming = func(ctx context.Context, in IncomingCall) (Decision, error) {
			got.Store(&in)
			return RejectWith(486, ""), nil
		}
	})
	e.w = w
	peer := peerSDPConfig(media.SendRecv)
	peer.Video = nil
	audioOnly, err := marshalOffer(peer)
	require.NoError(t, err)
	inv := w.newInvite("a-1", "alice", "r", "127.0.0.1:5070", audioOnly)
	require.True(t, w.send(inv))
	assert.Equal(t, []string{"486 Busy Here"}, inv.waitFinal(t))
	in := got.Load()
	require.NotNil(t, in)
	assert.True(t, in.Audio)
	assert.False(t, in.Video)
	assert.False(t, in.SRTP)

	peer = peerSDPConfig(media.SendRecv)
	peer.Audio.Crypto, peer.Video.Crypto = &media.Crypto{}, &media.Crypto{}
	secure, err := marshalOffer(peer)
	require.NoError(t, err)
	inv = w.newInvite("a-2", "alice", "r", "127.0.0.1:5070", secure)
	require.True(t, w.send(inv))
	inv.waitFinal(t)
	in = got.Load()
	assert.True(t, in.Audio && in.Video && in.SRTP)
}

func marshalOffer(cfg sdp.OfferConfig) ([]byte, error) {
	o, err := sdp.NewOffer(cfg)
	if err != nil {
		return nil, err
	}
	return o.Marshal(), nil
}

func TestSecretsNotPrinted(t *testing.T) {
	a := Account{User: "1001", Domain: "pbx", Password: "acct-pw"}
	in := InboundConfig{Users: map[string]string{"trunk": "trunk-pw"}}
	var buf strings.Builder
	l := slog.New(slog.NewTextHandler(&buf, nil))
	l.Info("x", "account", a, "inbound", in)
	for _, s := range []string{a.String(), fmt.Sprintf("%v %+v %#v", a, a, a), in.String(), fmt.Sprintf("%v %+v %#v", in, in, in), buf.String()} {
		assert.NotContains(t, s, "acct-pw")
		assert.NotContains(t, s, "trunk-pw")
	}
	assert.Contains(t, in.String(), "trunk")
	assert.Contains(t, a.String(), "1001")
}

// Close ends the decisions in progress (their INVITEs get 480) and waits
// for them; INVITEs after that get 480 at once.
func TestIncomingClose(t *testing.T) {
	deciding := make(chan struct{})
	returned := make(chan struct{})
	e := newInboundEnv(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		close(deciding)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		close(returned)
		return AnswerWith(CallParams{}), nil
	}, nil)
	inv := e.offer(t, "closing", "x")
	<-deciding
	require.NoError(t, e.m.Close(ctxT(t)))
	select {
	case <-returned:
	default:
		t.Fatal("Close returned before the decision")
	}
	assert.Equal(t, []string{"480 Temporarily Unavailable"}, inv.waitFinal(t))
	late := e.w.newInvite("late", "alice", "x", "127.0.0.1:5070", []byte("sendrecv"))
	require.True(t, e.w.send(late))
	assert.Equal(t, []string{"480 Temporarily Unavailable"}, late.waitFinal(t))
	assert.Equal(t, int32(1), e.decisions.Load())
}

func TestBoundSource(t *testing.T) {
	ap := netip.MustParseAddrPort
	udp := sip.Binding{User: "trunk", Source: ap("192.0.2.7:5062"), Transport: "udp"}
	tcp := sip.Binding{User: "trunk", Source: ap("192.0.2.7:40001"), Transport: "tcp"}
	for _, tc := range []struct {
		name      string
		b         sip.Binding
		src       string
		transport string
		want      bool
	}{
		{"udp same socket", udp, "192.0.2.7:5062", "udp", true},
		{"udp other port on the host", udp, "192.0.2.7:5060", "udp", false},
		{"udp binding, tcp call", udp, "192.0.2.7:5062", "tcp", false},
		{"other host", udp, "192.0.2.8:5062", "udp", false},
		{"tcp new connection", tcp, "192.0.2.7:40999", "tcp", true},
		{"tcp binding, tls call", tcp, "192.0.2.7:40999", "tls", true},
		{"tcp binding, udp call", tcp, "192.0.2.7:40001", "udp", false},
		{"mapped address", udp, "[::ffff:192.0.2.7]:5062", "udp", true},
	} {
		if got := boundSource(tc.b, ap(tc.src), tc.transport); got != tc.want {
			t.Errorf("%s: boundSource = %v, want %v", tc.name, got, tc.want)
		}
	}
}
