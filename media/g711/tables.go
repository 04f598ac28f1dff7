package g711

// The tables are computed once from the segment structure of G.711 rather
// than typed in; the golden tests check them against values printed in the
// Recommendation's Tables 1 and 2.

var (
	alawDecode = makeALawDecode()
	ulawDecode = makeULawDecode()
	// alawEncode maps a non-negative 16-bit sample >> 3 (a 12-bit magnitude)
	// to its positive A-law octet (sign bit set, even bits inverted).
	alawEncode = makeALawEncode()
	// ulawEncode maps a non-negative 16-bit sample >> 2 (a 13-bit magnitude)
	// to its positive µ-law octet (sign bit set, all bits inverted).
	ulawEncode = makeULawEncode()
)

// alawLinear decodes an A-law octet per G.711 Table 1b: segment 0 and 1 are
// linear with step 2 (in 13-bit units), each further segment doubles it; the
// decoder output is the middle of the quantisation interval.
func alawLinear(a byte) int16 {
	a ^= 0x55
	seg := int(a>>4) & 7
	mant := int(a & 0x0f)
	var mag int
	if seg == 0 {
		mag = mant<<1 | 1
	} else {
		mag = (mant<<1 | 0x21) << (seg - 1)
	}
	mag <<= 3 // 13-bit code to 16 bits
	if a&0x80 != 0 {
		return int16(mag)
	}
	return int16(-mag)
}

// ulawLinear decodes a µ-law octet per G.711 Table 2b: value =
// ((2·mantissa + 33) << segment) − 33 in 14-bit units.
func ulawLinear(u byte) int16 {
	u = ^u
	seg := int(u>>4) & 7
	mant := int(u & 0x0f)
	mag := ((mant<<1 | 0x21) << seg) - 0x21
	mag <<= 2 // 14-bit code to 16 bits
	if u&0x80 != 0 {
		return int16(-mag)
	}
	return int16(mag)
}

func makeALawDecode() *[256]int16 {
	var t [256]int16
	for i := range t {
		t[i] = alawLinear(byte(i))
	}
	return &t
}

func makeULawDecode() *[256]int16 {
	var t [256]int16
	for i := range t {
		t[i] = ulawLinear(byte(i))
	}
	return &t
}

func makeALawEncode() *[4096]byte {
	var t [4096]byte
	for m := range t { // m: 12-bit magnitude (13-bit code without sign)
		var seg, mant int
		switch {
		case m < 32:
			seg, mant = 0, m>>1
		default:
			seg = 1
			for (m >> seg) >= 32 {
				seg++
			}
			mant = (m >> seg) & 0x0f
		}
		t[m] = byte(0x80|seg<<4|mant) ^ 0x55
	}
	return &t
}

func makeULawEncode() *[8192]byte {
	var t [8192]byte
	for m := range t { // m: 13-bit magnitude (14-bit code without sign)
		v := m + 0x21 // bias
		if v > 0x1fff {
			v = 0x1fff
		}
		seg := 0
		for (v >> (seg + 5)) > 1 {
			seg++
		}
		mant := (v >> (seg + 1)) & 0x0f
		t[m] = ^byte(seg<<4 | mant)
	}
	return &t
}
