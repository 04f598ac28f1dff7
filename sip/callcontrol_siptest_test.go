package sip

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
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

// siptestCall starts a siptest peer playing script, calls it from ua with
// Call-ID callID (zero: random) and waits until the peer has the call.
func siptestCall(t *testing.T, ua *UA, script siptest.Script, callID string) (*siptest.Peer, *Dialog, *siptest.PeerCall) {
	t.Helper()
	p, err := siptest.NewPeer(siptest.Config{Script: script})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	d, err := ua.Invite(testCtx(t), InviteRequest{Callee: p.URI(), From: "streamer", CallID: callID,
		Offer: directedOffer(t, 1, media.SendRecv, media.RecvOnly)})
	require.NoError(t, err)
	c, err := p.WaitCall(testCtx(t))
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(testCtx(t)))
	return p, d, c
}

func TestSiptestReinviteHoldUnhold(t *testing.T) {
	_, d, c := siptestCall(t, newTestUA(t), siptest.Script{}, "")
	answer, err := d.Reinvite(testCtx(t), directedOffer(t, 2, media.SendOnly, media.Inactive))
	require.NoError(t, err)
	assert.Contains(t, string(answer), "a=recvonly")
	assert.Contains(t, string(answer), "a=inactive")
	answer, err = d.Reinvite(testCtx(t), directedOffer(t, 3, media.SendRecv, media.RecvOnly))
	require.NoError(t, err)
	assert.Contains(t, string(answer), "a=sendrecv")

	re, err := c.WaitReinvites(testCtx(t), 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"sendonly", "inactive"}, re[0].SDPDirections())
	assert.Equal(t, []string{"sendrecv", "recvonly"}, re[1].SDPDirections())
	assert.Equal(t, string(answer), string(c.AnswerSDP()), "the peer's latest answer")
	require.NoError(t, d.Bye(testCtx(t)))
	require.NoError(t, c.WaitBye(testCtx(t)))
}

// TestSiptestReferBlind: two transfers on one call (the second one's
// NOTIFYs carry Event: refer;id=CSeq).
func TestSiptestReferBlind(t *testing.T) {
	p, d, c := siptestCall(t, newTestUA(t), siptest.Script{ReferDelay: 50 * time.Millisecond}, "")
	assert.True(t, d.PeerAllows("REFER"))
	assert.True(t, d.PeerSupports("replaces"))
	for i, target := range []string{"carol", "sip:dave@pbx.example"} {
		l := newProgressLog()
		require.NoError(t, d.Refer(testCtx(t), target, ReferOptions{OnProgress: l.add}))
		assert.Equal(t, []ReferProgress{{StatusCode: 100, Reason: "Trying"}, {StatusCode: 200, Reason: "OK", Final: true}}, l.wait(t))
		refs, err := c.WaitRefers(testCtx(t), i+1)
		require.NoError(t, err)
		assert.Equal(t, []int{200, 200}, refs[i].NotifyAnswers)
	}
	refs := c.Refers()
	assert.Equal(t, "<sip:carol@"+p.Addr()+">", refs[0].ReferTo)
	assert.Equal(t, "<sip:dave@pbx.example>", refs[1].ReferTo)
	assert.Equal(t, "<"+c.FromURI()+">", refs[0].ReferredBy)
	assert.Empty(t, refs[0].Replaces)
	assert.Equal(t, 202, refs[0].Answer)
	require.NoError(t, d.Bye(testCtx(t)))
}

func TestSiptestReferHangupAfter(t *testing.T) {
	_, d, c := siptestCall(t, newTestUA(t), siptest.Script{HangupAfterRefer: true}, "")
	l := newProgressLog()
	require.NoError(t, d.Refer(testCtx(t), "+4930123", ReferOptions{OnProgress: l.add}))
	assert.Equal(t, 200, l.wait(t)[1].StatusCode)
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the transferee did not hang up")
	}
	assert.ErrorIs(t, d.Err(), ErrRemoteBye)
	end, err := c.WaitEnd(testCtx(t))
	require.NoError(t, err)
	assert.Equal(t, siptest.EndLocalBye, end)
}

func TestSiptestReferFailures(t *testing.T) {
	ua := newTestUA(t)
	// The transfer target is busy: 202, then a final 486 report.
	_, d, _ := siptestCall(t, ua, siptest.Script{ReferResult: 486}, "")
	l := newProgressLog()
	require.NoError(t, d.Refer(testCtx(t), "carol", ReferOptions{OnProgress: l.add}))
	assert.Equal(t, []ReferProgress{{StatusCode: 100, Reason: "Trying"}, {StatusCode: 486, Reason: "Busy Here", Final: true}}, l.wait(t))
	assert.NoError(t, d.Err(), "a failed transfer leaves the call up")
	require.NoError(t, d.Bye(testCtx(t)))

	// The peer refuses to transfer at all.
	_, d, c := siptestCall(t, ua, siptest.Script{ReferReject: 403}, "")
	err := d.Refer(testCtx(t), "carol", ReferOptions{})
	assert.ErrorIs(t, err, ErrForbidden)
	assert.Equal(t, 403, StatusCode(err))
	refs, err := c.WaitRefers(testCtx(t), 1)
	require.NoError(t, err)
	assert.Equal(t, 403, refs[0].Answer)
	assert.Empty(t, refs[0].NotifyAnswers)
	require.NoError(t, d.Bye(testCtx(t)))
}

// TestSiptestReferAttended: the transferee receives the consultation
// call's dialog in the Refer-To's Replaces (RFC 3891), and unescapes it to
// the Call-ID and tags that call has on the target's side.
func TestSiptestReferAttended(t *testing.T) {
	ua := newTestUA(t)
	_, d1, c1 := siptestCall(t, ua, siptest.Script{}, "")
	target, d2, c2 := siptestCall(t, ua, siptest.Script{}, "consult:1@x")

	l := newProgressLog()
	require.NoError(t, d1.Refer(testCtx(t), "", ReferOptions{Replaces: d2, OnProgress: l.add}))
	l.wait(t)
	refs, err := c1.WaitRefers(testCtx(t), 1)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(refs[0].ReferTo, "<"+target.URI()+"?Replaces=consult%3A1%40x%3Bto-tag%3D"), refs[0].ReferTo)
	require.NoError(t, d1.Bye(testCtx(t)))
	require.NoError(t, d2.Bye(testCtx(t)))
	// The target sees our tag in the From and its own in the To of our
	// requests: Replaces names its as to-tag and ours as from-tag.
	_, ourTag, _ := strings.Cut(c2.Header("From"), "tag=")
	byes, err := target.WaitRequests(testCtx(t), "BYE", 1)
	require.NoError(t, err)
	_, theirTag, _ := strings.Cut(byes[0].Header("To"), "tag=")
	assert.Equal(t, "consult:1@x;to-tag="+theirTag+";from-tag="+ourTag, refs[0].Replaces)
}
