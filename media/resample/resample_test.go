package resample

import (
	"errors"
	"math"
	"testing"

	"github.com/sipstream/sipstream/internal/testmedia"
)

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{InRate: 0, OutRate: 48000},
		{InRate: 8000, OutRate: 500},
		{InRate: 8000, OutRate: 48000, Channels: 9},
		{InRate: 8000, OutRate: 48000, Taps: 4},
		{InRate: 8001, OutRate: 48000}, // 48000/8001 needs 16000 phases
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", c, err)
		}
	}
}

// run feeds a tone through in blocks of the given sizes (cycled) and returns
// the whole output, flushed.
func run(t *testing.T, cfg Config, in []int16, blocks []int) []int16 {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := max(cfg.Channels, 1)
	var out []int16
	for i, bi := 0, 0; i < len(in); bi++ {
		n := blocks[bi%len(blocks)] * ch
		if i+n > len(in) {
			n = len(in) - i
		}
		out = r.Process(out, in[i:i+n])
		i += n
	}
	return r.Flush(out)
}

// snr compares out with an ideal sine of the same frequency and amplitude at
// the output rate, skipping edge samples.
func snr(out []int16, freq float64, rate int, amp float64, skip int) float64 {
	var sig, noise float64
	for n := skip; n < len(out)-skip; n++ {
		want := amp * 32767 * math.Sin(2*math.Pi*freq*float64(n)/float64(rate))
		d := float64(out[n]) - want
		sig += want * want
		noise += d * d
	}
	return 10 * math.Log10(sig/noise)
}

func TestToneAllRates(t *testing.T) {
	for _, in := range []int{8000, 16000, 24000, 32000, 44100, 48000} {
		for _, outRate := range []int{44100, 48000} {
			const freq = 1000
			src := testmedia.Tone(freq, in, 0, in/2, 0.5) // 0.5 s
			out := run(t, Config{InRate: in, OutRate: outRate}, src, []int{160, 7, 1000})
			wantLen := len(src) * outRate / in
			if d := len(out) - wantLen; d < -1 || d > 1 {
				t.Fatalf("%d->%d: %d samples out, want %d", in, outRate, len(out), wantLen)
			}
			if g := testmedia.Goertzel(out[1000:len(out)-1000], outRate, freq); g < 0.99 {
				t.Errorf("%d->%d: Goertzel at 1 kHz = %.4f", in, outRate, g)
			}
			s := snr(out, freq, outRate, 0.5, 200)
			t.Logf("%d->%d: SNR %.1f dB", in, outRate, s)
			if s < 60 {
				t.Errorf("%d->%d: SNR %.1f dB < 60", in, outRate, s)
			}
		}
	}
}

// Block boundaries must not matter: any split gives the same output as one
// big block, sample for sample.
func TestBlockBoundariesInvisible(t *testing.T) {
	src := testmedia.Tone(1000, 8000, 0, 8000, 0.8)
	whole := run(t, Config{InRate: 8000, OutRate: 48000}, src, []int{len(src)})
	for _, blocks := range [][]int{{160}, {1}, {3, 17, 160, 1}, {999}} {
		got := run(t, Config{InRate: 8000, OutRate: 48000}, src, blocks)
		if len(got) != len(whole) {
			t.Fatalf("blocks %v: %d samples, want %d", blocks, len(got), len(whole))
		}
		for i := range got {
			if got[i] != whole[i] {
				t.Fatalf("blocks %v: sample %d = %d, want %d", blocks, i, got[i], whole[i])
			}
		}
	}
	// And no discontinuity: the largest step between neighbours stays that
	// of the sine itself (amplitude·2π·f/fs).
	maxStep := 0.8 * 32767 * 2 * math.Pi * 1000 / 48000 * 1.05
	for i := 300; i < len(whole)-300; i++ {
		if d := math.Abs(float64(whole[i]) - float64(whole[i-1])); d > maxStep {
			t.Fatalf("step of %.0f at %d (max %.0f)", d, i, maxStep)
		}
	}
}

