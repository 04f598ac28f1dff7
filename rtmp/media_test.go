package rtmp

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
)

// alaw encodes one linear sample as G.711 A-law (ITU-T G.711 table 1a),
// for test audio only.
func alaw(s int16) byte {
	mask := byte(0xd5)
	v := int(s)
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	v >>= 3 // 13-bit magnitude
	var seg byte
	for seg = 0; seg < 8 && v > (0x1f<<seg); seg++ {
	}
	if seg >= 8 {
		return 0x7f ^ mask
	}
	var q byte
	if seg < 2 {
		q = byte(v>>1) & 0x0f
	} else {
		q = byte(v>>seg) & 0x0f
	}
	return (seg<<4 | q) ^ mask
}

// ulaw encodes one linear sample as G.711 µ-law (ITU-T G.711 table 2a),
// for test audio only.
func ulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := byte(0)
	if v < 0 {
		sign = 0x80
		v = -v
	}
	v = min(v, clip) + bias
	exp := byte(7)
	for mask := 0x4000; exp > 0 && v&mask == 0; mask >>= 1 {
		exp--
	}
	mant := byte(v>>(exp+3)) & 0x0f
	return ^(sign | exp<<4 | mant)
}

// toneALaw returns n 20 ms A-law packets of a 1 kHz tone at 8 kHz.
func toneALaw(n int) [][]byte { return toneG711(n, alaw) }

// toneULaw returns n 20 ms µ-law packets of a 1 kHz tone at 8 kHz.
func toneULaw(n int) [][]byte { return toneG711(n, ulaw) }

func toneG711(n int, enc func(int16) byte) [][]byte {
	pcm := testmedia.Tone(1000, 8000, 0, 160*n, 0.5)
	out := make([][]byte, n)
	for i := range out {
		p := make([]byte, 160)
		for k := range p {
			p[k] = enc(pcm[i*160+k])
		}
		out[i] = p
	}
	return out
}

// adtsFrames splits an ADTS stream into raw AAC frames and returns them
// with the AudioSpecificConfig and sample rate (ISO/IEC 14496-3 1.A.2).
func adtsFrames(b []byte) (frames [][]byte, asc []byte, rate int, err error) {
	rates := []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	for len(b) > 0 {
		if len(b) < 7 || b[0] != 0xff || b[1]&0xf0 != 0xf0 {
			return nil, nil, 0, fmt.Errorf("bad ADTS sync")
		}
		protAbsent := b[1]&1 == 1
		profile := b[2] >> 6
		freq := b[2] >> 2 & 0xf
		ch := (b[2]&1)<<2 | b[3]>>6
		n := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5)
		hdr := 7
		if !protAbsent {
			hdr = 9
		}
		if n < hdr || n > len(b) || int(freq) >= len(rates) {
			return nil, nil, 0, fmt.Errorf("bad ADTS frame")
		}
		if asc == nil {
			v := uint16(profile+1)<<11 | uint16(freq)<<7 | uint16(ch)<<3
			asc = binary.BigEndian.AppendUint16(nil, v)
			rate = rates[freq]
		}
		frames = append(frames, b[hdr:n])
		b = b[n:]
	}
	return frames, asc, rate, nil
}

// aacPTS is the presentation time of AAC frame i (1024 samples each).
func aacPTS(i, rate int) time.Duration {
	return time.Duration(i) * 1024 * time.Second / time.Duration(rate)
}
