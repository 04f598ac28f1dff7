package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/sink/sinktest"
	"github.com/sipstream/sipstream/sink/whep"
	"github.com/sipstream/sipstream/sip/siptest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// clipIndex maps every access unit of the test clip, in AVC form (what
// rtph264's Decoder returns by default), to its position in the clip.
func clipIndex() map[string]int {
	aus := testmedia.ClipAccessUnits()
	m := make(map[string]int, len(aus))
	for i, au := range aus {
		m[string(rtph264.JoinAVC(au.NALUs))] = i
	}
	return m
}

// whepCall is a call from a real callmgr.Manager to a siptest peer with a
// sink/whep Sink attached (Manager.AddSink) and served at URL by an
// httptest server.
type whepCall struct {
	m      *callmgr.Manager
	call   *callmgr.Call
	peer   *siptest.PeerCall
	srv    *httptest.Server
	URL    string
	closed bool
}

// whepCallConfig describes a whepCall.
type whepCallConfig struct {
	Script    siptest.Script // what the peer does
	HasVideo  bool           // CallParams.HasVideo (HasAudio is always true)
	WHEP      whep.Config    // the sink's config (ICE is set to loopback only)
	SinkQueue int            // callmgr.Config.SinkQueue (zero: its default)
	// Early attaches the WHEP sink right after StartCall, while the call
	// is still ringing, and returns without waiting for the answer.
	Early bool
}

// startWHEPCall places the call, waits for the answer and attaches the WHEP
// sink. Everything is closed when the test ends unless leave was called.
func startWHEPCall(ctx context.Context, t *testing.T, id string, c whepCallConfig) *whepCall {
	t.Helper()
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Script: c.Script})
	require.NoError(t, err)
	t.Cleanup(func() { peer.Close() })

	m, err := callmgr.New(callmgr.Config{
		ListenAddr: "127.0.0.1:0", PublicIP: loopback, MediaIP: loopback,
		RTPPortMin: 24000, RTPPortMax: 24099, SinkQueue: c.SinkQueue,
	})
	require.NoError(t, err)
	wc := &whepCall{m: m}
	t.Cleanup(func() {
		if !wc.closed {
			_ = m.Close(context.Background())
		}
	})

	wc.call, err = m.StartCall(ctx, callmgr.CallParams{CallID: id, Callee: peer.URI(), HasAudio: true, HasVideo: c.HasVideo})
	require.NoError(t, err)
	wc.peer, err = peer.WaitCall(ctx)
	require.NoError(t, err)
	if !c.Early {
		require.NoError(t, wc.call.WaitEstablished(ctx))
	}

	cfg := c.WHEP
	cfg.ICEIPs = []netip.Addr{loopback}
	ws, err := whep.New(cfg)
	require.NoError(t, err)
	si, err := m.AddSink(ctx, id, callmgr.SinkSpec{Sink: ws})
	require.NoError(t, err)
	assert.Equal(t, callmgr.SinkKindCustom, si.Kind)

	mux := http.NewServeMux()
	mux.Handle("/whep/"+id, ws)
	mux.Handle("/whep/"+id+"/", ws)
	wc.srv = httptest.NewServer(mux)
	t.Cleanup(wc.srv.Close)
	wc.URL = wc.srv.URL + "/whep/" + id
	return wc
}

// leave has the viewer leave the standard way (DELETE on its resource),
// closes it, then ends the call with Manager.Close: the peer must get its
// BYE and the call must end.
func (wc *whepCall) leave(ctx context.Context, t *testing.T, v *viewer) {
	t.Helper()
	code, err := v.stop(ctx, wc.srv.Client(), wc.srv.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "DELETE on the WHEP resource")
	v.close()

	require.NoError(t, wc.m.Close(ctx))
	wc.closed = true
	require.NoError(t, wc.peer.WaitBye(ctx))
	select {
	case <-wc.call.Done():
	case <-ctx.Done():
		t.Fatal("call did not end")
	}
}

