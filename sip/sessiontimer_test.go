package sip

import (
	"testing"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sessionInterval reads the dialog's session interval on its goroutine.
func sessionInterval(t *testing.T, d *Dialog) (iv time.Duration, weRefresh bool) {
	require.True(t, d.call(func() { iv, weRefresh = d.st.interval, d.st.refresher }))
	return iv, weRefresh
}

// TestSessionExpiresBelowMinSERefused: Session-Expires was accepted down
// to 1 s, so a peer could make us refresh every half second. A re-INVITE or
// UPDATE asking less than Min-SE (90 s) gets 422 with Min-SE (RFC 4028
// §8.1) and changes nothing.
func TestSessionExpiresBelowMinSERefused(t *testing.T) {
	for _, m := range []sipgox.RequestMethod{sipgox.UPDATE, sipgox.INVITE} {
		t.Run(string(m), func(t *testing.T) {
			p := newTestPeer(t)
			ua := newTestUA(t)
			d, err := ua.Invite(testCtx(t), basicInvite(p))
			require.NoError(t, err)
			res, err := p.inDialog(testCtx(t), m, "application/sdp", []byte(peerSDP),
				sipgox.NewHeader("Session-Expires", "1;refresher=uas"), sipgox.NewHeader("Supported", "timer"))
			require.NoError(t, err)
			assert.Equal(t, 422, res.StatusCode)
			require.NotNil(t, res.GetHeader("Min-SE"))
			assert.Equal(t, "90", res.GetHeader("Min-SE").Value())
			iv, _ := sessionInterval(t, d)
			assert.Zero(t, iv, "a refused request started a session timer")

			// At Min-SE it is accepted.
			res, err = p.inDialog(testCtx(t), m, "application/sdp", []byte(peerSDP),
				sipgox.NewHeader("Session-Expires", "90;refresher=uac"), sipgox.NewHeader("Supported", "timer"))
			require.NoError(t, err)
			assert.Equal(t, 200, res.StatusCode)
			iv, _ = sessionInterval(t, d)
			assert.Equal(t, 90*time.Second, iv)
			require.NoError(t, d.Bye(testCtx(t)))
		})
	}
}

// TestSessionExpiresBelowMinSEIn2xxRaised: a 2xx naming 2 s made us
// refresh every second; the interval is raised to Min-SE, so we refresh at
// most every 45 s.
func TestSessionExpiresBelowMinSEIn2xxRaised(t *testing.T) {
	p := newTestPeer(t)
	p.setInvite(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) {
		p.answer(req, tx, sipgox.NewHeader("Session-Expires", "2;refresher=uac"),
			sipgox.NewHeader("Require", "timer"), sipgox.NewHeader("Allow", "INVITE, ACK, BYE, UPDATE"))
	})
	ua := newTestUA(t)
	r := basicInvite(p)
	r.SessionExpires = 30
	d, err := ua.Invite(testCtx(t), r)
	require.NoError(t, err)
	inv := p.waitReq(sipgox.INVITE, 1)
	assert.Equal(t, "90", inv.GetHeader("Session-Expires").Value(), "our own request raised to Min-SE")
	iv, weRefresh := sessionInterval(t, d)
	assert.Equal(t, 90*time.Second, iv)
	assert.True(t, weRefresh)
	time.Sleep(2500 * time.Millisecond)
	assert.Zero(t, p.count(sipgox.UPDATE), "refreshed faster than Min-SE/2")
	assert.Zero(t, p.count(sipgox.INVITE)-1, "refreshed faster than Min-SE/2")
	require.NoError(t, d.Bye(testCtx(t)))
}