func TestStereoAndPassthrough(t *testing.T) {
	l := testmedia.Tone(500, 16000, 0, 8000, 0.3)
	r := testmedia.Tone(1500, 16000, 0, 8000, 0.3)
	in := make([]int16, 0, 2*len(l))
	for i := range l {
		in = append(in, l[i], r[i])
	}
	out := run(t, Config{InRate: 16000, OutRate: 48000, Channels: 2}, in, []int{320})
	left := make([]int16, 0, len(out)/2)
	right := make([]int16, 0, len(out)/2)
	for i := 0; i+1 < len(out); i += 2 {
		left = append(left, out[i])
		right = append(right, out[i+1])
	}
	if g := testmedia.Goertzel(left[500:len(left)-500], 48000, 500); g < 0.99 {
		t.Errorf("left Goertzel %.3f", g)
	}
	if g := testmedia.Goertzel(right[500:len(right)-500], 48000, 1500); g < 0.99 {
		t.Errorf("right Goertzel %.3f", g)
	}
	p, _ := New(Config{InRate: 48000, OutRate: 48000})
	if got := p.Process(nil, []int16{1, 2, 3}); len(got) != 3 || got[2] != 3 {
		t.Errorf("passthrough %v", got)
	}
}

// Frequencies above the output Nyquist frequency must be removed when
// downsampling, not folded back. 23 kHz lies in the transition band of
// 48k->44.1k, where at least 40 dB of attenuation is required.
func TestAntiAlias(t *testing.T) {
	src := testmedia.Tone(23000, 48000, 0, 24000, 0.9)
	out := run(t, Config{InRate: 48000, OutRate: 44100}, src, []int{960})
	var e float64
	for _, v := range out[500 : len(out)-500] {
		e += float64(v) * float64(v)
	}
	rms := math.Sqrt(e / float64(len(out)-1000))
	if db := 20 * math.Log10(rms/(0.9*32767/math.Sqrt2)); db > -40 {
		t.Errorf("23 kHz leaks through 48k->44.1k at %.1f dB", db)
	}
}

func TestSteadyStateNoAllocs(t *testing.T) {
	r, _ := New(Config{InRate: 8000, OutRate: 48000, Channels: 2})
	in := make([]int16, 320)
	dst := make([]int16, 0, 4096)
	dst = r.Process(dst[:0], in)
	if n := testing.AllocsPerRun(200, func() { dst = r.Process(dst[:0], in) }); n != 0 {
		t.Fatalf("Process allocates %v times per block", n)
	}
}

func FuzzProcess(f *testing.F) {
	f.Add(uint16(8000), uint16(48000), uint8(1), []byte{1, 2, 3, 4, 255, 255})
	f.Add(uint16(48000), uint16(44100), uint8(2), []byte{0x80, 0, 0x7f, 0xff})
	f.Fuzz(func(t *testing.T, in, out uint16, ch uint8, data []byte) {
		r, err := New(Config{InRate: int(in), OutRate: int(out), Channels: int(ch)})
		if err != nil {
			return
		}
		pcm := make([]int16, len(data)/2)
		for i := range pcm {
			pcm[i] = int16(uint16(data[2*i]) | uint16(data[2*i+1])<<8)
		}
		var o []int16
		for len(pcm) > 0 {
			n := min(len(pcm), 37)
			o = r.Process(o, pcm[:n])
			pcm = pcm[n:]
		}
		o = r.Flush(o)
		frames := len(data) / 2 / int(max(ch, 1))
		want := frames * int(out) / int(in)
		if len(o)/int(max(ch, 1)) > want+2 {
			t.Fatalf("%d frames in gave %d samples out", frames, len(o))
		}
	})
}

