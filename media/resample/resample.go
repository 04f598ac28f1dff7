// Package resample converts 16-bit PCM between sample rates with a polyphase
// windowed-sinc (Kaiser) filter, streaming: the filter state is carried from
// one call to the next, so blocks of any size join without clicks.
//
// Output sample n of a stream represents exactly the input time n/OutRate:
// the resampler adds latency (it must see half a filter length of future
// input before it can produce a sample) but no time shift, so sample counts
// on both sides map to the same timeline. Flush pushes the held-back tail
// out at the end of a stream.
//
// Mono conversions with the default filter at the ratios of telephone
// audio (8 kHz to 12, 24 or 48 kHz, 16 kHz to 48 kHz) compute each period
// of output phases together, sharing the loads of the input samples: about
// a quarter to a third less CPU than one output at a time, same result to
// within rounding.
package resample

import (
	"errors"
	"fmt"
	"math"
)

// ErrConfig is wrapped by the errors New returns for an invalid Config.
var ErrConfig = errors.New("resample: invalid config")

// Config describes one conversion.
type Config struct {
	// InRate and OutRate are the input and output sample rates in Hz
	// (1000..384000). They must be given; equal rates give a pass-through.
	InRate, OutRate int
	// Channels is the number of interleaved channels. Zero means one.
	Channels int
	// Taps is the filter length in samples of the lower of the two rates;
	// longer filters give a steeper transition band. Zero means 32: the
	// passband is flat to within 0.01 dB up to 0.35 of the lower rate, the
	// response is −6 dB at 0.46 of it, and images and aliases are more than
	// 70 dB down above 0.54 of it.
	Taps int
}

const maxPhases = 4096

// Resampler is a streaming sample-rate converter. It is not safe for
// concurrent use.
type Resampler struct {
	cfg      Config
	l, m     int       // output/input ratio reduced: OutRate/InRate = l/m
	taps     int       // filter length in input samples
	coef     []float32 // l phases of taps coefficients each
	half     int       // taps/2: latency in input samples
	buf      [][]float32
	n        int // valid samples in each buf
	phase    int // position of the next output: idx + phase/l
	idx      int // index into buf of the first tap of the next output
	passthru bool
	// For the ratios of telephone audio (8 kHz to 48 and 12 kHz, 16 kHz to
	// 48 kHz) with the default filter, mono: the outputs of one period of
	// the phases (l outputs from m inputs, starting at phase 0) computed
	// together, three at a time, sharing each input sample's load (see
	// kern3). grp holds grpN/3 tables of, for input offset k < grpSpan,
	// the coefficients of three outputs; nil when the ratio has none.
	grp  []float32
	grpN int
}

// New returns a Resampler for cfg.
func New(cfg Config) (*Resampler, error) {
	if cfg.Channels == 0 {
		cfg.Channels = 1
	}
	if cfg.Taps == 0 {
		cfg.Taps = 32
	}
	switch {
	case cfg.InRate < 1000 || cfg.InRate > 384000:
		return nil, fmt.Errorf("%w: InRate %d", ErrConfig, cfg.InRate)
	case cfg.OutRate < 1000 || cfg.OutRate > 384000:
		return nil, fmt.Errorf("%w: OutRate %d", ErrConfig, cfg.OutRate)
	case cfg.Channels < 1 || cfg.Channels > 8:
		return nil, fmt.Errorf("%w: Channels %d", ErrConfig, cfg.Channels)
	case cfg.Taps < 8 || cfg.Taps > 256:
		return nil, fmt.Errorf("%w: Taps %d (8..256)", ErrConfig, cfg.Taps)
	}
	g := gcd(cfg.InRate, cfg.OutRate)
	r := &Resampler{cfg: cfg, l: cfg.OutRate / g, m: cfg.InRate / g}
	if r.l > maxPhases {
		return nil, fmt.Errorf("%w: ratio %d/%d needs too many filter phases", ErrConfig, cfg.OutRate, cfg.InRate)
	}
	r.passthru = cfg.InRate == cfg.OutRate
	r.buf = make([][]float32, cfg.Channels)
	if r.passthru {
		return r, nil
	}
	// Filter length in input samples: Taps at the lower rate.
	scale := 1.0 // cutoff relative to the input Nyquist frequency
	taps := cfg.Taps
	if cfg.OutRate < cfg.InRate {
		scale = float64(cfg.OutRate) / float64(cfg.InRate)
		taps = int(math.Ceil(float64(cfg.Taps) / scale))
	}
	taps = (taps + 1) &^ 1
	r.taps, r.half = taps, taps/2
	r.makeFilter(scale)
	r.makeGroup()
	r.Reset()
	return r, nil
}

