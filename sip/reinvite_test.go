package sip

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holdSDP is ourSDP put on hold (sendonly), version 8.
var holdSDP = strings.Replace(strings.Replace(ourSDP, "a=sendrecv", "a=sendonly", 1), "o=us 7 7", "o=us 7 8", 1)

// resumeSDP is ourSDP again, version 9.
var resumeSDP = strings.Replace(ourSDP, "o=us 7 7", "o=us 7 9", 1)

// reinviteAnswers scripts the peer's answers to in-dialog INVITEs: codes[i]
// for the i-th (200 with peerSDP made recvonly/sendrecv by the offer),
// 200 after the list. It records the offers.
type reinviteAnswers struct {
	mu     sync.Mutex
	codes  []int
	offers []*sipgox.Request
}

func (ra *reinviteAnswers) handle(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool {
	if !req.IsInvite() || toTag(req) == "" {
		return false
	}
	ra.mu.Lock()
	i := len(ra.offers)
	ra.offers = append(ra.offers, req)
	code := 200
	if i < len(ra.codes) {
		code = ra.codes[i]
	}
	ra.mu.Unlock()
	if code != 200 {
		_ = tx.Respond(sipgox.NewResponseFromRequest(req, code, "Scripted", nil))
		return true
	}
	answer := peerSDP
	if strings.Contains(string(req.Body()), "a=sendonly") {
		answer = strings.Replace(peerSDP, "a=sendrecv", "a=recvonly", 1)
	}
	res := sipgox.NewResponseFromRequest(req, 200, "OK", []byte(answer))
	res.AppendHeader(sipgox.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(&sipgox.ContactHeader{Address: sipgox.Uri{Scheme: "sip", User: "peer", Host: "127.0.0.1", Port: p.port}})
	_ = tx.Respond(res)
	return true
}

// reinviteCall calls a test peer that answers re-INVITEs with codes
// (then 200).
func reinviteCall(t *testing.T, codes ...int) (*testPeer, *reinviteAnswers, *Dialog) {
	t.Helper()
	p := newTestPeer(t)
	ra := &reinviteAnswers{codes: codes}
	p.setRequest(ra.handle)
	d, err := newTestUA(t).Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)
	return p, ra, d
}

// waitAck returns the first ACK with CSeq seq (retransmitted ACKs of
// earlier 2xx may come in between), waiting up to 10 s.
func (p *testPeer) waitAck(seq uint32) *sipgox.Request {
	p.t.Helper()
	for n := 1; ; n++ {
		if ack := p.waitReq(sipgox.ACK, n); ack.CSeq().SeqNo == seq {
			return ack
		}
	}
}

// respondSDP answers req 200 with an SDP body.
func respondSDP(tx sipgox.ServerTransaction, req *sipgox.Request, sdp string) {
	res := sipgox.NewResponseFromRequest(req, 200, "OK", []byte(sdp))
	res.AppendHeader(sipgox.NewHeader("Content-Type", "application/sdp"))
	_ = tx.Respond(res)
}

func (ra *reinviteAnswers) got() []*sipgox.Request {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	return append([]*sipgox.Request(nil), ra.offers...)
}

// TestReinviteHoldUnhold: Reinvite sends our offer in the dialog (same
// Call-ID and tags, a higher CSeq), ACKs the 2xx and returns the answer;
// the dialog stays up.
func TestReinviteHoldUnhold(t *testing.T) {
	p, ra, d := reinviteCall(t)
	inv := p.waitReq(sipgox.INVITE, 1)

	answer, err := d.Reinvite(testCtx(t), []byte(holdSDP))
	require.NoError(t, err)
	assert.Contains(t, string(answer), "a=recvonly")
	offers := ra.got()
	require.Len(t, offers, 1)
	re := offers[0]
	ack := p.waitAck(re.CSeq().SeqNo)
	assert.Equal(t, inv.CallID().Value(), re.CallID().Value())
	assert.Greater(t, re.CSeq().SeqNo, inv.CSeq().SeqNo)
	assert.Equal(t, re.CSeq().SeqNo, ack.CSeq().SeqNo, "ACK for the re-INVITE's 2xx")
	assert.Equal(t, re.CallID().Value(), ack.CallID().Value())
	assert.Equal(t, []string{"sendonly"}, sdpDirections(re.Body()))
	assert.Equal(t, "application/sdp", re.ContentType().Value())
	fromTag, _ := re.From().Params.Get("tag")
	invTag, _ := inv.From().Params.Get("tag")
	assert.Equal(t, invTag, fromTag)
	assert.NotEmpty(t, toTag(re))

	answer, err = d.Reinvite(testCtx(t), []byte(resumeSDP))
	require.NoError(t, err)
	assert.Contains(t, string(answer), "a=sendrecv")
	offers = ra.got()
	require.Len(t, offers, 2)
	assert.Equal(t, []string{"sendrecv"}, sdpDirections(offers[1].Body()))
	assert.Greater(t, offers[1].CSeq().SeqNo, offers[0].CSeq().SeqNo)
	assert.NoError(t, d.Err())
	require.NoError(t, d.Bye(testCtx(t)))
}

// TestReinviteRefreshKeepsHold: a session-timer refresh after Reinvite
// resends the hold offer (it used to resend the call's first SDP and so
// silently took the call off hold), and an offer from the peer is answered
// from it (still not sending to the peer).
func TestReinviteRefreshKeepsHold(t *testing.T) {
	p := newTestPeer(t)
	p.setInvite(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) {
		p.answer(req, tx, sipgox.NewHeader("Session-Expires", "90;refresher=uac"),
			sipgox.NewHeader("Require", "timer"), sipgox.NewHeader("Allow", "INVITE, ACK, BYE"))
	})
	ra := &reinviteAnswers{}
	p.setRequest(ra.handle)
	ua := newTestUA(t)
	d, err := ua.Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)
	_, err = d.Reinvite(testCtx(t), []byte(holdSDP))
	require.NoError(t, err)
	offers := ra.got()
	require.Len(t, offers, 1)
	assert.Equal(t, "90;refresher=uac", offers[0].GetHeader("Session-Expires").Value(), "our re-INVITE refreshes the session too")

	require.True(t, d.call(d.sessionTimerFired)) // what the timer does 45 s later
	p.waitAck(p.waitReq(sipgox.INVITE, 3).CSeq().SeqNo)
	require.Eventually(t, func() bool {
		busy := true
		d.call(func() { busy = d.st.busy })
		return !busy
	}, 5*time.Second, 10*time.Millisecond)
	offers = ra.got()
	require.Len(t, offers, 2)
	assert.Equal(t, []string{"sendonly"}, sdpDirections(offers[1].Body()), "refresh took the call off hold")
	assert.Equal(t, holdSDP, string(offers[1].Body()), "a refresh resends the same SDP, same version")

	// The peer re-offers sendrecv: we answer sendonly, still holding.
	res, err := p.inDialog(testCtx(t), sipgox.INVITE, "application/sdp", []byte(peerSDP))
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	assert.Equal(t, []string{"sendonly"}, sdpDirections(res.Body()))
	v, _ := sdpVersion(res.Body())
	assert.Greater(t, v, uint64(8), "answer version above the hold offer's")
	require.NoError(t, d.Bye(testCtx(t)))
}

