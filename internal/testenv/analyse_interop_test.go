//go:build interop

package testenv_test

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
)

// ffmpegRun runs ffmpeg with args and fails the test on error.
func ffmpegRun(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(testenv.LookPath(t, "ffmpeg"), append([]string{"-nostdin", "-v", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, out)
	}
}

// TestInteropAnalyseFile checks the analyser on a stream whose answers are
// known: 12 s of H.264 at 25 fps with a keyframe every second and the
// frames between 3.02 s and 3.5 s taken out (a 520 ms freeze, 12 frames
// missing), plus AAC audio.
func TestInteropAnalyseFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "known.flv")
	ffmpegRun(t, "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=12", "-f", "lavfi", "-i", "sine=f=1000:r=48000:d=12",
		"-vf", "select='not(between(t,3.02,3.5))'", "-fps_mode", "passthrough",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "1000", "-sc_threshold", "0",
		"-force_key_frames", "expr:gte(t,n_forced*1)", "-c:a", "aac", file)
	r := testenv.AnalyseFile(t, file, 10*time.Second)
	t.Logf("%s keyframes %v", r, r.Video.KeyframeTimes)
	// The window starts at the first keyframe: 0 s of the video, which
	// the FLV muxer may shift by the AAC encoder's priming (21 ms).
	if r.Window != 10*time.Second || r.Start > 0.05 {
		t.Errorf("window %v at %.3f s, want 10 s at the start", r.Window, r.Start)
	}
	if r.Video.Frames != 238 || r.Video.DecodedFrames != 238 {
		t.Errorf("frames %d, decoded %d, want 238", r.Video.Frames, r.Video.DecodedFrames)
	}
	if r.Video.LongestGap != 520*time.Millisecond {
		t.Errorf("freeze %v, want 520ms", r.Video.LongestGap)
	}
	if r.Video.ShortestStep != 40*time.Millisecond {
		t.Errorf("shortest step %v, want 40ms", r.Video.ShortestStep)
	}
	if len(r.Video.KeyframeTimes) != 10 || r.Video.LongestKeyframeInterval != time.Second {
		t.Errorf("keyframes %v, longest interval %v, want 10, 1 s", r.Video.KeyframeTimes, r.Video.LongestKeyframeInterval)
	}
	if r.DTSErrors() != 0 || len(r.DecodeErrors) != 0 {
		t.Errorf("DTS errors %d, decode errors %q", r.DTSErrors(), r.DecodeErrors)
	}
	if r.Audio.Codec != "aac" || r.Audio.Frames < 460 || r.Audio.LongestGap > 25*time.Millisecond {
		t.Errorf("audio %+v", r.Audio)
	}
}

// TestInteropMarkerOffsets: marker media muxed with the audio 30 ms late
// reads back as +30 ms at every marker.
func TestInteropMarkerOffsets(t *testing.T) {
	m := testenv.MakeMarkerMedia(t, 320, 240, 25, 6*time.Second)
	file := filepath.Join(t.TempDir(), "late.mkv")
	ffmpegRun(t, "-i", m.Video, "-i", m.Audio, "-map", "0:v", "-map", "1:a", "-af", "adelay=30|30", "-c:v", "copy", "-c:a", "pcm_s16le", file)
	r := testenv.MarkerOffsets(t, file, 25)
	t.Logf("%v: %v", r, r.Offsets)
	if len(r.Offsets) < 4 || r.Skipped != 0 {
		t.Fatalf("markers matched: %v", r)
	}
	for _, o := range r.Offsets {
		if d := o - 30*time.Millisecond; d.Abs() > 2*time.Millisecond {
			t.Errorf("offset %v, want 30ms", o)
		}
	}
}
