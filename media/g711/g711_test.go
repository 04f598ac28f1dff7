package g711

import (
	"math"
	"testing"
)

// Golden values from ITU-T G.711 Tables 1 and 2 (decoder outputs scaled to
// 16 bits: A-law ×8, µ-law ×4) and the well-known silence octets.
var golden = []struct {
	name   string
	octet  byte
	linear int16
	alaw   bool
}{
	{"A-law +1st step (silence)", 0xD5, 8, true},
	{"A-law -1st step", 0x55, -8, true},
	{"A-law max", 0xAA, 32256, true},
	{"A-law min", 0x2A, -32256, true},
	{"A-law segment 1 start", 0xC5, 264, true},   // 0xC5^0x55=0x90: seg 1, mant 0: 33·8
	{"A-law segment 7 start", 0xA5, 16896, true}, // ^0x55=0xF0: seg 7: 33<<6 ·8
	{"µ-law zero (silence)", 0xFF, 0, false},
	{"µ-law negative zero", 0x7F, 0, false},
	{"µ-law max", 0x80, 32124, false},
	{"µ-law min", 0x00, -32124, false},
	{"µ-law first step", 0xFE, 8, false},
	{"µ-law segment 1 start", 0xEF, 132, false}, // ^0xEF=0x10: ((33)<<1)-33=33, ×4
}

func TestGolden(t *testing.T) {
	for _, c := range golden {
		var got int16
		if c.alaw {
			got = ALawToLinear(c.octet)
		} else {
			got = ULawToLinear(c.octet)
		}
		if got != c.linear {
			t.Errorf("%s: decode(0x%02X) = %d, want %d", c.name, c.octet, got, c.linear)
		}
		if c.name == "µ-law negative zero" {
			continue
		}
		var enc byte
		if c.alaw {
			enc = LinearToALaw(c.linear)
		} else {
			enc = LinearToULaw(c.linear)
		}
		if enc != c.octet {
			t.Errorf("%s: encode(%d) = 0x%02X, want 0x%02X", c.name, c.linear, enc, c.octet)
		}
	}
	if LinearToALaw(0) != 0xD5 || LinearToULaw(0) != 0xFF {
		t.Errorf("silence: A-law 0x%02X µ-law 0x%02X", LinearToALaw(0), LinearToULaw(0))
	}
}

func TestRoundTripAllOctets(t *testing.T) {
	for i := 0; i < 256; i++ {
		b := byte(i)
		if got := LinearToALaw(ALawToLinear(b)); got != b {
			t.Errorf("A-law 0x%02X -> %d -> 0x%02X", b, ALawToLinear(b), got)
		}
		want := b
		if b == 0x7F {
			want = 0xFF
		}
		if got := LinearToULaw(ULawToLinear(b)); got != want {
			t.Errorf("µ-law 0x%02X -> %d -> 0x%02X", b, ULawToLinear(b), got)
		}
	}
}

// The decoded values sorted by code must be strictly monotonic and symmetric.
func TestMonotonicSymmetric(t *testing.T) {
	prevA, prevU := int16(0), int16(0)
	for m := 1; m < 128; m++ {
		// Positive A-law octets in magnitude order: (0x80|m)^0x55.
		a := ALawToLinear(byte(0x80|m) ^ 0x55)
		if a <= prevA {
			t.Fatalf("A-law not increasing at %d: %d <= %d", m, a, prevA)
		}
		if -a != ALawToLinear(byte(m)^0x55) {
			t.Fatalf("A-law not symmetric at %d", m)
		}
		prevA = a
		u := ULawToLinear(^byte(m))
		if u <= prevU {
			t.Fatalf("µ-law not increasing at %d: %d <= %d", m, u, prevU)
		}
		if -u != ULawToLinear(^byte(0x80|m)) {
			t.Fatalf("µ-law not symmetric at %d", m)
		}
		prevU = u
	}
}

// Every 16-bit value must encode to the octet whose reconstruction is
// within half a quantisation step (the step of its segment) of it.
func TestEncodeErrorBound(t *testing.T) {
	for v := math.MinInt16; v <= math.MaxInt16; v++ {
		s := int16(v)
		a := ALawToLinear(LinearToALaw(s))
		if d := abs(int(a) - v); d > alawStep(v)/2+8 {
			t.Fatalf("A-law %d -> %d: error %d", v, a, d)
		}
		u := ULawToLinear(LinearToULaw(s))
		if d := abs(int(u) - v); d > ulawStep(v)/2+4 && abs(v) < 32124 {
			t.Fatalf("µ-law %d -> %d: error %d", v, u, d)
		}
	}
}

func alawStep(v int) int {
	m := abs(v) >> 3
	if m < 64 {
		return 16
	}
	s := 1
	for (m >> s) >= 32 {
		s++
	}
	return 8 << s
}

func ulawStep(v int) int {
	m := abs(v)>>2 + 33
	s := 0
	for (m >> (s + 5)) > 1 {
		s++
	}
	return 8 << s
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func TestSliceAPI(t *testing.T) {
	in := []int16{0, 100, -100, 32767, -32768, 1000}
	a := EncodeALaw(nil, in)
	u := EncodeULaw(nil, in)
	da := DecodeALaw(make([]int16, 0, 16), a)
	du := DecodeULaw([]int16{7}, u)
	if len(da) != len(in) || len(du) != len(in)+1 || du[0] != 7 {
		t.Fatalf("lengths %d %d", len(da), len(du))
	}
	for i := range in {
		if da[i] != ALawToLinear(a[i]) || du[i+1] != ULawToLinear(u[i]) {
			t.Fatalf("sample %d mismatch", i)
		}
	}
	buf := make([]int16, 0, 160)
	src := make([]byte, 160)
	if n := testing.AllocsPerRun(100, func() { buf = DecodeALaw(buf[:0], src) }); n != 0 {
		t.Fatalf("DecodeALaw allocates %v times", n)
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, c := range golden {
		f.Add([]byte{c.octet})
	}
	f.Add([]byte{0x00, 0x7f, 0x80, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		lin := DecodeALaw(nil, b)
		if got := EncodeALaw(nil, lin); string(got) != string(b) {
			t.Fatalf("A-law round trip changed % x to % x", b, got)
		}
		lin = DecodeULaw(lin[:0], b)
		back := EncodeULaw(nil, lin)
		for i := range b {
			want := b[i]
			if want == 0x7F {
				want = 0xFF
			}
			if back[i] != want {
				t.Fatalf("µ-law round trip 0x%02X -> 0x%02X", b[i], back[i])
			}
		}
		// Treat the bytes as linear samples too: re-encoding the decoded
		// value must be stable.
		for i := 0; i+1 < len(b); i += 2 {
			s := int16(uint16(b[i]) | uint16(b[i+1])<<8)
			a := LinearToALaw(s)
			if LinearToALaw(ALawToLinear(a)) != a {
				t.Fatalf("A-law unstable for %d", s)
			}
		}
	})
}

func BenchmarkDecodeALaw(b *testing.B) {
	src := make([]byte, 160)
	dst := make([]int16, 0, 160)
	b.SetBytes(160)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = DecodeALaw(dst[:0], src)
	}
}

func BenchmarkEncodeULaw(b *testing.B) {
	src := make([]int16, 160)
	dst := make([]byte, 0, 160)
	b.SetBytes(320)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = EncodeULaw(dst[:0], src)
	}
}
