package aac

// bitWriter writes MSB-first into a byte slice.
type bitWriter struct {
	buf  []byte
	acc  uint64 // pending bits, right-aligned
	nacc uint   // number of pending bits (< 8 after flushes)
	n    int    // total bits written
}

func (w *bitWriter) reset(buf []byte) {
	w.buf, w.acc, w.nacc, w.n = buf[:0], 0, 0, 0
}

// put writes the low n bits of v (n ≤ 32).
func (w *bitWriter) put(v uint32, n uint) {
	if n == 0 {
		return
	}
	w.acc = w.acc<<n | uint64(v)&(1<<n-1)
	w.nacc += n
	w.n += int(n)
	for w.nacc >= 8 {
		w.nacc -= 8
		w.buf = append(w.buf, byte(w.acc>>w.nacc))
	}
}

// align pads with zero bits to a byte boundary.
func (w *bitWriter) align() {
	if w.nacc > 0 {
		w.put(0, 8-w.nacc)
	}
}

// bytes returns the written bytes; call after align.
func (w *bitWriter) bytes() []byte { return w.buf }
