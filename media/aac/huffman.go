package aac

import "math/bits"

// Spectral codebook numbers with a special meaning (ISO/IEC 14496-3 §4.6.3.2,
// Table 4.148).
const (
	zeroHCB = 0  // all lines of the band are zero, nothing coded
	escHCB  = 11 // codebook 11: values ≥ 16 use escape sequences
	escFlag = 16 // the value in codebook 11 that announces an escape
)

// codebook describes one spectral Huffman codebook (§4.6.3.3, Table 4.145).
type codebook struct {
	code     []uint16
	length   []uint8
	dim      int  // values per codeword: 4 or 2
	unsigned bool // magnitudes coded, sign bits follow
	lav      int  // largest absolute value (16 = escape for codebook 11)
	mod      int  // radix of the index: 2·lav+1 when signed, lav+1 when unsigned
	off      int  // added to a signed value to make it a digit: lav
	// bits[idx] = codeword length plus its sign bits (escape bits excluded).
	bits []uint8
}

var codebooks = makeCodebooks()

func makeCodebooks() [12]*codebook {
	var cbs [12]*codebook
	def := func(n int, code []uint16, length []uint8, dim int, unsigned bool, lav int) {
		cb := &codebook{code: code, length: length, dim: dim, unsigned: unsigned, lav: lav}
		if unsigned {
			cb.mod = lav + 1
		} else {
			cb.mod, cb.off = 2*lav+1, lav
		}
		cb.bits = make([]uint8, len(code))
		for idx := range code {
			b := length[idx]
			if unsigned {
				for v, k := idx, 0; k < dim; k++ {
					if v%cb.mod != 0 {
						b++
					}
					v /= cb.mod
				}
			}
			cb.bits[idx] = b
		}
		cbs[n] = cb
	}
	def(1, hcb1Code[:], hcb1Len[:], 4, false, 1)
	def(2, hcb2Code[:], hcb2Len[:], 4, false, 1)
	def(3, hcb3Code[:], hcb3Len[:], 4, true, 2)
	def(4, hcb4Code[:], hcb4Len[:], 4, true, 2)
	def(5, hcb5Code[:], hcb5Len[:], 2, false, 4)
	def(6, hcb6Code[:], hcb6Len[:], 2, false, 4)
	def(7, hcb7Code[:], hcb7Len[:], 2, true, 7)
	def(8, hcb8Code[:], hcb8Len[:], 2, true, 7)
	def(9, hcb9Code[:], hcb9Len[:], 2, true, 12)
	def(10, hcb10Code[:], hcb10Len[:], 2, true, 12)
	def(11, hcb11Code[:], hcb11Len[:], 2, true, 16)
	return cbs
}

// index returns the codeword index of the tuple q (signs dropped for
// unsigned codebooks, escapes clipped to 16).
func (cb *codebook) index(q []int32) int {
	if cb.dim == 2 && cb.unsigned {
		a, b := int(abs32(q[0])), int(abs32(q[1]))
		return min(a, cb.lav)*cb.mod + min(b, cb.lav)
	}
	idx := 0
	for k := 0; k < cb.dim; k++ {
		v := int(q[k])
		if cb.unsigned {
			if v < 0 {
				v = -v
			}
			if v > cb.lav {
				v = cb.lav
			}
		} else {
			v += cb.off
		}
		idx = idx*cb.mod + v
	}
	return idx
}

// escBits returns the length of the escape sequence for magnitude v ≥ 16
// (§4.6.3.3: N−4 ones, a zero, then N bits, N = ⌊log2 v⌋).
func escBits(v int) int {
	n := 4
	for v >= 2<<n {
		n++
	}
	return 2*n - 3
}

