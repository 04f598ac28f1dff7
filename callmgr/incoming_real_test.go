package callmgr

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sip/siptest"
)

// pcmSink decodes the G.711 audio a call publishes (a tap for Goertzel).
type pcmSink struct {
	mu     sync.Mutex
	pcm    []int16
	video  int
	closed bool
}

func (s *pcmSink) WriteFrame(f *media.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f.Codec {
	case media.CodecPCMA:
		s.pcm = g711.DecodeALaw(s.pcm, f.Payload)
	case media.CodecPCMU:
		s.pcm = g711.DecodeULaw(s.pcm, f.Payload)
	case media.CodecH264:
		s.video++
	}
	return nil
}

func (s *pcmSink) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *pcmSink) audio() ([]int16, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.pcm...), s.video
}

// realInbound is a Manager on the real stack (SIP, SDP, media sessions)
// that takes calls from 127.0.0.0/8 or from the digest user "trunk", and
// a siptest peer that calls it.
func realInbound(t *testing.T, decide func(ctx context.Context, in IncomingCall) (Decision, error)) (*Manager, *eventLog, *siptest.Peer, string) {
	t.Helper()
	base := testenv.FreeUDPRange(t, 40)
	log := newEventLog()
	m, err := New(Config{
		ListenAddr: "127.0.0.1:0", RTPPortMin: base, RTPPortMax: base + 39,
		OnEvent:    log.add,
		OnIncoming: decide,
		Inbound: InboundConfig{
			AllowFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")},
			Users:     map[string]string{"trunk": "trunk-secret"},
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, m.Close(ctx))
		// Every RTP/RTCP port of the range is free again.
		for p := base; p < base+40; p++ {
			c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if assert.NoError(t, err, "port %d left open", p) {
				_ = c.Close()
			}
		}
	})
	caller, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", User: "alice"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = caller.Close() })
	target := "sip:room1@127.0.0.1:" + strconv.Itoa(m.ListenPort("udp"))
	return m, log, caller, target
}

// TestIncomingRealStack: a siptest caller calls a Manager on the real
// stack: digest authentication, ringing with early media, the answer; the
// caller's tone reaches a tap sink (Goertzel), the caller hears our
// silence, its DTMF (RFC 4733 and INFO) become EventDTMF, our hold reaches
// it, and its BYE ends the call FINISH.
func TestIncomingRealStack(t *testing.T) {
	m, log, caller, target := realInbound(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		d := AnswerWith(CallParams{HasAudio: true, HasVideo: true})
		d.Ring = 200 * time.Millisecond
		d.EarlyMedia = true
		return d, nil
	})
	ctx := ctxT(t)

	// A stranger: challenged, and without the password refused.
	_, err := caller.Call(ctx, target, siptest.CallOptions{})
	var se *siptest.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 401, se.Code)
	_, err = caller.Call(ctx, target, siptest.CallOptions{User: "trunk", Password: "wrong"})
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 403, se.Code)
	require.True(t, waitFor(func() bool {
		c := m.IncomingCounts()
		return c[IncomingUnauthorized] >= 1 && c[IncomingForbidden] >= 1
	}), "%v", m.IncomingCounts())
	assert.Empty(t, m.FindAll())

	pc, err := caller.Call(ctx, target, siptest.CallOptions{User: "trunk", DisplayName: "Trunk One", Password: "trunk-secret",
		Script: siptest.Script{Audio: true, Video: true, ToneHz: 1000}})
	require.NoError(t, err)
	c, ok := m.Call(pc.CallID())
	require.True(t, ok, "the call's ID is the SIP Call-ID")
	require.NoError(t, c.WaitEstablished(ctx))
	info := c.Info()
	assert.True(t, info.Incoming)
	assert.Equal(t, "trunk", info.Caller)
	assert.Equal(t, "room1", info.Callee)
	log.waitStatus(t, c.ID(), StatusEstablished)
	assert.Equal(t, []Status{StatusRing, StatusRingMedia, StatusEstablished}, log.statuses(c.ID()))

	tap := &pcmSink{}
	_, err = c.AddSink(ctx, SinkSpec{ID: "tap", Sink: tap})
	require.NoError(t, err)
	require.True(t, waitFor(func() bool { pcm, _ := tap.audio(); return len(pcm) >= 8000 }), "a second of the caller's audio")
	pcm, video := tap.audio()
	tone := testmedia.Goertzel(pcm[2000:], 8000, 1000)
	t.Logf("caller's 1 kHz tone at the tap: %.2f of the energy, %d video frames", tone, video)
	assert.Greater(t, tone, 0.8)
	assert.Positive(t, video)

	// The caller hears silence (sendrecv keeps phones up).
	require.NoError(t, pc.WaitRTP(ctx, media.KindAudio, 50))
	heard := pc.ReceivedAudio()
	require.NotEmpty(t, heard)
	var peak int16
	for _, s := range heard {
		peak = max(peak, s, -s)
	}
	t.Logf("the caller received %d samples of audio, peak %d", len(heard), peak)
	assert.Less(t, peak, int16(64), "silence")

	// A sound injected into the call reaches the caller.
	clip := &sound.Clip{SampleRate: 8000, Samples: testmedia.Tone(700, 8000, 0, 8000, 0.4)}
	require.NoError(t, c.InjectSound(ctx, clip.Play(8000, true), "prompt"))
	n := len(pc.ReceivedAudio())
	require.True(t, waitFor(func() bool { return len(pc.ReceivedAudio()) >= n+8000 }))
	heard = pc.ReceivedAudio()
	injected := testmedia.Goertzel(heard[len(heard)-4000:], 8000, 700)
	t.Logf("the injected 700 Hz tone at the caller: %.2f of the energy", injected)
	assert.Greater(t, injected, 0.8)

	// The caller's DTMF: RFC 4733, then SIP INFO.
	require.NoError(t, pc.SendDTMF(ctx, "12"))
	require.NoError(t, pc.SendInfo(ctx, "application/dtmf-relay", []byte("Signal=5\r\nDuration=160\r\n")))
	require.True(t, waitFor(func() bool { return string(digitsOf(log, c.ID())) == "125" }), "digits %q", string(digitsOf(log, c.ID())))

	// Our hold reaches the caller as a re-INVITE.
	require.NoError(t, c.Hold(ctx))
	_, err = pc.WaitReinvites(ctx, 1)
	require.NoError(t, err)
	require.NoError(t, c.Unhold(ctx))

	// The caller hangs up.
	require.NoError(t, pc.Hangup(ctx))
	waitDone(t, c)
	assert.Equal(t, StatusFinish, c.Info().Status)
	assert.ErrorIs(t, c.Err(), ErrRemoteHangup)
	assert.Equal(t, uint64(1), m.IncomingCounts()[IncomingAnswered])
}

