//go:build interop

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media/session"
	"github.com/sipstream/sipstream/sip/siptest"
)

// publishFromLiveEncoder is publishFromBaresip with the siptest peer as
// the phone, in its live-encoder mode: H.264 640x360 at exactly 25 fps
// with a real encoder's sizes (IDR 10 packets, P frame 3), a 10 s GOP, an
// IDR on the very next frame after a PLI/FIR, and, unless noRetransmit,
// the NACKed packets resent at once. It sends Sender Reports every second.
// The video is a plain picture and the audio a steady tone: no A/V
// markers.
func publishFromLiveEncoder(t *testing.T, stream string, link netsim.Config, policy session.LossPolicy, noRetransmit bool) lossyResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", User: "bob", Script: siptest.Script{
		Audio: true, Video: true, LiveVideo: &siptest.LiveVideo{}, NoRetransmit: noRetransmit, SendSR: true,
	}})
	require.NoError(t, err)
	t.Cleanup(func() { peer.Close() })
	ngx := testenv.StartNginxRTMP(t)
	rec := testenv.RecordStream(t, ngx.RTMPURL()+"/"+stream, lossyLead+lossyWindow)
	require.NoError(t, ngx.WaitStream(ctx, stream), "ffmpeg waits at nginx before the call starts: %s", rec.Log())

	listen, taps := impairedListen(link)
	m, err := callmgr.New(callmgr.Config{
		ListenAddr: "127.0.0.1:0", PublicIP: loopback, MediaIP: loopback,
		RTPPortMin: 24300, RTPPortMax: 24399, MediaListen: listen, LossPolicy: policy,
	})
	require.NoError(t, err)
	defer m.Close(context.Background())
	call, err := m.StartCall(ctx, callmgr.CallParams{CallID: stream, Callee: peer.URI(),
		RTMPURL: ngx.RTMPURL(), RTMPStream: stream, HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	require.NoError(t, call.WaitEstablished(ctx), "call to the siptest peer")
	established := time.Now()
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)

	require.NoError(t, rec.Wait(lossyLead+lossyWindow+30*time.Second), "ffmpeg read the stream from nginx")
	res := lossyResult{Link: taps.stats(), FirstSR: taps.firstSRs(established),
		CallStats: fmt.Sprintf("%+v; peer sent %+v, RTCP %+v", call.Stats(), pc.VideoSent(), pc.RTCP())}
	require.NoError(t, call.Terminate(ctx))
	require.NoError(t, m.Close(ctx))
	res.StreamReport = testenv.AnalyseRecording(t, rec, lossyWindow)
	return res
}

// The figures for a phone that retransmits on NACK.

// TestInteropLossyLiveNACK2pct: 2 % random loss, NACK: at least 240 of
// 250 frames, no decode error.
func TestInteropLossyLiveNACK2pct(t *testing.T) {
	r := publishFromLiveEncoder(t, "lossy-live-2", lossyLink(2102, 0.02), session.LossFreeze, false)
	checkLossy(t, "live-nack-2%", r, lossyLimits{MinFrames: 240, MaxKeyframeIv: 2 * time.Second, NoMarkers: true})
}

// TestInteropLossyLiveNACK2pctBursty: 2 % loss in bursts of 3 packets on
// average (Gilbert model), NACK: at least 240 of 250, no decode error.
func TestInteropLossyLiveNACK2pctBursty(t *testing.T) {
	link := lossyLink(2202, 0)
	link.Burst = netsim.BurstLoss(0.02, 3)
	r := publishFromLiveEncoder(t, "lossy-live-2b", link, session.LossFreeze, false)
	checkLossy(t, "live-nack-2%-bursty", r, lossyLimits{MinFrames: 240, MaxKeyframeIv: 2 * time.Second, NoMarkers: true})
}

// TestInteropLossyLiveNACK5pct: 5 % random loss, NACK: at least 200 of
// 250, no decode error.
func TestInteropLossyLiveNACK5pct(t *testing.T) {
	r := publishFromLiveEncoder(t, "lossy-live-5", lossyLink(2105, 0.05), session.LossFreeze, false)
	checkLossy(t, "live-nack-5%", r, lossyLimits{MinFrames: 200, MaxKeyframeIv: 2 * time.Second, NoMarkers: true})
}

// TestInteropLossyConceal2pct: the conceal policy at 2 % random loss with
// a phone that does not retransmit (so every loss is concealed until the
// requested keyframe): at least 245 of 250 frames published, and ffmpeg
// outputs a picture for every one of them (complaining about the damage
// is expected).
func TestInteropLossyConceal2pct(t *testing.T) {
	r := publishFromLiveEncoder(t, "lossy-conceal-2", lossyLink(2302, 0.02), session.LossConceal, true)
	checkLossy(t, "live-conceal-2%", r, lossyLimits{MinFrames: 245, MaxKeyframeIv: 2 * time.Second, DecodeErrorsOK: true, NoMarkers: true})
}
