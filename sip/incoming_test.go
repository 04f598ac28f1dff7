package sip

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			select {
			case <-d.Done():
				assert.ErrorIs(t, d.Err(), ErrRemoteBye)
			case <-time.After(5 * time.Second):
				t.Fatal("caller did not see our BYE")
			}
			waitNoDialogs(t, callee)
		})
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
	select {
	case <-a.d.Done():
		assert.ErrorIs(t, a.d.Err(), ErrRemoteBye)
	case <-time.After(5 * time.Second):
		t.Fatal("callee did not see the BYE")
	}
	waitNoDialogs(t, callee)
	_ = runtime.NumGoroutine
	_ = net.IPv4len
}