// TestReinviteVersionRaised: an offer whose o= version is not above the
// last SDP we sent is raised to one more (RFC 3264 §8).
func TestReinviteVersionRaised(t *testing.T) {
	_, ra, d := reinviteCall(t)
	stale := strings.Replace(ourSDP, "a=sendrecv", "a=inactive", 1) // still version 7
	_, err := d.Reinvite(testCtx(t), []byte(stale))
	require.NoError(t, err)
	offers := ra.got()
	require.Len(t, offers, 1)
	v, ok := sdpVersion(offers[0].Body())
	require.True(t, ok)
	assert.Equal(t, uint64(8), v)
	assert.Equal(t, []string{"inactive"}, sdpDirections(offers[0].Body()))
	require.NoError(t, d.Bye(testCtx(t)))
}

// TestReinvite491Retried: 491 Request Pending is retried after the glare
// delay with a new CSeq (RFC 3261 §14.1); three 491s in a row give up.
func TestReinvite491Retried(t *testing.T) {
	_, ra, d := reinviteCall(t, 491, 491, 200, 491, 491, 491)
	var delays []time.Duration
	d.glareDelay = func() time.Duration {
		dl := glareDelay()
		delays = append(delays, dl)
		return 10 * time.Millisecond
	}
	answer, err := d.Reinvite(testCtx(t), []byte(holdSDP))
	require.NoError(t, err)
	assert.Contains(t, string(answer), "a=recvonly")
	offers := ra.got()
	require.Len(t, offers, 3)
	assert.Less(t, offers[0].CSeq().SeqNo, offers[1].CSeq().SeqNo)
	assert.Less(t, offers[1].CSeq().SeqNo, offers[2].CSeq().SeqNo)
	for _, dl := range delays {
		assert.GreaterOrEqual(t, dl, 2100*time.Millisecond)
		assert.LessOrEqual(t, dl, 4000*time.Millisecond)
	}

	_, err = d.Reinvite(testCtx(t), []byte(resumeSDP))
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 491, se.Code)
	assert.Len(t, ra.got(), 6)
	assert.NoError(t, d.Err(), "491 does not end the dialog")
	require.NoError(t, d.Bye(testCtx(t)))
}

