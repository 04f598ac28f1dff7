package aac

import "math"

// mdct computes the MDCT of 2n windowed samples into n coefficients,
//
//	X[k] = 2 · Σ_{i=0}^{2n−1} z[i] · cos(2π/N · (i + n0) · (k + ½)),  N = 2n, n0 = (N/2 + 1)/2
//
// (ISO/IEC 14496-3 §4.6.11.3.2 gives the inverse with factor 2/N, so this
// pair reconstructs the input with a Princen-Bradley window). It folds the
// input into a DCT-IV of size n and computes that with an n/2-point complex
// FFT.
type mdct struct {
	n      int // output coefficients (1024 for long blocks)
	fold   []float64
	re, im []float64 // n/2 complex work buffers
	preCos []float64 // twiddle exp(−iπ(8j+1)/(8n)), j < n/2, used before and after the FFT
	preSin []float64
	fft    *fft
}

func newMDCT(n int) *mdct {
	m := &mdct{n: n, fold: make([]float64, n), re: make([]float64, n/2), im: make([]float64, n/2),
		preCos: make([]float64, n/2), preSin: make([]float64, n/2), fft: newFFT(n / 2)}
	for j := 0; j < n/2; j++ {
		a := math.Pi * (8*float64(j) + 1) / (8 * float64(n))
		m.preCos[j], m.preSin[j] = math.Cos(a), math.Sin(a)
	}
	return m
}

// transform writes the n coefficients of the 2n windowed samples z to out.
func (m *mdct) transform(z []float64, out []float64) {
	n := m.n
	h := n / 2
	z = z[:2*n]
	out = out[:n]
	// Fold (a, b, c, d) → (−c_r − d, a − b_r): the MDCT of 2n inputs equals
	// the DCT-IV of these n values.
	u := m.fold
	for i := 0; i < h; i++ {
		u[i] = -z[3*h-1-i] - z[3*h+i]
		u[h+i] = z[i] - z[n-1-i]
	}
	m.dct4(u, out)
	for k := range out {
		out[k] *= 2
	}
}

// dct4 computes out[k] = Σ u[i]·cos(π/n·(i+½)·(k+½)) with an n/2-point
// complex FFT: c_j = (u[2j] + i·u[n−1−2j])·t_j, C = FFT(c), y_k = C_k·t_k,
// then out[2k] = Re y_k and out[n−1−2k] = −Im y_k, t_j = exp(−iπ(8j+1)/(8n)).
func (m *mdct) dct4(u, out []float64) {
	n := m.n
	h := n / 2
	re, im := m.re, m.im
	for j := 0; j < h; j++ {
		a, b := u[2*j], u[n-1-2*j]
		c, s := m.preCos[j], -m.preSin[j]
		re[j] = a*c - b*s
		im[j] = a*s + b*c
	}
	m.fft.forward(re, im)
	for k := 0; k < h; k++ {
		c, s := m.preCos[k], -m.preSin[k]
		out[2*k] = re[k]*c - im[k]*s
		out[n-1-2*k] = -(re[k]*s + im[k]*c)
	}
}

// fft is an iterative radix-2 complex FFT of a power-of-two size.
type fft struct {
	n        int
	rev      []int32
	cos, sin []float64
}

func newFFT(n int) *fft {
	f := &fft{n: n, rev: make([]int32, n), cos: make([]float64, n/2), sin: make([]float64, n/2)}
	bits := 0
	for 1<<bits < n {
		bits++
	}
	for i := 0; i < n; i++ {
		r := 0
		for b := 0; b < bits; b++ {
			if i&(1<<b) != 0 {
				r |= 1 << (bits - 1 - b)
			}
		}
		f.rev[i] = int32(r)
	}
	for i := 0; i < n/2; i++ {
		a := -2 * math.Pi * float64(i) / float64(n)
		f.cos[i], f.sin[i] = math.Cos(a), math.Sin(a)
	}
	return f
}

// forward computes X[k] = Σ x[j]·exp(−2πi·jk/n) in place.
func (f *fft) forward(re, im []float64) {
	n := f.n
	re, im = re[:n], im[:n]
	for i := 0; i < n; i++ {
		if j := int(f.rev[i]); j > i {
			re[i], re[j] = re[j], re[i]
			im[i], im[j] = im[j], im[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		half := size >> 1
		step := n / size
		for start := 0; start < n; start += size {
			for k := 0; k < half; k++ {
				wr, wi := f.cos[k*step], f.sin[k*step]
				a, b := start+k, start+k+half
				tr := re[b]*wr - im[b]*wi
				ti := re[b]*wi + im[b]*wr
				re[b], im[b] = re[a]-tr, im[a]-ti
				re[a] += tr
				im[a] += ti
			}
		}
	}
}