func digitsOf(log *eventLog, callID string) []rune {
	var out []rune
	for _, ev := range log.events(callID) {
		if ev.Type == EventDTMF {
			out = append(out, ev.Digit)
		}
	}
	return out
}

// TestIncomingRealStackEnds: the caller cancels while we ring (FINISH
// 487), we hang up an answered call (BYE reaches the caller), Terminate
// while ringing declines (603), and a rejection decision reaches the
// caller.
func TestIncomingRealStackEnds(t *testing.T) {
	m, log, caller, target := realInbound(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		switch in.Callee {
		case "busy":
			return RejectWith(486, "Busy Here"), nil
		case "ring":
			d := AnswerWith(CallParams{HasAudio: true})
			d.Ring = time.Hour
			return d, nil
		}
		return AnswerWith(CallParams{HasAudio: true}), nil
	})
	ctx := ctxT(t)
	opts := siptest.CallOptions{User: "trunk", Password: "trunk-secret"}
	host := target[len("sip:room1"):]

	_, err := caller.Call(ctx, "sip:busy"+host, opts)
	var se *siptest.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 486, se.Code)

	cancelOpts := opts
	cancelOpts.CancelAfter = 300 * time.Millisecond
	_, err = caller.Call(ctx, "sip:ring"+host, cancelOpts)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 487, se.Code)
	require.True(t, waitFor(func() bool { return m.IncomingCounts()[IncomingCancelled] == 1 }))
	var cancelled []Event
	require.True(t, waitFor(func() bool {
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, evs := range log.byCall {
			if last := evs[len(evs)-1]; last.Status == StatusFinish && last.SIPStatus == 487 {
				cancelled = evs
				return true
			}
		}
		return false
	}), "no call ended FINISH 487")
	assert.True(t, cancelled[0].Info.Incoming)

	// Terminate while ringing: the caller gets 603.
	done := make(chan error, 1)
	go func() {
		_, err := caller.Call(ctx, "sip:ring"+host, opts)
		done <- err
	}()
	var ringing []CallInfo
	require.True(t, waitFor(func() bool { ringing = m.Find(Filter{Status: StatusRing}); return len(ringing) == 1 }))
	require.NoError(t, m.Terminate(ctx, ringing[0].CallID))
	require.ErrorAs(t, <-done, &se)
	assert.Equal(t, 603, se.Code)

	// A delayed offer (our offer in the 200, the caller's answer in the
	// ACK); then we hang up.
	late := opts
	late.DelayedOffer = true
	late.Script = siptest.Script{Audio: true, ToneHz: 600}
	pc, err := caller.Call(ctx, target, late)
	require.NoError(t, err)
	c, ok := m.Call(pc.CallID())
	require.True(t, ok)
	require.NoError(t, c.WaitEstablished(ctx))
	tap := &pcmSink{}
	_, err = c.AddSink(ctx, SinkSpec{Sink: tap})
	require.NoError(t, err)
	require.True(t, waitFor(func() bool { pcm, _ := tap.audio(); return len(pcm) >= 4000 }), "the caller's audio")
	pcm, _ := tap.audio()
	assert.Greater(t, testmedia.Goertzel(pcm[1000:], 8000, 600), 0.8, "the caller's 600 Hz tone")
	require.NoError(t, m.Terminate(ctx, pc.CallID()))
	require.NoError(t, pc.WaitBye(ctx))
	assert.Empty(t, m.FindAll())
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}

