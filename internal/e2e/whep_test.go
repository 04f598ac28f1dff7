package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
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

	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Script: siptest.Script{
		Audio: true, Video: true, AudioCodecs: []media.Codec{media.CodecPCMA}, ToneHz: 1000, SendSR: true,
	}})
	require.NoError(t, err)
	defer peer.Close()

	m, err := callmgr.New(callmgr.Config{
		ListenAddr: "127.0.0.1:0", PublicIP: loopback, MediaIP: loopback,
		RTPPortMin: 24000, RTPPortMax: 24099,
	})
	require.NoError(t, err)
	managerClosed := false
	defer func() {
		if !managerClosed {
			_ = m.Close(context.Background())
		}
	}()

	const callID = "whep-e2e"
	call, err := m.StartCall(ctx, callmgr.CallParams{CallID: callID, Callee: peer.URI(), HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	pcall, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, call.WaitEstablished(ctx))

	ws, err := whep.New(whep.Config{ICEIPs: []netip.Addr{loopback}})
	require.NoError(t, err)
	si, err := m.AddSink(ctx, callID, callmgr.SinkSpec{Sink: ws})
	require.NoError(t, err)
	assert.Equal(t, callmgr.SinkKindCustom, si.Kind)

	mux := http.NewServeMux()
	mux.Handle("/whep/"+callID, ws)
	mux.Handle("/whep/"+callID+"/", ws)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	v, err := play(ctx, srv.Client(), srv.URL+"/whep/"+callID)
	require.NoError(t, err)
	defer v.close()

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
		if clipKey {
			keys++
		}
		distinct[n] = true
		prev = n
	}
	t.Logf("viewer: %d access units (%d distinct clip pictures, %d keyframes, %d in sequence), %d dropped by the depacketizer",
		len(got.aus), len(distinct), keys, inOrder, got.auErrors)
	assert.GreaterOrEqual(t, keys, 2, "keyframes")
	assert.GreaterOrEqual(t, len(distinct), 50, "distinct pictures")

	// Audio: the peer's 1 kHz tone, in every 100 ms block after the first.
	const block = 800
	pcm := got.pcm[block:]
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

	// The viewer leaves the standard way; then the call ends.
	code, err := v.stop(ctx, srv.Client(), srv.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "DELETE on the WHEP resource")
	v.close()

	require.NoError(t, m.Close(ctx))
	managerClosed = true
	require.NoError(t, pcall.WaitBye(ctx))
	select {
	case <-call.Done():
	case <-ctx.Done():
		t.Fatal("call did not end")
	}
}
