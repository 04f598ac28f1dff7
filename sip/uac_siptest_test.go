package sip_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip"
	"github.com/sipstream/sipstream/sip/sdp"
	"github.com/sipstream/sipstream/sip/siptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests against sip/siptest, the public scripted peer, with real SDP from
// sip/sdp.

func newUA(t *testing.T) *sip.UA {
	ua, err := sip.NewUA(sip.Config{ListenAddr: "127.0.0.1:0", TransactionTimeout: 2 * time.Second, CleanupTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { ua.Close() })
	return ua
}

func newPeer(t *testing.T, cfg siptest.Config) *siptest.Peer {
	p, err := siptest.NewPeer(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func offer(t *testing.T) *sdp.Offer {
	o, err := sdp.NewOffer(sdp.OfferConfig{
		Addr:  netip.MustParseAddr("127.0.0.1"),
		Audio: &sdp.MediaConfig{Port: 30000, Direction: media.SendRecv},
		Video: &sdp.MediaConfig{Port: 30002, Direction: media.RecvOnly},
	})
	require.NoError(t, err)
	return o
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSiptestCallDTMFKeyframeBye(t *testing.T) {
	p := newPeer(t, siptest.Config{Script: siptest.Script{Ring: 200 * time.Millisecond}})
	ua := newUA(t)
	o := offer(t)
	var progress []int
	d, err := ua.Invite(ctx(t), sip.InviteRequest{
		Callee: p.URI(), From: "streamer", DisplayName: "Live Stream", CallID: "siptest-call-1",
		Headers: []sip.Header{{Name: "X-Room", Value: "42"}}, Offer: o.Marshal(),
		OnProgress: func(pr sip.Progress) { progress = append(progress, pr.StatusCode) },
	})
	require.NoError(t, err)
	assert.Contains(t, progress, 180)
	specs, err := o.Negotiate(d.AnswerSDP())
	require.NoError(t, err)
	require.NotEmpty(t, specs)

	c, err := p.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx(t)))
	assert.Equal(t, "siptest-call-1", c.CallID())
	assert.Equal(t, "Live Stream", c.FromDisplayName())
	assert.Equal(t, "42", c.Header("X-Room"))

	require.NoError(t, d.SendDTMF(ctx(t), '4', true))
	require.NoError(t, d.SendDTMF(ctx(t), '#', false))
	digits, err := c.WaitDTMF(ctx(t), 2)
	require.NoError(t, err)
	assert.Equal(t, "4#", digits)
	require.NoError(t, d.RequestKeyframe(ctx(t)))
	require.NoError(t, c.WaitKeyframeRequests(ctx(t), 1))

	require.NoError(t, d.Bye(ctx(t)))
	require.NoError(t, c.WaitBye(ctx(t)))
	assert.NoError(t, d.Err())
}

func TestSiptestPeerHangsUpAndHolds(t *testing.T) {
	p := newPeer(t, siptest.Config{})
	ua := newUA(t)
	d, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: p.URI(), From: "streamer", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	c, err := p.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx(t)))

	require.NoError(t, c.Hold(ctx(t)))
	require.NoError(t, c.Unhold(ctx(t)))
	require.NoError(t, c.SendInfo(ctx(t), "application/dtmf-relay", []byte("Signal=9\r\nDuration=100\r\n")))

	require.NoError(t, c.Hangup(ctx(t)))
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("dialog did not end")
	}
	assert.ErrorIs(t, d.Err(), sip.ErrRemoteBye)
}

func TestSiptestRejectAndChallenge(t *testing.T) {
	p := newPeer(t, siptest.Config{Script: siptest.Script{Reject: 486}})
	ua := newUA(t)
	_, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: p.URI(), From: "streamer", Offer: offer(t).Marshal()})
	assert.ErrorIs(t, err, sip.ErrBusy)

	for _, code := range []int{401, 407} {
		pc := newPeer(t, siptest.Config{ChallengeInvite: code, Users: map[string]string{"auth-name": "pw"}})
		d, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: pc.URI(), From: "login", AuthUser: "auth-name",
			Password: "pw", Offer: offer(t).Marshal()})
		require.NoError(t, err, "challenge %d", code)
		assert.Equal(t, 1, pc.Challenges())
		require.NoError(t, d.Bye(ctx(t)))
	}
}

func TestSiptestRegistrar(t *testing.T) {
	p := newPeer(t, siptest.Config{Users: map[string]string{"auth-1000": "pw"}})
	ua := newUA(t)
	reg, err := ua.Register(ctx(t), sip.RegisterRequest{User: "1000", AuthUser: "auth-1000", Password: "pw",
		Domain: p.Addr(), Expires: time.Minute})
	require.NoError(t, err)
	regs, err := p.WaitRegistrations(ctx(t), 1)
	require.NoError(t, err)
	assert.Equal(t, 60, regs[0].Expires)
	require.NoError(t, reg.Close(ctx(t)))
	regs, err = p.WaitRegistrations(ctx(t), 2)
	require.NoError(t, err)
	assert.Equal(t, 0, regs[len(regs)-1].Expires)
}

func TestSiptestVanishedPeer(t *testing.T) {
	// Before the answer: no final response at all.
	p := newPeer(t, siptest.Config{Script: siptest.Script{NoResponse: true}})
	ua := newUA(t)
	_, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: p.URI(), From: "streamer", Offer: offer(t).Marshal()})
	assert.ErrorIs(t, err, sip.ErrTimeout)
	assert.Equal(t, 408, sip.StatusCode(err))

	// During the call: keepalives go unanswered.
	pv := newPeer(t, siptest.Config{Script: siptest.Script{Vanish: true, VanishAfter: 100 * time.Millisecond}})
	d, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: pv.URI(), From: "streamer", Offer: offer(t).Marshal(),
		KeepAliveInterval: 300 * time.Millisecond})
	require.NoError(t, err)
	select {
	case <-d.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("vanished peer not detected")
	}
	assert.ErrorIs(t, d.Err(), sip.ErrKeepAliveFailed)
}
