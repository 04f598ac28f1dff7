package rtmpsink

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// checkIncreasing checks that the sink hands the publisher strictly
// increasing timestamps per track (video: DTS; audio: PTS) and a PTS never
// before the DTS.
func checkIncreasing(t *testing.T, ops []op) (video, audio int) {
	t.Helper()
	last := map[bool]time.Duration{}
	seen := map[bool]bool{}
	for i, o := range ops {
		var isVideo bool
		var ts time.Duration
		switch o.kind {
		case "h264":
			isVideo, ts = true, o.dts
			require.GreaterOrEqual(t, o.pts, o.dts, "op %d", i)
			video++
		case "aac", "g711":
			ts = o.pts
			audio++
		default:
			continue
		}
		if seen[isVideo] {
			require.Greater(t, ts, last[isVideo], "op %d (%s): %v after %v", i, o.kind, ts, last[isVideo])
		}
		last[isVideo], seen[isVideo] = ts, true
	}
	return video, audio
}

// The broadcast starts at the first keyframe; audio stamped at or just
// before it (interleaving, the AAC encoder's priming frame) used to be
// clamped to zero, several frames on one timestamp.
func TestStartDoesNotStackFramesOnZero(t *testing.T) {
	for _, tc := range []struct {
		name         string
		audio, video bool
		mode         AudioMode
	}{
		{"aac", true, true, AudioAAC},
		{"passthrough", true, true, AudioPassthrough},
		{"video-only silence", false, true, AudioAAC},
		{"audio-only generated video", true, false, AudioAAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer()
			l := newStatusLog()
			cfg := testConfig(l)
			cfg.Audio, cfg.Video, cfg.AudioMode = tc.audio, tc.video, tc.mode
			s, err := newSink(cfg, srv.dial, realClock{})
			require.NoError(t, err)
			l.wait(t, StatusActive)
			base := 3 * time.Second
			write := func(f *media.Frame) {
				t.Helper()
				f.PTS += base
				f.DTS += base
				require.NoError(t, s.WriteFrame(f))
			}
			for i := 0; i < 50; i++ {
				if tc.video {
					write(vframe(i, i == 0))
				}
				if tc.audio {
					if i == 1 {
						// Audio 10 ms older than the broadcast's start,
						// arriving after its first keyframe.
						a := aframe(0)
						a.PTS, a.DTS = -10*time.Millisecond, -10*time.Millisecond
						write(a)
					}
					write(aframe(2 * i))
					write(aframe(2*i + 1))
				}
			}
			require.NoError(t, s.Close(context.Background()))
			video, audio := checkIncreasing(t, srv.snapshot())
			require.Greater(t, video, 15) // generated video runs at 10 fps
			require.Greater(t, audio, 40)
		})
	}
}
