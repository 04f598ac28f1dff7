//go:build interop

package callmgr

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/siptest"
)

// TestInteropHoldStillPicture holds a call to a siptest peer for 3 s (the
// peer answers recvonly and stops its RTP, as phones do), publishing to a
// real nginx-rtmp, and has ffmpeg record the stream and ffprobe analyse
// it: video and audio go on through the hold (the still picture every
// 500 ms, silence), no timestamp goes back, and the whole recording
// decodes without an error.
func TestInteropHoldStillPicture(t *testing.T) {
	ngx := testenv.StartNginx(t, testenv.NginxConfig{})
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Audio: true, Video: true}})
	require.NoError(t, err)
	defer peer.Close()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 26300, RTPPortMax: 26399})
	require.NoError(t, err)
	defer m.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	rec := testenv.RecordStream(t, ngx.RTMPURL()+"/held", 7*time.Second)
	c, err := m.StartCall(ctx, CallParams{CallID: "held", Callee: peer.URI(), RTMPURL: ngx.RTMPURL(), RTMPStream: "held", HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.True(t, waitFor(func() bool { return c.Info().RTMPStatus == SinkActive }))
	time.Sleep(2 * time.Second)

	before := pc.RTPPackets(media.KindVideo)
	require.NoError(t, m.Hold(ctx, "held"))
	assert.Equal(t, StatusHold, c.Info().Status)
	reinv := pc.Reinvites()
	require.Len(t, reinv, 1)
	assert.Contains(t, string(reinv[0].Body), "a=sendonly", "hold offers sendonly")
	time.Sleep(3 * time.Second)
	assert.Less(t, pc.RTPPackets(media.KindVideo)-before, 30, "the peer stopped sending video while held")
	require.NoError(t, m.Unhold(ctx, "held"))
	reinv = pc.Reinvites()
	require.Len(t, reinv, 2)
	assert.Contains(t, string(reinv[1].Body), "a=sendrecv", "unhold offers sendrecv")
	assert.Equal(t, StatusEstablished, c.Info().Status)
	require.NoError(t, rec.Wait(60*time.Second)) // 7 s: 2 s before the hold, 3 s held, 2 s after
	require.NoError(t, c.Terminate(ctx))

	rep := testenv.AnalyseRecording(t, rec, 7*time.Second)
	t.Logf("hold: %s", rep)
	assert.Empty(t, rep.DecodeErrors)
	assert.Zero(t, rep.DTSErrors())
	assert.GreaterOrEqual(t, rep.Window, 6*time.Second, "the stream went on through the hold")
	assert.Less(t, rep.Video.LongestGap, 1200*time.Millisecond, "still pictures through the hold, no freeze")
	assert.Less(t, rep.Video.LongestKeyframeInterval, 2100*time.Millisecond, "keyframes within what platforms accept")
	assert.Less(t, rep.Audio.LongestGap, 300*time.Millisecond, "silence through the hold, no hole")
}

// TestInteropEarlyMediaPublished: a siptest peer rings for 6 s with early
// media (183 with SDP, then audio and video); the stream reaches nginx
// with status RING_MEDIA, ffmpeg reads it before the answer, and it goes
// on without a break into the answered call.
func TestInteropEarlyMediaPublished(t *testing.T) {
	ngx := testenv.StartNginx(t, testenv.NginxConfig{})
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Ring: 6 * time.Second, EarlyMedia: true, Audio: true, Video: true}})
	require.NoError(t, err)
	defer peer.Close()
	var (
		mu         sync.Mutex
		activeAt   time.Time
		answeredAt time.Time
	)
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 26400, RTPPortMax: 26499, OnEvent: func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Type == EventSinkStatus && ev.Sink.Primary && ev.Sink.Status == SinkActive && activeAt.IsZero() {
			activeAt = time.Now()
		}
		if ev.Type == EventCallStatus && ev.Status == StatusEstablished && answeredAt.IsZero() {
			answeredAt = time.Now()
		}
	}})
	require.NoError(t, err)
	defer m.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	whole := testenv.RecordStream(t, ngx.RTMPURL()+"/early", 8*time.Second)
	started := time.Now()
	c, err := m.StartCall(ctx, CallParams{CallID: "early", Callee: peer.URI(), RTMPURL: ngx.RTMPURL(), RTMPStream: "early", HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	require.True(t, waitFor(func() bool { return c.Info().RTMPStatus == SinkActive }), "published before the answer")
	assert.Equal(t, StatusRingMedia, c.Info().Status)
	// A second reader, joining while the phone still rings: ffmpeg decodes
	// a second of the early media.
	ring := testenv.RecordStream(t, ngx.RTMPURL()+"/early", time.Second)
	require.NoError(t, ring.Wait(30*time.Second))
	assert.Equal(t, StatusRingMedia, c.Info().Status, "still ringing when ffmpeg had read a second")
	rrep := testenv.AnalyseRecording(t, ring, time.Second)
	t.Logf("during the ring: %s", rrep)
	assert.Positive(t, rrep.Video.DecodedFrames, "video decoded before the answer")
	assert.Positive(t, rrep.Audio.Frames, "audio before the answer")
	assert.Empty(t, rrep.DecodeErrors)

	require.NoError(t, c.WaitEstablished(ctx))
	require.NoError(t, whole.Wait(60*time.Second))
	require.NoError(t, c.Terminate(ctx))
	mu.Lock()
	early := answeredAt.Sub(activeAt)
	mu.Unlock()
	t.Logf("published %v after the INVITE, %v before the answer", activeAt.Sub(started).Round(time.Millisecond), early.Round(time.Millisecond))
	assert.Greater(t, early, 1500*time.Millisecond, "the RTMP leg was up well before the 200")
	rep := testenv.AnalyseRecording(t, whole, 8*time.Second)
	t.Logf("ring and answer: %s", rep)
	assert.Empty(t, rep.DecodeErrors)
	assert.Zero(t, rep.DTSErrors())
	assert.Less(t, rep.Video.LongestGap, 500*time.Millisecond, "no break at the answer")
	assert.Less(t, rep.Audio.LongestGap, 300*time.Millisecond, "no break at the answer")
}