// checkTone checks that pcm (8 kHz, after its first 100 ms) is the 1 kHz
// tone: overall and in at least 90% of its 100 ms blocks.
func checkTone(t *testing.T, pcm []int16) {
	t.Helper()
	const block = 800
	require.Greater(t, len(pcm), 2*block)
	pcm = pcm[block:]
	weak := 0
	var minShare float64 = 1
	for off := 0; off+block <= len(pcm); off += block {
		share := testmedia.Goertzel(pcm[off:off+block], 8000, 1000)
		if share < minShare {
			minShare = share
		}
		if share < 0.8 {
			weak++
		}
	}
	t.Logf("audio: %d samples, 1 kHz share: min %.3f over %d blocks of 100 ms, %d below 0.8",
		len(pcm), minShare, len(pcm)/block, weak)
	assert.Greater(t, testmedia.Goertzel(pcm, 8000, 1000), 0.9, "1 kHz tone")
	assert.Less(t, testmedia.Goertzel(pcm, 8000, 1700), 0.01, "nothing at 1.7 kHz")
	assert.LessOrEqual(t, weak, len(pcm)/block/10, "blocks without the tone")
}

// TestWHEPViewerGetsTheCallsMedia is issue 8's Go proof through the whole
// pipeline: a siptest peer answers a call placed by a real callmgr.Manager
// and streams the H.264 test clip and a 1 kHz PCMA tone; a sink/whep Sink is
// attached to the live call with Manager.AddSink and served by an httptest
// server; a pion/webrtc viewer plays it. Every access unit the viewer
// depacketizes must be one of the clip's, byte for byte, the first one a
// keyframe, and each one either the clip's next picture or a keyframe (so a
// decoder never sees a picture whose reference it missed); the decoded
// audio must be the 1 kHz tone.
func TestWHEPViewerGetsTheCallsMedia(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	wc := startWHEPCall(ctx, t, "whep-e2e", avCall())
	v, err := play(ctx, wc.srv.Client(), wc.URL)
	require.NoError(t, err)
	defer v.close()
	checkClipAndTone(ctx, t, v)
	wc.leave(ctx, t, v)
}

// avCall is a call whose peer sends the H.264 clip and a 1 kHz PCMA tone.
func avCall() whepCallConfig {
	return whepCallConfig{
		Script: siptest.Script{
			Audio: true, Video: true, AudioCodecs: []media.Codec{media.CodecPCMA}, ToneHz: 1000, SendSR: true,
		},
		HasVideo: true,
		WHEP: whep.Config{
			// The sink learns the codecs from the first frames. Video
			// frames start at the peer's next IDR (its GOP is 1 s), which
			// on a loaded machine can come more than the default 1 s Probe
			// after the first audio frame: the viewer would then be
			// answered audio-only.
			Probe: 15 * time.Second,
		},
	}
}

// checkClipAndTone waits for 3 s of video and audio at the viewer and
// checks them: the clip's pictures byte for byte in a decodable order, and
// the tone.
func checkClipAndTone(ctx context.Context, t *testing.T, v *viewer) {
	t.Helper()
	// Three seconds of video (75 pictures: at least two keyframes of the
	// clip, whose GOP is one second) and of audio.
	got, err := v.waitUntil(ctx, func(s snapshot) bool { return len(s.aus) >= 75 && len(s.pcm) >= 3*8000 })
	require.NoError(t, err, "viewer received %d access units (%d video packets, %d dropped), %d audio samples (%d packets)",
		len(got.aus), got.videoPkts, got.auErrors, len(got.pcm), got.audioPkts)

	assert.Equal(t, webrtc.MimeTypeH264, got.videoMime)
	assert.Equal(t, webrtc.MimeTypePCMA, got.audioMime)

	// Video: the clip's pictures, byte for byte, in a decodable order.
	index := clipIndex()
	require.True(t, got.keyframes[0], "the viewer starts on a keyframe")
	prev, inOrder, keys, distinct := -1, 0, 0, map[int]bool{}
	var runs []string // the clip pictures received, as runs "a-b"
	runStart := -1
	for i, au := range got.aus {
		n, ok := index[string(au)]
		require.True(t, ok, "access unit %d (%d bytes, keyframe %v) is not a picture of the clip", i, len(au), got.keyframes[i])
		clipKey := testmedia.ClipAccessUnits()[n].Keyframe
		assert.Equal(t, clipKey, got.keyframes[i], "access unit %d (clip picture %d) keyframe flag", i, n)
		switch {
		case prev >= 0 && n == (prev+1)%testmedia.ClipFrames:
			inOrder++
		case !clipKey:
			t.Errorf("access unit %d is clip picture %d after picture %d: its reference is missing", i, n, prev)
		}
		if prev < 0 || n != (prev+1)%testmedia.ClipFrames {
			if runStart >= 0 {
				runs = append(runs, fmt.Sprintf("%d-%d", runStart, prev))
			}
			runStart = n
		}
		if clipKey {
			keys++
		}
		distinct[n] = true
		prev = n
	}
	runs = append(runs, fmt.Sprintf("%d-%d", runStart, prev))
	t.Logf("viewer: %d access units (%d distinct clip pictures, %d keyframes, %d in sequence; clip pictures %s), %d dropped by the depacketizer",
		len(got.aus), len(distinct), keys, inOrder, strings.Join(runs, " "), got.auErrors)
	assert.GreaterOrEqual(t, keys, 2, "keyframes")
	assert.Greater(t, len(distinct), testmedia.ClipGOP, "distinct pictures: more than one GOP")

	checkTone(t, got.pcm)
}

