package callmgr

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/sip"
	"github.com/sipstream/sipstream/sip/siptest"
)

// sipEnv is a Manager on the real SIP user agent and SDP (media session and
// RTMP sink faked) calling a siptest peer.
func newSIPEnv(t *testing.T, peerCfg siptest.Config) (*testEnv, *siptest.Peer) {
	t.Helper()
	peer, err := siptest.NewPeer(peerCfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })
	ua, err := sip.NewUA(sip.Config{ListenAddr: "127.0.0.1:0"})
	require.NoError(t, err)
	w := newFakeWorld()
	be := &backend{sig: sipAdapter{ua: ua, in: new(sipInbound)}, media: (*fakeMedia)(w), sdp: sdpAdapter{},
		sinks: sinkAdapter{newRTMP: (*fakeSinks)(w).NewRTMP}, close: ua.Close}
	e := newTestEnv(t, func(c *Config) {
		c.backend = be
		c.PublicIP = netip.MustParseAddr("127.0.0.1")
	})
	e.w = w
	return e, peer
}

func TestSIPCallFlow(t *testing.T) {
	e, peer := newSIPEnv(t, siptest.Config{Script: siptest.Script{Ring: 50 * time.Millisecond}})
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "sip-1", Callee: peer.URI(), SIPLogin: "1001", VisibleName: "Front Desk",
		HasAudio: true, HasVideo: true, Headers: []sip.Header{{Name: "X-Room", Value: "42"}}})
	require.NoError(t, err)
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	require.NoError(t, pc.WaitEstablished(ctx))
	assert.Equal(t, "sip-1", pc.CallID())
	assert.Equal(t, "42", pc.Header("X-Room"))
	assert.Equal(t, "Front Desk", pc.FromDisplayName())
	assert.Contains(t, pc.FromURI(), "1001@")
	assert.Contains(t, string(pc.OfferSDP()), "m=video")

	// DTMF by INFO, both kinds.
	require.NoError(t, e.m.SendDTMF(ctx, "sip-1", "12", DTMFInfo))
	require.NoError(t, e.m.SendDTMF(ctx, "sip-1", "#", DTMFInfoRelay))
	got, err := pc.WaitDTMF(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, "12#", got)
	infos := pc.Infos()
	require.Len(t, infos, 3)
	assert.Equal(t, "application/dtmf", infos[0].ContentType())
	assert.Equal(t, "application/dtmf-relay", infos[2].ContentType())

	// Keyframe by INFO when the session asks for the fallback.
	e.w.session("sip-1").cfg.OnKeyframeFallback()
	require.NoError(t, pc.WaitKeyframeRequests(ctx, 1))

	// Hold and resume from the peer.
	require.NoError(t, pc.Hold(ctx))
	require.True(t, waitFor(func() bool { return c.Info().Status == StatusHold }))
	require.NoError(t, pc.Unhold(ctx))
	require.True(t, waitFor(func() bool { return c.Info().Status == StatusEstablished }))

	require.NoError(t, c.Terminate(ctx))
	require.NoError(t, pc.WaitBye(ctx))
	waitDone(t, c)
	assert.Equal(t, []Status{StatusTrying, StatusRing, StatusEstablished, StatusHold, StatusEstablished, StatusFinish}, e.log.statuses("sip-1"))
}