// makeFilter fills the polyphase table: phase p, tap k holds h(p/l + half −
// 1 − k), h a Kaiser-windowed sinc with its −6 dB point at 0.92 of the lower
// Nyquist frequency. Each phase is normalised to unit DC gain.
func (r *Resampler) makeFilter(scale float64) {
	const beta = 7.5 // Kaiser β: about 75 dB stopband
	fc := 0.92 * scale
	r.coef = make([]float32, r.l*r.taps)
	i0b := besselI0(beta)
	for p := 0; p < r.l; p++ {
		row := r.coef[p*r.taps : (p+1)*r.taps]
		var sum float64
		vals := make([]float64, r.taps)
		for k := range row {
			t := float64(p)/float64(r.l) + float64(r.half-1-k)
			x := t / float64(r.half) // -1..1
			if x <= -1 || x >= 1 {
				continue
			}
			w := besselI0(beta*math.Sqrt(1-x*x)) / i0b
			v := fc * sinc(fc*t) * w
			vals[k] = v
			sum += v
		}
		for k := range row {
			row[k] = float32(vals[k] / sum)
		}
	}
}

// grpSpan is the number of input samples a group kernel reads: the filter
// plus the largest offset of an output in the group (1 for 3/2), padded.
const grpSpan = 34

// makeGroup sets up the group kernel for the ratios that have one: 6/1
// and 3/1 (outputs at phases 0..l−1 on the same input samples) and 3/2
// (phases 0 and 2 on input idx, phase 1 on idx+1).
func (r *Resampler) makeGroup() {
	if r.taps != 32 || r.cfg.Channels != 1 {
		return
	}
	switch {
	case r.m == 1 && (r.l == 6 || r.l == 3), r.m == 2 && r.l == 3:
	default:
		return
	}
	r.grpN = r.l
	r.grp = make([]float32, grpSpan*r.grpN)
	phase, off := 0, 0
	for j := 0; j < r.grpN; j++ {
		// Three outputs per table of grpSpan×3: output j in table j/3.
		tab := r.grp[j/3*grpSpan*3:]
		for k := 0; k < r.taps; k++ {
			tab[(k+off)*3+j%3] = r.coef[phase*r.taps+k]
		}
		phase += r.m
		for phase >= r.l {
			phase -= r.l
			off++
		}
	}
}

// kern3 returns the three outputs of a 3/1 or 3/2 group from the input
// samples y, each summed in two halves: six independent accumulations.
func kern3(c *[grpSpan * 3]float32, y *[grpSpan]float32) (a, b, d float32) {
	const h = grpSpan / 2
	var a0, b0, d0, a1, b1, d1 float32
	for k := 0; k < h; k++ {
		x, x1 := y[k], y[k+h]
		t := (*[3]float32)(c[k*3:])
		t1 := (*[3]float32)(c[(k+h)*3:])
		a0 += t[0] * x
		b0 += t[1] * x
		d0 += t[2] * x
		a1 += t1[0] * x1
		b1 += t1[1] * x1
		d1 += t1[2] * x1
	}
	return a0 + a1, b0 + b1, d0 + d1
}

// Reset forgets the stream: the next sample written starts a new one.
func (r *Resampler) Reset() {
	for c := range r.buf {
		if cap(r.buf[c]) < 2*r.taps+1024 {
			r.buf[c] = make([]float32, 2*r.taps+1024)
		}
		r.buf[c] = r.buf[c][:cap(r.buf[c])]
		clear(r.buf[c])
	}
	// Input sample j lives at buf[j + half − 1]: the half−1 zeros in front
	// stand for the silence before the stream.
	r.n = r.half - 1
	if r.n < 0 {
		r.n = 0
	}
	r.idx, r.phase = 0, 0
}

// Latency returns how many input samples (per channel) the resampler holds
// back before it can produce the output that depends on them.
func (r *Resampler) Latency() int { return r.half }

// OutRate returns the output sample rate.
func (r *Resampler) OutRate() int { return r.cfg.OutRate }

// Process appends to dst the output that the interleaved input samples src
// complete and returns the extended slice. len(src) must be a multiple of the
// channel count (a trailing partial frame is ignored). Once dst and the
// internal buffer have grown to the block size, Process does not allocate.
func (r *Resampler) Process(dst, src []int16) []int16 {
	ch := r.cfg.Channels
	frames := len(src) / ch
	if r.passthru {
		return append(dst, src[:frames*ch]...)
	}
	// Append the input to the per-channel buffers.
	if need := r.n + frames; need > len(r.buf[0]) {
		for c := range r.buf {
			nb := make([]float32, need+need/2)
			copy(nb, r.buf[c][:r.n])
			r.buf[c] = nb
		}
	}
	for c := 0; c < ch; c++ {
		b := r.buf[c][r.n : r.n+frames]
		for i := range b {
			b[i] = float32(src[i*ch+c])
		}
	}
	r.n += frames
	return r.run(dst)
}

// Flush appends the output still held back (the last Latency input samples'
// worth, with silence assumed after them) and resets the stream.
func (r *Resampler) Flush(dst []int16) []int16 {
	if r.passthru {
		return dst
	}
	// Feed half a filter of silence: that completes every output up to the
	// time of the last input sample.
	zeros := make([]int16, r.half*r.cfg.Channels)
	dst = r.Process(dst, zeros)
	r.Reset()
	return dst
}