// TestWHEPViewerUnaffectedByAStuckSink: another sink of the same call is
// stuck (its WriteFrame never returns) and its queue, kept small, is full;
// the viewer must still get the clip's pictures in a decodable order and
// the tone, as if the stuck sink were not there.
func TestWHEPViewerUnaffectedByAStuckSink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := avCall()
	cfg.SinkQueue = 16
	wc := startWHEPCall(ctx, t, "whep-stuck", cfg)

	stuck := sinktest.New()
	release := stuck.Hold()
	defer release()
	_, err := wc.m.AddSink(ctx, "whep-stuck", callmgr.SinkSpec{ID: "stuck", Sink: stuck})
	require.NoError(t, err)

	v, err := play(ctx, wc.srv.Client(), wc.URL)
	require.NoError(t, err)
	defer v.close()
	checkClipAndTone(ctx, t, v)
	t.Logf("stuck sink: %d frames written before it blocked; sinks %+v", stuck.Len(), wc.m.FindSinks(callmgr.SinkFilter{CallID: "whep-stuck"}))
	assert.LessOrEqual(t, stuck.Len(), 1, "the stuck sink took at most one frame")

	release()
	wc.leave(ctx, t, v)
}

// TestWHEPViewerJoinsBeforeTheAnswer is the flow of a player page opened
// as the call starts: the WHEP sink is attached while the peer still rings
// (3 s) and the viewer posts its offer at once. The offer waits for the
// call's media; once the call is answered the viewer gets the clip and the
// tone as usual.
func TestWHEPViewerJoinsBeforeTheAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := avCall()
	cfg.Script.Ring = 3 * time.Second
	cfg.Early = true
	cfg.WHEP.MediaWait = 30 * time.Second
	wc := startWHEPCall(ctx, t, "whep-early", cfg)
	assert.NotEqual(t, callmgr.StatusEstablished, wc.call.Info().Status, "the call is still ringing")

	type played struct {
		v   *viewer
		err error
	}
	res := make(chan played, 1)
	go func() {
		v, err := play(ctx, wc.srv.Client(), wc.URL)
		res <- played{v, err}
	}()
	require.NoError(t, wc.call.WaitEstablished(ctx))
	p := <-res
	require.NoError(t, p.err)
	defer p.v.close()
	checkClipAndTone(ctx, t, p.v)
	wc.leave(ctx, t, p.v)
}

// TestWHEPViewerAudioOnlyCall: the peer answers audio only (its video m=
// line rejected); the viewer, which offers video and audio as browsers do,
// gets the tone and no video at all.
func TestWHEPViewerAudioOnlyCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	wc := startWHEPCall(ctx, t, "whep-audio-only", whepCallConfig{Script: siptest.Script{
		Audio: true, NoVideo: true, AudioCodecs: []media.Codec{media.CodecPCMA}, ToneHz: 1000,
	}})

	v, err := play(ctx, wc.srv.Client(), wc.URL)
	require.NoError(t, err)
	defer v.close()

	got, err := v.waitUntil(ctx, func(s snapshot) bool { return len(s.pcm) >= 3*8000 })
	require.NoError(t, err, "viewer received %d audio samples (%d packets)", len(got.pcm), got.audioPkts)
	assert.Equal(t, webrtc.MimeTypePCMA, got.audioMime)
	assert.Empty(t, got.videoMime, "no video track")
	assert.Zero(t, got.videoPkts, "no video packets")
	checkTone(t, got.pcm)
	wc.leave(ctx, t, v)
}
