package aac

import (
	"errors"
	"fmt"
	"math"
)

// ErrUnsupportedStream is returned by Decoder for access units outside the
// subset it decodes, and for malformed ones.
var ErrUnsupportedStream = errors.New("aac: access unit not decodable by the subset decoder")

// Decoder is a strict decoder for the subset of AAC-LC that Encoder
// produces: long windows only, one single_channel_element (mono) or one
// channel_pair_element with a common window and optional mid/side (stereo),
// no intensity, pulse, TNS or gain control. It checks that every bit of an access unit is
// accounted for. It exists to verify encoder output without external tools
// (tests of this and other packages); it is not a general AAC decoder.
type Decoder struct {
	nch   int
	swb   []uint16 // long-window band offsets
	swbS  []uint16 // short-window band offsets
	trees [12][]treeNode
	sf    []treeNode
	m, ms *mdct
	prev  [][]float64
	win   *windows
	y     []float64
	u, us []float64
}

type treeNode struct {
	child [2]int32
	leaf  int32
}

func buildTree(code []uint32, length []uint8) []treeNode {
	nodes := []treeNode{{leaf: -1}}
	for i, l := range length {
		cur := 0
		for bit := int(l) - 1; bit >= 0; bit-- {
			b := code[i] >> uint(bit) & 1
			if nodes[cur].child[b] == 0 {
				nodes = append(nodes, treeNode{leaf: -1})
				nodes[cur].child[b] = int32(len(nodes) - 1)
			}
			cur = int(nodes[cur].child[b])
		}
		nodes[cur].leaf = int32(i)
	}
	return nodes
}

// NewDecoder returns a Decoder for a stream of the given sample rate and
// channel count (1 or 2).
func NewDecoder(rate, nch int) (*Decoder, error) {
	d := &Decoder{nch: nch, m: newMDCT(FrameSamples), ms: newMDCT(shortSamples), win: makeWindows(1),
		y: make([]float64, 2*FrameSamples), u: make([]float64, FrameSamples), us: make([]float64, shortSamples)}
	for i, r := range sampleRates {
		if r.rate == rate {
			d.swb = r.swb
			d.swbS = shortBands(i)
		}
	}
	if d.swb == nil || nch < 1 || nch > 2 {
		return nil, fmt.Errorf("%w: %d Hz, %d channels", ErrConfig, rate, nch)
	}
	d.sf = buildTree(sfCode[:], sfLen[:])
	for n := 1; n <= 11; n++ {
		cb := codebooks[n]
		code := make([]uint32, len(cb.code))
		for i, v := range cb.code {
			code[i] = uint32(v)
		}
		d.trees[n] = buildTree(code, cb.length)
	}
	for range nch {
		d.prev = append(d.prev, make([]float64, FrameSamples))
	}
	return d, nil
}

var errSyntax = ErrUnsupportedStream

func (d *Decoder) huff(r *bitReader, tree []treeNode) (int, error) {
	cur := 0
	for tree[cur].leaf < 0 {
		if r.pos > 8*len(r.b) {
			return 0, fmt.Errorf("%w: read past end", errSyntax)
		}
		cur = int(tree[cur].child[r.bit()])
		if cur == 0 {
			return 0, fmt.Errorf("%w: invalid codeword", errSyntax)
		}
	}
	return int(tree[cur].leaf), nil
}

// Decode decodes one raw access unit and appends its 1024 samples per
// channel, interleaved, to dst.
func (d *Decoder) Decode(dst []int16, au []byte) ([]int16, error) {
	pcm, err := d.decode(au)
	if err != nil {
		return dst, err
	}
	for s := 0; s < FrameSamples; s++ {
		for c := 0; c < d.nch; c++ {
			v := math.Round(pcm[c][s])
			if math.IsNaN(v) {
				return dst, fmt.Errorf("%w: NaN", errSyntax)
			}
			dst = append(dst, int16(math.Max(-32768, math.Min(32767, v))))
		}
	}
	return dst, nil
}

// icsInfo is what ics_info says (§4.4.2.1).
type icsInfo struct {
	seq    int
	maxSfb int
	groups []int // window_group_length; one group of one window for long
}

// channelData is one decoded channel: its info and spectrum, in coding
// order (short windows interleaved per group).
type channelData struct {
	info icsInfo
	spec []float64
}

// bandRange returns the coefficient range of band b in group g, in coding
// order.
func (d *Decoder) bandRange(info *icsInfo, g, b int) (int, int) {
	if info.seq != eightShort {
		return int(d.swb[b]), int(d.swb[b+1])
	}
	start := 0
	for k := 0; k < g; k++ {
		start += info.groups[k] * shortSamples
	}
	l := info.groups[g]
	return start + l*int(d.swbS[b]), start + l*int(d.swbS[b+1])
}

