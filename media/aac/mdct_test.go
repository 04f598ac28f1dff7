package aac

import (
	"math"
	"math/rand"
	"testing"
)

func TestMDCTMatchesDefinition(t *testing.T) {
	for _, n := range []int{16, 1024} {
		m := newMDCT(n)
		rng := rand.New(rand.NewSource(1))
		z := make([]float64, 2*n)
		for i := range z {
			z[i] = rng.Float64()*2 - 1
		}
		got := make([]float64, n)
		m.transform(z, got)
		N := float64(2 * n)
		n0 := (N/2 + 1) / 2
		var maxErr float64
		for k := 0; k < n; k++ {
			var s float64
			for i := range z {
				s += z[i] * math.Cos(2*math.Pi/N*(float64(i)+n0)*(float64(k)+0.5))
			}
			maxErr = math.Max(maxErr, math.Abs(2*s-got[k]))
		}
		if maxErr > 1e-9*float64(n) {
			t.Fatalf("n=%d: max error %g", n, maxErr)
		}
	}
}
