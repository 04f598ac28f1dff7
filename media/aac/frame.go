package aac

import (
	"math"
	"slices"
)

// Syntactic element ids (§4.5.2.1, Table 4.85).
const (
	idSCE = 0
	idCPE = 1
	idEND = 7
)

const (
	sfOffset  = 100    // scalefactor of unit gain (§4.6.2.3.3: gain = 2^(0.25·(sf−100)))
	roundBias = 0.4054 // quantiser rounding (§4.6.2 informative encoder: nint(x^(3/4) − 0.0946))
	maxQuant  = 8191   // largest magnitude the escape codebook carries
)

// qScale[sf] = 2^(−3/16·(sf−100)): the factor that maps |x|^(3/4) to the
// quantiser's domain at scalefactor sf.
var qScale = func() (t [256]float64) {
	for sf := range t {
		t[sf] = math.Pow(2, -0.1875*float64(sf-sfOffset))
	}
	return t
}()

// encodeFrame encodes the 2048 samples in each channel's history and shifts
// the history by one frame.
func (e *Encoder) encodeFrame() []byte {
	e.chooseSequence()
	dup := len(e.ch) == 2 && slices.Equal(e.ch[0].hist[:2*e.blk], e.ch[1].hist[:2*e.blk])
	for c, ch := range e.ch {
		if c == 1 && dup {
			// A mono source duplicated into both channels: one transform.
			ch.spec = e.ch[0].spec
		} else {
			e.transform(ch)
		}
	}
	if len(e.ch) == 2 {
		e.midSide()
	}
	for _, ch := range e.ch {
		e.analyse(ch)
		e.sfOffsets(ch)
	}

	budget := e.meanBits + e.reservoir/2
	if limit := 6144 * len(e.ch); budget > limit {
		budget = limit
	}
	lo := e.searchGain(budget)
	if lo == e.keptG {
		e.storeKept() // the choices of the evaluation that found it
	} else {
		e.quantiseFrame(lo) // leave the chosen quantisation in place
	}
	e.lastG = lo
	au := e.write()
	used := 8 * len(au)
	e.reservoir += e.meanBits - used
	e.reservoir = max(0, min(e.reservoir, e.maxReservoir))
	return au
}

// searchGain returns the finest (smallest) global scalefactor whose frame
// fits budget bits, 255 if none does. Frame size falls as the scalefactor
// rises, close to linearly over a few steps, so the search starts at the
// previous frame's value and steps by the secant: from one point with the
// slope of the previous frame, between the two ends of the bracket once
// there are two (halving instead when the secant would move the same end
// twice in a row). Mostly two or three evaluations.
func (e *Encoder) searchGain(budget int) int {
	lo, hi := 0, 255 // the answer is in [lo, hi]
	g := e.lastG
	if g <= 0 {
		g = sfOffset
	}
	slope := e.slope // bits saved per step up
	if slope <= 0 {
		slope = 30
	}
	// The bracket's evaluated ends: fG fits (fB bits), nG does not.
	fG, fB, nG, nB := -1, 0, -1, 0
	e.keptG = -1
	lastEnd := 0 // which end the last secant step replaced (+1 fit, −1 not)
	for {
		b := e.frameBits(g)
		end := -1
		if b <= budget {
			hi, fG, fB, end = g, g, b, 1
			e.keep(g)
		} else {
			lo, nG, nB = g+1, g, b
		}
		if lo >= hi {
			break
		}
		var next int
		switch {
		case fG >= 0 && nG >= 0 && end == lastEnd:
			next = (lo + hi) / 2
			lastEnd = 0
		case fG >= 0 && nG >= 0:
			// The secant through both ends, rounded up to the first
			// scalefactor it says fits.
			slope = float64(nB-fB) / float64(fG-nG)
			next = nG + int(math.Ceil(float64(nB-budget)/slope))
			lastEnd = end
		default:
			next = g + int(math.Ceil(float64(b-budget)/slope))
		}
		g = min(max(next, lo), hi-1)
	}
	if fG >= 0 && nG >= 0 && fB < nB {
		e.slope = float64(nB-fB) / float64(fG-nG)
	}
	return lo
}