func (r *Resampler) run(dst []int16) []int16 {
	ch := r.cfg.Channels
	taps := r.taps
	// Count the outputs this input completes, grow dst once, fill it.
	avail := r.n - taps - r.idx // how far idx may advance
	if avail < 0 {
		return dst
	}
	// Outputs with idx' ≤ r.idx+avail: idx advances by (phase+m·k)/l.
	count := int((int64(avail+1)*int64(r.l) - int64(r.phase) + int64(r.m) - 1) / int64(r.m))
	start := len(dst)
	if cap(dst)-start < count*ch {
		nd := make([]int16, start, start+count*ch+count*ch/2)
		copy(nd, dst)
		dst = nd
	}
	dst = dst[:start+count*ch]
	out := dst[start:]
	o := 0
	phase, idx, l, m, n := r.phase, r.idx, r.l, r.m, r.n
	coef := r.coef
	if ch == 1 {
		buf := r.buf[0][:n]
		for o < len(out) && idx+taps <= n {
			if phase == 0 && r.grpN > 0 && o+r.grpN <= len(out) && idx+grpSpan <= n {
				// A whole group: the hot path of the telephone-to-AAC
				// transcode.
				y := (*[grpSpan]float32)(buf[idx:])
				a, b, d := kern3((*[grpSpan * 3]float32)(r.grp), y)
				out[o], out[o+1], out[o+2] = clip(a), clip(b), clip(d)
				if r.grpN == 6 {
					a, b, d = kern3((*[grpSpan * 3]float32)(r.grp[grpSpan*3:]), y)
					out[o+3], out[o+4], out[o+5] = clip(a), clip(b), clip(d)
				}
				o += r.grpN
				idx += m
				continue
			}
			// dot(), inlined by hand.
			a := coef[phase*taps : phase*taps+taps]
			b := buf[idx : idx+taps]
			var s0, s1, s2, s3 float32
			i := 0
			if len(a) == 32 && len(b) == 32 {
				// The default filter length, fully unrolled.
				x := (*[32]float32)(a)
				y := (*[32]float32)(b)
				s0 = x[0]*y[0] + x[4]*y[4] + x[8]*y[8] + x[12]*y[12] + x[16]*y[16] + x[20]*y[20] + x[24]*y[24] + x[28]*y[28]
				s1 = x[1]*y[1] + x[5]*y[5] + x[9]*y[9] + x[13]*y[13] + x[17]*y[17] + x[21]*y[21] + x[25]*y[25] + x[29]*y[29]
				s2 = x[2]*y[2] + x[6]*y[6] + x[10]*y[10] + x[14]*y[14] + x[18]*y[18] + x[22]*y[22] + x[26]*y[26] + x[30]*y[30]
				s3 = x[3]*y[3] + x[7]*y[7] + x[11]*y[11] + x[15]*y[15] + x[19]*y[19] + x[23]*y[23] + x[27]*y[27] + x[31]*y[31]
				i = 32
			}
			for ; i+8 <= len(a) && i+8 <= len(b); i += 8 {
				x := (*[8]float32)(a[i : i+8])
				y := (*[8]float32)(b[i : i+8])
				s0 += x[0]*y[0] + x[4]*y[4]
				s1 += x[1]*y[1] + x[5]*y[5]
				s2 += x[2]*y[2] + x[6]*y[6]
				s3 += x[3]*y[3] + x[7]*y[7]
			}
			for ; i < len(a) && i < len(b); i++ {
				s0 += a[i] * b[i]
			}
			out[o] = clip((s0 + s1) + (s2 + s3))
			o++
			phase += m
			for phase >= l {
				phase -= l
				idx++
			}
		}
	} else {
		for idx+taps <= n {
			row := coef[phase*taps : phase*taps+taps]
			for c := 0; c < ch; c++ {
				out[o] = clip(dot(row, r.buf[c][idx:idx+taps]))
				o++
			}
			phase += m
			for phase >= l {
				phase -= l
				idx++
			}
		}
	}
	r.phase, r.idx = phase, idx
	dst = dst[:start+o]
	// Drop what no later output needs.
	if r.idx > 0 {
		for c := range r.buf {
			copy(r.buf[c], r.buf[c][r.idx:r.n])
		}
		r.n -= r.idx
		r.idx = 0
	}
	return dst
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x := (*[8]float32)(a[i : i+8])
		y := (*[8]float32)(b[i : i+8])
		s0 += x[0]*y[0] + x[4]*y[4]
		s1 += x[1]*y[1] + x[5]*y[5]
		s2 += x[2]*y[2] + x[6]*y[6]
		s3 += x[3]*y[3] + x[7]*y[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func clip(v float32) int16 {
	// Round half away from zero... via floor(v+0.5), cheaper than branches
	// on the sign; then saturate.
	i := int32(v + 32768.5) // ≥ 0 for every in-range v, so truncation is floor
	if i > 65535 {
		i = 65535
	}
	if i < 0 {
		i = 0
	}
	return int16(i - 32768)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind
// (power series), for the Kaiser window.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
