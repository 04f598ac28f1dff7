package aac

// bitWriter writes MSB-first into a byte slice.
type bitWriter struct {
	buf  []byte
	acc  uint64 // pending bits, right-aligned (the low nacc bits)
	nacc uint   // number of pending bits (< 32 between calls)
	n    int    // total bits written
}

func (w *bitWriter) reset(buf []byte) {
	w.buf, w.acc, w.nacc, w.n = buf[:0], 0, 0, 0
}

// put writes the low n bits of v (n ≤ 32).
func (w *bitWriter) put(v uint32, n uint) {
	w.acc = w.acc<<n | uint64(v)&(1<<n-1)
	w.nacc += n
	w.n += int(n)
	if w.nacc >= 32 {
		w.nacc -= 32
		x := uint32(w.acc >> w.nacc)
		w.buf = append(w.buf, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
}

// align pads with zero bits to a byte boundary and flushes the pending
// bytes.
func (w *bitWriter) align() {
	if r := w.nacc % 8; r > 0 {
		w.put(0, 8-r)
	}
	for w.nacc >= 8 {
		w.nacc -= 8
		w.buf = append(w.buf, byte(w.acc>>w.nacc))
	}
}

// bytes returns the written bytes; call after align.
func (w *bitWriter) bytes() []byte { return w.buf }
