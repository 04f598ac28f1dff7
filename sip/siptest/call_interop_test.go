//go:build interop

package siptest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// registerAt registers p at kamailio as user (retrying while kamailio
// starts up).
func registerAt(t *testing.T, ctx context.Context, p *Peer, kam, user, password string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err = p.Register(rctx, RegisterRequest{Registrar: kam, User: user, Password: password, Expires: time.Minute})
		cancel()
		if err == nil {
			return
		}
	}
	require.NoError(t, err, "kamailio did not accept the REGISTER")
}

// TestInteropCallThroughKamailio: a Peer calls another registered at
// kamailio, through kamailio (a record-routing proxy that challenges
// INVITEs with 407): the digest answer gets through, tones go both ways,
// and both the caller's BYE (along the route set of the 200) and, on a
// second call, the callee's reach the other side through kamailio.
func TestInteropCallThroughKamailio(t *testing.T) {
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{
		Users: map[string]string{"alice": "pwalice", "carol": "pwcarol"}, ChallengeRequests: true})
	callee := newPeer(t, Config{User: "carol", Script: Script{Audio: true, ToneHz: 1000}})
	caller := newPeer(t, Config{User: "alice"})
	ctx := testCtx(t)
	registerAt(t, ctx, callee, kam.Addr, "carol", "pwcarol")

	for i, callerHangsUp := range []bool{true, false} {
		call, err := caller.Call(ctx, "sip:carol@"+kam.Addr, CallOptions{Password: "pwalice", NoVideo: true, Script: Script{Audio: true, ToneHz: 600}})
		require.NoError(t, err)
		in, err := callee.WaitCall(ctx)
		require.NoError(t, err)
		require.NoError(t, in.WaitEstablished(ctx))
		assert.Contains(t, in.Header("Record-Route"), kam.Addr)
		// Each call's INVITE went twice: challenged 407, then with credentials.
		assert.Equal(t, 2*(i+1), strings.Count(kam.Log(), "req INVITE sip:carol@"), kam.Log())
		heard := waitAudio(t, ctx, call, time.Second)
		assert.Greater(t, testmedia.Goertzel(heard, 8000, 1000), 0.8)
		heard = waitAudio(t, ctx, in, time.Second)
		assert.Greater(t, testmedia.Goertzel(heard, 8000, 600), 0.8)
		require.NoError(t, call.SendDTMFInfo(ctx, "3", 0), "INFO along the route set")
		digits, err := in.WaitDTMF(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, "3", digits)
		if callerHangsUp {
			require.NoError(t, call.Hangup(ctx))
			require.NoError(t, in.WaitBye(ctx), "call %d: the caller's BYE came through kamailio", i)
			bye, _ := in.Bye()
			assert.Contains(t, bye.Header("Via"), kam.Addr)
		} else {
			require.NoError(t, in.Hangup(ctx))
			require.NoError(t, call.WaitBye(ctx), "call %d: the callee's BYE came through kamailio", i)
		}
	}
}

// TestInteropBaresipDialsPeer: baresip, registered at kamailio and driven
// over ctrl_tcp (testenv's Baresip.Dial), calls a Peer registered there;
// and a Peer calls baresip (it answers at once): baresip's 440 Hz tone
// reaches the peer both times, the peer's 600 Hz reaches baresip.
func TestInteropBaresipDialsPeer(t *testing.T) {
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Users: map[string]string{"alice": "pwalice", "carol": "pwcarol"}})
	b := testenv.StartBaresip(t, testenv.BaresipConfig{User: "alice", Password: "pwalice", Registrar: kam.Addr, Control: true})
	peer := newPeer(t, Config{User: "carol", Script: Script{Audio: true, ToneHz: 600}})
	ctx := testCtx(t)
	registerAt(t, ctx, peer, kam.Addr, "carol", "pwcarol")

	require.NoError(t, b.Dial(ctx, "sip:carol@"+kam.Addr))
	in, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, in.WaitEstablished(ctx))
	assert.Contains(t, in.FromURI(), "alice")
	heard := waitAudio(t, ctx, in, time.Second)
	assert.Greater(t, testmedia.Goertzel(heard, 8000, 440), 0.5, "baresip's tone")
	require.NoError(t, in.Hangup(ctx))

	call, err := peer.Call(ctx, "sip:alice@"+kam.Addr, CallOptions{NoVideo: true, Script: Script{Audio: true, ToneHz: 600}})
	require.NoError(t, err)
	heard = waitAudio(t, ctx, call, time.Second)
	assert.Greater(t, testmedia.Goertzel(heard, 8000, 440), 0.5, "baresip's tone")
	require.NoError(t, call.WaitRTP(ctx, media.KindAudio, 50))
	require.NoError(t, call.Hangup(ctx))
	_, err = b.Command(ctx, "nosuchcommand", "")
	assert.Error(t, err)
}
