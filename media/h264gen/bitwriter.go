package h264gen

// bitWriter writes an RBSP MSB-first, with Exp-Golomb codes (ITU-T H.264
// §9.1).
type bitWriter struct {
	buf  []byte
	cur  byte
	nbit uint
}

func (w *bitWriter) u(n uint, v uint32) {
	for i := int(n) - 1; i >= 0; i-- {
		w.cur = w.cur<<1 | byte(v>>uint(i)&1)
		w.nbit++
		if w.nbit == 8 {
			w.buf = append(w.buf, w.cur)
			w.cur, w.nbit = 0, 0
		}
	}
}

// ue writes an unsigned Exp-Golomb code.
func (w *bitWriter) ue(v uint32) {
	x := uint64(v) + 1
	n := uint(0)
	for x>>n > 1 {
		n++
	}
	w.u(n, 0)
	w.u(n+1, uint32(x))
}

// se writes a signed Exp-Golomb code.
func (w *bitWriter) se(v int32) {
	if v > 0 {
		w.ue(uint32(2*v - 1))
	} else {
		w.ue(uint32(-2 * v))
	}
}

// alignZero pads with zero bits to a byte boundary.
func (w *bitWriter) alignZero() {
	for w.nbit != 0 {
		w.u(1, 0)
	}
}

// trailing writes rbsp_trailing_bits: a one, then zeros to a byte boundary.
func (w *bitWriter) trailing() []byte {
	w.u(1, 1)
	w.alignZero()
	return w.buf
}

// nal wraps an RBSP into a NAL unit: header byte, then the payload with
// emulation prevention bytes (§7.4.1: 0x000000..0x000003 never appear).
func nal(header byte, rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/64+2)
	out = append(out, header)
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}
