package sip_test

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip"
	"github.com/sipstream/sipstream/sip/sdp"
	"github.com/sipstream/sipstream/sip/siptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hold, unhold and transfer against sip/siptest's Peer, with offers built
// by sip/sdp the way a caller of Reinvite builds them.

func directedOffer(t *testing.T, version uint64, audio, video media.Direction) []byte {
	o, err := sdp.NewOffer(sdp.OfferConfig{
		Addr: netip.MustParseAddr("127.0.0.1"), SessionID: 4242, SessionVersion: version,
		Audio: &sdp.MediaConfig{Port: 30000, Direction: audio},
		Video: &sdp.MediaConfig{Port: 30002, Direction: video},
	})
	require.NoError(t, err)
	return o.Marshal()
}

func TestSiptestReinviteHoldUnhold(t *testing.T) {
	p := newPeer(t, siptest.Config{})
	ua := newUA(t)
	d, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: p.URI(), From: "streamer",
		Offer: directedOffer(t, 1, media.SendRecv, media.RecvOnly)})
	require.NoError(t, err)
	c, err := p.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx(t)))

	answer, err := d.Reinvite(ctx(t), directedOffer(t, 2, media.SendOnly, media.Inactive))
	require.NoError(t, err)
	assert.Contains(t, string(answer), "a=recvonly")
	assert.Contains(t, string(answer), "a=inactive")
	answer, err = d.Reinvite(ctx(t), directedOffer(t, 3, media.SendRecv, media.RecvOnly))
	require.NoError(t, err)
	assert.Contains(t, string(answer), "a=sendrecv")

	re, err := c.WaitReinvites(ctx(t), 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"sendonly", "inactive"}, re[0].SDPDirections())
	assert.Equal(t, []string{"sendrecv", "recvonly"}, re[1].SDPDirections())
	assert.Equal(t, string(answer), string(c.AnswerSDP()), "the peer's latest answer")
	require.NoError(t, d.Bye(ctx(t)))
	require.NoError(t, c.WaitBye(ctx(t)))
}

// transferLog collects a transfer's progress reports.
type transferLog struct {
	mu  sync.Mutex
	got []sip.ReferProgress
	fin chan struct{}
}

func newTransferLog() *transferLog { return &transferLog{fin: make(chan struct{})} }

func (l *transferLog) add(p sip.ReferProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, p)
	if p.Final {
		close(l.fin)
	}
}

func (l *transferLog) wait(t *testing.T) []sip.ReferProgress {
	t.Helper()
	select {
	case <-l.fin:
	case <-time.After(10 * time.Second):
		t.Fatal("no final transfer report")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sip.ReferProgress(nil), l.got...)
}

// TestSiptestReferBlind: two transfers on one call (the second one's
// NOTIFYs carry Event: refer;id=CSeq), the peer hangs up after the second
// succeeded.
func TestSiptestReferBlind(t *testing.T) {
	p := newPeer(t, siptest.Config{Script: siptest.Script{ReferDelay: 50 * time.Millisecond}})
	ua := newUA(t)
	d, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: p.URI(), From: "streamer", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	assert.True(t, d.PeerAllows("REFER"))
	assert.True(t, d.PeerSupports("replaces"))
	c, err := p.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx(t)))

	for i, target := range []string{"carol", "sip:dave@pbx.example"} {
		l := newTransferLog()
		require.NoError(t, d.Refer(ctx(t), target, sip.ReferOptions{OnProgress: l.add}))
		assert.Equal(t, []sip.ReferProgress{{StatusCode: 100, Reason: "Trying"}, {StatusCode: 200, Reason: "OK", Final: true}}, l.wait(t))
		refs, err := c.WaitRefers(ctx(t), i+1)
		require.NoError(t, err)
		assert.Equal(t, []int{200, 200}, refs[i].NotifyAnswers)
	}
	refs := c.Refers()
	assert.Equal(t, "<sip:carol@"+p.Addr()+">", refs[0].ReferTo)
	assert.Equal(t, "<sip:dave@pbx.example>", refs[1].ReferTo)
	assert.Equal(t, "<"+c.FromURI()+">", refs[0].ReferredBy)
	assert.Empty(t, refs[0].Replaces)
	assert.Equal(t, 202, refs[0].Answer)
	require.NoError(t, d.Bye(ctx(t)))
}

