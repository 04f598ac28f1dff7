package siptest

// Linear PCM to G.711, for the test tone. Specification: ITU-T G.711 (the
// segment encoding of A-law and µ-law).

func linearToALaw(s int16) byte {
	x := int(s) >> 3 // 13-bit
	mask := byte(0xD5)
	if x < 0 {
		mask = 0x55
		x = -x - 1
	}
	if x > 0xFFF {
		x = 0xFFF
	}
	var seg byte
	for v := x >> 5; v > 0 && seg < 7; v >>= 1 {
		seg++
	}
	var out byte
	if seg == 0 {
		out = byte(x>>1) & 0x0F
	} else {
		out = seg<<4 | byte(x>>uint(seg))&0x0F
	}
	return out ^ mask
}

func linearToULaw(s int16) byte {
	const bias = 0x84
	const clip = 32635
	x := int(s)
	sign := byte(0)
	if x < 0 {
		x = -x
		sign = 0x80
	}
	if x > clip {
		x = clip
	}
	x += bias
	exp := byte(7)
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := byte(x>>(uint(exp)+3)) & 0x0F
	return ^(sign | exp<<4 | mant)
}

// ulawToLinear and alawToLinear decode, for tests and for recording.
func ulawToLinear(u byte) int16 {
	u = ^u
	sign := u & 0x80
	exp := (u >> 4) & 0x07
	mant := u & 0x0F
	x := ((int(mant) << 3) + 0x84) << exp
	x -= 0x84
	if sign != 0 {
		return int16(-x)
	}
	return int16(x)
}

func alawToLinear(a byte) int16 {
	a ^= 0x55
	sign := a & 0x80
	exp := (a >> 4) & 0x07
	mant := int(a & 0x0F)
	var x int
	if exp == 0 {
		x = mant<<4 + 8
	} else {
		x = (mant<<4 + 0x108) << (exp - 1)
	}
	if sign == 0 {
		return int16(-x)
	}
	return int16(x)
}
