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
	swb   []uint16
	trees [12][]treeNode
	sf    []treeNode
	m     *mdct
	prev  [][]float64
	win   []float64
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
	d := &Decoder{nch: nch, m: newMDCT(FrameSamples)}
	for _, r := range sampleRates {
		if r.rate == rate {
			d.swb = r.swb
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
	d.win = make([]float64, 2*FrameSamples)
	for i := range d.win {
		d.win[i] = sinWindow(i)
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

// decode parses one access unit and returns each channel's 1024 samples.
func (d *Decoder) decode(au []byte) ([][]float64, error) {
	r := &bitReader{b: au}
	var specs [][]float64
	for {
		id := r.bits(3)
		if id == idEND {
			break
		}
		r.bits(4) // tag
		switch id {
		case idSCE:
			if d.nch != 1 {
				return nil, fmt.Errorf("%w: SCE in a stereo stream", errSyntax)
			}
			s, err := d.ics(r, -1)
			if err != nil {
				return nil, err
			}
			specs = append(specs, s)
		case idCPE:
			if d.nch != 2 || r.bit() != 1 {
				return nil, fmt.Errorf("%w: CPE without common window", errSyntax)
			}
			maxSfb, err := d.icsInfo(r)
			if err != nil {
				return nil, err
			}
			ms := make([]bool, maxSfb)
			switch r.bits(2) {
			case 0:
			case 1:
				for b := range ms {
					ms[b] = r.bit() == 1
				}
			case 2:
				for b := range ms {
					ms[b] = true
				}
			default:
				return nil, fmt.Errorf("%w: reserved ms_mask_present", errSyntax)
			}
			var pair [2][]float64
			for k := range 2 {
				s, err := d.ics(r, maxSfb)
				if err != nil {
					return nil, err
				}
				pair[k] = s
			}
			for b, on := range ms {
				if !on {
					continue
				}
				for i := d.swb[b]; i < d.swb[b+1]; i++ {
					m, s := pair[0][i], pair[1][i]
					pair[0][i], pair[1][i] = m+s, m-s
				}
			}
			specs = append(specs, pair[0], pair[1])
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
	if len(specs) != d.nch {
		return nil, fmt.Errorf("%w: %d channels decoded", errSyntax, len(specs))
	}
	// Synthesis: IMDCT (spec §4.6.11.3.2: x = 2/N·Σ X·cos(...)), window,
	// overlap-add.
	out := make([][]float64, d.nch)
	u := make([]float64, FrameSamples)
	y := make([]float64, 2*FrameSamples)
	n, h := FrameSamples, FrameSamples/2
	for c, X := range specs {
		d.m.dct4(X, u)
		for i := range u {
			u[i] *= 2.0 / (2 * FrameSamples)
		}
		for i := 0; i < h; i++ {
			y[3*h-1-i] = -u[i]
			y[3*h+i] = -u[i]
			y[i] = u[h+i]
			y[n-1-i] = -u[h+i]
		}
		pcm := make([]float64, FrameSamples)
		for i := 0; i < n; i++ {
			pcm[i] = d.prev[c][i] + y[i]*d.win[i]
			d.prev[c][i] = y[n+i] * d.win[n+i]
		}
		out[c] = pcm
	}
	return out, nil
}

func (d *Decoder) icsInfo(r *bitReader) (int, error) {
	if r.bit() != 0 {
		return 0, fmt.Errorf("%w: ics_reserved_bit", errSyntax)
	}
	if ws := r.bits(2); ws != 0 {
		return 0, fmt.Errorf("%w: window_sequence %d", errSyntax, ws)
	}
	r.bit() // window_shape
	maxSfb := int(r.bits(6))
	if maxSfb > len(d.swb)-1 {
		return 0, fmt.Errorf("%w: max_sfb %d", errSyntax, maxSfb)
	}
	if r.bit() != 0 {
		return 0, fmt.Errorf("%w: predictor_data_present", errSyntax)
	}
	return maxSfb, nil
}

func (d *Decoder) ics(r *bitReader, maxSfb int) ([]float64, error) {
	gg := int(r.bits(8))
	if maxSfb < 0 {
		var err error
		if maxSfb, err = d.icsInfo(r); err != nil {
			return nil, err
		}
	}
	cbs := make([]int, maxSfb)
	for k := 0; k < maxSfb; {
		cb := int(r.bits(4))
		if cb > 11 {
			return nil, fmt.Errorf("%w: codebook %d", errSyntax, cb)
		}
		n := 0
		for {
			inc := int(r.bits(5))
			n += inc
			if inc != 31 {
				break
			}
		}
		if n == 0 && r.pos > 8*len(r.b) {
			return nil, fmt.Errorf("%w: read past end", errSyntax)
		}
		if k+n > maxSfb {
			return nil, fmt.Errorf("%w: section past max_sfb", errSyntax)
		}
		for i := k; i < k+n; i++ {
			cbs[i] = cb
		}
		k += n
		if n == 0 {
			return nil, fmt.Errorf("%w: empty section", errSyntax)
		}
	}
	sfs := make([]int, maxSfb)
	sf := gg
	for b, cb := range cbs {
		if cb == zeroHCB {
			continue
		}
		v, err := d.huff(r, d.sf)
		if err != nil {
			return nil, err
		}
		sf += v - 60
		if sf < 0 || sf > 255 {
			return nil, fmt.Errorf("%w: scalefactor %d", errSyntax, sf)
		}
		sfs[b] = sf
	}
	if r.bits(3) != 0 {
		return nil, fmt.Errorf("%w: pulse/tns/gain control present", errSyntax)
	}
	spec := make([]float64, FrameSamples)
	for b, cbn := range cbs {
		if cbn == zeroHCB {
			continue
		}
		cb := codebooks[cbn]
		gain := math.Pow(2, 0.25*float64(sfs[b]-sfOffset))
		for i := int(d.swb[b]); i < int(d.swb[b+1]); i += cb.dim {
			idx, err := d.huff(r, d.trees[cbn])
			if err != nil {
				return nil, err
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
							return nil, fmt.Errorf("%w: escape too long", errSyntax)
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
				spec[i+k] = math.Copysign(math.Pow(math.Abs(v), 4.0/3.0), v) * gain
			}
		}
	}
	return spec, nil
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