// decode parses one access unit and returns each channel's 1024 samples.
func (d *Decoder) decode(au []byte) ([][]float64, error) {
	r := &bitReader{b: au}
	var chans []channelData
	for {
		id := r.bits(3)
		if id == idEND {
			break
		}
		r.bits(4) // tag
		switch id {
		case idSCE:
			if d.nch != 1 || len(chans) != 0 {
				return nil, fmt.Errorf("%w: unexpected SCE", errSyntax)
			}
			c, err := d.ics(r, nil)
			if err != nil {
				return nil, err
			}
			chans = append(chans, c)
		case idCPE:
			if d.nch != 2 || len(chans) != 0 || r.bit() != 1 {
				return nil, fmt.Errorf("%w: unexpected CPE or no common window", errSyntax)
			}
			info, err := d.icsInfo(r)
			if err != nil {
				return nil, err
			}
			ms := make([][]bool, len(info.groups))
			mask := r.bits(2)
			if mask == 3 {
				return nil, fmt.Errorf("%w: reserved ms_mask_present", errSyntax)
			}
			for g := range ms {
				ms[g] = make([]bool, info.maxSfb)
				for b := range ms[g] {
					switch mask {
					case 1:
						ms[g][b] = r.bit() == 1
					case 2:
						ms[g][b] = true
					}
				}
			}
			var pair [2]channelData
			for k := range 2 {
				if pair[k], err = d.ics(r, &info); err != nil {
					return nil, err
				}
			}
			for g := range ms {
				for b, on := range ms[g] {
					if !on {
						continue
					}
					lo, hi := d.bandRange(&info, g, b)
					for i := lo; i < hi; i++ {
						m, s := pair[0].spec[i], pair[1].spec[i]
						pair[0].spec[i], pair[1].spec[i] = m+s, m-s
					}
				}
			}
			chans = append(chans, pair[0], pair[1])
		default:
			return nil, fmt.Errorf("%w: element id %d", errSyntax, id)
		}
		if r.pos > 8*len(au) {
			return nil, fmt.Errorf("%w: read past end", errSyntax)
		}
	}
	if pad := 8*len(au) - r.pos; pad < 0 || pad > 7 {
		return nil, fmt.Errorf("%w: %d bits left after ID_END", errSyntax, pad)
	}
	for r.pos < 8*len(au) {
		if r.bit() != 0 {
			return nil, fmt.Errorf("%w: non-zero alignment bits", errSyntax)
		}
	}
	if len(chans) != d.nch {
		return nil, fmt.Errorf("%w: %d channels decoded", errSyntax, len(chans))
	}
	out := make([][]float64, d.nch)
	for c := range chans {
		out[c] = d.synthesize(c, &chans[c])
	}
	return out, nil
}

// synthesize runs the filterbank (§4.6.11.3.2: x = 2/N·Σ X·cos(...), window,
// overlap-add) for one channel.
func (d *Decoder) synthesize(c int, ch *channelData) []float64 {
	y := d.y
	clear(y)
	if ch.info.seq == eightShort {
		// De-interleave: band b of window k of group g.
		var wins [shortWindows][shortSamples]float64
		w0 := 0
		for g, l := range ch.info.groups {
			for b := 0; b+1 < len(d.swbS); b++ {
				lo, _ := d.bandRange(&ch.info, g, b)
				width := int(d.swbS[b+1] - d.swbS[b])
				for k := 0; k < l; k++ {
					copy(wins[w0+k][d.swbS[b]:d.swbS[b+1]], ch.spec[lo+k*width:lo+(k+1)*width])
				}
			}
			w0 += l
		}
		for w := range wins {
			imdct(d.ms, wins[w][:], d.us, y[shortStart+w*shortSamples:shortStart+w*shortSamples+2*shortSamples], d.win.short[:])
		}
	} else {
		win := d.win.long[:]
		switch ch.info.seq {
		case longStart:
			win = d.win.start[:]
		case longStop:
			win = d.win.stop[:]
		}
		imdct(d.m, ch.spec, d.u, y, win)
	}
	pcm := make([]float64, FrameSamples)
	for i := range pcm {
		pcm[i] = d.prev[c][i] + y[i]
		d.prev[c][i] = y[FrameSamples+i]
	}
	return pcm
}

// imdct adds the windowed inverse MDCT of X (n lines) to y (2n samples).
func imdct(m *mdct, X, u, y, win []float64) {
	n := m.n
	h := n / 2
	m.dct4(X[:n], u)
	scale := 2.0 / float64(2*n)
	for i := 0; i < h; i++ {
		a, b := u[i]*scale, u[h+i]*scale
		y[3*h-1-i] += -a * win[3*h-1-i]
		y[3*h+i] += -a * win[3*h+i]
		y[i] += b * win[i]
		y[n-1-i] += -b * win[n-1-i]
	}
}

