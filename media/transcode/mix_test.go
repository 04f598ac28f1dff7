package transcode

import (
	"math"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/aac"
)

// toneMixer adds a sine of freq Hz (amplitude 0..1) to every channel from
// the first sample it is given, counting the sample frames it mixed into.
type toneMixer struct {
	freq, amp float64
	pos       int64 // sample frames mixed, at rate
	rate      int
	rates     map[int]bool
	replace   bool // write the tone instead of adding it
}

func (m *toneMixer) Mix(pcm []int16, rate, ch int) {
	if m.rates == nil {
		m.rates = map[int]bool{}
	}
	m.rates[rate] = true
	if m.rate != rate {
		m.rate, m.pos = rate, 0
	}
	for i := 0; i+ch <= len(pcm); i += ch {
		v := m.amp * 32767 * math.Sin(2*math.Pi*m.freq*float64(m.pos)/float64(rate))
		for c := 0; c < ch; c++ {
			s := float64(pcm[i+c]) + v
			if m.replace {
				s = v
			}
			pcm[i+c] = int16(max(-32768, min(32767, math.Round(s))))
		}
		m.pos++
	}
}

// render decodes AAC frames with one decoder and places channel 0 of each
// at its PTS on a timeline of d at rate (restarted streams included; the
// frame after a restart decodes with some overlap noise).
func render(t *testing.T, frames []media.Frame, rate, nch int, d time.Duration) []int16 {
	t.Helper()
	dec, err := aac.NewDecoder(rate, nch)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, int64(d)*int64(rate)/int64(time.Second))
	var pcm []int16
	for i, f := range frames {
		if i > 0 && f.PTS <= frames[i-1].PTS {
			t.Fatalf("frame %d: PTS %v after %v", i, f.PTS, frames[i-1].PTS)
		}
		pcm, err = dec.Decode(pcm[:0], f.Payload)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		at := int(int64(f.PTS) * int64(rate) / int64(time.Second))
		for j := 0; j*nch < len(pcm) && at+j < len(out); j++ {
			if at+j >= 0 {
				out[at+j] = pcm[j*nch]
			}
		}
	}
	return out
}

// window is the 100 ms of pcm (at rate) from at.
func window(pcm []int16, rate int, at time.Duration) []int16 {
	i := int(int64(at) * int64(rate) / int64(time.Second))
	return pcm[i : i+rate/10]
}

// A mixer set in the middle of a G.711 stream is heard from then on, with
// the call's tone, at full band; removing it leaves the call's tone alone.
func TestMixerMixesIntoCallAudio(t *testing.T) {
	for _, nch := range []int{1, 2} {
		tr, err := NewToAAC(AACConfig{Channels: nch})
		if err != nil {
			t.Fatal(err)
		}
		c := &collector{}
		m := &toneMixer{freq: 6000, amp: 0.25} // above G.711's band: only a full-band encoder carries it
		frames := pcmaFrames(testmedia.Tone(440, 8000, 0, 8000*3, 0.25), 0)
		for i, f := range frames {
			switch i {
			case 50: // 1 s
				tr.SetMixer(m)
			case 100: // 2 s
				tr.SetMixer(nil)
			}
			if err := tr.Write(f, c.emit); err != nil {
				t.Fatal(err)
			}
		}
		tr.Flush(c.emit)
		if tr.encMode != (encMode{inRate: 48000}) {
			t.Fatalf("encoder %+v while mixing, want full band", tr.encMode)
		}
		if len(m.rates) != 1 || !m.rates[48000] {
			t.Fatalf("mixed at rates %v, want 48000", m.rates)
		}
		pcm := render(t, c.frames, 48000, nch, 3*time.Second)
		for _, w := range []struct {
			at       time.Duration
			mix, low bool
		}{{500 * time.Millisecond, false, true}, {1300 * time.Millisecond, true, true},
			{1800 * time.Millisecond, true, true}, {2400 * time.Millisecond, false, true}} {
			x := window(pcm, 48000, w.at)
			g440, g6k := testmedia.Goertzel(x, 48000, 440), testmedia.Goertzel(x, 48000, 6000)
			if w.mix && (g440 < 0.3 || g6k < 0.3 || g440+g6k < 0.9) {
				t.Fatalf("%d ch at %v: 440 Hz %.3f, 6 kHz %.3f: want both", nch, w.at, g440, g6k)
			}
			if !w.mix && (g440 < 0.9 || g6k > 0.01) {
				t.Fatalf("%d ch at %v: 440 Hz %.3f, 6 kHz %.3f: want 440 Hz alone", nch, w.at, g440, g6k)
			}
		}
		// The mixer was given the timeline from its start to its removal:
		// one second of samples, less the restart to full band (up to two
		// AAC frames), give or take the resampler's latency.
		if d := m.pos - 48000; d < -2*aac.FrameSamples || d > 480 {
			t.Fatalf("mixed %d samples over 1 s of input, want 48000", m.pos)
		}
	}
}

