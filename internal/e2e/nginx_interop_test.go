//go:build interop

package e2e

import (
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// eventLog keeps a call's statuses and its RTMP leg's statuses in the
// order the Manager delivered them.
type eventLog struct {
	mu    sync.Mutex
	calls []callmgr.Status
	rtmp  []callmgr.SinkStatus
}

func (l *eventLog) add(ev callmgr.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case ev.Type == callmgr.EventCallStatus:
		if n := len(l.calls); n == 0 || l.calls[n-1] != ev.Status {
			l.calls = append(l.calls, ev.Status)
		}
	case ev.Type == callmgr.EventSinkStatus && ev.Sink.Primary && ev.Sink.Kind == callmgr.SinkKindRTMP && !ev.Removed:
		if n := len(l.rtmp); n == 0 || l.rtmp[n-1] != ev.Sink.Status {
			l.rtmp = append(l.rtmp, ev.Sink.Status)
		}
	}
}

func (l *eventLog) statuses() ([]callmgr.Status, []callmgr.SinkStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]callmgr.Status(nil), l.calls...), append([]callmgr.SinkStatus(nil), l.rtmp...)
}

// assertAnsweredCall checks the statuses of a call sipp answered with 180
// then 200 and that ended with our BYE. RINGING may be missing: sipgo hands
// each response to its own goroutine, so a 200 sent right behind the 180
// can overtake it (as UDP may reorder them on a real network), and the 180
// then arrives after the call was established and is rightly ignored.
func assertAnsweredCall(t *testing.T, got []callmgr.Status) {
	t.Helper()
	want := []callmgr.Status{callmgr.StatusTrying, callmgr.StatusRing, callmgr.StatusEstablished, callmgr.StatusFinish}
	if len(got) == 3 {
		want = []callmgr.Status{callmgr.StatusTrying, callmgr.StatusEstablished, callmgr.StatusFinish}
	}
	assert.Equal(t, want, got, "call statuses")
}

// published is what one sipp call published to nginx-rtmp, as ffmpeg
// played it back into a file.
type published struct {
	File     string
	Calls    []callmgr.Status
	RTMP     []callmgr.SinkStatus
	Replayed int // what the sender sent (packets or frames)
}

// sender sends a phone's RTP to the media session's RTP addresses (video
// nil when the call has no video) until ctx ends, and returns how many
// packets or frames it sent.
type sender func(ctx context.Context, audio, video *net.UDPAddr) (int, error)

