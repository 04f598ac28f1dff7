package sip

import (
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// progressLog collects ReferProgress reports.
type progressLog struct {
	mu  sync.Mutex
	got []ReferProgress
	fin chan struct{}
}

func newProgressLog() *progressLog { return &progressLog{fin: make(chan struct{})} }

func (l *progressLog) add(p ReferProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, p)
	if p.Final {
		close(l.fin)
	}
}

func (l *progressLog) wait(t *testing.T) []ReferProgress {
	t.Helper()
	select {
	case <-l.fin:
	case <-time.After(10 * time.Second):
		t.Fatal("no final transfer report")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ReferProgress(nil), l.got...)
}

// notify sends a NOTIFY of the refer event package from the peer.
func (p *testPeer) sendNotify(t *testing.T, event, state, ct, body string) int {
	t.Helper()
	hdrs := []sipgox.Header{sipgox.NewHeader("Event", event)}
	if state != "" {
		hdrs = append(hdrs, sipgox.NewHeader("Subscription-State", state))
	}
	res, err := p.inDialog(testCtx(t), sipgox.NOTIFY, ct, []byte(body), hdrs...)
	require.NoError(t, err)
	return res.StatusCode
}

// answerREFER makes the test peer answer REFERs with code and then, in a
// goroutine of its own, run after (nil: nothing).
func answerREFER(code int, after func(p *testPeer)) func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool {
	return func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool {
		if req.Method != sipgox.REFER {
			return false
		}
		_ = tx.Respond(sipgox.NewResponseFromRequest(req, code, "Scripted", nil))
		if after != nil {
			go after(p)
		}
		return true
	}
}

// TestReferBlind: REFER carries Refer-To (a bare number made a SIP URI at
// the dialog's domain) and Referred-By; 202 returns nil; the NOTIFYs'
// sipfrag status lines reach OnProgress, the 200 one final.
func TestReferBlind(t *testing.T) {
	p := newTestPeer(t)
	p.setInvite(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) {
		p.answer(req, tx, sipgox.NewHeader("Allow", "INVITE, ACK, BYE, REFER, NOTIFY"), sipgox.NewHeader("Supported", "replaces, timer"))
	})
	codes := make(chan int, 4)
	p.setRequest(answerREFER(202, func(p *testPeer) {
		codes <- p.sendNotify(t, "refer", "active;expires=60", "message/sipfrag", "SIP/2.0 100 Trying\r\n")
		codes <- p.sendNotify(t, "refer", "active;expires=60", "message/sipfrag;version=2.0", "SIP/2.0 180 Ringing\r\nContact: <sip:carol@127.0.0.1>\r\n\r\n")
		codes <- p.sendNotify(t, "refer", "terminated;reason=noresource", "message/sipfrag", "SIP/2.0 200 OK\r\n")
	}))
	ua := newTestUA(t)
	d, err := ua.Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)
	assert.True(t, d.PeerAllows("refer"))
	assert.True(t, d.PeerAllows("NOTIFY"))
	assert.False(t, d.PeerAllows("UPDATE"))
	assert.True(t, d.PeerSupports("Replaces"))
	assert.False(t, d.PeerSupports("100rel"))

	log := newProgressLog()
	require.NoError(t, d.Refer(testCtx(t), "+4930123", ReferOptions{OnProgress: log.add}))
	ref := p.waitReq(sipgox.REFER, 1)
	assert.Equal(t, "<sip:+4930123@"+p.addr()+">", ref.GetHeader("Refer-To").Value())
	inv := p.waitReq(sipgox.INVITE, 1)
	assert.Equal(t, "<"+inv.From().Address.String()+">", ref.GetHeader("Referred-By").Value())
	assert.NotNil(t, ref.Contact())
	got := log.wait(t)
	assert.Equal(t, []ReferProgress{{100, "Trying", false}, {180, "Ringing", false}, {200, "OK", true}}, got)
	for range 3 {
		assert.Equal(t, 200, <-codes)
	}
	// The subscription is over: another NOTIFY is for nothing.
	assert.Equal(t, 481, p.sendNotify(t, "refer", "terminated", "message/sipfrag", "SIP/2.0 200 OK\r\n"))
	require.NoError(t, d.Bye(testCtx(t)))
}

// TestReferRejected: a non-2xx answer to REFER is a *StatusError with the
// code; no report follows.
func TestReferRejected(t *testing.T) {
	p := newTestPeer(t)
	p.setRequest(answerREFER(603, nil))
	ua := newTestUA(t)
	d, err := ua.Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)
	assert.False(t, d.PeerAllows("REFER"), "the peer sent no Allow")
	called := false
	err = d.Refer(testCtx(t), "sip:carol@example.com", ReferOptions{OnProgress: func(ReferProgress) { called = true }})
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 603, se.Code)
	assert.Equal(t, "REFER", se.Method)
	assert.ErrorIs(t, err, ErrDeclined)
	// No subscription was left behind.
	assert.Equal(t, 481, p.sendNotify(t, "refer", "active", "message/sipfrag", "SIP/2.0 100 Trying\r\n"))
	require.NoError(t, d.Bye(testCtx(t)))
	assert.False(t, called)
}

