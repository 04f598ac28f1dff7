package main

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/sipstream/sipstream/media/g711"
)

// rtpHeaderLen is the fixed RTP header without CSRCs or extensions.
const rtpHeaderLen = 12

// putRTPHeader writes a 12-byte RTP header (RFC 3550, 5.1) at b[0:12].
func putRTPHeader(b []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}

// srLen is an RTCP Sender Report without report blocks.
const srLen = 28

// putSR writes an RTCP Sender Report without report blocks (RFC 3550,
// 6.4.1) at b[0:28].
func putSR(b []byte, ssrc uint32, ntp uint64, rtpTS, packets, octets uint32) {
	b[0] = 0x80 // V=2, RC=0
	b[1] = 200
	binary.BigEndian.PutUint16(b[2:], srLen/4-1)
	binary.BigEndian.PutUint32(b[4:], ssrc)
	binary.BigEndian.PutUint64(b[8:], ntp)
	binary.BigEndian.PutUint32(b[16:], rtpTS)
	binary.BigEndian.PutUint32(b[20:], packets)
	binary.BigEndian.PutUint32(b[24:], octets)
}

// tonePayload returns 20 ms of a 1 kHz tone at 8 kHz in A-law: 160
// samples, exactly 20 periods, so the same payload repeats seamlessly.
func tonePayload() []byte {
	b := make([]byte, audioSamples)
	for i := range b {
		s := int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/audioClock))
		b[i] = g711.LinearToALaw(s)
	}
	return b
}

// silencePayload returns 20 ms of silence in A-law.
func silencePayload() []byte {
	return bytes.Repeat([]byte{g711.LinearToALaw(0)}, audioSamples)
}
