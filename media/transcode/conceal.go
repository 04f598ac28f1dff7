package transcode

import "math"

// Packet loss concealment, in the spirit of ITU-T G.711 Appendix I: a hole
// in the input is filled by repeating the last pitch period of the audio
// before it, found by normalized autocorrelation over the history. The
// repetition plays at full level for the first 10 ms, then fades by 20 %
// per 10 ms, reaching silence at 60 ms; the rest of a longer hole is
// silence. Where the input resumes, the continued repetition is
// cross-faded into it (overlap-add; after a long hole, a fade-in from
// silence), so neither splice clicks. The start
// splice is made continuous by the pitch search itself: the repeated
// period is the one that best continues the last samples, which needs no
// look-ahead and so adds no latency (Appendix I delays the output by 3.75
// ms for a cross-fade there).
//
// It works on the decoded input at its own rate, before resampling, for
// G.711 and for Opus alike (pion/opus has no loss concealment and no
// public way to decode a packet's in-band FEC, the LBRR frames, which it
// parses only to skip).

const (
	histMs    = 60 // history kept: pitch window + longest lag, with room
	winMs     = 20 // correlation window
	minLagMs  = 5  // pitch search range, as Appendix I (40..120 at 8 kHz)
	maxLagMs  = 15
	fullMs    = 10 // full level for the first 10 ms of a hole
	fadeMs    = 50 // then silent after 50 ms more (20 % per 10 ms)
	recoverMs = 4  // overlap-add where the input resumes
)

// concealer keeps the recent input and makes the audio of holes.
type concealer struct {
	rate, ch int
	hist     []int16 // last samples pushed, interleaved; cap 2·histLen
	histLen  int     // in interleaved samples
	lag      int     // pitch period of the hole being concealed, in frames
	pos      int     // frames generated in the current hole
	active   bool    // the last audio was concealed: cross-fade the next input
}

// reset forgets the history: a new format or a new stream.
func (c *concealer) reset(rate, ch int) {
	c.rate, c.ch = rate, ch
	c.histLen = rate * histMs / 1000 * ch
	if cap(c.hist) < 2*c.histLen {
		c.hist = make([]int16, 0, 2*c.histLen)
	}
	c.hist = c.hist[:0]
	c.active = false
}

// record appends real input to the history. It allocates nothing.
func (c *concealer) record(pcm []int16) {
	if c.histLen == 0 {
		return
	}
	if len(pcm) >= c.histLen {
		c.hist = append(c.hist[:0], pcm[len(pcm)-c.histLen:]...)
		return
	}
	if len(c.hist)+len(pcm) > cap(c.hist) {
		keep := c.histLen - len(pcm)
		n := copy(c.hist, c.hist[len(c.hist)-keep:])
		c.hist = c.hist[:n]
	}
	c.hist = append(c.hist, pcm...)
}

// fadeFrames is how many frames of a hole are concealed before silence.
func (c *concealer) fadeFrames() int { return c.rate * (fullMs + fadeMs) / 1000 }

// begin starts concealing a hole; false if the history is too short or
// silent (the hole then stays silence).
func (c *concealer) begin() bool {
	c.active = false
	frames := len(c.hist) / c.ch
	win, minLag, maxLag := c.rate*winMs/1000, c.rate*minLagMs/1000, c.rate*maxLagMs/1000
	if win == 0 || minLag == 0 || frames < win+maxLag {
		return false
	}
	mono := func(i int) float64 { // frame i of the history, channels averaged
		if c.ch == 1 {
			return float64(c.hist[i])
		}
		return (float64(c.hist[2*i]) + float64(c.hist[2*i+1])) / 2
	}
	end := frames - win
	var e0 float64
	for i := end; i < frames; i++ {
		e0 += mono(i) * mono(i)
	}
	if e0 < float64(win) { // below one LSB RMS: silence
		return false
	}
	// Coarse search on every st-th sample (about 8 kHz), then refined
	// around the best lag at full rate: 1/st² of the work at 48 kHz.
	st := max(1, c.rate/8000)
	corr := func(lag, step int) float64 {
		var xy, xx, yy float64
		for i := end; i < frames; i += step {
			x, y := mono(i), mono(i-lag)
			xy += x * y
			xx += x * x
			yy += y * y
		}
		if xx == 0 || yy == 0 {
			return math.Inf(-1)
		}
		return xy / math.Sqrt(xx*yy)
	}
	best, bestLag := math.Inf(-1), 0
	for lag := minLag; lag <= maxLag; lag += st {
		if r := corr(lag, st); r > best {
			best, bestLag = r, lag
		}
	}
	if st > 1 && bestLag != 0 {
		lo, hi := max(minLag, bestLag-st), min(maxLag, bestLag+st)
		best = math.Inf(-1)
		for lag := lo; lag <= hi; lag++ {
			if r := corr(lag, 1); r > best {
				best, bestLag = r, lag
			}
		}
	}
	if bestLag == 0 {
		return false
	}
	c.lag, c.pos, c.active = bestLag, 0, true
	return true
}

// gain is the level of concealed frame pos of a hole.
func (c *concealer) gain(pos int) float64 {
	full := c.rate * fullMs / 1000
	if pos < full {
		return 1
	}
	return max(0, 1-float64(pos-full)/float64(c.rate*fadeMs/1000))
}

// sample returns channel k of concealed frame pos, attenuated.
func (c *concealer) sample(pos, k int) float64 {
	frames := len(c.hist) / c.ch
	i := frames - c.lag + pos%c.lag
	return float64(c.hist[i*c.ch+k]) * c.gain(pos)
}

// fill writes the next frames of the hole into out (interleaved) and
// returns how many it wrote: fewer than len(out)/ch once the fade ended.
func (c *concealer) fill(out []int16) int {
	n := min(len(out)/c.ch, c.fadeFrames()-c.pos)
	for f := 0; f < n; f++ {
		for k := 0; k < c.ch; k++ {
			out[f*c.ch+k] = int16(c.sample(c.pos+f, k))
		}
	}
	c.pos += max(n, 0)
	return max(n, 0) // once faded out, recover fades the input in
}

// recover cross-fades the continued concealment into the first samples of
// the input that ends a hole (interleaved, c.ch channels), in place; after
// a hole longer than the fade that is a fade-in from silence.
func (c *concealer) recover(pcm []int16) {
	if !c.active {
		return
	}
	c.active = false
	n := min(len(pcm)/c.ch, c.rate*recoverMs/1000)
	for f := 0; f < n; f++ {
		w := float64(f+1) / float64(n+1) // weight of the real input
		for k := 0; k < c.ch; k++ {
			v := w*float64(pcm[f*c.ch+k]) + (1-w)*c.sample(c.pos+f, k)
			pcm[f*c.ch+k] = int16(max(-32768, min(32767, v)))
		}
	}
}
