// Package rtpvp8 packetizes and depacketizes VP8 video carried over RTP.
//
// Specification: RFC 7741 (RTP Payload Format for VP8 Video): §4.2 the
// payload descriptor (X, N, S, PID and the extended I/L/T/K fields), §4.3
// the VP8 payload header (the P bit that tells key frames), §4.5 frame
// reassembly. RFC 6386 §9.1 for the key frame start code.
//
// Losses: by default (freeze) the Decoder drops a damaged frame and every
// frame up to the next key frame, so what it emits always decodes cleanly
// but each loss freezes the picture until the sender's next key frame
// arrives. DecoderConfig.Conceal trades that for a brief smear: after the
// first key frame, a damaged frame is emitted with the data that arrived
// before its hole and later frames flow on; a VP8 decoder conceals the rest
// from its references (libvpx and FFmpeg decode what is there) until the
// key frame that NeedKeyframe keeps asking for repairs the picture.
package rtpvp8

import (
	"errors"
)

// ClockRate is the RTP clock rate of VP8 (RFC 7741 §6.1).
const ClockRate = 90000

// ErrMorePacketsNeeded is returned by Decoder.Decode when the packet did not
// complete a frame.
var ErrMorePacketsNeeded = errors.New("rtpvp8: more packets needed")

// ErrNeedKeyframe is returned by Decoder.Decode when a frame was discarded
// because it, or a frame before it, had a hole, or because no key frame has
// been received yet. The caller should ask the sender for a key frame (RTCP
// PLI or FIR), rate-limited.
var ErrNeedKeyframe = errors.New("rtpvp8: frame dropped, waiting for a key frame")

// Descriptor is the VP8 payload descriptor of RFC 7741 §4.2.
type Descriptor struct {
	NonReference   bool  // N: the frame can be discarded without affecting others
	Start          bool  // S: the packet starts a VP8 partition
	PartitionID    uint8 // PID, 0-7
	HasPictureID   bool  // I
	PictureID      uint16
	PictureID16Bit bool // M: PictureID takes 15 bits (else 7)
	HasTL0PICIDX   bool // L
	TL0PICIDX      uint8
	HasTID         bool // T
	TID            uint8
	LayerSync      bool // Y
	HasKEYIDX      bool // K
	KEYIDX         uint8
}

var errShort = errors.New("rtpvp8: truncated payload descriptor")

// Unmarshal parses the descriptor at the start of payload and returns its
// size in bytes.
func (d *Descriptor) Unmarshal(payload []byte) (int, error) {
	*d = Descriptor{}
	if len(payload) < 1 {
		return 0, errShort
	}
	b0 := payload[0]
	d.NonReference = b0&0x20 != 0
	d.Start = b0&0x10 != 0
	d.PartitionID = b0 & 0x07
	n := 1
	if b0&0x80 == 0 {
		return n, nil
	}
	if len(payload) < 2 {
		return 0, errShort
	}
	x := payload[1]
	n = 2
	d.HasPictureID = x&0x80 != 0
	d.HasTL0PICIDX = x&0x40 != 0
	d.HasTID = x&0x20 != 0
	d.HasKEYIDX = x&0x10 != 0
	if d.HasPictureID {
		if len(payload) < n+1 {
			return 0, errShort
		}
		if payload[n]&0x80 != 0 {
			if len(payload) < n+2 {
				return 0, errShort
			}
			d.PictureID16Bit = true
			d.PictureID = uint16(payload[n]&0x7f)<<8 | uint16(payload[n+1])
			n += 2
		} else {
			d.PictureID = uint16(payload[n])
			n++
		}
	}
	if d.HasTL0PICIDX {
		if len(payload) < n+1 {
			return 0, errShort
		}
		d.TL0PICIDX = payload[n]
		n++
	}
	if d.HasTID || d.HasKEYIDX {
		if len(payload) < n+1 {
			return 0, errShort
		}
		b := payload[n]
		if d.HasTID {
			d.TID = b >> 6
			d.LayerSync = b&0x20 != 0
		}
		if d.HasKEYIDX {
			d.KEYIDX = b & 0x1f
		}
		n++
	}
	return n, nil
}

// AppendTo appends the descriptor's wire form to b.
func (d Descriptor) AppendTo(b []byte) []byte {
	b0 := d.PartitionID & 0x07
	if d.NonReference {
		b0 |= 0x20
	}
	if d.Start {
		b0 |= 0x10
	}
	ext := d.HasPictureID || d.HasTL0PICIDX || d.HasTID || d.HasKEYIDX
	if !ext {
		return append(b, b0)
	}
	var x byte
	if d.HasPictureID {
		x |= 0x80
	}
	if d.HasTL0PICIDX {
		x |= 0x40
	}
	if d.HasTID {
		x |= 0x20
	}
	if d.HasKEYIDX {
		x |= 0x10
	}
	b = append(b, b0|0x80, x)
	if d.HasPictureID {
		if d.PictureID16Bit {
			b = append(b, 0x80|byte(d.PictureID>>8)&0x7f, byte(d.PictureID))
		} else {
			b = append(b, byte(d.PictureID)&0x7f)
		}
	}
	if d.HasTL0PICIDX {
		b = append(b, d.TL0PICIDX)
	}
	if d.HasTID || d.HasKEYIDX {
		var t byte
		if d.HasTID {
			t = d.TID << 6
			if d.LayerSync {
				t |= 0x20
			}
		}
		if d.HasKEYIDX {
			t |= d.KEYIDX & 0x1f
		}
		b = append(b, t)
	}
	return b
}

// IsKeyFrame reports whether a VP8 frame (its first bytes, RFC 6386 §9.1)
// is a key frame: the P bit of the frame tag is 0 and the start code
// 9d 01 2a follows the 3-byte tag.
func IsKeyFrame(frame []byte) bool {
	return len(frame) >= 10 && frame[0]&0x01 == 0 && frame[3] == 0x9d && frame[4] == 0x01 && frame[5] == 0x2a
}