// transform windows and transforms one channel for the current window
// sequence.
func (e *Encoder) transform(ch *channel) {
	var w []float64
	switch e.seq {
	case eightShort:
		e.transformShort(ch)
		return
	case longStart:
		w = e.win.start[:]
	case longStop:
		w = e.win.stop[:]
	default:
		w = e.win.long[:]
	}
	z := e.z[:2*e.blk]
	h := ch.hist[:len(z)]
	w = w[:len(z)]
	for i := range z {
		z[i] = h[i] * w[i]
	}
	e.mdct.transform(z, ch.spec[:e.blk])
	if e.dec > 1 {
		clear(ch.spec[e.blk:]) // not carried by decimated input (and left over from short frames)
	}
}

// midSide decides per band whether the pair is coded as mid/side
// (§4.6.8.1: l = m + s, r = m − s) and converts those bands: when the side
// signal holds little energy (correlated channels, or a mono source
// duplicated) it quantises to almost nothing and the pair costs about what
// one channel does.
func (e *Encoder) midSide() {
	l, r := &e.ch[0].spec, &e.ch[1].spec
	e.msBands = 0
	for b := 0; b < e.nb; b++ {
		var em, es float64
		lo, hi := e.swb[b], e.swb[b+1]
		for i := lo; i < hi; i++ {
			m := (l[i] + r[i]) * 0.5
			d := (l[i] - r[i]) * 0.5
			em += m * m
			es += d * d
		}
		// Side energy below a quarter of the mid energy: M/S pays off.
		e.msUsed[b] = es <= 0.25*em && em > 0
		if !e.msUsed[b] {
			continue
		}
		e.msBands++
		for i := lo; i < hi; i++ {
			l[i], r[i] = (l[i]+r[i])*0.5, (l[i]-r[i])*0.5
		}
	}
}

// msMask returns ms_mask_present for the current decision and maxSfb:
// 0 none, 1 per band, 2 all bands.
func (e *Encoder) msMask(maxSfb int) int {
	if len(e.ch) != 2 || e.msBands == 0 {
		return 0
	}
	all, any := true, false
	for b := 0; b < maxSfb; b++ {
		all = all && e.msUsed[b]
		any = any || e.msUsed[b]
	}
	switch {
	case !any:
		return 0
	case all:
		return 2
	}
	return 1
}