// publishSippCall places one call from a real Manager to sipp, which
// answers as a says, while send plays the phone's media to the media
// session (sipp does the SIP part only). The call's RTMP leg publishes to a
// real nginx-rtmp, from which ffmpeg copies record of the stream into a
// file; then the call is terminated and sipp must have run its scenario to
// the end (BYE received and answered). opts adjust the Manager's Config.
func publishSippCall(t *testing.T, a sippAnswer, hasVideo bool, stream string, record time.Duration, send sender, opts ...func(*callmgr.Config)) published {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	ngx := testenv.StartNginxRTMP(t)
	sp := startSipp(t, a)
	pl := testenv.RecordStream(t, ngx.RTMPURL()+"/"+stream, record)
	require.NoError(t, ngx.WaitStream(ctx, stream), "ffmpeg waits at nginx before the call starts: %s", pl.Log())

	var log eventLog
	cfg := callmgr.Config{
		ListenAddr: "127.0.0.1:0", PublicIP: loopback, MediaIP: loopback,
		RTPPortMin: 24100, RTPPortMax: 24199, OnEvent: log.add,
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := callmgr.New(cfg)
	require.NoError(t, err)
	defer m.Close(context.Background())

	call, err := m.StartCall(ctx, callmgr.CallParams{CallID: stream, Callee: sp.URI("callee"),
		RTMPURL: ngx.RTMPURL(), RTMPStream: stream, HasAudio: true, HasVideo: hasVideo})
	require.NoError(t, err)
	require.NoError(t, call.WaitEstablished(ctx), "sipp: %s", sp.Logs())
	port, err := sp.OfferedPort(ctx, "audio")
	require.NoError(t, err)
	audioDst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	var videoDst *net.UDPAddr
	if a.VideoPort != 0 {
		port, err := sp.OfferedPort(ctx, "video")
		require.NoError(t, err)
		videoDst = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	}

	rctx, stopReplay := context.WithCancel(ctx)
	var sent int
	var replayErr error
	replayed := make(chan struct{})
	go func() {
		defer close(replayed)
		sent, replayErr = send(rctx, audioDst, videoDst)
	}()
	defer func() { stopReplay(); <-replayed }()

	require.NoError(t, pl.Wait(record+60*time.Second), "ffmpeg played the stream from nginx")
	stopReplay()
	<-replayed
	require.NoError(t, replayErr)
	assert.Equal(t, callmgr.SinkActive, call.Info().RTMPStatus)

	require.NoError(t, call.Terminate(ctx))
	require.NoError(t, sp.Wait(30*time.Second), "sipp ran its scenario to the end")
	assert.Contains(t, sp.Messages(), "BYE sip:")
	require.NoError(t, m.Close(ctx))
	calls, rtmp := log.statuses()
	if dir := os.Getenv("E2E_KEEP_DIR"); dir != "" {
		// Keep the played stream for a closer look (debugging aid).
		if b, err := os.ReadFile(pl.File); err == nil {
			_ = os.WriteFile(filepath.Join(dir, stream+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".flv"), b, 0o644)
		}
	}
	return published{File: pl.File, Calls: calls, RTMP: rtmp, Replayed: sent}
}

// publishAudioOnly publishes an audio-only call (HasVideo false, sipp
// rejecting video) whose audio the replayer sends in codec.
func publishAudioOnly(t *testing.T, codec media.Codec, stream string, record time.Duration) published {
	t.Helper()
	rp := newReplayer(t, testmedia.ReplayerConfig{Audio: codec})
	return publishSippCall(t, sippAnswer{AudioCodec: codec, AudioPort: rp.AudioPort()}, false, stream, record,
		func(ctx context.Context, audio, _ *net.UDPAddr) (int, error) {
			n, _, err := rp.Run(ctx, audio, nil)
			return n, err
		})
}

// checkGeneratedVideo checks the H.264 track the RTMP sink generated for an
// audio-only call: ffprobe decodes it, it starts on a keyframe and its
// keyframes are at most 2 s apart.
func checkGeneratedVideo(t *testing.T, file string, streams map[string]testenv.ProbedStream) {
	t.Helper()
	v, ok := streams["video"]
	require.True(t, ok, "a video track for the audio-only call")
	assert.Equal(t, "h264", v.CodecName)
	frames := testenv.VideoFrames(t, file)
	require.NotEmpty(t, frames, "ffprobe decodes video frames")
	assert.True(t, frames[0].Keyframe, "video starts on a keyframe")
	var keys []float64
	for _, f := range frames {
		if f.Keyframe {
			keys = append(keys, f.PTS)
		}
	}
	maxGap := 0.0
	for i := 1; i < len(keys); i++ {
		maxGap = math.Max(maxGap, keys[i]-keys[i-1])
	}
	// Up to the end of the file, too: no stretch of more than 2 s without
	// a keyframe.
	maxGap = math.Max(maxGap, frames[len(frames)-1].PTS-keys[len(keys)-1])
	t.Logf("generated video: %dx%d, %d frames decoded over %.2f s, %d keyframes, longest keyframe interval %.3f s",
		v.Width, v.Height, len(frames), frames[len(frames)-1].PTS-frames[0].PTS, len(keys), maxGap)
	assert.GreaterOrEqual(t, len(keys), 3, "keyframes")
	assert.LessOrEqual(t, maxGap, 2.0+0.0015, "keyframes at most 2 s apart (FLV times are whole ms)")
}

// audioPacketGap returns the longest step between consecutive audio
// packets of file.
func audioPacketGap(t *testing.T, file string) (time.Duration, int) {
	t.Helper()
	ts := testenv.PacketTimes(t, file, "a:0")
	var gap float64
	for i := 1; i < len(ts); i++ {
		gap = math.Max(gap, ts[i]-ts[i-1])
	}
	return time.Duration(gap * float64(time.Second)), len(ts)
}

// TestInteropSippPCMAToNginxAAC is issue 7's interop proof for G.711: sipp
// answers an audio-only call with PCMA, the peer's 1 kHz A-law tone goes
// through the Manager's media session, the RTMP sink's AAC transcoding and
// a real nginx-rtmp; ffmpeg plays the stream back. ffprobe must report
// AAC-LC at 48000 Hz, the decoded audio must be the 1 kHz tone with no
// silence longer than 50 ms after it starts, and the call, having no video,
// must carry a generated H.264 track whose keyframes are at most 2 s apart.
func TestInteropSippPCMAToNginxAAC(t *testing.T) {
	p := publishAudioOnly(t, media.CodecPCMA, "sipp-pcma", 8*time.Second)
	assertAnsweredCall(t, p.Calls)
	assert.Equal(t, []callmgr.SinkStatus{callmgr.SinkWait, callmgr.SinkActive}, p.RTMP)

	streams := testenv.ProbeStreams(t, p.File)
	a, ok := streams["audio"]
	require.True(t, ok, "an audio track")
	assert.Equal(t, "aac", a.CodecName)
	assert.Equal(t, "LC", a.Profile)
	assert.Equal(t, "48000", a.SampleRate)
	assert.Empty(t, testenv.DecodeErrors(t, p.File), "ffmpeg decodes the published stream without errors")

	gap, packets := audioPacketGap(t, p.File)
	pcm := testenv.DecodePCM(t, p.File, 48000)
	tone := analyseTone(pcm, 48000, 1000, 100*time.Millisecond)
	t.Logf("replayer sent %d PCMA packets; published AAC: %d packets, longest step %v; decoded: %v", p.Replayed, packets, gap, tone)
	require.Greater(t, tone.Samples, 5*48000, "at least 5 s of audio")
	assert.InDelta(t, 1000, tone.FrequencyHz, 2, "the tone comes out at 1 kHz")
	assert.LessOrEqual(t, tone.Onset, time.Second, "the tone starts within a second")
	assert.LessOrEqual(t, tone.LongestSilence, 50*time.Millisecond, "no gap over 50 ms")
	assert.Greater(t, tone.MinShare, 0.5, "every 20 ms carries the tone")
	assert.LessOrEqual(t, gap, 50*time.Millisecond, "AAC packets are continuous")
	// The same, measured by ffmpeg: silencedetect (-40 dB) finds no 50 ms
	// of silence except, perhaps, before the tone's first packet arrived.
	audioStart := testenv.PacketTimes(t, p.File, "a:0")[0]
	silences := testenv.Silences(t, p.File, 50*time.Millisecond, 0)
	t.Logf("ffmpeg silencedetect (-40 dB, >= 50 ms): %v (audio starts at %.3f s)", silences, audioStart)
	for _, s := range silences {
		assert.LessOrEqual(t, s.Start, audioStart+0.010, "silence from %.3f s to %.3f s", s.Start, s.End)
	}

	checkGeneratedVideo(t, p.File, streams)
}

// TestInteropSippOpusToNginxAAC: sipp answers with Opus; the replayer sends
// Opus (the silent frame: the tests have no Opus encoder). The published
// audio must still be AAC-LC at 48000 Hz, continuous, and silent.
func TestInteropSippOpusToNginxAAC(t *testing.T) {
	p := publishAudioOnly(t, media.CodecOpus, "sipp-opus", 6*time.Second)
	assert.Equal(t, []callmgr.SinkStatus{callmgr.SinkWait, callmgr.SinkActive}, p.RTMP)

	streams := testenv.ProbeStreams(t, p.File)
	a, ok := streams["audio"]
	require.True(t, ok, "an audio track")
	assert.Equal(t, "aac", a.CodecName)
	assert.Equal(t, "LC", a.Profile)
	assert.Equal(t, "48000", a.SampleRate)
	assert.Empty(t, testenv.DecodeErrors(t, p.File), "ffmpeg decodes the published stream without errors")

	gap, packets := audioPacketGap(t, p.File)
	pcm := testenv.DecodePCM(t, p.File, 48000)
	var peak int
	for _, x := range pcm {
		peak = max(peak, int(math.Abs(float64(x))))
	}
	t.Logf("replayer sent %d Opus packets; published AAC: %d packets, longest step %v; %d samples decoded, peak %d",
		p.Replayed, packets, gap, len(pcm), peak)
	require.Greater(t, len(pcm), 4*48000, "at least 4 s of audio")
	assert.LessOrEqual(t, gap, 50*time.Millisecond, "AAC packets are continuous")
	assert.Less(t, peak, 300, "Opus silence stays silent")

	checkGeneratedVideo(t, p.File, streams)
}

// TestInteropToneAnalysis checks the analyser the tests above rely on, on
// signals whose answer is known: a clean 1 kHz tone, and the same tone with
// a 60 ms hole.
func TestInteropToneAnalysis(t *testing.T) {
	const rate = 48000
	pcm := append(make([]int16, rate/10), testmedia.Tone(1000, rate, 0, 3*rate, 0.5)...)
	r := analyseTone(pcm, rate, 1000, 0)
	assert.InDelta(t, 1000, r.FrequencyHz, 0.1)
	assert.Equal(t, 100*time.Millisecond, r.Onset)
	assert.Zero(t, r.LongestSilence)
	assert.Greater(t, r.MinShare, 0.99)

	hole := rate + rate/3
	for i := hole; i < hole+60*rate/1000; i++ {
		pcm[i] = 0
	}
	r = analyseTone(pcm, rate, 1000, 0)
	assert.InDelta(t, 60*time.Millisecond, r.LongestSilence, float64(5*time.Millisecond), "%v", r)
	assert.Equal(t, 1, r.Silences)
	assert.Equal(t, 1100, int(math.Round(estimateFrequency(testmedia.Tone(1100, rate, 0, rate, 0.3), rate))))
}