func (d *Decoder) icsInfo(r *bitReader) (icsInfo, error) {
	var info icsInfo
	if r.bit() != 0 {
		return info, fmt.Errorf("%w: ics_reserved_bit", errSyntax)
	}
	info.seq = int(r.bits(2))
	if r.bit() != 0 {
		return info, fmt.Errorf("%w: KBD window shape not supported", errSyntax)
	}
	if info.seq == eightShort {
		info.maxSfb = int(r.bits(4))
		if info.maxSfb > len(d.swbS)-1 {
			return info, fmt.Errorf("%w: max_sfb %d", errSyntax, info.maxSfb)
		}
		grouping := r.bits(7)
		info.groups = []int{1}
		for k := 6; k >= 0; k-- {
			if grouping>>uint(k)&1 == 1 {
				info.groups[len(info.groups)-1]++
			} else {
				info.groups = append(info.groups, 1)
			}
		}
		return info, nil
	}
	info.maxSfb = int(r.bits(6))
	if info.maxSfb > len(d.swb)-1 {
		return info, fmt.Errorf("%w: max_sfb %d", errSyntax, info.maxSfb)
	}
	if r.bit() != 0 {
		return info, fmt.Errorf("%w: predictor_data_present", errSyntax)
	}
	info.groups = []int{1}
	return info, nil
}

// ics parses individual_channel_stream; common is the shared ics_info of a
// channel pair, nil for a single channel.
func (d *Decoder) ics(r *bitReader, common *icsInfo) (channelData, error) {
	var ch channelData
	gg := int(r.bits(8))
	if common == nil {
		info, err := d.icsInfo(r)
		if err != nil {
			return ch, err
		}
		ch.info = info
	} else {
		ch.info = *common
	}
	info := &ch.info
	lb, esc := sectionLenBits(info.seq == eightShort)
	cbs := make([][]int, len(info.groups))
	for g := range cbs {
		cbs[g] = make([]int, info.maxSfb)
		for k := 0; k < info.maxSfb; {
			cb := int(r.bits(4))
			if cb > 11 {
				return ch, fmt.Errorf("%w: codebook %d", errSyntax, cb)
			}
			n := 0
			for {
				inc := int(r.bits(int(lb)))
				n += inc
				if inc != esc {
					break
				}
				if r.pos > 8*len(r.b) {
					return ch, fmt.Errorf("%w: read past end", errSyntax)
				}
			}
			if n == 0 || k+n > info.maxSfb {
				return ch, fmt.Errorf("%w: bad section length", errSyntax)
			}
			for i := k; i < k+n; i++ {
				cbs[g][i] = cb
			}
			k += n
		}
	}
	sfs := make([][]int, len(info.groups))
	sf := gg
	for g := range sfs {
		sfs[g] = make([]int, info.maxSfb)
		for b, cb := range cbs[g] {
			if cb == zeroHCB {
				continue
			}
			v, err := d.huff(r, d.sf)
			if err != nil {
				return ch, err
			}
			sf += v - 60
			if sf < 0 || sf > 255 {
				return ch, fmt.Errorf("%w: scalefactor %d", errSyntax, sf)
			}
			sfs[g][b] = sf
		}
	}
	if r.bits(3) != 0 {
		return ch, fmt.Errorf("%w: pulse/tns/gain control present", errSyntax)
	}
	ch.spec = make([]float64, FrameSamples)
	for g := range cbs {
		for b, cbn := range cbs[g] {
			if cbn == zeroHCB {
				continue
			}
			cb := codebooks[cbn]
			gain := math.Pow(2, 0.25*float64(sfs[g][b]-sfOffset))
			lo, hi := d.bandRange(info, g, b)
			for i := lo; i < hi; i += cb.dim {
				idx, err := d.huff(r, d.trees[cbn])
				if err != nil {
					return ch, err
				}
				var vals [4]int
				for k := cb.dim - 1; k >= 0; k-- {
					vals[k] = idx%cb.mod - cb.off
					idx /= cb.mod
				}
				if cb.unsigned {
					for k := 0; k < cb.dim; k++ {
						if vals[k] != 0 && r.bit() == 1 {
							vals[k] = -vals[k]
						}
					}
				}
				if cbn == escHCB {
					for k := 0; k < 2; k++ {
						a := vals[k]
						if a != escFlag && a != -escFlag {
							continue
						}
						n := 4
						for r.bit() == 1 {
							n++
							if n > 12 {
								return ch, fmt.Errorf("%w: escape too long", errSyntax)
							}
						}
						v := 1<<n + int(r.bits(n))
						if a < 0 {
							v = -v
						}
						vals[k] = v
					}
				}
				for k := 0; k < cb.dim; k++ {
					v := float64(vals[k])
					ch.spec[i+k] = math.Copysign(math.Pow(math.Abs(v), 4.0/3.0), v) * gain
				}
			}
		}
	}
	return ch, nil
}

// bitReader reads MSB-first; past the end it returns zeros.
type bitReader struct {
	b   []byte
	pos int
}

func (r *bitReader) bit() uint32 {
	if r.pos >= 8*len(r.b) {
		r.pos++
		return 0
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v
}

func (r *bitReader) bits(n int) uint32 {
	var v uint32
	for range n {
		v = v<<1 | r.bit()
	}
	return v
}
