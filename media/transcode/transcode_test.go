package transcode

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/aac"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtpaudio"
)

type collector struct {
	frames []media.Frame
}

func (c *collector) emit(f *media.Frame) {
	g := *f
	c.frames = append(c.frames, g)
}

// pcmaFrames returns 20 ms PCMA frames of pcm (8 kHz) starting at start.
func pcmaFrames(pcm []int16, start time.Duration) []*media.Frame {
	var fs []*media.Frame
	for i := 0; i+160 <= len(pcm); i += 160 {
		fs = append(fs, &media.Frame{Codec: media.CodecPCMA, PTS: start + time.Duration(i)*time.Second/8000,
			Payload: g711.EncodeALaw(nil, pcm[i:i+160]), ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond, Keyframe: true})
	}
	return fs
}

// decode decodes the collected AAC frames (checking PTS spacing) and returns
// channel 0 at 48 kHz with the PTS of its first sample.
func decode(t *testing.T, c *collector, rate, nch int) ([]int16, time.Duration) {
	t.Helper()
	d, err := aac.NewDecoder(rate, nch)
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	dur := time.Duration(aac.FrameSamples) * time.Second / time.Duration(rate)
	// The first frame is the priming frame, except for a stream that starts
	// at zero (no room before it).
	prime := 1
	if c.frames[0].PTS == 0 {
		prime = 0
	}
	for i, f := range c.frames {
		if f.Codec != media.CodecAAC || f.ClockRate != uint32(rate) || int(f.Channels) != nch || f.Duration != dur {
			t.Fatalf("frame %d: %+v", i, f)
		}
		if i > prime {
			want := c.frames[prime].PTS + time.Duration(int64(i-prime)*aac.FrameSamples*int64(time.Second)/int64(rate))
			if f.PTS != want {
				t.Fatalf("frame %d PTS %v, want %v", i, f.PTS, want)
			}
		}
		if pcm, err = d.Decode(pcm, f.Payload); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	ch0 := make([]int16, 0, len(pcm)/nch)
	for i := 0; i < len(pcm); i += nch {
		ch0 = append(ch0, pcm[i])
	}
	// Drop the priming frame; the first real frame starts at its PTS.
	return ch0[prime*aac.FrameSamples:], c.frames[prime].PTS
}

func TestPCMAToneToAAC(t *testing.T) {
	for _, nch := range []int{1, 2} {
		tr, err := NewToAAC(AACConfig{Channels: nch})
		if err != nil {
			t.Fatal(err)
		}
		if asc := tr.AudioSpecificConfig(); len(asc) != 2 {
			t.Fatalf("ASC % x", asc)
		}
		// 0.5 s of silence, then 1.5 s of a 1 kHz tone, from PTS 1 s.
		in := append(make([]int16, 4000), testmedia.Tone(1000, 8000, 0, 12000, 0.5)...)
		c := &collector{}
		for _, f := range pcmaFrames(in, time.Second) {
			if err := tr.Write(f, c.emit); err != nil {
				t.Fatal(err)
			}
		}
		tr.Flush(c.emit)
		if c.frames[0].PTS != time.Second-tr.Delay() || c.frames[1].PTS != time.Second {
			t.Fatalf("first PTS %v, %v", c.frames[0].PTS, c.frames[1].PTS)
		}
		out, start := decode(t, c, 48000, nch)
		if got := time.Duration(len(out)) * time.Second / 48000; got < 2*time.Second || got > 2*time.Second+30*time.Millisecond {
			t.Fatalf("%d ch: decoded %v of audio, want 2 s", nch, got)
		}
		if g := testmedia.Goertzel(out[48000:96000], 48000, 1000); g < 0.95 {
			t.Fatalf("%d ch: Goertzel %.3f", nch, g)
		}
		// Lip sync: the tone starts at PTS 1.5 s; find its onset in the
		// output and map it back through the PTS.
		onset := -1
		for i, v := range out {
			if v > 3000 || v < -3000 {
				onset = i
				break
			}
		}
		at := start + time.Duration(onset)*time.Second/48000
		if d := at - 1500*time.Millisecond; d < 0 || d > 2*time.Millisecond {
			t.Fatalf("%d ch: tone onset at %v on the timeline, want 1.5 s", nch, at)
		}
	}
}

func TestGapsAndOverlaps(t *testing.T) {
	tr, _ := NewToAAC(AACConfig{})
	in := testmedia.Tone(1000, 8000, 0, 16000, 0.5) // 2 s
	frames := pcmaFrames(in, 0)
	c := &collector{}
	for i, f := range frames {
		if i >= 40 && i < 50 { // 200 ms lost
			continue
		}
		if err := tr.Write(f, c.emit); err != nil {
			t.Fatal(err)
		}
		if i == 70 { // a duplicate
			if err := tr.Write(f, c.emit); err != nil {
				t.Fatal(err)
			}
		}
	}
	tr.Flush(c.emit)
	out, _ := decode(t, c, 48000, 1)
	if got := time.Duration(len(out)) * time.Second / 48000; got < 2*time.Second || got > 2*time.Second+30*time.Millisecond {
		t.Fatalf("decoded %v, want 2 s", got)
	}
	// The gap (0.8 s .. 1.0 s) is concealed for its first 60 ms (the tone
	// goes on, then fades), then silent; the rest is the tone.
	if g := testmedia.Goertzel(out[int(0.80*48000):int(0.81*48000)], 48000, 1000); g < 0.9 {
		t.Fatalf("start of the gap not concealed: Goertzel %.3f", g)
	}
	if e := rms(out[int(0.865*48000):int(0.98*48000)]); e > 100 {
		t.Fatalf("gap not silent after the fade: rms %.0f", e)
	}
	if g := testmedia.Goertzel(out[int(1.1*48000):int(1.9*48000)], 48000, 1000); g < 0.95 {
		t.Fatalf("after the gap: Goertzel %.3f", g)
	}
}

func TestLongGapRestarts(t *testing.T) {
	tr, _ := NewToAAC(AACConfig{MaxGap: time.Second})
	c := &collector{}
	tone := testmedia.Tone(1000, 8000, 0, 8000, 0.5)
	for _, f := range pcmaFrames(tone, 0) {
		_ = tr.Write(f, c.emit)
	}
	n := len(c.frames)
	for _, f := range pcmaFrames(tone, 10*time.Second) {
		_ = tr.Write(f, c.emit)
	}
	// The old stream is flushed, the new one starts with its own priming
	// frame stamped one frame before 10 s.
	var found bool
	for _, f := range c.frames[n:] {
		if f.PTS == 10*time.Second-tr.Delay() {
			found = true
		}
		if f.PTS > time.Second+50*time.Millisecond && f.PTS < 10*time.Second-tr.Delay() {
			t.Fatalf("frame at %v inside the gap", f.PTS)
		}
	}
	if !found {
		t.Fatal("no priming frame for the restarted stream")
	}
}

func TestSilenceForVideoOnlyCalls(t *testing.T) {
	tr, _ := NewToAAC(AACConfig{Channels: 2, SampleRate: 44100})
	c := &collector{}
	tr.Silence(2*time.Second, c.emit)
	last := c.frames[len(c.frames)-1]
	if end := last.PTS + last.Duration; end < 2*time.Second-50*time.Millisecond || end > 2*time.Second {
		t.Fatalf("silence up to %v, want ≈2 s (%d frames)", end, len(c.frames))
	}
	out, _ := decode(t, c, 44100, 2)
	for _, v := range out {
		if v != 0 {
			t.Fatalf("silence decodes to %d", v)
		}
	}
	// Audio arriving later continues the same stream.
	n := len(c.frames)
	for _, f := range pcmaFrames(testmedia.Tone(1000, 8000, 0, 8000, 0.5), 2*time.Second) {
		if err := tr.Write(f, c.emit); err != nil {
			t.Fatal(err)
		}
	}
	if c.frames[n].PTS != last.PTS+last.Duration && c.frames[n].PTS-(last.PTS+last.Duration) > time.Microsecond {
		t.Fatalf("stream not continuous: %v after %v", c.frames[n].PTS, last.PTS)
	}
}

func TestOpusAndUnsupported(t *testing.T) {
	tr, _ := NewToAAC(AACConfig{})
	c := &collector{}
	f := rtpaudio.Format{Codec: media.CodecOpus}
	sil, err := rtpaudio.Silence(f, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		fr := &media.Frame{Codec: media.CodecOpus, PTS: time.Duration(i) * 20 * time.Millisecond, Payload: sil, ClockRate: 48000, Channels: 1}
		if err := tr.Write(fr, c.emit); err != nil {
			t.Fatal(err)
		}
	}
	tr.Flush(c.emit)
	out, _ := decode(t, c, 48000, 1)
	if got := time.Duration(len(out)) * time.Second / 48000; got < 2*time.Second || got > 2*time.Second+30*time.Millisecond {
		t.Fatalf("decoded %v, want 2 s", got)
	}
	if err := tr.Write(&media.Frame{Codec: media.CodecSpeex, Payload: []byte{1}}, c.emit); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("speex: %v", err)
	}
	if err := tr.Write(&media.Frame{Codec: media.CodecH264, Payload: []byte{1}}, c.emit); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("h264: %v", err)
	}
	if err := tr.Write(&media.Frame{Codec: media.CodecOpus, Payload: []byte{0xff, 0xff, 0xff}}, c.emit); err != nil && !errors.Is(err, ErrDecode) {
		t.Fatalf("bad opus: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []AACConfig{{SampleRate: 44000}, {Channels: 3}, {MaxGap: -1}, {Tolerance: -1}, {Bitrate: 1}} {
		if _, err := NewToAAC(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

// Arrival-time jitter below the tolerance neither inserts silence nor cuts
// audio: the output is as long as the input and the tone is clean.
func TestJitteredTimestamps(t *testing.T) {
	tr, _ := NewToAAC(AACConfig{})
	c := &collector{}
	for i, f := range pcmaFrames(testmedia.Tone(1000, 8000, 0, 16000, 0.5), time.Second) {
		f.PTS += time.Duration((i*7)%9-4) * time.Millisecond // ±4 ms: at most 8 ms from the first frame's grid
		if err := tr.Write(f, c.emit); err != nil {
			t.Fatal(err)
		}
	}
	tr.Flush(c.emit)
	out, _ := decode(t, c, 48000, 1)
	if got := time.Duration(len(out)) * time.Second / 48000; got < 2*time.Second || got > 2*time.Second+30*time.Millisecond {
		t.Fatalf("decoded %v, want 2 s", got)
	}
	for s := 2400; s+960 <= len(out)-4800; s += 960 {
		if g := testmedia.Goertzel(out[s:s+960], 48000, 1000); g < 0.9 {
			t.Fatalf("window at %d: Goertzel %.3f (glitch)", s, g)
		}
	}
}

func rms(s []int16) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(s)))
}

