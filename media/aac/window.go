package aac

import "math"

// Window sequences (§4.6.11.3.1, Table 4.153 window_sequence).
const (
	onlyLong   = 0
	longStart  = 1
	eightShort = 2
	longStop   = 3
)

const (
	shortSamples = FrameSamples / 8 // spectral lines per short window
	shortWindows = 8
	// Short window w of an EIGHT_SHORT_SEQUENCE covers input samples
	// [shortStart + 128·w, shortStart + 128·w + 256) of the 2048.
	shortStart = (FrameSamples - shortSamples) / 2 // 448
)

// Scalefactor band offsets for short windows (128 lines), typed in from
// ISO/IEC 14496-3 §4.5.4, the swb_offset_short_window tables (Tables
// 4.110–4.128 in the 2005 edition's numbering).
var (
	swbShort96 = []uint16{0, 4, 8, 12, 16, 20, 24, 32, 40, 48, 64, 92, 128}
	swbShort48 = []uint16{0, 4, 8, 12, 16, 20, 28, 36, 44, 56, 68, 80, 96, 112, 128}
	swbShort24 = []uint16{0, 4, 8, 12, 16, 20, 24, 28, 36, 44, 52, 64, 76, 92, 108, 128}
	swbShort16 = []uint16{0, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 60, 72, 88, 108, 128}
	swbShort8  = []uint16{0, 4, 8, 12, 16, 20, 24, 28, 36, 44, 52, 60, 72, 88, 108, 128}
)

// shortBands returns the short-window band table for a sampling frequency
// index.
func shortBands(sfIdx int) []uint16 {
	switch {
	case sfIdx <= 2: // 96, 88.2, 64 kHz
		return swbShort96
	case sfIdx <= 5: // 48, 44.1, 32 kHz
		return swbShort48
	case sfIdx <= 7: // 24, 22.05 kHz
		return swbShort24
	case sfIdx <= 10: // 16, 12, 11.025 kHz
		return swbShort16
	}
	return swbShort8
}

// windows holds the analysis windows of each sequence (sine shape) at the
// input rate, scaled by the decimation factor (see makeWindows).
type windows struct {
	long, start, stop []float64 // 2·FrameSamples/dec
	short             []float64 // 2·shortSamples/dec
}

// makeWindows returns the windows for input decimated by dec (1, 2 or 4).
//
// With decimated input sample j standing for the output time dec·j +
// (dec−1)/2, the windows of size 2048 evaluated at those times are the
// sine windows of size 2048/dec, and the MDCT of size 2048 of a signal
// band-limited below half the input rate equals dec times the MDCT of
// size 2048/dec of the decimated signal on its 1024/dec lines (the
// aliases of the subsampled spectrum fall on the lines above): so the
// windows carry the gain dec and the transforms shrink by dec.
func makeWindows(dec int) *windows {
	blk, sn, ss := FrameSamples/dec, shortSamples/dec, shortStart/dec
	w := &windows{long: make([]float64, 2*blk), start: make([]float64, 2*blk), stop: make([]float64, 2*blk),
		short: make([]float64, 2*sn)}
	for i := range w.short {
		w.short[i] = math.Sin(math.Pi / float64(2*sn) * (float64(i) + 0.5))
	}
	for i := range w.long {
		w.long[i] = math.Sin(math.Pi / float64(2*blk) * (float64(i) + 0.5))
	}
	// LONG_START: long rising half, flat, short falling half, zeros
	// (§4.6.11.3.2).
	for i := 0; i < 2*blk; i++ {
		switch {
		case i < blk:
			w.start[i] = w.long[i]
		case i < blk+ss:
			w.start[i] = 1
		case i < blk+ss+sn:
			w.start[i] = w.short[i-(blk+ss)+sn]
		default:
			w.start[i] = 0
		}
		w.stop[2*blk-1-i] = w.start[i]
	}
	g := float64(dec)
	for _, s := range [][]float64{w.long, w.start, w.stop, w.short} {
		for i := range s {
			s[i] *= g
		}
	}
	return w
}

// detectTransient looks for an attack where the next frame's short windows
// would cover it: from sample 448 of the newest block in the window to
// sample 576 of the look-ahead block. An attack is the high-passed energy of
// a 64-sample segment (64/dec input samples) jumping above ten times the
// mean of the eight before it, and above about −40 dBFS. (At 1/dec of the
// rate, the first difference of a signal is dec times larger and a segment
// has 1/dec of the samples: its energy is about dec times that at the full
// rate.)
func detectTransient(ch *channel, dec int) bool {
	const seg = transientSeg
	e := &ch.segE
	floor := float64(seg*dec) * 330 * 330
	for s := (FrameSamples + shortStart) / seg; s < (2*FrameSamples+shortStart+shortSamples)/seg; s++ {
		var mean float64
		for k := s - 8; k < s; k++ {
			mean += e[k]
		}
		mean /= 8
		if e[s] > 10*mean && e[s] > floor {
			return true
		}
	}
	return false
}

// transientSeg is the segment length of the transient detector at the
// output rate.
const transientSeg = 64

// segmentEnergies stores the high-passed energy of each segment (seg input
// samples) of the look-ahead block (blk input samples) in segE[32:48]
// (segE[0:32] hold the window's two blocks, computed when they were
// look-ahead).
func (ch *channel) segmentEnergies(blk, seg int) {
	prev := ch.hist[2*blk-1]
	const base = 2 * FrameSamples / transientSeg
	for s := 0; s < FrameSamples/transientSeg; s++ {
		var sum float64
		for _, x := range ch.ahead[s*seg : (s+1)*seg] {
			d := x - prev
			prev = x
			sum += d * d
		}
		ch.segE[base+s] = sum
	}
}

// chooseSequence sets the window sequence of the frame about to be coded
// from the transient found in its newest samples: short windows for the
// next frame need a LONG_START now; a short frame with no transient ahead
// is followed by LONG_STOP.
func (e *Encoder) chooseSequence() {
	next := false
	if !e.cfg.LongOnly {
		for _, ch := range e.ch {
			if detectTransient(ch, e.dec) {
				next = true
				break
			}
		}
	}
	prev := e.seq
	switch {
	case e.shortPending || (prev == eightShort && next):
		e.seq = eightShort
	case next:
		e.seq = longStart
	case prev == eightShort:
		e.seq = longStop
	default:
		e.seq = onlyLong
	}
	e.shortPending = next
	if e.seq == eightShort {
		e.swb, e.nb = e.swbShort8, e.nbShort
	} else {
		e.swb, e.nb = e.swbLong, e.nbLong
	}
}

// transformShort computes the eight short MDCTs and stores them
// interleaved the way a single window group is coded (§4.6.3.3): band b of
// window w at 8·off[b] + w·width(b). With decimated input each window has
// shortSamples/dec lines; the lines above are zero.
func (e *Encoder) transformShort(ch *channel) {
	var zb [2 * shortSamples]float64
	var xb [shortSamples]float64
	sn := e.shortN
	z, x := zb[:2*sn], xb[:]
	off := e.shortOff
	win := e.win.short[:len(z)]
	for w := 0; w < shortWindows; w++ {
		h := ch.hist[e.shortSt+w*sn:]
		h = h[:len(z)]
		for i := range z {
			z[i] = h[i] * win[i]
		}
		e.mdctShort.transform(z, x[:sn])
		for b := 0; b+1 < len(off); b++ {
			width := int(off[b+1] - off[b])
			dst := ch.spec[8*int(off[b])+w*width:]
			copy(dst[:width], x[off[b]:off[b+1]]) // x[sn:] stays zero
		}
	}
}
