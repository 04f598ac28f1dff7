package h264gen

import (
	"encoding/binary"
	"errors"
	"image/color"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

func collect(g *Generator, until time.Duration) []media.Frame {
	var fs []media.Frame
	g.Until(until, func(f *media.Frame) { fs = append(fs, *f) })
	return fs
}

// splitAVC splits a length-prefixed access unit into NAL units.
func splitAVC(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("truncated length")
		}
		n := int(binary.BigEndian.Uint32(b))
		if n == 0 || 4+n > len(b) {
			t.Fatalf("bad NAL length %d", n)
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

func TestConfig(t *testing.T) {
	for _, c := range []Config{
		{Width: 15, Height: 16}, {Width: 641, Height: 360}, {Width: 640, Height: 5000},
		{FrameRate: 61}, {KeyframeInterval: MaxKeyframeInterval + time.Second}, {KeyframeInterval: -1},
		{KeyframeSize: -1}, {FrameSize: MaxFrameSize + 1},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestFramesAndKeyframes(t *testing.T) {
	g, err := New(Config{FrameRate: 25, KeyframeInterval: 2 * time.Second, Color: color.RGBA{0, 0, 255, 255}})
	if err != nil {
		t.Fatal(err)
	}
	fs := collect(g, 5*time.Second)
	if len(fs) != 125 {
		t.Fatalf("%d frames in 5 s at 25 fps", len(fs))
	}
	var lastKey time.Duration
	for i, f := range fs {
		if f.Codec != media.CodecH264 || f.ClockRate != 90000 || f.PTS != f.DTS {
			t.Fatalf("frame %d: %+v", i, f)
		}
		if want := time.Duration(i) * 40 * time.Millisecond; f.PTS != want {
			t.Fatalf("frame %d PTS %v, want %v", i, f.PTS, want)
		}
		nalus := splitAVC(t, f.Payload)
		if f.Keyframe {
			if len(nalus) != 3 || testmedia.NALType(nalus[0]) != 7 || testmedia.NALType(nalus[1]) != 8 || testmedia.NALType(nalus[2]) != 5 {
				t.Fatalf("keyframe %d: NAL types wrong", i)
			}
			if i > 0 && f.PTS-lastKey > 2*time.Second {
				t.Fatalf("keyframes %v apart", f.PTS-lastKey)
			}
			lastKey = f.PTS
		} else if len(nalus) != 1 || testmedia.NALType(nalus[0]) != 1 {
			t.Fatalf("frame %d: NAL types wrong", i)
		}
		for _, n := range nalus {
			for j := 2; j < len(n); j++ {
				if n[j-2] == 0 && n[j-1] == 0 && n[j] <= 2 {
					t.Fatalf("frame %d: emulation prevention missing", i)
				}
			}
		}
	}
	if !fs[0].Keyframe || !fs[50].Keyframe || fs[49].Keyframe {
		t.Fatal("keyframe schedule wrong")
	}
	// ForceKeyframe and Skip.
	g.ForceKeyframe()
	if fs := collect(g, 5*time.Second+time.Millisecond); len(fs) != 1 || !fs[0].Keyframe {
		t.Fatal("forced keyframe missing")
	}
	g.Skip(10 * time.Second)
	fs = collect(g, 10*time.Second+time.Millisecond)
	if len(fs) != 1 || fs[0].PTS != 10*time.Second || !fs[0].Keyframe {
		t.Fatalf("after Skip: %+v", fs)
	}
}

func TestExpGolomb(t *testing.T) {
	var w bitWriter
	w.ue(0)           // 1
	w.ue(1)           // 010
	w.ue(3)           // 00100
	w.se(-1)          // ue(2) = 011
	w.se(1)           // ue(1) = 010
	b := w.trailing() // + 1 + pad
	// 1 010 00100 011 010 1 -> 1010 0010 0011 0101 -> A2 35
	if len(b) != 2 || b[0] != 0xA2 || b[1] != 0x35 {
		t.Fatalf("% x", b)
	}
	if got := nal(0x67, []byte{0, 0, 1, 0, 0, 0}); string(got) != string([]byte{0x67, 0, 0, 3, 1, 0, 0, 3, 0}) {
		t.Fatalf("emulation prevention: % x", got)
	}
}

func TestColor(t *testing.T) {
	for _, c := range []struct {
		c         color.Color
		y, cb, cr byte
	}{
		{color.Black, 16, 128, 128},
		{color.White, 235, 128, 128},
		{color.RGBA{255, 0, 0, 255}, 81, 90, 240},
	} {
		y, cb, cr := bt601(c.c)
		if y != c.y || cb != c.cb || cr != c.cr {
			t.Errorf("%v: %d %d %d, want %d %d %d", c.c, y, cb, cr, c.y, c.cb, c.cr)
		}
	}
}

func TestLevel(t *testing.T) {
	for _, c := range []struct {
		w, h, fps int
		want      uint32
	}{
		{176, 144, 15, 10}, {320, 240, 10, 11}, {640, 360, 10, 22}, {640, 360, 30, 30}, {1280, 720, 30, 31}, {1920, 1080, 30, 40},
	} {
		g, err := New(Config{Width: c.w, Height: c.h, FrameRate: c.fps})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.level(); got != c.want {
			t.Errorf("%dx%d@%d: level %d, want %d", c.w, c.h, c.fps, got, c.want)
		}
	}
}

// TestPadding: with KeyframeSize and FrameSize, every access unit is exactly
// that long, the picture's NAL units come first and a filler data NAL unit
// (type 12, 0xFF bytes, trailing bits) last; a size below what the picture
// needs leaves it unpadded. A GOP longer than 2 s is accepted.
func TestPadding(t *testing.T) {
	g, err := New(Config{FrameRate: 25, KeyframeInterval: 10 * time.Second, KeyframeSize: 12000, FrameSize: 3700})
	if err != nil {
		t.Fatal(err)
	}
	fs := collect(g, 12*time.Second)
	keys := 0
	for i, f := range fs {
		want, types := 3700, []uint8{1, 12}
		if f.Keyframe {
			keys++
			want, types = 12000, []uint8{7, 8, 5, 12}
		}
		if len(f.Payload) != want {
			t.Fatalf("frame %d (key %v): %d bytes, want %d", i, f.Keyframe, len(f.Payload), want)
		}
		nalus := splitAVC(t, f.Payload)
		if len(nalus) != len(types) {
			t.Fatalf("frame %d: %d NAL units", i, len(nalus))
		}
		for j, n := range nalus {
			if testmedia.NALType(n) != types[j] {
				t.Fatalf("frame %d NAL %d: type %d, want %d", i, j, testmedia.NALType(n), types[j])
			}
		}
		filler := nalus[len(nalus)-1]
		if filler[0] != 0x0C || filler[len(filler)-1] != 0x80 {
			t.Fatalf("frame %d: filler header or trailing bits % x", i, []byte{filler[0], filler[len(filler)-1]})
		}
		for _, b := range filler[1 : len(filler)-1] {
			if b != 0xFF {
				t.Fatalf("frame %d: filler byte %#x", i, b)
			}
		}
	}
	if keys != 2 || !fs[0].Keyframe || !fs[250].Keyframe {
		t.Fatalf("%d keyframes in 12 s with a 10 s GOP", keys)
	}

	// Too small to pad: the picture as coded.
	small, err := New(Config{FrameRate: 25, KeyframeSize: 10, FrameSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := New(Config{FrameRate: 25})
	a, b := collect(small, time.Second), collect(plain, time.Second)
	for i := range a {
		if string(a[i].Payload) != string(b[i].Payload) {
			t.Fatalf("frame %d padded below its size", i)
		}
	}
}

// TestNext: Next emits the frames Until would, one per call, and honours
// ForceKeyframe on the very next frame.
func TestNext(t *testing.T) {
	a, _ := New(Config{FrameRate: 30, KeyframeInterval: 5 * time.Second})
	b, _ := New(Config{FrameRate: 30, KeyframeInterval: 5 * time.Second})
	want := collect(a, 7*time.Second)
	for i, w := range want {
		var got []media.Frame
		b.Next(func(f *media.Frame) { got = append(got, *f) })
		if len(got) != 1 || got[0].PTS != w.PTS || got[0].Keyframe != w.Keyframe || string(got[0].Payload) != string(w.Payload) {
			t.Fatalf("frame %d differs", i)
		}
	}
	for _, force := range []bool{false, true, false, true, true} {
		if force {
			b.ForceKeyframe()
		}
		b.Next(func(f *media.Frame) {
			if f.Keyframe != force {
				t.Fatalf("forced %v, keyframe %v", force, f.Keyframe)
			}
		})
	}
}

// TestFrameGridOddRates: at rates that do not divide a second in
// nanoseconds the grid still advances one frame per frame (it used to
// repeat frame 1 forever at 30 fps), and Skip lands on the first frame at or
// after its time.
func TestFrameGridOddRates(t *testing.T) {
	for _, fps := range []int{7, 15, 24, 30, 60} {
		g, err := New(Config{FrameRate: fps})
		if err != nil {
			t.Fatal(err)
		}
		fs := collect(g, 3*time.Second)
		if len(fs) != 3*fps {
			t.Fatalf("%d fps: %d frames in 3 s", fps, len(fs))
		}
		for i, f := range fs {
			if want := time.Duration(int64(i) * int64(time.Second) / int64(fps)); f.PTS != want {
				t.Fatalf("%d fps: frame %d PTS %v, want %v", fps, i, f.PTS, want)
			}
		}
		g.Skip(10*time.Second + time.Nanosecond)
		fs = collect(g, 11*time.Second)
		first := time.Duration((10*int64(fps) + 1) * int64(time.Second) / int64(fps))
		if len(fs) == 0 || fs[0].PTS != first || !fs[0].Keyframe || len(fs) != fps-1 {
			t.Fatalf("%d fps: after Skip %d frames, first at %v want %v", fps, len(fs), fs[0].PTS, first)
		}
	}
}

// TestSPSParses reads the generator's SPS back with mediacommon's parser,
// the one MediaMTX runs on every stream: picture size (cropping included),
// Constrained Baseline, and the frame rate of the VUI timing.
func TestSPSParses(t *testing.T) {
	for _, c := range []struct{ w, h, fps int }{
		{640, 360, 10}, {176, 144, 15}, {1280, 720, 30}, {1920, 1080, 25}, {642, 358, 60}, {16, 16, 1},
	} {
		g, err := New(Config{Width: c.w, Height: c.h, FrameRate: c.fps})
		if err != nil {
			t.Fatal(err)
		}
		var sps h264.SPS
		if err := sps.Unmarshal(g.SPS()); err != nil {
			t.Fatalf("%dx%d: %v", c.w, c.h, err)
		}
		if sps.Width() != c.w || sps.Height() != c.h || sps.FPS() != float64(c.fps) ||
			sps.ProfileIdc != 66 || sps.LevelIdc != uint8(g.level()) || sps.ChromaFormatIdc != 1 {
			t.Errorf("%dx%d@%d: parsed %dx%d@%v, profile %d level %d chroma %d", c.w, c.h, c.fps,
				sps.Width(), sps.Height(), sps.FPS(), sps.ProfileIdc, sps.LevelIdc, sps.ChromaFormatIdc)
		}
	}
}
