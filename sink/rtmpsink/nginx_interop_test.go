//go:build interop

package rtmpsink_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

// startNginx starts nginx-rtmp recording every stream, appending so that
// a restart (Stop, Start) keeps the same file.
func startNginx(t *testing.T) *testenv.Nginx {
	t.Helper()
	return testenv.StartNginx(t, testenv.NginxConfig{Record: true, RecordAppend: true})
}

// toneShare decodes the file's audio to 8 kHz mono and returns the share of
// its energy at 1 kHz over the middle of the stream.
func toneShare(t *testing.T, file string) float64 {
	t.Helper()
	pcm := testenv.DecodePCM(t, file, 8000)
	require.Greater(t, len(pcm), 8000, "at least a second of audio")
	mid := pcm[len(pcm)/4 : len(pcm)/4+4000]
	return testmedia.Goertzel(mid, 8000, 1000)
}

// publish runs a sink behind a fanout until n video frames were sent.
func publish(t *testing.T, cfg rtmpsink.Config, src *source, n uint64) (*rtmpsink.Sink, *sink.Fanout, func()) {
	t.Helper()
	s, err := rtmpsink.New(cfg)
	require.NoError(t, err)
	f := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, f.Add("rtmp", s, 1<<16))
	stop := make(chan struct{})
	done := pump(f, src, 2*time.Millisecond, stop)
	var once sync.Once
	end := func() {
		once.Do(func() {
			close(stop)
			<-done
			require.NoError(t, f.Close(context.Background()))
		})
	}
	t.Cleanup(end)
	require.Eventually(t, func() bool { return s.Stats().FramesSent >= n }, 30*time.Second, 10*time.Millisecond)
	return s, f, end
}

func TestInteropNginxAAC(t *testing.T) {
	n := startNginx(t)
	st := newStatuses()
	_, _, end := publish(t, rtmpsink.Config{URL: n.RTMPURL(), StreamName: streamKey, Audio: true, Video: true, OnStatus: st.on},
		&source{}, 300)
	end()
	file := n.RecordFile(streamKey)
	require.Eventually(t, func() bool { _, err := os.Stat(file); return err == nil }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // nginx closes the recording on unpublish
	require.Empty(t, testenv.DecodeErrors(t, file))
	p := testenv.ProbeStreams(t, file)
	require.Equal(t, "h264", p["video"].CodecName)
	require.Equal(t, "aac", p["audio"].CodecName)
	require.Equal(t, "48000", p["audio"].SampleRate)
	require.Greater(t, toneShare(t, file), 0.8, "the peer's 1 kHz tone comes out at 1 kHz")
	require.Empty(t, testenv.Silences(t, file, 30*time.Millisecond, 0.1), "no gap in the tone (after the AAC priming)")
	require.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive}, st.get())
}

func TestInteropNginxG711Passthrough(t *testing.T) {
	n := startNginx(t)
	_, _, end := publish(t, rtmpsink.Config{URL: n.RTMPURL() + "/" + streamKey, Audio: true, Video: true,
		AudioMode: rtmpsink.AudioPassthrough}, &source{}, 300)
	end()
	file := n.RecordFile(streamKey)
	require.Eventually(t, func() bool { _, err := os.Stat(file); return err == nil }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	require.Empty(t, testenv.DecodeErrors(t, file))
	p := testenv.ProbeStreams(t, file)
	require.Equal(t, "h264", p["video"].CodecName)
	require.Equal(t, "pcm_alaw", p["audio"].CodecName)
	require.Greater(t, toneShare(t, file), 0.8)
}

func TestInteropNginxAudioOnlyGetsVideo(t *testing.T) {
	n := startNginx(t)
	src := &audioOnly{}
	s, err := rtmpsink.New(rtmpsink.Config{URL: n.RTMPURL(), StreamName: streamKey, Audio: true})
	require.NoError(t, err)
	f := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, f.Add("rtmp", s, 1<<16))
	stop := make(chan struct{})
	done := pump(f, src, time.Millisecond, stop)
	require.Eventually(t, func() bool { return s.Stats().FramesSent >= 300 }, 30*time.Second, 10*time.Millisecond) // 6 s
	close(stop)
	<-done
	require.NoError(t, f.Close(context.Background()))
	file := n.RecordFile(streamKey)
	require.Eventually(t, func() bool { _, err := os.Stat(file); return err == nil }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	require.Empty(t, testenv.DecodeErrors(t, file))
	p := testenv.ProbeStreams(t, file)
	require.Equal(t, "h264", p["video"].CodecName)
	require.Equal(t, "aac", p["audio"].CodecName)
	// Keyframes at most 2 s apart.
	keys := testenv.KeyframeTimes(t, file)
	require.GreaterOrEqual(t, len(keys), 3)
	for i := 1; i < len(keys); i++ {
		require.LessOrEqual(t, keys[i]-keys[i-1], 2.0, "keyframes %v", keys)
	}
}

// audioOnly produces only the PCMA tone.
type audioOnly struct{ a int }

func (s *audioOnly) next() *media.Frame {
	ts := time.Duration(s.a) * 20 * time.Millisecond
	pcm := testmedia.Tone(1000, 8000, s.a*160, 160, 0.5)
	s.a++
	return &media.Frame{Codec: media.CodecPCMA, PTS: ts, DTS: ts, Keyframe: true, ClockRate: 8000, Channels: 1,
		Duration: 20 * time.Millisecond, Payload: g711.EncodeALaw(nil, pcm)}
}

func TestInteropNginxKilledAndRestarted(t *testing.T) {
	n := startNginx(t)
	st := newStatuses()
	s, _, end := publish(t, rtmpsink.Config{URL: n.RTMPURL(), StreamName: streamKey, Audio: true, Video: true,
		OnStatus: st.on, BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, GiveUpAfter: 30 * time.Second},
		&source{}, 200)
	n.Stop() // SIGKILL
	require.Eventually(t, func() bool { return st.count(rtmpsink.StatusLost) == 1 }, 20*time.Second, 10*time.Millisecond)
	n.Start()
	restarted := time.Now()
	require.Eventually(t, func() bool { return st.count(rtmpsink.StatusActive) == 2 }, 20*time.Second, 10*time.Millisecond)
	require.Less(t, time.Since(restarted), 5*time.Second, "stream resumes within 5 s")
	sent := s.Stats().FramesSent
	require.Eventually(t, func() bool { return s.Stats().FramesSent >= sent+200 }, 30*time.Second, 10*time.Millisecond)
	end()
	require.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive, rtmpsink.StatusLost, rtmpsink.StatusActive}, st.get())
	file := n.RecordFile(streamKey)
	time.Sleep(200 * time.Millisecond)
	// The part recorded after the restart decodes; ffprobe sees both tracks.
	p := testenv.ProbeStreams(t, file)
	require.Equal(t, "h264", p["video"].CodecName)
	require.Equal(t, "aac", p["audio"].CodecName)
}