// TestReinviteRejectedKeepsSession: 488 leaves the dialog up and the
// session as it was (a later refresh sends the old SDP).
func TestReinviteRejectedKeepsSession(t *testing.T) {
	_, _, d := reinviteCall(t, 488)
	_, err := d.Reinvite(testCtx(t), []byte(holdSDP))
	require.ErrorIs(t, err, ErrNotAcceptable)
	assert.Equal(t, 488, StatusCode(err))
	assert.NoError(t, d.Err())
	var local []byte
	require.True(t, d.call(func() { local = d.localSDP }))
	assert.Equal(t, ourSDP, string(local))
	require.NoError(t, d.Bye(testCtx(t)))
}

// TestReinvite481EndsDialog: 481 and 408 to a re-INVITE end the dialog
// (RFC 5057 §5.1); Err wraps the *StatusError.
func TestReinvite481EndsDialog(t *testing.T) {
	for _, code := range []int{481, 408} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p, _, d := reinviteCall(t, code)
			_, err := d.Reinvite(testCtx(t), []byte(holdSDP))
			assert.Equal(t, code, StatusCode(err))
			select {
			case <-d.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("dialog still up")
			}
			assert.Equal(t, code, StatusCode(d.Err()))
			if code == 408 {
				p.waitReq(sipgox.BYE, 1)
			}
			_, err = d.Reinvite(testCtx(t), []byte(resumeSDP))
			assert.ErrorIs(t, err, ErrDialogClosed)
		})
	}
}

// TestReinviteCallerTimeoutKeepsDialog: the caller's context ending while
// the peer has not answered returns its error and leaves the dialog up; the
// peer's late 2xx is still ACKed and becomes the session.
func TestReinviteCallerTimeoutKeepsDialog(t *testing.T) {
	p := newTestPeer(t)
	release := make(chan struct{})
	p.setRequest(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool {
		if req.IsInvite() && toTag(req) != "" {
			_ = tx.Respond(sipgox.NewResponseFromRequest(req, 100, "Trying", nil))
			<-release
			respondSDP(tx, req, strings.Replace(peerSDP, "a=sendrecv", "a=recvonly", 1))
			return true
		}
		return false
	})
	ua := newTestUA(t)
	d, err := ua.Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = d.Reinvite(short, []byte(holdSDP))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NoError(t, d.Err(), "the caller giving up does not end the dialog")
	close(release)
	p.waitAck(p.waitReq(sipgox.INVITE, 2).CSeq().SeqNo)
	require.Eventually(t, func() bool {
		var local []byte
		d.call(func() { local = d.localSDP })
		return string(local) == holdSDP
	}, 5*time.Second, 10*time.Millisecond, "the late 2xx did not become the session")
	assert.NoError(t, d.Err())
	require.NoError(t, d.Bye(testCtx(t)))
}

