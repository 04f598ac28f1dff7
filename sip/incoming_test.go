package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

// answered is what a test's OnInvite handler saw and got.
type answered struct {
	in  *IncomingInvite
	d   *Dialog
	err error
}

// answerAll makes ua answer every INVITE with ourSDP (after ring, if
// set) and reports each result on the returned channel.
func answerAll(t *testing.T, ua *UA, opts AnswerOptions, ring func(*IncomingInvite)) <-chan answered {
	t.Helper()
	ch := make(chan answered, 4)
	var wg sync.WaitGroup
	ua.OnInvite(func(in *IncomingInvite) {
		wg.Add(1)
		defer wg.Done()
		if ring != nil {
			ring(in)
		}
		select {
		case <-in.Done():
			ch <- answered{in: in, err: errors.New("over before answer")}
			return
		default:
		}
		d, err := in.Answer(context.Background(), []byte(peerSDP), opts)
		ch <- answered{in: in, d: d, err: err}
	})
	t.Cleanup(wg.Wait)
	return ch
}

func waitAnswered(t *testing.T, ch <-chan answered) answered {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no call reached the handler")
		return answered{}
	}
}

func uaAddr(ua *UA, transport string) string {
	return "127.0.0.1:" + strconv.Itoa(ua.ListenPort(transport))
}

func TestUACallsUA(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			callee := newTestUA(t)
			caller := newTestUA(t)
			dtmf := make(chan rune, 4)
			ch := answerAll(t, callee, AnswerOptions{
				OnDTMF:  func(r rune, _ time.Duration) { dtmf <- r },
				Headers: []Header{{Name: "X-Answered-By", Value: "test"}},
			}, nil)
			d, err := caller.Invite(testCtx(t), InviteRequest{
				Callee: "sip:bob@" + uaAddr(callee, transport), From: "alice", DisplayName: "Alice A",
				Transport: transport, Offer: []byte(ourSDP), CallID: "uas-" + transport + "@test",
				Headers: []Header{{Name: "X-Stream", Value: "key=abc"}},
			})
			require.NoError(t, err)
			a := waitAnswered(t, ch)
			require.NoError(t, a.err)
			in := a.in
			assert.Equal(t, "uas-"+transport+"@test", in.CallID())
			assert.Equal(t, "alice", in.From().User)
			assert.Equal(t, "Alice A", in.From().DisplayName)
			assert.Equal(t, "bob", in.RequestUser())
			assert.Equal(t, "bob", in.To().User)
			assert.Equal(t, uaAddr(callee, transport), in.To().Host)
			assert.Equal(t, transport, in.Transport())
			assert.Equal(t, "127.0.0.1", in.Source().Addr().String())
			assert.Equal(t, ourSDP, string(in.Offer()))
			var names []string
			for _, h := range in.Headers() {
				names = append(names, strings.ToLower(h.Name))
			}
			assert.Contains(t, names, "x-stream")
			assert.NotContains(t, names, "via")
			assert.NotContains(t, names, "content-length")
			assert.False(t, in.Cancelled())
			assert.Equal(t, peerSDP, string(d.AnswerSDP()))
			assert.False(t, d.Incoming())
			assert.True(t, a.d.Incoming())
			assert.Equal(t, ourSDP, string(a.d.AnswerSDP()))
			select {
			case <-in.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("Done not closed after ACK")
			}

			// INFO DTMF from the caller reaches OnDTMF; our DTMF reaches the caller.
			require.NoError(t, d.SendDTMF(testCtx(t), '5', true))
			select {
			case r := <-dtmf:
				assert.Equal(t, '5', r)
			case <-time.After(5 * time.Second):
				t.Fatal("no DTMF")
			}

			// The callee hangs up: the caller sees ErrRemoteBye.
			require.NoError(t, a.d.Bye(testCtx(t)))
			waitRemoteBye(t, d)
			waitNoDialogs(t, callee)
		})
	}
}

// waitRemoteBye waits until the peer's BYE ends d.
func waitRemoteBye(t *testing.T, d *Dialog) {
	t.Helper()
	select {
	case <-d.Done():
		assert.ErrorIs(t, d.Err(), ErrRemoteBye)
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE from the peer")
	}
}

