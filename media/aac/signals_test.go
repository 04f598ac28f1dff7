package aac

import (
	"math"
	"math/rand"
)

// speechLike returns n samples of a deterministic speech-like signal: a
// glottal pulse train with gliding pitch (90–220 Hz) through three formant
// resonators that move between vowel targets, syllable-rate amplitude
// envelope, short pauses and noisy "fricative" bursts.
func speechLike(rate, n int) []int16 {
	rng := rand.New(rand.NewSource(7))
	vowels := [][3]float64{{730, 1090, 2440}, {270, 2290, 3010}, {530, 1840, 2480}, {570, 840, 2410}, {300, 870, 2240}}
	out := make([]int16, n)
	type reson struct{ y1, y2 float64 }
	var rs [3]reson
	phase := 0.0
	for i := 0; i < n; i++ {
		t := float64(i) / float64(rate)
		syl := t * 4 // four syllables a second
		k := int(syl)
		frac := syl - float64(k)
		v0, v1 := vowels[k%len(vowels)], vowels[(k+1)%len(vowels)]
		f0 := 140 + 60*math.Sin(2*math.Pi*0.7*t) + 20*math.Sin(2*math.Pi*3.1*t)
		phase += f0 / float64(rate)
		exc := 0.0
		if phase >= 1 {
			phase -= 1
			exc = 1
		}
		env := math.Pow(math.Sin(math.Pi*frac), 0.6)
		if k%7 == 6 { // a pause
			env = 0
		}
		fric := 0.0
		if k%5 == 3 && frac > 0.75 { // fricative tail
			fric = (rng.Float64()*2 - 1) * 0.15
		}
		x := exc
		var y float64
		for j := range rs {
			f := v0[j] + (v1[j]-v0[j])*smooth(frac)
			bw := 80.0 + 40*float64(j)
			r := math.Exp(-math.Pi * bw / float64(rate))
			c := 2 * r * math.Cos(2*math.Pi*f/float64(rate))
			yj := (1-r)*x*8 + c*rs[j].y1 - r*r*rs[j].y2
			rs[j].y2, rs[j].y1 = rs[j].y1, yj
			y += yj / float64(j+1)
		}
		s := (y*env*0.5 + fric*env) * 32767 * 0.5
		out[i] = int16(math.Max(-32768, math.Min(32767, s)))
	}
	return out
}

func smooth(x float64) float64 { return x * x * (3 - 2*x) }

// musicLike returns n samples of chords of harmonic tones (six partials
// each, decaying), changing every half second, with note attacks.
func musicLike(rate, n int) []int16 {
	chords := [][]float64{
		{220, 277.18, 329.63}, {196, 246.94, 293.66}, {174.61, 220, 261.63}, {164.81, 207.65, 246.94, 329.63},
	}
	out := make([]int16, n)
	for i := 0; i < n; i++ {
		t := float64(i) / float64(rate)
		k := int(t * 2)
		tc := t - float64(k)/2
		ch := chords[k%len(chords)]
		env := math.Min(1, tc*200) * math.Exp(-tc*2.5)
		var s float64
		for ni, f := range ch {
			for h := 1; h <= 6; h++ {
				s += math.Sin(2*math.Pi*f*float64(h)*t+float64(ni*h)) / float64(h*h) * math.Exp(-tc*float64(h))
			}
		}
		// a bass line
		s += 0.8 * math.Sin(2*math.Pi*ch[0]/2*t)
		out[i] = int16(s * env * 0.18 * 32767)
	}
	return out
}

// snrDB is 10·log10(Σref² / Σ(ref−got)²) over the overlapping samples,
// with got delayed by lag samples relative to ref.
func snrDB(ref, got []int16, lag, skip int) float64 {
	var sig, noise float64
	for i := skip; i < len(ref)-skip; i++ {
		j := i + lag
		if j < 0 || j >= len(got) {
			continue
		}
		r := float64(ref[i])
		d := r - float64(got[j])
		sig += r * r
		noise += d * d
	}
	if noise == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(sig/noise)
}

// segSNR is the mean of per-segment SNRs (segments of seg samples, each
// clamped to [−10, 35] dB; silent reference segments skipped), the usual
// segmental SNR.
func segSNR(ref, got []int16, lag, seg int) float64 {
	var sum float64
	var cnt int
	for s := seg; s+seg < len(ref)-seg; s += seg {
		var sig, noise float64
		for i := s; i < s+seg; i++ {
			j := i + lag
			if j < 0 || j >= len(got) {
				continue
			}
			r := float64(ref[i])
			d := r - float64(got[j])
			sig += r * r
			noise += d * d
		}
		if sig < float64(seg)*100 { // below about −50 dBFS: silence
			continue
		}
		v := 35.0
		if noise > 0 {
			v = math.Max(-10, math.Min(35, 10*math.Log10(sig/noise)))
		}
		sum += v
		cnt++
	}
	if cnt == 0 {
		return 0
	}
	return sum / float64(cnt)
}

// bestLag finds the delay of got relative to ref by cross-correlation over
// lags 0..maxLag.
func bestLag(ref, got []int16, maxLag int) int {
	best, bestV := 0, math.Inf(-1)
	// Half a second from 0.2 s on (48 kHz) is plenty to find the delay.
	lo := min(len(ref), 9600)
	hi := min(len(ref), lo+24000)
	for lag := 0; lag <= maxLag; lag++ {
		var c float64
		for i := lo; i < hi && i+lag < len(got); i++ {
			c += float64(ref[i]) * float64(got[i+lag])
		}
		if c > bestV {
			best, bestV = lag, c
		}
	}
	return best
}

// castanets returns n samples of silence broken by sharp decaying 2.5 kHz
// bursts every 0.3 s (the classic pre-echo test), starting at onset, with
// onsets at onset + k·0.3 s.
func castanets(rate, n int, onset float64) ([]int16, []int) {
	out := make([]int16, n)
	var onsets []int
	for t0 := onset; int(t0*float64(rate)) < n; t0 += 0.3 {
		s0 := int(t0 * float64(rate))
		onsets = append(onsets, s0)
		for i := s0; i < n && i < s0+rate/20; i++ {
			t := float64(i-s0) / float64(rate)
			out[i] = int16(20000 * math.Exp(-t*120) * math.Sin(2*math.Pi*2500*t))
		}
	}
	return out, onsets
}