// analyse prepares one channel's per-band quantiser inputs: the largest
// |x|^(3/4) of each band and the smallest scalefactor that keeps it codable.
// The per-line |x|^(3/4) are computed when a band is first quantised to
// something other than zero (most bands of band-limited input never are).
func (e *Encoder) analyse(ch *channel) {
	for b := 0; b < e.nb; b++ {
		ch.xpReady[b] = false
		a, en := 0.0, 0.0
		for _, v := range ch.spec[e.swb[b]:e.swb[b+1]] {
			a = max(a, math.Abs(v))
			en += v * v
		}
		m := math.Sqrt(a * math.Sqrt(a)) // a^(3/4)
		ch.bandRMS[b] = math.Sqrt(en / float64(e.swb[b+1]-e.swb[b]))
		ch.bandMax[b] = m
		ch.sfMin[b] = 0
		if m*qScale[0]+roundBias > maxQuant {
			// The smallest sf with m·qScale[sf] + 0.4054 ≤ 8191, that is
			// sf ≥ 100 + 16/3·log2(m / (8191 − 0.4054)), by bisection
			// (qScale falls with sf).
			lo, hi := 1, 255
			for lo < hi {
				mid := (lo + hi) / 2
				if m*qScale[mid]+roundBias <= maxQuant {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			ch.sfMin[b] = lo
		}
	}
}

// sfOffsets spreads the scalefactors around the global one so that the
// quantisation noise is about equal in every band (the power-law quantiser
// makes the step in the signal domain grow as |x|^(1/4), so louder bands
// get finer scalefactors).
func (e *Encoder) sfOffsets(ch *channel) {
	ref := 0.0
	for b := 0; b < e.nb; b++ {
		ref = max(ref, ch.bandRMS[b])
	}
	for b := 0; b < e.nb; b++ {
		rms := ch.bandRMS[b]
		if rms <= 0 || ref <= 0 {
			ch.sfOff[b] = 0
			continue
		}
		// round(0.75·log2(ref/rms)), at most 40: the number of
		// thresholds ref/rms reaches.
		lo, hi := 0, len(sfOffThr)
		for lo < hi {
			mid := (lo + hi) / 2
			if ref >= sfOffThr[mid]*rms {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		ch.sfOff[b] = lo
	}
}

// sfOffThr[k] = 2^((k+0.5)/0.75): the ratio of RMS values from which
// round(0.75·log2(ratio)) reaches k+1 (sfOffsets).
var sfOffThr = func() (t [40]float64) {
	for k := range t {
		t[k] = math.Pow(2, (float64(k)+0.5)/0.75)
	}
	return t
}()

// frameBits returns the size of the frame in bits at global scalefactor g,
// choosing scalefactors and codebooks but not storing the quantised lines
// (what the rate loop needs).
func (e *Encoder) frameBits(g int) int { return e.evalFrame(g, false) }

// keep saves the scalefactors and codebooks just evaluated at g.
func (e *Encoder) keep(g int) {
	e.keptG = g
	for _, ch := range e.ch {
		ch.keepSf, ch.keepCb, ch.keepMaxSfb = ch.sf, ch.cb, ch.maxSfb
	}
}

// storeKept restores what keep saved and quantises the lines for writing
// (what quantiseFrame would give at that scalefactor, without sizing the
// frame again).
func (e *Encoder) storeKept() {
	for _, ch := range e.ch {
		ch.sf, ch.cb, ch.maxSfb = ch.keepSf, ch.keepCb, ch.keepMaxSfb
		for b := 0; b < e.nb; b++ {
			q := ch.q[e.swb[b]:e.swb[b+1]]
			if ch.cb[b] == zeroHCB {
				clear(q)
				continue
			}
			scale := qScale[ch.sf[b]]
			xp, spec := ch.xp[e.swb[b]:e.swb[b+1]], ch.spec[e.swb[b]:e.swb[b+1]]
			xp, spec = xp[:len(q)], spec[:len(q)]
			for i, v := range xp {
				qi := min(int32(v*scale+roundBias), maxQuant)
				neg := -int32(math.Float64bits(spec[i]) >> 63)
				q[i] = (qi ^ neg) - neg
			}
		}
		clear(ch.q[e.swb[e.nb]:])
	}
}

// quantiseFrame quantises every channel at global scalefactor g for writing.
func (e *Encoder) quantiseFrame(g int) { e.evalFrame(g, true) }

// evalFrame sizes the frame at global scalefactor g; with store, the
// quantised lines are kept in each channel's q for writing. Both ways give
// the same sizes, scalefactors and codebooks.
func (e *Encoder) evalFrame(g int, store bool) int {
	e.evalG = g
	bits := 3 + 4 + 3 // element id + tag, ID_END
	if len(e.ch) == 2 {
		bits += 1 + e.icsInfoBits() + 2 // common_window, ics_info, ms_mask_present (+ flags below)
	} else {
		bits += e.icsInfoBits()
	}
	maxSfb := 0
	for _, ch := range e.ch {
		bits += e.quantise(ch, g, store)
		maxSfb = max(maxSfb, ch.maxSfb)
	}
	if e.msMask(maxSfb) == 1 {
		bits += maxSfb
	}
	for _, ch := range e.ch {
		ch.maxSfb = maxSfb
		bits += 8 + 3 + sectionBits(ch.cb[:maxSfb], e.seq == eightShort) + sfBits(ch.sf[:maxSfb], ch.cb[:maxSfb])
	}
	return bits + 7 // byte alignment, at most
}

// quantise quantises one channel at global scalefactor g and returns its
// spectral bits; it sets sf, cb and maxSfb, and with store the lines in q.
func (e *Encoder) quantise(ch *channel, g int, store bool) int {
	bits := 0
	ch.maxSfb = 0
	for b := 0; b < e.nb; b++ {
		sf := min(255, max(g+ch.sfOff[b], ch.sfMin[b], 0))
		ch.sf[b] = sf
		scale := qScale[sf]
		lo, hi := e.swb[b], e.swb[b+1]
		if ch.bandMax[b]*scale+roundBias < 1 {
			if store {
				clear(ch.q[lo:hi])
			}
			ch.cb[b] = zeroHCB
			continue
		}
		xp, spec := ch.xp[lo:hi], ch.spec[lo:hi]
		if !ch.xpReady[b] {
			for i, v := range spec {
				a := math.Abs(v)
				xp[i] = math.Sqrt(a * math.Sqrt(a)) // a^(3/4)
			}
			ch.xpReady[b] = true
		}
		// The largest quantised magnitude is that of the band's largest
		// |x|^(3/4) (the quantiser is monotonic): it picks the codebooks.
		cb := firstBook(int(min(int32(ch.bandMax[b]*scale+roundBias), maxQuant)))
		if store {
			q := ch.q[lo:hi]
			q = q[:len(xp)]
			spec = spec[:len(xp)]
			for i, v := range xp {
				qi := min(int32(v*scale+roundBias), maxQuant)
				// Negate without a branch (signs are random): neg is −1
				// for a negative line, 0 otherwise.
				neg := -int32(math.Float64bits(spec[i]) >> 63)
				q[i] = (qi ^ neg) - neg
			}
		}
		best, next := countBand(xp, spec, scale, cb)
		if cb != escHCB && next < best {
			best, cb = next, cb+1
		}
		ch.cb[b] = cb
		bits += best
		ch.maxSfb = b + 1
	}
	for b := e.nb; b < len(e.swb)-1; b++ {
		ch.cb[b] = zeroHCB
	}
	if store {
		clear(ch.q[e.swb[e.nb]:])
	}
	// Keep consecutive coded scalefactors within ±60 (the scalefactor
	// codebook's range) by raising the smaller ones: a coarser step only
	// shrinks the quantised values. (Nothing to do when all coded
	// scalefactors lie within 60 of each other.)
	sfLo, sfHi := 255, 0
	for b := 0; b < ch.maxSfb; b++ {
		if ch.cb[b] != zeroHCB {
			sfLo, sfHi = min(sfLo, ch.sf[b]), max(sfHi, ch.sf[b])
		}
	}
	for pass := 0; pass < 2 && sfHi-sfLo > 60; pass++ {
		last := -1
		for b := 0; b < ch.maxSfb; b++ {
			if ch.cb[b] == zeroHCB {
				continue
			}
			if last >= 0 && ch.sf[b] < ch.sf[last]-60 {
				e.requantise(ch, b, ch.sf[last]-60, store)
			}
			last = b
		}
		last = -1
		for b := ch.maxSfb - 1; b >= 0; b-- {
			if ch.cb[b] == zeroHCB {
				continue
			}
			if last >= 0 && ch.sf[b] < ch.sf[last]-60 {
				e.requantise(ch, b, ch.sf[last]-60, store)
			}
			last = b
		}
	}
	return bits
}

// countBand returns the bits that the band whose |x|^(3/4) are xp (signs in
// spec) costs at scale with codebook cb, and with cb+1 (zero for the
// escape codebook), without storing the quantised values: the lines are
// quantised as quantise does and at most lav of cb (cb from firstBook).
func countBand(xp, spec []float64, scale float64, cb int) (a, b int) {
	spec = spec[:len(xp)]
	ta := codebooks[cb].bits
	var tb []uint8
	if cb != escHCB {
		tb = codebooks[cb+1].bits
		tb = tb[:len(ta)]
	}
	switch cb {
	case 1: // signed 4-tuples, |q| ≤ 1
		for i := 0; i+4 <= len(xp); i += 4 {
			idx := 0
			for k := i; k < i+4; k++ {
				v := int(xp[k]*scale + roundBias)
				neg := -int(math.Float64bits(spec[k]) >> 63)
				idx = idx*3 + (v ^ neg - neg) + 1
			}
			a += int(ta[idx])
			b += int(tb[idx])
		}
	case 3: // unsigned 4-tuples, q ≤ 2
		for i := 0; i+4 <= len(xp); i += 4 {
			idx := ((int(xp[i]*scale+roundBias)*3+int(xp[i+1]*scale+roundBias))*3+
				int(xp[i+2]*scale+roundBias))*3 + int(xp[i+3]*scale+roundBias)
			a += int(ta[idx])
			b += int(tb[idx])
		}
	case 5: // signed pairs, |q| ≤ 4
		for i := 0; i+2 <= len(xp); i += 2 {
			x := int(xp[i]*scale + roundBias)
			nx := -int(math.Float64bits(spec[i]) >> 63)
			y := int(xp[i+1]*scale + roundBias)
			ny := -int(math.Float64bits(spec[i+1]) >> 63)
			idx := (x^nx-nx+4)*9 + (y ^ ny - ny + 4)
			a += int(ta[idx])
			b += int(tb[idx])
		}
	case 7, 9: // unsigned pairs, q ≤ 7 or 12
		mod := codebooks[cb].mod
		for i := 0; i+2 <= len(xp); i += 2 {
			idx := int(xp[i]*scale+roundBias)*mod + int(xp[i+1]*scale+roundBias)
			a += int(ta[idx])
			b += int(tb[idx])
		}
	default: // escape codebook: pairs, 16 and up escaped
		ta = ta[:17*17]
		for i := 0; i+2 <= len(xp); i += 2 {
			x := min(int32(xp[i]*scale+roundBias), maxQuant)
			y := min(int32(xp[i+1]*scale+roundBias), maxQuant)
			a += int(ta[min(x, escFlag)*17+min(y, escFlag)]) + int(escLen[x>>4]) + int(escLen[y>>4])
		}
	}
	return a, b
}

// escLen[v>>4] is the length of the escape sequence of magnitude v (zero
// below 16, where there is none): it depends only on ⌊log2 v⌋.
var escLen = func() (t [maxQuant>>4 + 1]uint8) {
	for i := 1; i < len(t); i++ {
		t[i] = uint8(escBits(i << 4))
	}
	return t
}()

// requantise codes band b again at scalefactor sf (rare; the band's bit
// count is not re-added to the estimate, a coarser step never costs more).
func (e *Encoder) requantise(ch *channel, b, sf int, store bool) {
	ch.sf[b] = sf
	scale := qScale[sf]
	lo, hi := e.swb[b], e.swb[b+1]
	m := int32(ch.bandMax[b]*scale + roundBias)
	if store {
		for i := lo; i < hi; i++ {
			qi := int32(ch.xp[i]*scale + roundBias)
			if ch.spec[i] < 0 {
				qi = -qi
			}
			ch.q[i] = qi
		}
	}
	// Keep the codebook unless the band vanished; a zero band then still
	// has a valid (if wasteful) codebook, so its scalefactor stays coded.
	if m > int32(maxForBook(ch.cb[b])) {
		ch.cb[b] = escHCB
	}
}

// sectionLenBits returns sect_bits and its escape value (§4.6.3.2): 5 and
// 31 for long windows, 3 and 7 for short ones.
func sectionLenBits(short bool) (uint, int) {
	if short {
		return 3, 7
	}
	return 5, 31
}

// sectionBits returns the size of section_data: each run of one codebook
// costs 4 bits of codebook and sect_bits of length per escape value of
// bands.
func sectionBits(cb []int, short bool) int {
	lb, esc := sectionLenBits(short)
	bits := 0
	for i := 0; i < len(cb); {
		j := i + 1
		for j < len(cb) && cb[j] == cb[i] {
			j++
		}
		bits += 4 + int(lb)*((j-i)/esc+1)
		i = j
	}
	return bits
}

// icsInfoBits is the size of ics_info for the current sequence.
func (e *Encoder) icsInfoBits() int {
	if e.seq == eightShort {
		return 1 + 2 + 1 + 4 + 7
	}
	return 1 + 2 + 1 + 6 + 1
}

// sfBits returns the size of scale_factor_data: Huffman-coded differences
// between consecutive scalefactors of coded bands, the first relative to
// global_gain (which equals it).
func sfBits(sf, cb []int) int {
	bits := 0
	last := -1
	for b := range cb {
		if cb[b] == zeroHCB {
			continue
		}
		if last < 0 {
			last = sf[b]
		}
		bits += int(sfLen[sf[b]-last+60])
		last = sf[b]
	}
	return bits
}

// globalGain returns the scalefactor of the first coded band (or 0).
func globalGain(ch *channel) int {
	for b := 0; b < ch.maxSfb; b++ {
		if ch.cb[b] != zeroHCB {
			return ch.sf[b]
		}
	}
	return 0
}

// write emits the raw_data_block for the current quantisation.
func (e *Encoder) write() []byte {
	w := &e.w
	w.reset(w.buf)
	if len(e.ch) == 1 {
		w.put(idSCE, 3)
		w.put(0, 4) // element_instance_tag
		e.writeICS(e.ch[0], true)
	} else {
		w.put(idCPE, 3)
		w.put(0, 4)
		w.put(1, 1) // common_window
		e.writeICSInfo(e.ch[0].maxSfb)
		mask := e.msMask(e.ch[0].maxSfb)
		w.put(uint32(mask), 2) // ms_mask_present
		if mask == 1 {
			for b := 0; b < e.ch[0].maxSfb; b++ {
				if e.msUsed[b] {
					w.put(1, 1)
				} else {
					w.put(0, 1)
				}
			}
		}
		e.writeICS(e.ch[0], false)
		e.writeICS(e.ch[1], false)
	}
	w.put(idEND, 3)
	w.align()
	return append([]byte(nil), w.bytes()...)
}

// writeICSInfo writes ics_info (§4.4.2.1, Table 4.6) with the sine window
// shape; short frames form one group of all eight windows.
func (e *Encoder) writeICSInfo(maxSfb int) {
	w := &e.w
	w.put(0, 1) // ics_reserved_bit
	w.put(uint32(e.seq), 2)
	w.put(0, 1) // window_shape: sine
	if e.seq == eightShort {
		w.put(uint32(maxSfb), 4)
		w.put(0x7F, 7) // scale_factor_grouping: every window joins the first group
		return
	}
	w.put(uint32(maxSfb), 6)
	w.put(0, 1) // predictor_data_present
}

// writeICS writes individual_channel_stream.
func (e *Encoder) writeICS(ch *channel, withInfo bool) {
	w := &e.w
	gg := globalGain(ch)
	w.put(uint32(gg), 8)
	if withInfo {
		e.writeICSInfo(ch.maxSfb)
	}
	// section_data
	cb := ch.cb[:ch.maxSfb]
	for i := 0; i < len(cb); {
		j := i + 1
		for j < len(cb) && cb[j] == cb[i] {
			j++
		}
		w.put(uint32(cb[i]), 4)
		lb, esc := sectionLenBits(e.seq == eightShort)
		n := j - i
		for n >= esc {
			w.put(uint32(esc), lb)
			n -= esc
		}
		w.put(uint32(n), lb)
		i = j
	}
	// scale_factor_data
	last := gg
	for b, c := range cb {
		if c == zeroHCB {
			continue
		}
		d := ch.sf[b] - last + 60
		w.put(sfCode[d], uint(sfLen[d]))
		last = ch.sf[b]
	}
	w.put(0, 1) // pulse_data_present
	w.put(0, 1) // tns_data_present
	w.put(0, 1) // gain_control_data_present
	// spectral_data
	for b, c := range cb {
		if c == zeroHCB {
			continue
		}
		codebooks[c].write(w, ch.q[e.swb[b]:e.swb[b+1]])
	}
}
