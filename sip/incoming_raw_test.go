package sip

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawPeer sends hand-written SIP over UDP to a UA and reads what comes back.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newRawPeer(t *testing.T, ua *UA) *rawPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, conn: c, to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ua.ListenPort("udp")}}
}

func (p *rawPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *rawPeer) send(msg string) {
	p.t.Helper()
	_, err := p.conn.WriteToUDP([]byte(msg), p.to)
	require.NoError(p.t, err)
}

// read returns the next message, nil after d.
func (p *rawPeer) read(d time.Duration) sipgox.Message {
	p.t.Helper()
	buf := make([]byte, 65535)
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	m, err := sipgox.ParseMessage(buf[:n])
	require.NoError(p.t, err)
	return m
}

// response waits for a response with code (skipping others), nil if none in d.
func (p *rawPeer) response(code int, d time.Duration) *sipgox.Response {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m := p.read(time.Until(deadline))
		if res, ok := m.(*sipgox.Response); ok && res.StatusCode == code {
			return res
		}
	}
	return nil
}

// rawInvite is an INVITE from p; extra lines are added before the body.
func (p *rawPeer) invite(callID, branch string, extra []string, ctype, body string) string {
	var b strings.Builder
	b.WriteString("INVITE sip:bob@127.0.0.1:" + strconv.Itoa(p.to.Port) + " SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/UDP 127.0.0.1:" + strconv.Itoa(p.port()) + ";branch=z9hG4bK" + branch + ";rport\r\n")
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: \"Raw\" <sip:raw@127.0.0.1>;tag=rawtag\r\n")
	b.WriteString("To: <sip:bob@127.0.0.1>\r\n")
	b.WriteString("Call-ID: " + callID + "\r\n")
	b.WriteString("CSeq: 1 INVITE\r\n")
	b.WriteString("Contact: <sip:raw@127.0.0.1:" + strconv.Itoa(p.port()) + ">\r\n")
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	if ctype != "" {
		b.WriteString("Content-Type: " + ctype + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return b.String()
}

// ack is the ACK of a 2xx (new branch) with an optional SDP body.
func (p *rawPeer) ack(res *sipgox.Response, body string) string {
	toTag, _ := res.To().Params.Get("tag")
	var b strings.Builder
	b.WriteString("ACK " + res.Contact().Address.String() + " SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/UDP 127.0.0.1:" + strconv.Itoa(p.port()) + ";branch=z9hG4bKack" + strconv.Itoa(int(time.Now().UnixNano()%1e6)) + "\r\n")
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: \"Raw\" <sip:raw@127.0.0.1>;tag=rawtag\r\n")
	b.WriteString("To: <sip:bob@127.0.0.1>;tag=" + toTag + "\r\n")
	b.WriteString("Call-ID: " + res.CallID().Value() + "\r\n")
	b.WriteString("CSeq: 1 ACK\r\n")
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return b.String()
}