func FuzzWrite(f *testing.F) {
	f.Add(uint8(media.CodecPCMA), []byte{0xd5, 0x55, 0x2a}, int64(0), uint8(1))
	f.Add(uint8(media.CodecPCMU), []byte{0xff, 0x00}, int64(time.Second), uint8(2))
	f.Add(uint8(media.CodecOpus), []byte{0xf8, 0xff, 0xfe}, int64(20*time.Millisecond), uint8(1))
	f.Add(uint8(media.CodecOpus), []byte{0x03, 0x83, 0x01, 0x02}, int64(-5), uint8(0))
	f.Add(uint8(media.CodecPCMA), []byte{0xd5, 0x55, 0x2a, 0x11}, int64(time.Second), uint8(0x81))
	f.Fuzz(func(t *testing.T, codec uint8, payload []byte, pts int64, ch uint8) {
		tr, _ := NewToAAC(AACConfig{MaxGap: 200 * time.Millisecond})
		c := &collector{}
		d, _ := aac.NewDecoder(48000, 1)
		mix := ch&0x80 != 0 // a mixer from the second frame on, and silence after
		ch &^= 0x80
		for i := 0; i < 3; i++ {
			if mix && i == 1 {
				tr.SetMixer(&toneMixer{freq: 1000, amp: 0.5})
			}
			fr := &media.Frame{Codec: media.Codec(codec), Payload: payload, PTS: time.Duration(pts) + time.Duration(i)*time.Duration(len(payload))*time.Millisecond,
				ClockRate: 8000, Channels: ch}
			_ = tr.Write(fr, c.emit)
		}
		if mix {
			tr.Silence(time.Duration(pts)+time.Second, c.emit)
		}
		tr.Flush(c.emit)
		var prev time.Duration = -1
		for _, fr := range c.frames {
			if fr.PTS <= prev {
				t.Fatalf("PTS not increasing: %v after %v", fr.PTS, prev)
			}
			prev = fr.PTS
			if _, err := d.Decode(nil, fr.Payload); err != nil {
				t.Fatal(err)
			}
		}
	})
}