func waitNoDialogs(t *testing.T, ua *UA) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ua.mu.Lock()
		n, m := len(ua.dialogs), len(ua.invites)
		ua.mu.Unlock()
		if n == 0 && m == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dialogs and %d pending INVITEs left", n, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUACallsUACallerHangsUp(t *testing.T) {
	callee := newTestUA(t)
	caller := newTestUA(t)
	ch := answerAll(t, callee, AnswerOptions{}, nil)
	d, err := caller.Invite(testCtx(t), InviteRequest{Callee: "sip:bob@" + uaAddr(callee, "udp"), From: "alice", Offer: []byte(ourSDP)})
	require.NoError(t, err)
	a := waitAnswered(t, ch)
	require.NoError(t, a.err)
	require.NoError(t, d.Bye(testCtx(t)))
	waitRemoteBye(t, a.d)
	waitNoDialogs(t, callee)
}

func TestUACallsUATLS(t *testing.T) {
	tc := testenv.SelfSigned(t)
	withTLS := func(c *Config) {
		c.TLSConfig = &tls.Config{RootCAs: tc.Pool, Certificates: []tls.Certificate{tc.Certificate}}
	}
	callee := newTestUA(t, withTLS)
	caller := newTestUA(t, withTLS)
	ch := answerAll(t, callee, AnswerOptions{}, nil)
	d, err := caller.Invite(testCtx(t), InviteRequest{Callee: "sips:bob@" + uaAddr(callee, "tls"), From: "alice",
		Transport: "tls", Offer: []byte(ourSDP)})
	require.NoError(t, err)
	a := waitAnswered(t, ch)
	require.NoError(t, a.err)
	assert.Equal(t, "tls", a.in.Transport())
	assert.Equal(t, peerSDP, string(d.AnswerSDP()))
	// Our BYE reaches the caller over TLS (a connection to its Contact).
	require.NoError(t, a.d.Bye(testCtx(t)))
	waitRemoteBye(t, d)
}

func TestIncomingProgressAndEarlyMedia(t *testing.T) {
	callee := newTestUA(t)
	caller := newTestUA(t)
	// sipgo hands each response to a goroutine of its own: a 200 right
	// after the 183 could overtake it, so the callee answers once the
	// caller has seen the 183, as a phone rings a while.
	early := make(chan struct{})
	ch := answerAll(t, callee, AnswerOptions{}, func(in *IncomingInvite) {
		assert.Error(t, in.Progress(200, "OK", nil))
		assert.Error(t, in.Progress(180, "bad\r\nX: y", nil))
		assert.NoError(t, in.Progress(180, "Ringing", nil))
		assert.NoError(t, in.Progress(183, "Session Progress", []byte(peerSDP)))
		select {
		case <-early:
		case <-time.After(5 * time.Second):
		}
	})
	var progress []Progress
	d, err := caller.Invite(testCtx(t), InviteRequest{Callee: "sip:bob@" + uaAddr(callee, "udp"), From: "alice",
		Offer: []byte(ourSDP), OnProgress: func(p Progress) {
			progress = append(progress, p)
			if p.StatusCode == 183 {
				close(early)
			}
		}})
	require.NoError(t, err)
	a := waitAnswered(t, ch)
	require.NoError(t, a.err)
	var codes []int
	for _, p := range progress {
		codes = append(codes, p.StatusCode)
		if p.StatusCode == 183 {
			assert.Equal(t, peerSDP, string(p.SDP))
		}
	}
	assert.Contains(t, codes, 180)
	assert.Contains(t, codes, 183)
	// After the final answer nothing more can be sent.
	assert.ErrorIs(t, a.in.Progress(180, "Ringing", nil), ErrAnswered)
	assert.ErrorIs(t, a.in.Reject(486, "Busy Here"), ErrAnswered)
	_, err = a.in.Answer(testCtx(t), []byte(peerSDP), AnswerOptions{})
	assert.ErrorIs(t, err, ErrAnswered)
	require.NoError(t, d.Bye(testCtx(t)))
}

