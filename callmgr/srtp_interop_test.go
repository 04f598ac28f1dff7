//go:build interop

package callmgr

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/sip/siptest"
)

// TestInteropSRTPToNginx: an SRTP call (SDES keys, AES_CM_128_HMAC_SHA1_80)
// to the siptest peer, published to a real nginx-rtmp; ffmpeg records the
// stream, and the peer's 1 kHz tone and H.264 clip are found in it. The peer
// decrypts the audio sipstream sends. No key reaches the logs or events.
func TestInteropSRTPToNginx(t *testing.T) {
	ngx := testenv.StartNginxRTMP(t)
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Audio: true, Video: true, SendSR: true,
		SRTP: true, AudioCodecs: []media.Codec{media.CodecPCMA}}})
	require.NoError(t, err)
	defer peer.Close()
	var logs testenv.SyncBuffer
	evs := newEventLog()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 21000, RTPPortMax: 21999, SRTP: SRTPRequired,
		RTMPAudioPassthrough: true, OnEvent: evs.add, SinkQueue: 4096,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	defer func() { _ = m.Close(context.Background()) }()
	ctx := ctxT(t)

	rec := testenv.RecordStream(t, ngx.RTMPURL()+"/srtp", 6*time.Second)
	c, err := m.StartCall(ctx, CallParams{CallID: "srtp-e2e", Callee: peer.URI(), RTMPURL: ngx.RTMPURL(), RTMPStream: "srtp",
		HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	offer, answer := string(pc.OfferSDP()), string(pc.AnswerSDP())
	assert.Contains(t, offer, "m=audio")
	assert.Contains(t, offer, "RTP/SAVP")
	assert.Contains(t, answer, "RTP/SAVP")
	assert.Contains(t, answer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
	for _, sp := range pc.Streams() {
		require.NotNil(t, sp.Crypto, "peer's %v stream", sp.Kind)
	}
	info := c.Info()
	assert.True(t, info.Secure)
	assert.Empty(t, info.SRTPFallback)

	// The peer decrypts what we send (it counts only packets that pass
	// SRTP authentication).
	require.NoError(t, pc.WaitRTP(ctx, media.KindAudio, 50))

	require.NoError(t, rec.Wait(60*time.Second))
	rep := testenv.AnalyseRecording(t, rec, 4*time.Second)
	t.Logf("SRTP published: %s", rep)
	assert.Greater(t, rep.Video.DecodedFrames, 50, "H.264 decrypted and decoded")
	assert.Empty(t, rep.DecodeErrors)
	pcm := testenv.DecodePCM(t, rec.File, 8000)
	require.Greater(t, len(pcm), 8000*3)
	tone, off := testmedia.Goertzel(pcm, 8000, 1000), testmedia.Goertzel(pcm, 8000, 1700)
	t.Logf("SRTP audio: 1 kHz %.2f, 1.7 kHz %.3f, %d samples", tone, off, len(pcm))
	assert.Greater(t, tone, 0.5, "the peer's tone, decrypted")
	assert.Less(t, off, 0.05)

	st := c.Stats()
	assert.Zero(t, st.Audio.SRTPErrors)
	assert.Zero(t, st.Video.SRTPErrors)
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)

	// No key in the logs or events: ours (in the offer) and the peer's.
	var text bytes.Buffer
	text.WriteString(logs.String())
	for _, ev := range evs.events(c.ID()) {
		text.WriteString(ev.Info.String())
		text.WriteString(strings.Join([]string{string(ev.Status), ev.SIPReason, ev.Sink.Reason}, " "))
	}
	for _, k := range append(keysIn(offer), keysIn(answer)...) {
		assert.NotContains(t, text.String(), k)
	}
	assert.NotEmpty(t, keysIn(offer))
	assert.NotEmpty(t, keysIn(answer))
}

// TestInteropSRTPRefusedBySIPPeer: the siptest peer without SRTP answers an
// RTP/SAVP offer 488. "required" fails the call with that status;
// "optional" calls again with plain RTP and the tone arrives.
func TestInteropSRTPRefusedBySIPPeer(t *testing.T) {
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Audio: true, AudioCodecs: []media.Codec{media.CodecPCMA}}})
	require.NoError(t, err)
	defer peer.Close()
	var logs testenv.SyncBuffer
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 22000, RTPPortMax: 22999,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	defer func() { _ = m.Close(context.Background()) }()
	ctx := ctxT(t)

	c, err := m.StartCall(ctx, CallParams{CallID: "srtp-req", Callee: peer.URI(), HasAudio: true, SRTP: SRTPRequired})
	require.NoError(t, err)
	waitDone(t, c)
	info := c.Info()
	assert.Equal(t, StatusFailed, info.Status)
	assert.Equal(t, 488, info.SIPStatus)
	assert.Equal(t, "Not Acceptable Here", info.SIPReason)
	t.Logf("required against a plain peer: %s", info)

	rs := testSink{}
	c, err = m.StartCall(ctx, CallParams{CallID: "srtp-opt", Callee: peer.URI(), HasAudio: true, SRTP: SRTPOptional})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	_, err = m.AddSink(ctx, c.ID(), SinkSpec{Sink: &rs})
	require.NoError(t, err)
	info = c.Info()
	assert.False(t, info.Secure)
	assert.Equal(t, "488 Not Acceptable Here", info.SRTPFallback)
	assert.Contains(t, logs.String(), "SRTP refused by the peer")
	require.True(t, waitFor(func() bool { return len(rs.pcm()) >= 8000 }), "plain audio arrives")
	assert.Greater(t, testmedia.Goertzel(rs.pcm(), 8000, 1000), 0.5)
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
}

// testSink decodes the A-law audio it receives.
type testSink struct {
	mu  sync.Mutex
	buf []int16
}

func (s *testSink) WriteFrame(f *media.Frame) error {
	if f.Codec != media.CodecPCMA {
		return nil
	}
	s.mu.Lock()
	s.buf = g711.DecodeALaw(s.buf, f.Payload)
	s.mu.Unlock()
	return nil
}

func (s *testSink) Close(context.Context) error { return nil }

func (s *testSink) pcm() []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.buf...)
}