// TestReferNotifyErrors: NOTIFYs we cannot take get the RFC's answers, and
// the dialog ending before a final NOTIFY gives a final report with code 0.
func TestReferNotifyErrors(t *testing.T) {
	p := newTestPeer(t)
	p.setRequest(answerREFER(202, nil))
	ua := newTestUA(t)
	d, err := ua.Invite(testCtx(t), basicInvite(p))
	require.NoError(t, err)
	assert.Equal(t, 481, p.sendNotify(t, "refer", "active", "message/sipfrag", "SIP/2.0 100 Trying\r\n"), "no REFER yet")

	log := newProgressLog()
	require.NoError(t, d.Refer(testCtx(t), "carol@example.com", ReferOptions{OnProgress: log.add}))
	ref := p.waitReq(sipgox.REFER, 1)
	assert.Equal(t, "<sip:carol@example.com>", ref.GetHeader("Refer-To").Value())
	id := ref.CSeq().SeqNo
	assert.Equal(t, 489, p.sendNotify(t, "presence", "active", "message/sipfrag", "SIP/2.0 100 Trying\r\n"))
	assert.Equal(t, 481, p.sendNotify(t, "refer;id=1", "active", "message/sipfrag", "SIP/2.0 100 Trying\r\n"), "wrong id")
	assert.Equal(t, 415, p.sendNotify(t, "refer", "active", "text/plain", "SIP/2.0 100 Trying\r\n"))
	assert.Equal(t, 400, p.sendNotify(t, "refer", "active", "message/sipfrag", "INVITE sip:carol@example.com SIP/2.0\r\n"))
	assert.Equal(t, 400, p.sendNotify(t, "refer", "active", "message/sipfrag", "SIP/2.0 99 Odd\r\n"))
	assert.Equal(t, 200, p.sendNotify(t, "refer;id="+strconv.FormatUint(uint64(id), 10), "active", "message/sipfrag", "SIP/2.0 183 Session Progress\r\n"))
	require.NoError(t, d.Bye(testCtx(t)))
	assert.Equal(t, []ReferProgress{{183, "Session Progress", false}, {0, "dialog ended", true}}, log.wait(t))
}

// TestReferAttendedReplaces: with Replaces, Refer-To names the other
// dialog: Call-ID, its peer's tag as to-tag and ours as from-tag, escaped
// in the URI header (RFC 3891, RFC 5589 §7), and unescapes to exactly that.
func TestReferAttendedReplaces(t *testing.T) {
	p1 := newTestPeer(t)
	p1.setRequest(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool {
		if req.Method != sipgox.REFER {
			return false
		}
		_ = tx.Respond(sipgox.NewResponseFromRequest(req, 202, "Accepted", nil))
		return true
	})
	p2 := newTestPeer(t)
	ua := newTestUA(t)
	d1, err := ua.Invite(testCtx(t), basicInvite(p1))
	require.NoError(t, err)
	r2 := basicInvite(p2)
	r2.CallID = "consult-7!x%41@host.example" // "%" and "@" must be escaped, "!" need not
	d2, err := ua.Invite(testCtx(t), r2)
	require.NoError(t, err)

	assert.ErrorIs(t, d1.Refer(testCtx(t), "", ReferOptions{Replaces: d1}), ErrInvalidParams)
	require.NoError(t, d1.Refer(testCtx(t), "", ReferOptions{Replaces: d2}))
	referTo := p1.waitReq(sipgox.REFER, 1).GetHeader("Refer-To").Value()
	inv2 := p2.waitReq(sipgox.INVITE, 1)
	ourTag, _ := inv2.From().Params.Get("tag")
	var theirTag string
	require.True(t, d2.call(func() { theirTag = d2.remoteTag }))
	require.NotEmpty(t, theirTag)
	want := "<sip:peer@" + p2.addr() + "?Replaces=consult-7!x%2541%40host.example%3Bto-tag%3D" + theirTag + "%3Bfrom-tag%3D" + ourTag + ">"
	assert.Equal(t, want, referTo)
	uri := strings.Trim(referTo, "<>")
	require.NoError(t, ValidateURI(uri))
	_, hdrs, _ := strings.Cut(uri, "?")
	val, err := url.PathUnescape(strings.TrimPrefix(hdrs, "Replaces="))
	require.NoError(t, err)
	assert.Equal(t, r2.CallID+";to-tag="+theirTag+";from-tag="+ourTag, val)

	// An explicit target keeps its own URI.
	require.NoError(t, d1.Refer(testCtx(t), "sip:carol@pbx.example;transport=tcp", ReferOptions{Replaces: d2}))
	referTo = p1.waitReq(sipgox.REFER, 2).GetHeader("Refer-To").Value()
	assert.True(t, strings.HasPrefix(referTo, "<sip:carol@pbx.example;transport=tcp?Replaces=consult-7!x%2541%40host.example%3Bto-tag%3D"), referTo)

	require.NoError(t, d2.Bye(testCtx(t)))
	assert.ErrorIs(t, d1.Refer(testCtx(t), "", ReferOptions{Replaces: d2}), ErrInvalidParams, "an ended dialog cannot be replaced")
	require.NoError(t, d1.Bye(testCtx(t)))
	assert.ErrorIs(t, d1.Refer(testCtx(t), "carol", ReferOptions{}), ErrDialogClosed)
}