func BenchmarkUpsample8kTo48k(b *testing.B) { benchUpsample(b, 48000) }

// 8 kHz to 12 kHz: what media/transcode does with G.711 for a 48 kHz AAC
// stream (the encoder takes a quarter of its rate).
func BenchmarkUpsample8kTo12k(b *testing.B) { benchUpsample(b, 12000) }

// benchUpsample resamples 20 ms blocks of an 8 kHz tone to out Hz.
func benchUpsample(b *testing.B, out int) {
	r, _ := New(Config{InRate: 8000, OutRate: out})
	in := testmedia.Tone(1000, 8000, 0, 160, 0.5)
	dst := make([]int16, 0, 2048)
	b.SetBytes(2 * 160)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = r.Process(dst[:0], in)
	}
	// 160 input samples = 20 ms of audio.
	b.ReportMetric(0.020/(b.Elapsed().Seconds()/float64(b.N)), "x-realtime")
}

// The documented response: flat passband, and images above 0.54 of the
// input rate more than 70 dB down (upsampling 8 kHz: a 3 kHz tone's first
// image sits at 5 kHz = 0.625·8 kHz).
func TestImageRejection(t *testing.T) {
	src := testmedia.Tone(3000, 8000, 0, 16000, 0.9)
	out := run(t, Config{InRate: 8000, OutRate: 48000}, src, []int{160})
	seg := out[4800 : len(out)-4800]
	power := func(f float64) float64 {
		// Goertzel gives the fraction of the energy at f.
		return testmedia.Goertzel(seg, 48000, f)
	}
	sig, img := power(3000), power(5000)
	db := 10 * math.Log10(img/sig)
	t.Logf("image at 5 kHz: %.1f dB", db)
	if db > -70 {
		t.Errorf("image at 5 kHz only %.1f dB down", db)
	}
	// Passband: 1 kHz and 2.8 kHz (0.35·8 kHz) come out at the input level.
	for _, f := range []float64{1000, 2800} {
		o := run(t, Config{InRate: 8000, OutRate: 48000}, testmedia.Tone(f, 8000, 0, 16000, 0.5), []int{160})
		if s := snr(o, f, 48000, 0.5, 4800); s < 60 {
			t.Errorf("%.0f Hz: SNR %.1f dB (passband not flat)", f, s)
		}
	}
}

// The group kernels (6/1, 3/1, 3/2) give what the one-output-at-a-time
// path gives, to within rounding, for any block sizes.
func TestGroupKernelsMatchSinglePath(t *testing.T) {
	for _, c := range [][2]int{{8000, 48000}, {16000, 48000}, {8000, 12000}, {8000, 24000}} {
		grp, err := New(Config{InRate: c[0], OutRate: c[1]})
		if err != nil {
			t.Fatal(err)
		}
		if grp.grpN == 0 {
			t.Fatalf("%d->%d: no group kernel", c[0], c[1])
		}
		single, _ := New(Config{InRate: c[0], OutRate: c[1]})
		single.grp, single.grpN = nil, 0
		in := testmedia.Tone(1234, c[0], 0, c[0], 0.9)
		for i := range in {
			in[i] += int16((i*7919)%2001 - 1000) // and noise
		}
		var a, b []int16
		for i, bs := 0, 1; i < len(in); bs = bs%997 + 37 {
			n := min(bs, len(in)-i)
			a = grp.Process(a, in[i:i+n])
			b = single.Process(b, in[i:i+n])
			i += n
		}
		a, b = grp.Flush(a), single.Flush(b)
		if len(a) != len(b) {
			t.Fatalf("%d->%d: %d samples, single path %d", c[0], c[1], len(a), len(b))
		}
		for i := range a {
			if d := int(a[i]) - int(b[i]); d < -1 || d > 1 {
				t.Fatalf("%d->%d: sample %d: %d, single path %d", c[0], c[1], i, a[i], b[i])
			}
		}
	}
}
