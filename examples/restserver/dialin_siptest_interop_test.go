//go:build interop && linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/siptest"
)

// Issue 17 (dial-in) with siptest's caller (Peer.Call) as the phone: what
// sipp and baresip cannot script easily — ringing with early media and a
// prompt, a delayed offer, a CANCEL while ringing.

// toneHeard reports the share of 250 ms blocks of pcm (8 kHz) in which hz
// is clearly the tone (Goertzel above 0.8), and the blocks' values.
func toneHeard(pcm []int16, hz float64) (float64, []string) {
	var blocks []string
	toned, n := 0, 0
	for i := 0; i+2000 <= len(pcm); i += 2000 {
		g := testmedia.Goertzel(pcm[i:i+2000], 8000, hz)
		if g > 0.8 {
			toned++
		}
		n++
		blocks = append(blocks, fmt.Sprintf("%.2f", g))
	}
	if n == 0 {
		return 0, nil
	}
	return float64(toned) / float64(n), blocks
}

// TestInteropDialInEarlyMediaDelayedOfferCancel: a gateway that rings 2 s
// with early media playing a prompt (-inbound-ring, -inbound-early-media,
// -inbound-prompt, a WAV of 800 Hz). A siptest phone calls it: the prompt
// is heard before the answer (183 with SDP), the call's statuses go RING,
// RING_MEDIA, ESTABLISHED, and the phone's 600 Hz tone reaches nginx-rtmp
// (decoded from the AAC). A delayed offer (INVITE without SDP) is answered
// with the gateway's offer in the 200 and the phone's answer in the ACK,
// its tone published too. A CANCEL while ringing ends the attempt 487 and
// the call FINISH, and gives its RTP ports back.
func TestInteropDialInEarlyMediaDelayedOfferCancel(t *testing.T) {
	ngx := testenv.StartNginxRTMP(t)
	hook := newSippHook(t, "{}")
	soundDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(soundDir, "prompt.wav"), testmedia.WAV(testmedia.Tone(800, 8000, 0, 2*8000, 0.5), 8000), 0o644))
	lo := 20000 + 2*rand.IntN(4000)
	srv := startServerProcess(t, "-webhook", hook.srv.URL, "-rtp-ports", fmt.Sprintf("%d-%d", lo, lo+99),
		"-inbound-rtmp-url", ngx.RTMPURL(), "-inbound-allow", "127.0.0.1/32",
		"-inbound-ring", "2s", "-inbound-early-media", "-sound-dir", soundDir, "-inbound-prompt", "prompt.wav")
	sipAddr := sipAddrOf(t, srv)
	phone, err := siptest.NewPeer(siptest.Config{User: "phone"})
	require.NoError(t, err)
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// Early media with the prompt, then the answer.
	recording := testenv.RecordStream(t, ngx.RTMPURL()+"/early", 4*time.Second)
	t0 := time.Now()
	call, err := phone.Call(ctx, "sip:early@"+sipAddr, siptest.CallOptions{NoVideo: true, Script: siptest.Script{Audio: true, ToneHz: 600}})
	require.NoError(t, err, srv.log())
	ringing := time.Since(t0)
	t.Logf("answered after %v of ringing", ringing.Round(time.Millisecond))
	assert.GreaterOrEqual(t, ringing, 1900*time.Millisecond, "-inbound-ring 2s")
	early := call.EarlyAudio()
	share, blocks := toneHeard(early, 800)
	t.Logf("early media: %d ms; 800 Hz per 250 ms: %v", len(early)/8, blocks)
	assert.GreaterOrEqual(t, len(early), 8000, "at least 1 s of early media before the answer")
	assert.GreaterOrEqual(t, share, 0.5, "the prompt is heard while ringing")
	checkTonePublished(t, recording, 600)
	id := call.CallID()
	require.NoError(t, call.Hangup(ctx))
	hook.waitStatus(t, id, "FINISH")
	st, _ := hook.statuses(id)
	t.Logf("statuses of the early-media call: %v", st)
	assert.True(t, inOrder(st, []string{"RING", "RING_MEDIA", "ESTABLISHED", "FINISH"}), "%v", st)

	// A delayed offer: no early media can be offered in a 183 (no PRACK),
	// so it rings, then the 200 carries the gateway's offer.
	recording = testenv.RecordStream(t, ngx.RTMPURL()+"/delayed", 4*time.Second)
	call, err = phone.Call(ctx, "sip:delayed@"+sipAddr, siptest.CallOptions{DelayedOffer: true, Script: siptest.Script{Audio: true, ToneHz: 600}})
	require.NoError(t, err, srv.log())
	assert.Empty(t, call.OfferSDP())
	assert.Contains(t, string(call.RemoteSDP()), "m=audio", "the 200 carries the gateway's offer")
	checkTonePublished(t, recording, 600)
	require.NoError(t, call.WaitRTP(ctx, media.KindAudio, 25), "the gateway sends RTP to the address of the ACK's answer")
	require.NoError(t, call.Hangup(ctx))
	hook.waitStatus(t, call.CallID(), "FINISH")

	// CANCEL while ringing.
	base := steady(t, srv, lo, lo+99)
	_, err = phone.Call(ctx, "sip:cancelled@"+sipAddr, siptest.CallOptions{NoVideo: true, CancelAfter: 500 * time.Millisecond})
	var se *siptest.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, 487, se.Code)
	var cancelledID string
	for _, c := range hook.calls() {
		if c["callee"] == "cancelled" {
			cancelledID, _ = c["callId"].(string)
		}
	}
	require.NotEmpty(t, cancelledID, "OnCallEvent for the cancelled call")
	hook.waitStatus(t, cancelledID, "FINISH")
	st, _ = hook.statuses(cancelledID)
	t.Logf("statuses of the cancelled call: %v", st)
	assert.NotContains(t, st, "ESTABLISHED")
	after := settled(t, srv, lo, lo+99, base)
	t.Logf("footprint after the CANCEL: %+v (before %+v)", after, base)
	assert.Zero(t, after.rtpPorts, "the cancelled call's RTP ports were given back")
	assert.LessOrEqual(t, after.fds, base.fds)
}