func TestReferTargetValidation(t *testing.T) {
	for _, c := range []struct{ target, domain, want string }{
		{"carol", "pbx.example", "sip:carol@pbx.example"},
		{"+4930123", "pbx.example:5080", "sip:+4930123@pbx.example:5080"},
		{"carol@other.example", "pbx.example", "sip:carol@other.example"},
		{"sips:carol@other.example;transport=tls", "pbx.example", "sips:carol@other.example;transport=tls"},
		{"SIP:carol@other.example?X-A=1", "pbx.example", "SIP:carol@other.example?X-A=1"},
	} {
		got, err := referTarget(c.target, c.domain, "")
		if assert.NoError(t, err, c.target) {
			assert.Equal(t, c.want, got)
		}
	}
	got, err := referTarget("sip:carol@other.example?X-A=1", "", "a@b;to-tag=1;from-tag=2")
	require.NoError(t, err)
	assert.Equal(t, "sip:carol@other.example?X-A=1&Replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2", got)
	for _, bad := range []string{"", "carol smith", "sip:carol:secret@pbx.example", "sip:", "carol@", "<sip:carol@x>", "sip:carol@x\r\nVia: evil", strings.Repeat("a", 300)} {
		_, err := referTarget(bad, "pbx.example", "")
		var pe *ParamError
		if assert.ErrorAs(t, err, &pe, "%q", bad) {
			assert.Equal(t, "target", pe.Field)
			assert.NotContains(t, err.Error(), "secret")
		}
	}
}

// TestReinviteAndReferChallenged: a proxy that challenges in-dialog
// requests gets our credentials for the re-INVITE and the REFER too; the
// REFER's subscription id is then the CSeq of the authenticated REFER.
func TestReinviteAndReferChallenged(t *testing.T) {
	p := newTestPeer(t)
	var seen seenUsers
	script := challengeScript(407, "auth-9", "pw9", &seen)
	p.setRequest(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool {
		if req.Method != sipgox.REFER && !(req.IsInvite() && toTag(req) != "") {
			return false
		}
		script(p, req, tx)
		return true
	})
	ua := newTestUA(t)
	r := basicInvite(p)
	r.From, r.AuthUser, r.Password = "9000", "auth-9", "pw9"
	d, err := ua.Invite(testCtx(t), r)
	require.NoError(t, err)
	answer, err := d.Reinvite(testCtx(t), []byte(holdSDP))
	require.NoError(t, err)
	assert.Equal(t, peerSDP, string(answer))
	re1, re2 := p.waitReq(sipgox.INVITE, 2), p.waitReq(sipgox.INVITE, 3)
	assert.Equal(t, re1.CSeq().SeqNo+1, re2.CSeq().SeqNo)
	assert.NotNil(t, re2.GetHeader("Proxy-Authorization"))
	assert.Equal(t, holdSDP, string(re2.Body()))

	log := newProgressLog()
	require.NoError(t, d.Refer(testCtx(t), "carol", ReferOptions{OnProgress: log.add}))
	ref1, ref2 := p.waitReq(sipgox.REFER, 1), p.waitReq(sipgox.REFER, 2)
	assert.Equal(t, ref1.CSeq().SeqNo+1, ref2.CSeq().SeqNo)
	assert.Equal(t, 481, p.sendNotify(t, "refer;id="+strconv.FormatUint(uint64(ref1.CSeq().SeqNo), 10), "active", "message/sipfrag", "SIP/2.0 100 Trying\r\n"),
		"the challenged REFER's CSeq names no subscription")
	assert.Equal(t, 200, p.sendNotify(t, "refer;id="+strconv.FormatUint(uint64(ref2.CSeq().SeqNo), 10), "terminated", "message/sipfrag", "SIP/2.0 200 OK\r\n"))
	assert.Equal(t, []ReferProgress{{200, "OK", true}}, log.wait(t))
	assert.Equal(t, []string{"auth-9", "auth-9"}, seen.get())
	require.NoError(t, d.Bye(testCtx(t)))
}