// TestAccountRealStack: an account registers to a siptest registrar (with
// digest) in the background; calls from the registrar to the account's
// user are accepted without other checks, calls to another user are not;
// RemoveAccount unREGISTERs.
func TestAccountRealStack(t *testing.T) {
	registrar, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", User: "pbx", Users: map[string]string{"1001": "acct-secret"}})
	require.NoError(t, err)
	defer registrar.Close()
	base := testenv.FreeUDPRange(t, 20)
	rl := &regLog{}
	log := newEventLog()
	m, err := New(Config{
		ListenAddr: "127.0.0.1:0", RTPPortMin: base, RTPPortMax: base + 19,
		OnEvent: func(ev Event) { rl.add(ev); log.add(ev) },
		OnIncoming: func(ctx context.Context, in IncomingCall) (Decision, error) {
			if in.Account != "pbx-line" {
				return RejectWith(500, "account not told"), nil
			}
			return AnswerWith(CallParams{HasAudio: true}), nil
		},
		Accounts: []Account{{Name: "pbx-line", User: "1001", Password: "acct-secret", Domain: registrar.Addr()}},
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close(context.Background())) }()
	ctx := ctxT(t)
	require.True(t, waitFor(func() bool {
		r := m.Registrations()
		return len(r) == 1 && r[0].State == RegRegistered
	}), "%+v", m.Registrations())
	regs := registrar.Registrations()
	require.NotEmpty(t, regs)
	assert.Equal(t, "1001", regs[len(regs)-1].User)
	assert.Positive(t, regs[len(regs)-1].Expires)

	port := strconv.Itoa(m.ListenPort("udp"))
	pc, err := registrar.Call(ctx, "sip:1001@127.0.0.1:"+port, siptest.CallOptions{Script: siptest.Script{Audio: true}})
	require.NoError(t, err)
	c, ok := m.Call(pc.CallID())
	require.True(t, ok)
	require.NoError(t, c.WaitEstablished(ctx))
	require.NoError(t, pc.Hangup(ctx))
	waitDone(t, c)

	_, err = registrar.Call(ctx, "sip:1002@127.0.0.1:"+port, siptest.CallOptions{})
	var se *siptest.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 403, se.Code, "not the account's user")

	require.NoError(t, m.RemoveAccount(ctx, "pbx-line"))
	regs = registrar.Registrations()
	assert.Equal(t, 0, regs[len(regs)-1].Expires, "unREGISTER")
	require.True(t, waitFor(func() bool { return len(rl.states("pbx-line")) == 3 }))
	assert.Equal(t, []RegState{RegRegistering, RegRegistered, RegUnregistered}, rl.states("pbx-line"))
	_, err = registrar.Call(ctx, "sip:1001@127.0.0.1:"+port, siptest.CallOptions{})
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 403, se.Code, "the account is gone")
}