// checkTonePublished waits for rec (the stream a call publishes) and checks
// that its AAC carries the phone's tone at hz for most of it.
func checkTonePublished(t *testing.T, rec *testenv.Recording, hz float64) {
	t.Helper()
	require.NoError(t, rec.Wait(60*time.Second), "ffmpeg read the stream from nginx")
	streams := testenv.ProbeStreams(t, rec.File)
	require.Equal(t, "aac", streams["audio"].CodecName)
	pcm := testenv.DecodePCM(t, rec.File, 8000)
	share, blocks := toneHeard(pcm, hz)
	t.Logf("published audio, %.0f Hz per 250 ms: %v", hz, blocks)
	assert.GreaterOrEqual(t, share, 0.6, "the phone's tone is published")
}

// TestInteropDialInRegistrar: with -registrar, a phone (siptest) registers
// to the gateway as one of -inbound-users (digest); registration/find_all
// then lists its binding (inbound, its contact, no password), and its calls
// are let in without credentials (they come from the binding's address)
// and published. Once it unregisters, the binding is gone and a call
// without credentials is challenged again (401).
func TestInteropDialInRegistrar(t *testing.T) {
	ngx := testenv.StartNginxRTMP(t)
	usersFile := filepath.Join(t.TempDir(), "inbound-users")
	require.NoError(t, os.WriteFile(usersFile, []byte("trunk1:pw-trunk-99\n"), 0o600))
	srv := startServerProcess(t, "-registrar", "-inbound-users", usersFile, "-inbound-rtmp-url", ngx.RTMPURL())
	sipAddr := sipAddrOf(t, srv)
	phone, err := siptest.NewPeer(siptest.Config{User: "trunk1"})
	require.NoError(t, err)
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	require.Error(t, phone.Register(ctx, siptest.RegisterRequest{Registrar: sipAddr, Password: "wrong"}), "a wrong password is refused")
	require.NoError(t, phone.Register(ctx, siptest.RegisterRequest{Registrar: sipAddr, Password: "pw-trunk-99", Expires: 5 * time.Minute}))
	list, body, err := registrations(t, srv.base)
	require.NoError(t, err)
	t.Logf("registration/find_all: %s", body)
	var binding map[string]any
	for _, r := range list {
		if r["inbound"] == true {
			binding = r
		}
	}
	require.NotNil(t, binding, "no inbound binding listed: %s", body)
	assert.Equal(t, "trunk1", binding["user"])
	assert.Contains(t, binding["contact"], phone.Addr())
	assert.NotContains(t, body, "pw-trunk-99")

	recording := testenv.RecordStream(t, ngx.RTMPURL()+"/4711", 3*time.Second)
	call, err := phone.Call(ctx, "sip:4711@"+sipAddr, siptest.CallOptions{NoVideo: true, Script: siptest.Script{Audio: true, ToneHz: 600}})
	require.NoError(t, err, "a call from the registered contact is let in without credentials\n%s", srv.log())
	checkTonePublished(t, recording, 600)
	require.NoError(t, call.Hangup(ctx))

	require.NoError(t, phone.Register(ctx, siptest.RegisterRequest{Registrar: sipAddr, Password: "pw-trunk-99", Expires: -1}))
	require.Eventually(t, func() bool {
		list, _, err := registrations(t, srv.base)
		if err != nil {
			return false
		}
		for _, r := range list {
			if r["inbound"] == true {
				return false
			}
		}
		return true
	}, 10*time.Second, 100*time.Millisecond, "the binding is still listed after the unREGISTER")
	_, err = phone.Call(ctx, "sip:4711@"+sipAddr, siptest.CallOptions{NoVideo: true})
	var se *siptest.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, 401, se.Code, "without a binding the caller must authenticate")
	assert.NotContains(t, srv.log(), "pw-trunk-99")
}

