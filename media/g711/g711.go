// Package g711 converts between 16-bit linear PCM and ITU-T G.711 A-law and
// µ-law, one octet per sample, with lookup tables: 256-entry tables to decode
// and tables indexed by the top bits of the linear sample to encode.
//
// Specification: ITU-T Recommendation G.711 (11/88), Tables 1a/1b (A-law) and
// 2a/2b (µ-law). Octets are the transmitted characters, with the even-bit
// inversion of A-law (XOR 0x55) and the all-bit inversion of µ-law already
// applied, as RTP carries them (RFC 3551 §4.5.14).
//
// Decoded values are the linear values of the Recommendation scaled to 16
// bits: A-law is a 13-bit code (×8), µ-law a 14-bit code (×4). Encoding
// truncates towards the decision levels of the Recommendation, so
// LinearToALaw(ALawToLinear(b)) == b for every octet, and the same for µ-law
// except 0x7F ("negative zero"), which comes back as 0xFF.
package g711

// ALawToLinear returns the 16-bit linear value of one A-law octet.
func ALawToLinear(a byte) int16 { return alawDecode[a] }

// ULawToLinear returns the 16-bit linear value of one µ-law octet.
func ULawToLinear(u byte) int16 { return ulawDecode[u] }

// LinearToALaw returns the A-law octet for one 16-bit linear sample.
func LinearToALaw(s int16) byte {
	if s >= 0 {
		return alawEncode[s>>3]
	}
	// One's complement keeps the decision levels symmetric (G.711 Table 1a:
	// the negative half mirrors the positive one).
	return alawEncode[(^s)>>3] & 0x7f
}

// LinearToULaw returns the µ-law octet for one 16-bit linear sample.
func LinearToULaw(s int16) byte {
	if s >= 0 {
		return ulawEncode[s>>2]
	}
	return ulawEncode[(^s)>>2] & 0x7f
}

// DecodeALaw appends the linear samples of the A-law octets src to dst and
// returns the extended slice. It does not allocate when dst has room.
func DecodeALaw(dst []int16, src []byte) []int16 {
	dst = grow(dst, len(src))
	out := dst[len(dst)-len(src):]
	for i, b := range src {
		out[i] = alawDecode[b]
	}
	return dst
}

// DecodeULaw appends the linear samples of the µ-law octets src to dst and
// returns the extended slice. It does not allocate when dst has room.
func DecodeULaw(dst []int16, src []byte) []int16 {
	dst = grow(dst, len(src))
	out := dst[len(dst)-len(src):]
	for i, b := range src {
		out[i] = ulawDecode[b]
	}
	return dst
}

// EncodeALaw appends the A-law octets of the linear samples src to dst and
// returns the extended slice.
func EncodeALaw(dst []byte, src []int16) []byte {
	for _, s := range src {
		dst = append(dst, LinearToALaw(s))
	}
	return dst
}

// EncodeULaw appends the µ-law octets of the linear samples src to dst and
// returns the extended slice.
func EncodeULaw(dst []byte, src []int16) []byte {
	for _, s := range src {
		dst = append(dst, LinearToULaw(s))
	}
	return dst
}

func grow(dst []int16, n int) []int16 {
	l := len(dst)
	if cap(dst)-l < n {
		nd := make([]int16, l, l+n)
		copy(nd, dst)
		dst = nd
	}
	return dst[:l+n]
}