// TestReinviteGlareIncoming: a re-INVITE from the peer while ours is in
// flight is answered 491 (RFC 3261 §14.2); ours completes.
func TestReinviteGlareIncoming(t *testing.T) {
	p := newTestPeer(t)
	type result struct {
		res *sipgox.Response
		err error
	}
	theirs := make(chan result, 1)
	p.setRequest(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool {
		if req.IsInvite() && toTag(req) != "" {
			_ = tx.Respond(sipgox.NewResponseFromRequest(req, 100, "Trying", nil))
			r, err := p.inDialog(testCtx(t), sipgox.INVITE, "application/sdp", []byte(peerSDP))
			theirs <- result{r, err}
			respondSDP(tx, req, peerSDP)
			return true
		}
		return false
	})
	ua := newTestUA(t)
	d, err := ua.Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)
	_, err = d.Reinvite(testCtx(t), []byte(holdSDP))
	require.NoError(t, err)
	r := <-theirs
	require.NoError(t, r.err)
	assert.Equal(t, 491, r.res.StatusCode)
	require.NoError(t, d.Bye(testCtx(t)))
}

func TestReinviteBadInput(t *testing.T) {
	p := newTestPeer(t)
	ua := newTestUA(t)
	d, err := ua.Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)
	for _, bad := range [][]byte{nil, []byte("hello"), append([]byte("v=0\r\n"), make([]byte, 40<<10)...)} {
		_, err = d.Reinvite(testCtx(t), bad)
		var pe *ParamError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "offer", pe.Field)
	}
	assert.Equal(t, 1, p.count(sipgox.INVITE), "a bad offer was sent")
	require.NoError(t, d.Bye(testCtx(t)))
	_, err = d.Reinvite(testCtx(t), []byte(holdSDP))
	assert.ErrorIs(t, err, ErrDialogClosed)
}

// TestReinviteOneInviteAtATime: a Reinvite waits for a session refresh in
// flight (RFC 3261 §14.1), and a refresh that falls due while our
// re-INVITE is pending waits for it; an UPDATE with an offer meanwhile
// gets 491, one without (a plain refresh) 200.
func TestReinviteOneInviteAtATime(t *testing.T) {
	p := newTestPeer(t)
	release := make(chan struct{})
	var pending sync.Once
	arrived := make(chan struct{})
	p.setRequest(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool {
		if req.IsInvite() && toTag(req) != "" {
			pending.Do(func() { close(arrived) })
			<-release
			respondSDP(tx, req, peerSDP)
			return true
		}
		return false
	})
	ua := newTestUA(t)
	d, err := ua.Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)

	// A refresh is in flight: Reinvite waits.
	require.True(t, d.call(func() { d.st.busy = true }))
	errc := make(chan error, 1)
	go func() {
		_, err := d.Reinvite(testCtx(t), []byte(holdSDP))
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, 1, p.count(sipgox.INVITE), "re-INVITE sent during a refresh")
	require.True(t, d.call(func() { d.st.busy = false }))
	<-arrived

	// Ours is pending: the session timer waits, offers from the peer get 491.
	require.True(t, d.call(func() { d.st.interval, d.st.refresher = 90*time.Second, true }))
	require.True(t, d.call(d.sessionTimerFired))
	res, err := p.inDialog(testCtx(t), sipgox.UPDATE, "application/sdp", []byte(peerSDP))
	require.NoError(t, err)
	assert.Equal(t, 491, res.StatusCode)
	res, err = p.inDialog(testCtx(t), sipgox.UPDATE, "", nil)
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, 2, p.count(sipgox.INVITE), "a refresh went out while our re-INVITE was pending")
	close(release)
	require.NoError(t, <-errc)
	require.NoError(t, d.Bye(testCtx(t)))
}