// TestInteropDialInHookDecides: the WCS way, with the REST hook's answer
// to OnCallEvent deciding each call: a target of its own (rtmpUrl and
// rtmpStream) is where the call is published, {"reject": true, "sipStatus": 486} refuses
// with 486, {"redirect": ...} answers 302, and {} leaves it to
// -inbound-rtmp-url (the stream named after the Request-URI user).
func TestInteropDialInHookDecides(t *testing.T) {
	ngx := testenv.StartNginxRTMP(t)
	hook := newSippHook(t, "{}")
	srv := startServerProcess(t, "-webhook", hook.srv.URL, "-inbound-rtmp-url", ngx.RTMPURL(), "-inbound-allow", "127.0.0.1/32")
	sipAddr := sipAddrOf(t, srv)
	phone, err := siptest.NewPeer(siptest.Config{User: "phone"})
	require.NoError(t, err)
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	answer := func(a string) {
		hook.mu.Lock()
		hook.answer = a
		hook.mu.Unlock()
	}
	script := siptest.Script{Audio: true, ToneHz: 600}

	answer(fmt.Sprintf(`{"rtmpUrl": %q, "rtmpStream": "chosen-by-hook"}`, ngx.RTMPURL()))
	recording := testenv.RecordStream(t, ngx.RTMPURL()+"/chosen-by-hook", 3*time.Second)
	call, err := phone.Call(ctx, "sip:sales@"+sipAddr, siptest.CallOptions{NoVideo: true, Script: script})
	require.NoError(t, err, srv.log())
	checkTonePublished(t, recording, 600)
	require.NoError(t, call.Hangup(ctx))

	answer(`{"reject": true, "sipStatus": 486, "reason": "Busy Here"}`)
	_, err = phone.Call(ctx, "sip:sales@"+sipAddr, siptest.CallOptions{NoVideo: true})
	var se *siptest.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, 486, se.Code)

	answer(`{"redirect": "sip:desk@192.0.2.7"}`)
	_, err = phone.Call(ctx, "sip:sales@"+sipAddr, siptest.CallOptions{NoVideo: true})
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, 302, se.Code)

	answer(`{}`)
	recording = testenv.RecordStream(t, ngx.RTMPURL()+"/support", 3*time.Second)
	call, err = phone.Call(ctx, "sip:support@"+sipAddr, siptest.CallOptions{NoVideo: true, Script: script})
	require.NoError(t, err, srv.log())
	checkTonePublished(t, recording, 600)
	require.NoError(t, call.Hangup(ctx))
	calls := hook.calls()
	require.Len(t, calls, 4, "OnCallEvent once per call")
	for _, c := range calls {
		assert.Equal(t, true, c["incoming"])
		assert.Equal(t, "phone", c["caller"])
	}
}