func TestIncomingCancelWhileRinging(t *testing.T) {
	callee := newTestUA(t)
	caller := newTestUA(t)
	ringing := make(chan *IncomingInvite, 1)
	result := make(chan error, 1)
	callee.OnInvite(func(in *IncomingInvite) {
		_ = in.Progress(180, "Ringing", nil)
		ringing <- in
		<-in.Done()
		_, err := in.Answer(context.Background(), []byte(peerSDP), AnswerOptions{})
		result <- err
	})
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		<-ringing
		cancel()
	}()
	_, err := caller.Invite(ctx, InviteRequest{Callee: "sip:bob@" + uaAddr(callee, "udp"), From: "alice",
		Offer: []byte(ourSDP), OnProgress: func(p Progress) {}})
	require.ErrorIs(t, err, context.Canceled)
	select {
	case err := <-result:
		assert.Equal(t, 487, StatusCode(err))
	case <-time.After(5 * time.Second):
		t.Fatal("handler not told of the CANCEL")
	}
	waitNoDialogs(t, callee)
}

func TestIncomingRejectAndRedirect(t *testing.T) {
	callee := newTestUA(t)
	caller := newTestUA(t)
	callee.OnInvite(func(in *IncomingInvite) {
		switch in.RequestUser() {
		case "busy":
			assert.Error(t, in.Reject(200, "OK"))
			assert.Error(t, in.Reject(486, "Busy", Header{Name: "Via", Value: "x"}))
			assert.NoError(t, in.Reject(486, "Busy Here", Header{Name: "X-Why", Value: "test"}))
		case "moved":
			assert.Error(t, in.Redirect())
			assert.Error(t, in.Redirect("http://example.com"))
			assert.NoError(t, in.Redirect("sip:carol@example.com", "sip:dave@example.net;transport=tcp"))
		}
	})
	target := func(user string) string { return "sip:" + user + "@" + uaAddr(callee, "udp") }
	_, err := caller.Invite(testCtx(t), InviteRequest{Callee: target("busy"), From: "alice", Offer: []byte(ourSDP)})
	assert.ErrorIs(t, err, ErrBusy)
	_, err = caller.Invite(testCtx(t), InviteRequest{Callee: target("moved"), From: "alice", Offer: []byte(ourSDP)})
	assert.Equal(t, 302, StatusCode(err))
	waitNoDialogs(t, callee)
}

func TestIncomingReinviteBothWays(t *testing.T) {
	callee := newTestUA(t)
	caller := newTestUA(t)
	offers := make(chan string, 2)
	ch := answerAll(t, callee, AnswerOptions{OnReinvite: func(offer []byte) ([]byte, error) {
		offers <- string(offer)
		return []byte(strings.Replace(peerSDP, "a=sendrecv", "a=recvonly", 1)), nil
	}}, nil)
	callerOffers := make(chan string, 2)
	d, err := caller.Invite(testCtx(t), InviteRequest{Callee: "sip:bob@" + uaAddr(callee, "udp"), From: "alice",
		Offer: []byte(ourSDP), OnReinvite: func(offer []byte) ([]byte, error) {
			callerOffers <- string(offer)
			return []byte(ourSDP), nil
		}})
	require.NoError(t, err)
	a := waitAnswered(t, ch)
	require.NoError(t, a.err)

	hold := strings.Replace(ourSDP, "a=sendrecv", "a=sendonly", 1)
	ans, err := d.Reinvite(testCtx(t), []byte(hold))
	require.NoError(t, err)
	assert.Contains(t, string(ans), "a=recvonly")
	got := <-offers
	assert.Contains(t, got, "a=sendonly")
	assert.Contains(t, got, "o=us 7 8 ") // our version raised

	// Our re-INVITE towards the caller (CSeq, tags and target the UAS way).
	ans, err = a.d.Reinvite(testCtx(t), []byte(peerSDP))
	require.NoError(t, err)
	assert.Equal(t, ourSDP, string(ans))
	got = <-callerOffers
	assert.Contains(t, got, "m=audio 40000 ")
	assert.Contains(t, got, "o=peer 1 2 ")
	require.NoError(t, a.d.Bye(testCtx(t)))
	<-d.Done()
}
