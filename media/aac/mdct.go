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
	// The factor 2 of the definition is applied here (exact in floating
	// point, so the result is the same as scaling the output).
	u := m.fold
	for i := 0; i < h; i++ {
		u[i] = -2 * (z[3*h-1-i] + z[3*h+i])
		u[h+i] = 2 * (z[i] - z[n-1-i])
	}
	m.dct4(u, out)
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

// fft is an iterative radix-2 complex FFT of a power-of-two size, with the
// twiddles of each stage stored contiguously.
type fft struct {
	n        int
	rev      []int32
	cos, sin []float64 // stage with half-size h uses [h-1 : 2h-1]
}

func newFFT(n int) *fft {
	f := &fft{n: n, rev: make([]int32, n), cos: make([]float64, n), sin: make([]float64, n)}
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
	for h := 1; h < n; h <<= 1 {
		for k := 0; k < h; k++ {
			a := -math.Pi * float64(k) / float64(h)
			f.cos[h-1+k], f.sin[h-1+k] = math.Cos(a), math.Sin(a)
		}
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
	// First two stages together: 4-point DFTs need no multiplications
	// (twiddles 1 and −i).
	for a := 0; a+3 < n; a += 4 {
		r := re[a : a+4 : a+4]
		m := im[a : a+4 : a+4]
		// stage 1: (0,1) and (2,3)
		ar, ai := r[0]+r[1], m[0]+m[1]
		br, bi := r[0]-r[1], m[0]-m[1]
		cr, ci := r[2]+r[3], m[2]+m[3]
		dr, di := r[2]-r[3], m[2]-m[3]
		// stage 2: (0,2) with twiddle 1, (1,3) with twiddle −i
		r[0], m[0] = ar+cr, ai+ci
		r[2], m[2] = ar-cr, ai-ci
		r[1], m[1] = br+di, bi-dr
		r[3], m[3] = br-di, bi+dr
	}
	for half := 4; half < n; half <<= 1 {
		wc := f.cos[half-1 : 2*half-1]
		ws := f.sin[half-1 : 2*half-1]
		for start := 0; start < n; start += 2 * half {
			r0, i0 := re[start:start+half], im[start:start+half]
			r1, i1 := re[start+half:start+2*half], im[start+half:start+2*half]
			// Equal lengths, stated so the compiler drops bounds checks.
			i0, r1, i1 = i0[:len(r0)], r1[:len(r0)], i1[:len(r0)]
			wc, ws := wc[:len(r0)], ws[:len(r0)]
			for k := range r0 {
				wr, wi := wc[k], ws[k]
				tr := r1[k]*wr - i1[k]*wi
				ti := r1[k]*wi + i1[k]*wr
				r1[k], i1[k] = r0[k]-tr, i0[k]-ti
				r0[k] += tr
				i0[k] += ti
			}
		}
	}
}