func TestSIPEndings(t *testing.T) {
	cases := []struct {
		name   string
		script siptest.Script
		act    func(ctx context.Context, c *Call, pc *siptest.PeerCall)
		status Status
		code   int
		end    siptest.EndReason
	}{
		{name: "busy", script: siptest.Script{Reject: 486}, status: StatusBusy, code: 486, end: siptest.EndRejected},
		{name: "not found", script: siptest.Script{Reject: 404}, status: StatusFailed, code: 404, end: siptest.EndRejected},
		{name: "cancel", script: siptest.Script{RingForever: true}, status: StatusFinish, code: 487, end: siptest.EndCanceled,
			act: func(ctx context.Context, c *Call, pc *siptest.PeerCall) {
				require.True(t, waitFor(func() bool { return c.Info().Status == StatusRing }))
				_ = c.Terminate(ctx)
			}},
		{name: "peer hangs up", script: siptest.Script{HangupAfter: 100 * time.Millisecond}, status: StatusFinish, code: 200, end: siptest.EndLocalBye},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, peer := newSIPEnv(t, siptest.Config{Script: tc.script})
			ctx := ctxT(t)
			c, err := e.m.StartCall(ctx, CallParams{CallID: "end-" + strings.ReplaceAll(tc.name, " ", "-"), Callee: peer.URI()})
			require.NoError(t, err)
			pc, err := peer.WaitCall(ctx)
			require.NoError(t, err)
			start := time.Now()
			if tc.act != nil {
				tc.act(ctx, c, pc)
			}
			waitDone(t, c)
			t.Logf("ended after %v", time.Since(start))
			end, err := pc.WaitEnd(ctx)
			require.NoError(t, err)
			assert.Equal(t, tc.end, end)
			assert.Equal(t, tc.status, c.Info().Status)
			assert.Equal(t, tc.code, c.Info().SIPStatus)
		})
	}
}

func TestSIPRegister(t *testing.T) {
	// (INVITE is not challenged: with our offer and a digest header it
	// outgrows sipgo's 1300-byte UDP limit.)
	e, peer := newSIPEnv(t, siptest.Config{Users: map[string]string{"1001": "pw1001"}})
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "reg-1", Callee: "peer", SIPLogin: "1001", SIPPassword: "pw1001",
		SIPDomain: peer.Addr(), SIPRegisterRequired: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	regs, err := peer.WaitRegistrations(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "1001", regs[0].User)
	require.NoError(t, c.Terminate(ctx))
	regs, err = peer.WaitRegistrations(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, 0, regs[1].Expires, "unREGISTER when the call ends")
	assert.NotContains(t, e.buf.String(), "pw1001")

	// Wrong password: the REGISTER fails, no INVITE.
	c, err = e.m.StartCall(ctx, CallParams{CallID: "reg-2", Callee: "peer", SIPLogin: "1001", SIPPassword: "wrong",
		SIPDomain: peer.Addr(), SIPRegisterRequired: true})
	require.NoError(t, err)
	waitDone(t, c)
	assert.Equal(t, StatusFailed, c.Info().Status)
	assert.Contains(t, []int{401, 403, 407}, c.Info().SIPStatus)
	assert.NotContains(t, c.Err().Error(), "wrong")
}

// TestSIPInviteChallenge: a PBX that challenges the INVITE (407, digest
// with an authentication name other than the login), over UDP: the
// default offer plus the Authorization header must stay within sipgo's
// UDP size limit.
func TestSIPInviteChallenge(t *testing.T) {
	peer, err := siptest.NewPeer(siptest.Config{Users: map[string]string{"auth-1001": "pw1001"}, ChallengeInvite: 407})
	require.NoError(t, err)
	defer peer.Close()
	log := newEventLog()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 25100, RTPPortMax: 25199, OnEvent: log.add})
	require.NoError(t, err)
	defer m.Close(context.Background())
	ctx := ctxT(t)
	c, err := m.StartCall(ctx, CallParams{CallID: "challenged-call-id-0123456789abcdef", Callee: peer.URI(), SIPLogin: "1001",
		SIPAuthName: "auth-1001", SIPPassword: "pw1001", VisibleName: "Reception Desk", HasAudio: true, HasVideo: true,
		Headers: []sip.Header{{Name: "X-Conference-Room", Value: "room-0042"}}})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx), "%v", c.Err())
	assert.Equal(t, 1, peer.Challenges())
	require.NoError(t, c.Terminate(ctx))

	c, err = m.StartCall(ctx, CallParams{CallID: "challenged-2", Callee: peer.URI(), SIPLogin: "1001",
		SIPAuthName: "auth-1001", SIPPassword: "not-it", HasAudio: true})
	require.NoError(t, err)
	waitDone(t, c)
	assert.Equal(t, StatusFailed, c.Info().Status)
	assert.Equal(t, 403, c.Info().SIPStatus)
	assert.NotContains(t, c.Err().Error(), "not-it")
}
