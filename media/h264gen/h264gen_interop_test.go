//go:build interop

package h264gen

import (
	"encoding/binary"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
)

// TestInteropFFmpegDecodes writes the generated track as Annex-B, decodes it
// with ffmpeg (no errors allowed), checks the picture size, the colour of
// decoded pixels and the keyframe spacing reported by ffprobe.
func TestInteropFFmpegDecodes(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	ffprobe := testenv.LookPath(t, "ffprobe")
	for _, c := range []struct {
		w, h, fps int
		key       time.Duration
		col       color.RGBA
	}{
		{640, 360, 10, 2 * time.Second, color.RGBA{200, 40, 40, 255}},
		{1280, 720, 25, time.Second, color.RGBA{0, 0, 0, 255}},
		{176, 144, 5, 2 * time.Second, color.RGBA{30, 200, 90, 255}},
	} {
		g, err := New(Config{Width: c.w, Height: c.h, FrameRate: c.fps, KeyframeInterval: c.key, Color: c.col})
		if err != nil {
			t.Fatal(err)
		}
		var annexB []byte
		frames := 0
		g.Until(6*time.Second, func(f *media.Frame) {
			frames++
			for b := f.Payload; len(b) >= 4; {
				n := int(binary.BigEndian.Uint32(b))
				annexB = append(annexB, 0, 0, 0, 1)
				annexB = append(annexB, b[4:4+n]...)
				b = b[4+n:]
			}
		})
		path := filepath.Join(t.TempDir(), "gen.h264")
		if err := os.WriteFile(path, annexB, 0o644); err != nil {
			t.Fatal(err)
		}
		// Decode every frame to RGB.
		rgb := testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-f", "h264", "-i", path,
			"-f", "rawvideo", "-pix_fmt", "rgb24", "-")
		if len(rgb) != frames*c.w*c.h*3 {
			t.Fatalf("%dx%d: decoded %d bytes, want %d frames of %d", c.w, c.h, len(rgb), frames, c.w*c.h*3)
		}
		for _, off := range []int{0, (c.h/2*c.w + c.w/2) * 3, len(rgb) - 3} {
			px := rgb[off : off+3]
			for k, want := range []uint8{c.col.R, c.col.G, c.col.B} {
				if d := int(px[k]) - int(want); d < -4 || d > 4 {
					t.Fatalf("%dx%d: pixel at %d is %v, want %v", c.w, c.h, off, px, c.col)
				}
			}
		}
		// Size and keyframe spacing from ffprobe.
		out := string(testenv.RunClean(t, ffprobe, "-v", "error", "-f", "h264", "-select_streams", "v:0",
			"-show_entries", "stream=width,height,codec_name,profile", "-show_entries", "frame=key_frame",
			"-of", "csv=p=0", path))
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var keys []int
		idx := 0
		var stream string
		for _, l := range lines {
			l = strings.TrimSpace(l)
			if strings.Count(l, ",") >= 2 {
				stream = l
				continue
			}
			if l == "1" {
				keys = append(keys, idx)
			}
			idx++
		}
		if want := "h264,Constrained Baseline," + strconv.Itoa(c.w) + "," + strconv.Itoa(c.h); !strings.HasPrefix(stream, want) {
			t.Fatalf("ffprobe stream %q, want %q", stream, want)
		}
		if idx != frames {
			t.Fatalf("ffprobe saw %d frames, want %d", idx, frames)
		}
		maxGap := int(2 * time.Second * time.Duration(c.fps) / time.Second)
		for i := 1; i < len(keys); i++ {
			if keys[i]-keys[i-1] > maxGap {
				t.Fatalf("keyframes %d frames apart at %d fps", keys[i]-keys[i-1], c.fps)
			}
		}
		if len(keys) < 3 {
			t.Fatalf("%d keyframes in 6 s", len(keys))
		}
		t.Logf("%dx%d@%d: %d frames, keyframes at %v, %d bytes", c.w, c.h, c.fps, frames, keys, len(annexB))
	}
}

// TestInteropFFmpegPaddedLongGOP decodes what siptest's live video sends: a
// phone-like stream with a 20 s GOP (frame_num wraps every 256 frames),
// keyframes forced at arbitrary frames, and filler data making IDRs 11.5 KB
// and P frames 3.5 KB. ffmpeg must report no error, and ffprobe must see
// every frame with the keyframes exactly where they were made.
func TestInteropFFmpegPaddedLongGOP(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	ffprobe := testenv.LookPath(t, "ffprobe")
	g, err := New(Config{Width: 640, Height: 360, FrameRate: 25, KeyframeInterval: 20 * time.Second,
		KeyframeSize: 11500, FrameSize: 3500, Color: color.RGBA{20, 120, 220, 255}})
	if err != nil {
		t.Fatal(err)
	}
	forced := map[int]bool{7: true, 300: true, 301: true, 555: true}
	var annexB []byte
	var wantKeys []int
	const frames = 750 // 30 s
	for i := 0; i < frames; i++ {
		if forced[i] {
			g.ForceKeyframe()
		}
		g.Next(func(f *media.Frame) {
			if f.Keyframe {
				wantKeys = append(wantKeys, i)
			}
			for b := f.Payload; len(b) >= 4; {
				n := int(binary.BigEndian.Uint32(b))
				annexB = append(annexB, 0, 0, 0, 1)
				annexB = append(annexB, b[4:4+n]...)
				b = b[4+n:]
			}
		})
	}
	// The GOP restarts at each forced keyframe: no regular one in 30 s.
	if fmt.Sprint(wantKeys) != "[0 7 300 301 555]" {
		t.Fatalf("keyframes made at %v", wantKeys)
	}
	path := filepath.Join(t.TempDir(), "padded.h264")
	if err := os.WriteFile(path, annexB, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-f", "h264", "-i", path, "-f", "null", "-")
	out := string(testenv.RunClean(t, ffprobe, "-v", "error", "-f", "h264", "-select_streams", "v:0",
		"-show_entries", "frame=key_frame", "-of", "csv=p=0", path))
	var keys []int
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.TrimSpace(l) == "1" {
			keys = append(keys, n)
		}
		n++
	}
	if n != frames {
		t.Fatalf("ffprobe saw %d frames, want %d", n, frames)
	}
	if len(keys) != len(wantKeys) {
		t.Fatalf("ffprobe keyframes at %v, made at %v", keys, wantKeys)
	}
	for i := range keys {
		if keys[i] != wantKeys[i] {
			t.Fatalf("ffprobe keyframes at %v, made at %v", keys, wantKeys)
		}
	}
	t.Logf("%d frames, keyframes at %v, %d bytes", n, keys, len(annexB))
}