func TestSiptestReferHangupAfter(t *testing.T) {
	p := newPeer(t, siptest.Config{Script: siptest.Script{HangupAfterRefer: true}})
	ua := newUA(t)
	d, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: p.URI(), From: "streamer", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	c, err := p.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx(t)))
	l := newTransferLog()
	require.NoError(t, d.Refer(ctx(t), "+4930123", sip.ReferOptions{OnProgress: l.add}))
	assert.Equal(t, 200, l.wait(t)[1].StatusCode)
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the transferee did not hang up")
	}
	assert.ErrorIs(t, d.Err(), sip.ErrRemoteBye)
	end, err := c.WaitEnd(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, siptest.EndLocalBye, end)
}

func TestSiptestReferFailures(t *testing.T) {
	ua := newUA(t)
	// The transfer target is busy: 202, then a final 486 report.
	p := newPeer(t, siptest.Config{Script: siptest.Script{ReferResult: 486}})
	d, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: p.URI(), From: "streamer", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	c, err := p.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx(t)))
	l := newTransferLog()
	require.NoError(t, d.Refer(ctx(t), "carol", sip.ReferOptions{OnProgress: l.add}))
	assert.Equal(t, []sip.ReferProgress{{StatusCode: 100, Reason: "Trying"}, {StatusCode: 486, Reason: "Busy Here", Final: true}}, l.wait(t))
	assert.NoError(t, d.Err(), "a failed transfer leaves the call up")
	require.NoError(t, d.Bye(ctx(t)))

	// The peer refuses to transfer at all.
	pr := newPeer(t, siptest.Config{Script: siptest.Script{ReferReject: 403}})
	d, err = ua.Invite(ctx(t), sip.InviteRequest{Callee: pr.URI(), From: "streamer", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	c, err = pr.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx(t)))
	err = d.Refer(ctx(t), "carol", sip.ReferOptions{})
	assert.ErrorIs(t, err, sip.ErrForbidden)
	assert.Equal(t, 403, sip.StatusCode(err))
	refs, err := c.WaitRefers(ctx(t), 1)
	require.NoError(t, err)
	assert.Equal(t, 403, refs[0].Answer)
	assert.Empty(t, refs[0].NotifyAnswers)
	require.NoError(t, d.Bye(ctx(t)))
}

// TestSiptestReferAttended: the transferee receives the consultation
// call's dialog in the Refer-To's Replaces (RFC 3891), and unescapes it to
// the Call-ID and tags that call has on the target's side.
func TestSiptestReferAttended(t *testing.T) {
	transferee := newPeer(t, siptest.Config{})
	target := newPeer(t, siptest.Config{})
	ua := newUA(t)
	d1, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: transferee.URI(), From: "streamer", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	d2, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: target.URI(), From: "streamer", CallID: "consult:1@x", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	c1, err := transferee.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c1.WaitEstablished(ctx(t)))
	c2, err := target.WaitCall(ctx(t))
	require.NoError(t, err)
	require.NoError(t, c2.WaitEstablished(ctx(t)))

	l := newTransferLog()
	require.NoError(t, d1.Refer(ctx(t), "", sip.ReferOptions{Replaces: d2, OnProgress: l.add}))
	l.wait(t)
	refs, err := c1.WaitRefers(ctx(t), 1)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(refs[0].ReferTo, "<"+target.URI()+"?Replaces=consult%3A1%40x%3Bto-tag%3D"), refs[0].ReferTo)
	require.NoError(t, d1.Bye(ctx(t)))
	require.NoError(t, d2.Bye(ctx(t)))
	// The target sees our tag in the From and its own in the To of our
	// requests: Replaces names its as to-tag and ours as from-tag.
	_, ourTag, _ := strings.Cut(c2.Header("From"), "tag=")
	byes, err := target.WaitRequests(ctx(t), "BYE", 1)
	require.NoError(t, err)
	_, theirTag, _ := strings.Cut(byes[0].Header("To"), "tag=")
	assert.Equal(t, "consult:1@x;to-tag="+theirTag+";from-tag="+ourTag, refs[0].Replaces)
}