// The mixer is paced by the call's timestamps: a hole the transcoder
// fills is mixed into (the sound stays where the timeline is), a hole
// longer than MaxGap restarts the stream and does not consume the sound.
func TestMixerFollowsTimeline(t *testing.T) {
	tr, err := NewToAAC(AACConfig{MaxGap: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := &toneMixer{freq: 1000, amp: 0.2}
	tr.SetMixer(m)
	c := &collector{}
	tone := testmedia.Tone(440, 8000, 0, 8000, 0.25)
	write := func(start time.Duration) {
		for _, f := range pcmaFrames(tone, start) {
			if err := tr.Write(f, c.emit); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0)                       // [0, 1 s)
	write(1500 * time.Millisecond) // a 500 ms hole, filled: [1.5 s, 2.5 s)
	afterFilled := m.pos
	write(5 * time.Second) // a 2.5 s hole: the stream restarts at 5 s
	tr.Flush(c.emit)
	if d := afterFilled - 48000*5/2; d < -960 || d > 960 {
		t.Fatalf("after 2.5 s of timeline (a 500 ms hole filled) the mixer took %d samples, want %d", afterFilled, 48000*5/2)
	}
	if d := m.pos - 48000*7/2; d < -2*aac.FrameSamples || d > 960 {
		t.Fatalf("after 3.5 s of audio around a 2.5 s restart the mixer took %d samples, want about %d", m.pos, 48000*7/2)
	}
	pcm := render(t, c.frames, 48000, 1, 6*time.Second)
	if g := testmedia.Goertzel(window(pcm, 48000, 1200*time.Millisecond), 48000, 1000); g < 0.9 {
		t.Fatalf("in the filled hole the sound plays: 1 kHz %.3f", g)
	}
	if x := window(pcm, 48000, 3500*time.Millisecond); rms(x) > 1 {
		t.Fatalf("nothing is published in the long hole: rms %.1f", rms(x))
	}
}

// A video-only call's silent AAC carries the mixer's sound instead; a
// mixer set on a band-limited silent stream widens it.
func TestMixerReplacesSilence(t *testing.T) {
	tr, err := NewToAAC(AACConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	tr.Silence(time.Second, c.emit)
	if tr.encMode.bw == 0 {
		t.Fatalf("silence on %+v, want the band-limited path", tr.encMode)
	}
	m := &toneMixer{freq: 1000, amp: 0.3}
	tr.SetMixer(m)
	for d := 1100 * time.Millisecond; d <= 3*time.Second; d += 100 * time.Millisecond {
		tr.Silence(d, c.emit)
	}
	tr.Flush(c.emit)
	if tr.encMode != (encMode{inRate: 48000}) {
		t.Fatalf("encoder %+v while mixing, want full band", tr.encMode)
	}
	pcm := render(t, c.frames, 48000, 1, 3*time.Second)
	if x := window(pcm, 48000, 500*time.Millisecond); rms(x) > 1 {
		t.Fatalf("silence before the mixer: rms %.1f", rms(x))
	}
	if g := testmedia.Goertzel(window(pcm, 48000, 2*time.Second), 48000, 1000); g < 0.95 {
		t.Fatalf("the sound replaces silence: 1 kHz %.3f", g)
	}
}

// Mixing adds no allocation to the hot path: a 20 ms G.711 frame costs
// as many allocations with a mixer as without.
func TestMixerAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	allocs := func(m Mixer) float64 {
		tr, err := NewToAAC(AACConfig{})
		if err != nil {
			t.Fatal(err)
		}
		tr.SetMixer(m)
		f := pcmaFrames(testmedia.Tone(440, 8000, 0, 160, 0.25), 0)[0]
		emit := func(*media.Frame) {}
		i := 0
		step := func() {
			f.PTS = time.Duration(i) * 20 * time.Millisecond
			i++
			if err := tr.Write(f, emit); err != nil {
				t.Fatal(err)
			}
		}
		for range 100 { // buffers grown
			step()
		}
		return testing.AllocsPerRun(500, step)
	}
	mix := &toneMixer{freq: 1000, amp: 0.2}
	mix.Mix(make([]int16, 2), 48000, 1) // its map made
	without, with := allocs(nil), allocs(mix)
	if with > without {
		t.Fatalf("%.2f allocations per frame with a mixer, %.2f without", with, without)
	}
}

// BenchmarkPCMAToAACMixed is BenchmarkPCMAToAAC48kMono with a mixer set:
// the full-band encoder it needs, and the mixing.
func BenchmarkPCMAToAACMixed(b *testing.B) {
	tr, err := NewToAAC(AACConfig{})
	if err != nil {
		b.Fatal(err)
	}
	tr.SetMixer(&toneMixer{freq: 1000, amp: 0.2})
	f := pcmaFrames(testmedia.Tone(440, 8000, 0, 160, 0.25), 0)[0]
	emit := func(*media.Frame) {}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f.PTS = time.Duration(i) * 20 * time.Millisecond
		if err := tr.Write(f, emit); err != nil {
			b.Fatal(err)
		}
	}
}
