//go:build interop

package rtmpsink

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sink"
)

// A call's G.711 audio carrying a 440 Hz tone is pushed to a real
// nginx-rtmp (audio-only call: the sink adds its generated video), with a
// 1 kHz sound mixed in twice: a 2 s sound that plays to its end from 2 s
// on, and an endless one from 5 s stopped by SetSound(nil) at 7 s.
// ffmpeg decodes nginx's recording of the stream: both tones while a sound
// plays, the 440 Hz tone alone before, between and after; the first
// sound's end is reported when the call's timeline reaches 4 s.
func TestInteropNginxSound(t *testing.T) {
	for _, mode := range []AudioMode{AudioAAC, AudioPassthrough} {
		t.Run(mode.String(), func(t *testing.T) {
			n := testenv.StartNginx(t, testenv.NginxConfig{Record: true})
			var pos atomic.Int64 // timeline position of the frame the producer is at
			var ended []sound.Source
			var endedAt []time.Duration
			endCh := make(chan struct{}, 4)
			s, err := New(Config{URL: n.RTMPURL(), StreamName: "sound", Audio: true, AudioMode: mode,
				OnSoundEnd: func(src sound.Source) {
					// The fan-out's goroutine; read after it is closed.
					ended = append(ended, src)
					endedAt = append(endedAt, time.Duration(pos.Load()))
					endCh <- struct{}{}
				}})
			require.NoError(t, err)
			f := sink.NewFanout(sink.FanoutConfig{})
			require.NoError(t, f.Add("rtmp", s, 1<<12))
			require.Eventually(t, func() bool { return s.Status() == StatusActive }, 20*time.Second, 10*time.Millisecond)

			once := &toneSource{rate: 44100, freq: 1000, n: 2 * 44100, amp: 0.25}
			endless := &toneSource{rate: 16000, freq: 1000, n: -1, amp: 0.25}
			hooks := map[int]sound.Source{100: once, 250: endless, 350: nil} // 20 ms frames: 2 s, 5 s, 7 s
			tick := time.NewTicker(2 * time.Millisecond)
			for i := 0; i < 450; i++ { // 9 s of call at about ten times real time
				<-tick.C
				if src, ok := hooks[i]; ok {
					require.NoError(t, s.SetSound(src))
				}
				fr := pcmaTone(i, media.CodecPCMA)
				pos.Store(int64(fr.PTS))
				require.NoError(t, f.WriteFrame(fr))
			}
			tick.Stop()
			require.NoError(t, f.Close(context.Background()))
			require.Equal(t, []sound.Source{once}, ended, "the sound that played out, reported once")
			require.GreaterOrEqual(t, endedAt[0], 4*time.Second-100*time.Millisecond)
			require.Less(t, endedAt[0], 5*time.Second)
			t.Logf("end of the 2 s sound reported with the call's producer at %v", endedAt[0])

			file := n.RecordFile("sound")
			require.Eventually(t, func() bool { _, err := os.Stat(file); return err == nil }, 10*time.Second, 20*time.Millisecond)
			time.Sleep(200 * time.Millisecond) // nginx closes the recording on unpublish
			require.Empty(t, testenv.DecodeErrors(t, file))
			p := testenv.ProbeStreams(t, file)
			require.Equal(t, "h264", p["video"].CodecName)
			want := map[AudioMode]string{AudioAAC: "aac", AudioPassthrough: "pcm_alaw"}[mode]
			require.Equal(t, want, p["audio"].CodecName)

			pcm := testenv.DecodePCM(t, file, 16000)
			require.Greater(t, len(pcm), 16000*8, "8 s of audio at least")
			for _, w := range []struct {
				at   time.Duration
				both bool
			}{
				{1 * time.Second, false}, {2500 * time.Millisecond, true}, {3500 * time.Millisecond, true},
				{4500 * time.Millisecond, false}, {5500 * time.Millisecond, true}, {6500 * time.Millisecond, true},
				{8 * time.Second, false},
			} {
				g440, g1k := tones(pcm, 16000, w.at)
				t.Logf("%v: 440 Hz %.3f, 1 kHz %.3f", w.at, g440, g1k)
				if w.both {
					requireBoth(t, pcm, 16000, w.at)
				} else {
					requireCallOnly(t, pcm, 16000, w.at)
				}
			}
			// The first sound sits where the call's timeline put it: from
			// 2 s to 4 s of the published stream (SetSound raced the
			// fan-out's queue by a frame or two).
			on, off := soundSpan(pcm, 16000, 1500*time.Millisecond, 4500*time.Millisecond)
			t.Logf("1 kHz heard from %v to %v", on, off)
			require.InDelta(t, float64(2*time.Second), float64(on), float64(100*time.Millisecond))
			require.InDelta(t, float64(4*time.Second), float64(off), float64(100*time.Millisecond))
		})
	}
}

// soundSpan returns where, between from and to, the 1 kHz tone is first
// and last heard in pcm (20 ms windows with at least a quarter of their
// energy at 1 kHz).
func soundSpan(pcm []int16, rate int, from, to time.Duration) (on, off time.Duration) {
	on, off = -1, -1
	step := rate / 50
	for at := from; at < to; at += 20 * time.Millisecond {
		i := int(int64(at) * int64(rate) / int64(time.Second))
		if testmedia.Goertzel(pcm[i:i+step], rate, 1000) > 0.25 {
			if on < 0 {
				on = at
			}
			off = at + 20*time.Millisecond
		}
	}
	return on, off
}