// count returns the bits needed to code q (a whole band) with cb.
func (cb *codebook) count(q []int32) int {
	bits := 0
	tab := cb.bits
	mod := int32(cb.mod)
	switch {
	case cb.dim == 4 && !cb.unsigned:
		for i := 0; i+4 <= len(q); i += 4 {
			idx := ((q[i]+1)*mod+q[i+1]+1)*mod*mod + (q[i+2]+1)*mod + q[i+3] + 1
			bits += int(tab[idx])
		}
	case cb.dim == 4:
		for i := 0; i+4 <= len(q); i += 4 {
			idx := ((abs32(q[i])*mod+abs32(q[i+1]))*mod+abs32(q[i+2]))*mod + abs32(q[i+3])
			bits += int(tab[idx])
		}
	case !cb.unsigned:
		off := int32(cb.off)
		for i := 0; i+2 <= len(q); i += 2 {
			bits += int(tab[(q[i]+off)*mod+q[i+1]+off])
		}
	case cb.lav != escFlag:
		for i := 0; i+2 <= len(q); i += 2 {
			bits += int(tab[abs32(q[i])*mod+abs32(q[i+1])])
		}
	default:
		for i := 0; i+2 <= len(q); i += 2 {
			a, b := abs32(q[i]), abs32(q[i+1])
			if a >= escFlag {
				bits += escBits(int(a))
				a = escFlag
			}
			if b >= escFlag {
				bits += escBits(int(b))
				b = escFlag
			}
			bits += int(tab[a*mod+b])
		}
	}
	return bits
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

// write codes q (a whole band) with cb: each codeword goes out with its
// sign bits in one put, each escape sequence in another.
func (cb *codebook) write(w *bitWriter, q []int32) {
	if cb.dim == 2 && cb.unsigned {
		cb.writePairs(w, q)
		return
	}
	for i := 0; i+cb.dim <= len(q); i += cb.dim {
		t := q[i : i+cb.dim]
		idx := cb.index(t)
		code, n := uint32(cb.code[idx]), uint(cb.length[idx])
		if !cb.unsigned {
			w.put(code, n)
			continue
		}
		for _, v := range t {
			if v != 0 {
				code = code<<1 | uint32(v)>>31 // sign bit: 1 for negative
				n++
			}
		}
		w.put(code, n) // at most 16 + 4 bits
		if cb.lav != escFlag {
			continue
		}
		for _, v := range t {
			if v < 0 {
				v = -v
			}
			if v < escFlag {
				continue
			}
			n := uint(4)
			for int(v) >= 2<<n {
				n++
			}
			// N−4 ones, a zero, then the N low bits: at most 23 bits.
			w.put((1<<(n-4+1)-2)<<n|(uint32(v)-1<<n), 2*n-3)
		}
	}
}

// writePairs is write for the unsigned 2-tuple codebooks (7 to 11), most
// of what a frame at a high bitrate holds.
func (cb *codebook) writePairs(w *bitWriter, q []int32) {
	esc := cb.lav == escFlag
	for i := 0; i+2 <= len(q); i += 2 {
		x, y := q[i], q[i+1]
		ax, ay := abs32(x), abs32(y)
		idx := int(min(ax, int32(cb.lav)))*cb.mod + int(min(ay, int32(cb.lav)))
		code, n := uint32(cb.code[idx]), uint(cb.length[idx])
		if x != 0 {
			code = code<<1 | uint32(x)>>31
			n++
		}
		if y != 0 {
			code = code<<1 | uint32(y)>>31
			n++
		}
		w.put(code, n)
		if !esc {
			continue
		}
		for _, v := range [2]int32{ax, ay} {
			if v < escFlag {
				continue
			}
			n := uint(bits.Len32(uint32(v))) - 1 // ⌊log2 v⌋ ≥ 4
			w.put((1<<(n-4+1)-2)<<n|(uint32(v)-1<<n), 2*n-3)
		}
	}
}

// maxForBook is the largest magnitude each codebook can carry (8191 for the
// escape codebook, §4.6.3.3).
func maxForBook(cb int) int {
	switch cb {
	case 1, 2:
		return 1
	case 3, 4:
		return 2
	case 5, 6:
		return 4
	case 7, 8:
		return 7
	case 9, 10:
		return 12
	}
	return 8191
}

// firstBook returns the first (pair of) codebook(s) able to carry magnitude m.
func firstBook(m int) int {
	switch {
	case m == 0:
		return zeroHCB
	case m <= 1:
		return 1
	case m <= 2:
		return 3
	case m <= 4:
		return 5
	case m <= 7:
		return 7
	case m <= 12:
		return 9
	}
	return escHCB
}
