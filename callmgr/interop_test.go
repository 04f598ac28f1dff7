//go:build interop

package callmgr

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// --- sipp as the callee ---

// sippCalleeSDP answers with media from AUDIOPORT and VIDEOPORT (our own
// RTP replayer sends it: sipp 3.6 cannot play an audio and a video pcap in
// one call).
const sippCalleeSDP = `v=0
o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio AUDIOPORT RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
m=video VIDEOPORT RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=42e01e
a=rtcp-fb:96 nack pli
a=sendrecv
`

// sippCallee starts sipp for one call, answering with media from the given
// ports.
func sippCallee(t *testing.T, audioPort, videoPort int) *testenv.Sipp {
	t.Helper()
	return testenv.StartSipp(t, testenv.SippConfig{Scenario: testenv.SippCallee(sippCalleeSDP),
		Vars: map[string]string{"AUDIOPORT": strconv.Itoa(audioPort), "VIDEOPORT": strconv.Itoa(videoPort)}})
}

// TestInteropSippNginx: sipp answers, our replayer sends its media, the
// Manager publishes to a real nginx-rtmp. nginx is SIGKILLed and restarted
// mid-call: the stream must resume within 5 s (LOST, then ACTIVE). nginx's
// recording of the whole call and our own recording (MP4, the default
// format) must decode without errors with H.264 and audio.
func TestInteropSippNginx(t *testing.T) {
	ngx := testenv.StartNginx(t, testenv.NginxConfig{Record: true, RecordAppend: true})
	ffmpegOK := testenv.LookPath(t, "ffmpeg") != ""
	require.True(t, ffmpegOK)

	// The H.264 clip and a 1 kHz A-law tone at real-time pace.
	rp, err := testmedia.NewReplayer(testmedia.ReplayerConfig{Audio: media.CodecPCMA, Amplitude: 0.3, Video: true})
	require.NoError(t, err)
	defer rp.Close()
	sp := sippCallee(t, rp.AudioPort(), rp.VideoPort())

	var (
		mu     sync.Mutex
		events []Event
		times  = map[SinkStatus]time.Time{}
	)
	recDir := t.TempDir()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 21000, RTPPortMax: 21999, RecordDir: recDir,
		OnEvent: func(ev Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
			if ev.Type == EventSinkStatus && ev.Sink.Primary && ev.Sink.Kind == SinkKindRTMP {
				times[ev.Sink.Status] = time.Now()
			}
		}})
	require.NoError(t, err)
	defer m.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	c, err := m.StartCall(ctx, CallParams{CallID: "interop-1", Callee: sp.URI("callee"),
		RTMPURL: ngx.RTMPURL(), RTMPStream: "call1", HasAudio: true, HasVideo: true, Record: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))

	rctx, stopReplay := context.WithCancel(ctx)
	replayDone := make(chan struct{})
	go func() {
		defer close(replayDone)
		_, _, err := rp.Run(rctx,
			&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.offerCfg.AudioPort},
			&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.offerCfg.VideoPort})
		if err != nil {
			t.Error(err)
		}
	}()
	defer func() { stopReplay(); <-replayDone }()

	rtmpIs := func(st SinkStatus) func() bool {
		return func() bool { return c.Info().RTMPStatus == st }
	}
	require.True(t, waitFor(rtmpIs(SinkActive)), "RTMP leg active; status %s", c.Info().RTMPStatus)
	require.NoError(t, m.SendDTMF(ctx, "interop-1", "5", DTMFInfoRelay))
	time.Sleep(4 * time.Second)

	// Crash nginx, bring it back a second later.
	ngx.Stop()
	require.True(t, waitFor(rtmpIs(SinkLost)), "LOST after the crash; status %s", c.Info().RTMPStatus)
	time.Sleep(time.Second)
	restarted := time.Now()
	ngx.Start()
	require.True(t, waitFor(rtmpIs(SinkActive)), "ACTIVE after the restart")
	mu.Lock()
	resumed := times[SinkActive].Sub(restarted)
	mu.Unlock()
	t.Logf("stream resumed %v after nginx came back", resumed)
	assert.Less(t, resumed, 5*time.Second, "resumes within 5 s")
	time.Sleep(3 * time.Second)

	info := c.Info()
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c) // every event delivered
	stopReplay()
	require.NoError(t, sp.Wait(30*time.Second), "sipp exit (1 call, successful)")
	msgs := sp.Messages()
	assert.Contains(t, msgs, "INFO sip:")
	assert.Contains(t, msgs, "application/dtmf-relay")
	assert.Contains(t, msgs, "Signal=5")
	assert.Contains(t, msgs, "BYE sip:")

	mu.Lock()
	var rtmpSeq []SinkStatus
	var callSeq []Status
	for _, ev := range events {
		switch {
		case ev.Type == EventSinkStatus && ev.Sink.Primary && ev.Sink.Kind == SinkKindRTMP && !ev.Removed:
			if len(rtmpSeq) == 0 || rtmpSeq[len(rtmpSeq)-1] != ev.Sink.Status {
				rtmpSeq = append(rtmpSeq, ev.Sink.Status)
			}
		case ev.Type == EventCallStatus:
			if len(callSeq) == 0 || callSeq[len(callSeq)-1] != ev.Status {
				callSeq = append(callSeq, ev.Status)
			}
		}
	}
	mu.Unlock()
	assert.Equal(t, []SinkStatus{SinkWait, SinkActive, SinkLost, SinkActive}, rtmpSeq)
	assert.Equal(t, []Status{StatusTrying, StatusRing, StatusEstablished, StatusFinish}, callSeq)

	// nginx's recording of the call (both publications, appended).
	flv := ngx.RecordFile("call1")
	streams := testenv.ProbeStreams(t, flv)
	assert.Equal(t, "h264", streams["video"].CodecName)
	assert.Equal(t, "aac", streams["audio"].CodecName)
	assert.Empty(t, testenv.DecodeErrors(t, flv), "nginx recording decodes cleanly")
	if dbg := os.Getenv("CALLMGR_KEEP"); dbg != "" {
		b, _ := os.ReadFile(flv)
		_ = os.WriteFile(dbg, b, 0o644)
	}
	pcm := testenv.DecodePCM(t, flv, 8000)
	require.Greater(t, len(pcm), 8000*3, "at least 3 s of audio")
	tone, off := testmedia.Goertzel(pcm, 8000, 1000), testmedia.Goertzel(pcm, 8000, 1700)
	assert.Greater(t, tone, 20*off, "the 1 kHz tone survives SIP → AAC → nginx (%.0f vs %.0f)", tone, off)

	// Both publications are in it: audio packets before and after a gap (the
	// crash), the second part lasting more than a second and a half.
	apts := testenv.PacketTimes(t, flv, "a")
	require.NotEmpty(t, apts)
	gapAt := -1
	for i := 1; i < len(apts); i++ {
		if apts[i]-apts[i-1] > 1 {
			gapAt = i
		}
	}
	require.Greater(t, gapAt, 0, "a gap where nginx was down")
	assert.Greater(t, apts[len(apts)-1]-apts[gapAt], 1.5, "audio after the restart")
	vpts := testenv.PacketTimes(t, flv, "v")
	require.NotEmpty(t, vpts)
	assert.Greater(t, vpts[len(vpts)-1], apts[gapAt], "video after the restart")

	// Our own recording: MP4 by default, A-law transcoded to AAC.
	assert.True(t, strings.HasSuffix(info.RecordPath, ".mp4"), info.RecordPath)
	streams = testenv.ProbeStreams(t, info.RecordPath)
	assert.Equal(t, "h264", streams["video"].CodecName)
	assert.Equal(t, "aac", streams["audio"].CodecName)
	assert.Empty(t, testenv.DecodeErrors(t, info.RecordPath), "MP4 recording decodes cleanly")
	d := testenv.Duration(t, info.RecordPath)
	assert.Greater(t, d, 7.0, "recording covers the call (%.1f s)", d)
}