// TestRegistrarRealStack: a trunk registers to the Manager (Inbound.Registrar,
// digest); its binding shows in Registrations and its calls are accepted
// without a challenge from then on, until it unregisters.
func TestRegistrarRealStack(t *testing.T) {
	rl := &regLog{}
	base := testenv.FreeUDPRange(t, 20)
	m, err := New(Config{
		ListenAddr: "127.0.0.1:0", RTPPortMin: base, RTPPortMax: base + 19,
		OnEvent: rl.add,
		OnIncoming: func(ctx context.Context, in IncomingCall) (Decision, error) {
			return AnswerWith(CallParams{HasAudio: true}), nil
		},
		Inbound: InboundConfig{Users: map[string]string{"trunk": "trunk-secret"}, Registrar: true},
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close(context.Background())) }()
	trunk, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", User: "trunk"})
	require.NoError(t, err)
	defer trunk.Close()
	ctx := ctxT(t)
	gw := "127.0.0.1:" + strconv.Itoa(m.ListenPort("udp"))

	_, err = trunk.Call(ctx, "sip:room@"+gw, siptest.CallOptions{})
	var se *siptest.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 401, se.Code, "not registered yet")
	require.Error(t, trunk.Register(ctx, siptest.RegisterRequest{Registrar: gw, Password: "wrong"}))
	assert.Empty(t, m.Registrations())

	require.NoError(t, trunk.Register(ctx, siptest.RegisterRequest{Registrar: gw, Password: "trunk-secret"}))
	r := m.Registrations()
	require.Len(t, r, 1)
	assert.True(t, r[0].Inbound)
	assert.Equal(t, "trunk", r[0].User)
	assert.Equal(t, RegRegistered, r[0].State)
	assert.Contains(t, r[0].Contact, "trunk@127.0.0.1")
	assert.WithinDuration(t, time.Now().Add(time.Hour), r[0].Expires, time.Minute)

	pc, err := trunk.Call(ctx, "sip:room@"+gw, siptest.CallOptions{})
	require.NoError(t, err, "a registered trunk calls without a challenge")
	require.NoError(t, m.Terminate(ctx, pc.CallID()))

	require.NoError(t, trunk.Register(ctx, siptest.RegisterRequest{Registrar: gw, Password: "trunk-secret", Expires: -1}))
	assert.Empty(t, m.Registrations())
	require.True(t, waitFor(func() bool { return len(rl.states("trunk")) == 2 }), "%v", rl.states("trunk"))
	assert.Equal(t, []RegState{RegRegistered, RegUnregistered}, rl.states("trunk"))
	_, err = trunk.Call(ctx, "sip:room@"+gw, siptest.CallOptions{})
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 401, se.Code, "unregistered")
}

// TestIncomingRealStackSRTP: a caller offering SRTP (RTP/SAVP, SDES) to a
// Manager where nobody chose an SRTP mode is answered with SRTP and its
// tone decrypted; a decision that says SRTPOff refuses it with 488.
func TestIncomingRealStackSRTP(t *testing.T) {
	m, _, caller, target := realInbound(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		p := CallParams{HasAudio: true}
		if in.Callee == "plainonly" {
			p.SRTP = SRTPOff
		}
		return AnswerWith(p), nil
	})
	ctx := ctxT(t)
	opts := siptest.CallOptions{User: "trunk", Password: "trunk-secret", NoVideo: true,
		Script: siptest.Script{Audio: true, ToneHz: 1000, SRTP: true}}

	pc, err := caller.Call(ctx, target, opts)
	require.NoError(t, err)
	c, ok := m.Call(pc.CallID())
	require.True(t, ok)
	require.NoError(t, c.WaitEstablished(ctx))
	assert.True(t, c.Info().Secure, "answered with SRTP")
	tap := &pcmSink{}
	_, err = c.AddSink(ctx, SinkSpec{ID: "tap", Sink: tap})
	require.NoError(t, err)
	require.True(t, waitFor(func() bool { pcm, _ := tap.audio(); return len(pcm) >= 8000 }), "a second of the caller's audio")
	pcm, _ := tap.audio()
	tone := testmedia.Goertzel(pcm[2000:], 8000, 1000)
	t.Logf("the SRTP caller's 1 kHz tone, decrypted: %.2f of the energy", tone)
	assert.Greater(t, tone, 0.8)
	require.NoError(t, pc.WaitRTP(ctx, media.KindAudio, 50), "the caller decrypts our silence")
	require.NoError(t, pc.Hangup(ctx))
	waitDone(t, c)

	_, err = caller.Call(ctx, "sip:plainonly"+target[len("sip:room1"):], opts)
	var se *siptest.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 488, se.Code)
}