func TestIncomingDelayedOffer(t *testing.T) {
	ua := newTestUA(t)
	var calls atomic.Int32
	ch := answerAll(t, ua, AnswerOptions{}, func(in *IncomingInvite) {
		calls.Add(1)
		assert.Nil(t, in.Offer())
	})
	p := newRawPeer(t, ua)
	inv := p.invite("delayed-1", "d1", nil, "", "")
	p.send(inv)
	res := p.response(200, 5*time.Second)
	require.NotNil(t, res, "no 200")
	assert.Equal(t, peerSDP, string(res.Body()), "our offer in the 200")
	assert.Equal(t, "application/sdp", res.ContentType().Value())
	// A retransmitted INVITE is absorbed (the handler runs once) and the
	// 200 is retransmitted until the ACK.
	p.send(inv)
	require.NotNil(t, p.response(200, 3*time.Second), "200 not retransmitted")
	p.send(p.ack(res, ourSDP))
	a := waitAnswered(t, ch)
	require.NoError(t, a.err)
	assert.Equal(t, ourSDP, string(a.d.AnswerSDP()), "the ACK's answer")
	assert.Equal(t, int32(1), calls.Load())
	// The caller hangs up: BYE built the UAC way round.
	toTag, _ := res.To().Params.Get("tag")
	p.send("BYE " + res.Contact().Address.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:" + strconv.Itoa(p.port()) +
		";branch=z9hG4bKbye1\r\nFrom: <sip:raw@127.0.0.1>;tag=rawtag\r\nTo: <sip:bob@127.0.0.1>;tag=" + toTag +
		"\r\nCall-ID: delayed-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
	require.NotNil(t, p.response(200, 5*time.Second), "BYE not answered")
	<-a.d.Done()
	assert.ErrorIs(t, a.d.Err(), ErrRemoteBye)
}

func TestIncomingNoAck(t *testing.T) {
	ua := newTestUA(t)
	ua.t1 = 20 * time.Millisecond // 64*T1 = 1.28 s
	ch := answerAll(t, ua, AnswerOptions{}, nil)
	p := newRawPeer(t, ua)
	p.send(p.invite("noack-1", "n1", nil, "application/sdp", ourSDP))
	n := 0
	var bye *sipgox.Request
	deadline := time.Now().Add(5 * time.Second)
	for bye == nil && time.Now().Before(deadline) {
		switch m := p.read(time.Until(deadline)).(type) {
		case *sipgox.Response:
			if m.StatusCode == 200 {
				n++
			}
		case *sipgox.Request:
			if m.Method == sipgox.BYE {
				bye = m
				p.send(sipgox.NewResponseFromRequest(m, 200, "OK", nil).String())
			}
		}
	}
	require.NotNil(t, bye, "no BYE after 64*T1 without ACK")
	assert.GreaterOrEqual(t, n, 5, "200 retransmitted")
	assert.Equal(t, "sip:raw@127.0.0.1:"+strconv.Itoa(p.port()), bye.Recipient.String(), "BYE to the caller's Contact")
	assert.Equal(t, "raw", bye.To().Address.User)
	tag, _ := bye.To().Params.Get("tag")
	assert.Equal(t, "rawtag", tag)
	a := waitAnswered(t, ch)
	assert.Equal(t, 408, StatusCode(a.err))
	assert.Nil(t, a.d)
	waitNoDialogs(t, ua)
}

func TestIncomingRefusedBeforeHandler(t *testing.T) {
	ua := newTestUA(t)
	var calls atomic.Int32
	ua.OnInvite(func(in *IncomingInvite) {
		calls.Add(1)
		_ = in.Reject(486, "Busy Here")
	})
	p := newRawPeer(t, ua)
	for i, tc := range []struct {
		extra       []string
		ctype, body string
		code        int
	}{
		{[]string{"Max-Forwards: 0"}, "application/sdp", ourSDP, 483},
		{nil, "text/plain", "hello", 415},
		{nil, "application/sdp", "this is not SDP", 400},
		{[]string{"Content-Encoding: gzip"}, "application/sdp", ourSDP, 415},
		{[]string{"Require: 100rel"}, "application/sdp", ourSDP, 420},
		{[]string{"Session-Expires: 30"}, "application/sdp", ourSDP, 422},
	} {
		inv := p.invite("bad-"+strconv.Itoa(i), "bad"+strconv.Itoa(i), tc.extra, tc.ctype, tc.body)
		if tc.extra != nil && tc.extra[0] == "Max-Forwards: 0" {
			inv = strings.Replace(inv, "Max-Forwards: 70\r\n", "", 1)
		}
		p.send(inv)
		assert.NotNil(t, p.response(tc.code, 3*time.Second), "%v %s: want %d", tc.extra, tc.ctype, tc.code)
	}
	// A body without Content-Type.
	inv := strings.Replace(p.invite("bad-ct", "badct", nil, "application/sdp", ourSDP), "Content-Type: application/sdp\r\n", "", 1)
	p.send(inv)
	assert.NotNil(t, p.response(400, 3*time.Second), "missing Content-Type")
	assert.Equal(t, int32(0), calls.Load(), "the handler saw an invalid INVITE")

	// A second INVITE with the Call-ID of a live dialog: 482.
	caller := newTestUA(t)
	callee2 := newTestUA(t)
	ch := answerAll(t, callee2, AnswerOptions{}, nil)
	d, err := caller.Invite(testCtx(t), InviteRequest{Callee: "sip:bob@" + uaAddr(callee2, "udp"), From: "alice", Offer: []byte(ourSDP), CallID: "dup-1"})
	require.NoError(t, err)
	require.NoError(t, waitAnswered(t, ch).err)
	p2 := newRawPeer(t, callee2)
	p2.send(p2.invite("dup-1", "dup1", nil, "application/sdp", ourSDP))
	assert.NotNil(t, p2.response(482, 3*time.Second), "same Call-ID")
	require.NoError(t, d.Bye(testCtx(t)))
}

func TestIncomingUnanswered(t *testing.T) {
	ua := newTestUA(t)
	ua.inviteTimeout = 300 * time.Millisecond
	over := make(chan *IncomingInvite, 1)
	ua.OnInvite(func(in *IncomingInvite) {
		<-in.Done()
		over <- in
	})
	p := newRawPeer(t, ua)
	p.send(p.invite("unanswered-1", "u1", nil, "application/sdp", ourSDP))
	require.NotNil(t, p.response(100, 3*time.Second), "no 100 Trying")
	require.NotNil(t, p.response(480, 3*time.Second), "no 480 after the timeout")
	in := <-over
	assert.False(t, in.Cancelled())
	assert.ErrorIs(t, in.Reject(486, "Busy"), ErrAnswered)
	waitNoDialogs(t, ua)
}

func TestIncomingNoHandler480(t *testing.T) {
	ua := newTestUA(t)
	p := newRawPeer(t, ua)
	p.send(p.invite("nohandler-1", "nh1", nil, "application/sdp", ourSDP))
	assert.NotNil(t, p.response(480, 3*time.Second))
}

// TestIncomingCloseWhilePending: Close answers a pending INVITE 503 and
// closes its Done.
func TestIncomingCloseWhilePending(t *testing.T) {
	ua := newTestUA(t)
	got := make(chan *IncomingInvite, 1)
	ua.OnInvite(func(in *IncomingInvite) { got <- in })
	p := newRawPeer(t, ua)
	p.send(p.invite("closing-1", "c1", nil, "application/sdp", ourSDP))
	in := <-got
	ua.Close()
	assert.NotNil(t, p.response(503, 3*time.Second))
	<-in.Done()
	_, err := in.Answer(context.Background(), []byte(peerSDP), AnswerOptions{})
	assert.ErrorIs(t, err, ErrAnswered)
}

// TestIncomingByeBeforeAck: the caller hangs up before its ACK: the BYE is
// answered, the 200's retransmissions stop and Answer says why.
func TestIncomingByeBeforeAck(t *testing.T) {
	ua := newTestUA(t)
	ch := answerAll(t, ua, AnswerOptions{}, nil)
	p := newRawPeer(t, ua)
	p.send(p.invite("byefirst-1", "bf1", nil, "application/sdp", ourSDP))
	res := p.response(200, 5*time.Second)
	require.NotNil(t, res)
	toTag, _ := res.To().Params.Get("tag")
	p.send("BYE " + res.Contact().Address.String() + " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:" + strconv.Itoa(p.port()) +
		";branch=z9hG4bKbf1bye\r\nFrom: <sip:raw@127.0.0.1>;tag=rawtag\r\nTo: <sip:bob@127.0.0.1>;tag=" + toTag +
		"\r\nCall-ID: byefirst-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
	a := waitAnswered(t, ch)
	assert.ErrorIs(t, a.err, ErrRemoteBye)
	assert.Nil(t, a.d)
	waitNoDialogs(t, ua)
}

// TestIncomingCancelAfterAnswer: a CANCEL crossing our 200 gets its own
// 200 and changes nothing: the ACK establishes the call.
func TestIncomingCancelAfterAnswer(t *testing.T) {
	ua := newTestUA(t)
	ch := answerAll(t, ua, AnswerOptions{}, nil)
	p := newRawPeer(t, ua)
	inv := p.invite("cancellate-1", "cl1", nil, "application/sdp", ourSDP)
	p.send(inv)
	res := p.response(200, 5*time.Second)
	require.NotNil(t, res)
	cancel := strings.Replace(strings.SplitN(inv, "Contact:", 2)[0], "INVITE sip:", "CANCEL sip:", 1)
	cancel = strings.Replace(cancel, "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1) + "Content-Length: 0\r\n\r\n"
	p.send(cancel)
	var got200 bool
	deadline := time.Now().Add(3 * time.Second)
	for !got200 && time.Now().Before(deadline) {
		if r, ok := p.read(time.Until(deadline)).(*sipgox.Response); ok {
			require.NotEqual(t, 487, r.StatusCode)
			got200 = r.StatusCode == 200 && r.CSeq().MethodName == sipgox.CANCEL
		}
	}
	require.True(t, got200, "CANCEL not answered 200")
	p.send(p.ack(res, ""))
	a := waitAnswered(t, ch)
	require.NoError(t, a.err)
	assert.False(t, a.in.Cancelled())
	assert.True(t, a.d.Incoming())
}
