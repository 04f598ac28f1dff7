// Package rtph264 packetizes and depacketizes H.264 video carried over RTP.
//
// Specification: RFC 6184 (RTP Payload Format for H.264 Video): single NAL
// unit packets (§5.6), STAP-A aggregation (§5.7.1) and FU-A fragmentation
// (§5.8), i.e. packetization-mode 0 and 1. ITU-T H.264 §7.4.1.2 for NAL
// unit types.
//
// The Decoder reassembles access units itself, checking RTP sequence numbers:
// pion/rtp's H264Packet is handed payloads only, so it cannot see that an
// FU-A fragment is missing and joins the others into a corrupt NAL unit.
// What the Decoder does with a picture that has a hole is a policy,
// DecoderConfig.Conceal:
//
//   - Freeze (the default): the picture is dropped, never emitted broken,
//     and so is every picture up to the next IDR. What is emitted always
//     decodes cleanly, but on a lossy link each loss freezes the video until
//     the sender's next IDR arrives, which on a lossy link is itself often
//     hit (an IDR is 10 to 60 packets): seconds of frozen picture.
//   - Conceal: after the first IDR, the damaged picture is emitted with the
//     NAL units that arrived whole (slices missing a fragment are left out)
//     and the following pictures flow on. A decoder conceals the missing
//     slices and the pictures that reference them from what it has: a
//     brief smear or blocky patch in the damaged area, often unnoticed,
//     which the next IDR cleans up. NeedKeyframe stays true meanwhile so
//     the call asks the sender for that IDR at once. Suited to live
//     broadcast and WebRTC, where motion matters more than a spotless frame.
package rtph264

import (
	"encoding/binary"
	"errors"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// NAL unit types (ITU-T H.264 Table 7-1) and RFC 6184 packet types, kept
// as untyped constants for callers that compare them with a header byte
// (n[0]&0x1f == NALTypeIDR). They have the values of mediacommon's
// h264.NALUType constants, which this package uses itself.
const (
	NALTypeNonIDR = 1
	NALTypeIDR    = 5
	NALTypeSEI    = 6
	NALTypeSPS    = 7
	NALTypePPS    = 8
	NALTypeAUD    = 9
	NALTypeSTAPA  = 24
	NALTypeSTAPB  = 25
	NALTypeMTAP16 = 26
	NALTypeMTAP24 = 27
	NALTypeFUA    = 28
	NALTypeFUB    = 29
)

// ClockRate is the RTP clock rate of H.264 (RFC 6184 §8.2.1).
const ClockRate = 90000

// ErrMorePacketsNeeded is returned by Decoder.Decode when the packet did not
// complete an access unit.
var ErrMorePacketsNeeded = errors.New("rtph264: more packets needed")

// ErrNeedKeyframe is returned by Decoder.Decode when an access unit was
// discarded because it, or a picture before it, had a hole, or because no IDR
// has been received yet. The decoder emits nothing until the next complete
// IDR: the caller should ask the sender for one (RTCP PLI/FIR, or SIP INFO
// picture_fast_update), rate-limited.
var ErrNeedKeyframe = errors.New("rtph264: access unit dropped, waiting for an IDR")

// SplitAVC splits an AVC (4-byte length-prefixed) access unit into NAL
// units, which alias b. A zero-length NAL unit makes it fail. See
// ForEachAVC, which it uses.
func SplitAVC(b []byte) ([][]byte, error) {
	var out [][]byte
	err := ForEachAVC(b, func(nalu []byte) bool {
		out = append(out, nalu)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ForEachAVC calls fn with each NAL unit of an AVC (4-byte big-endian
// length-prefixed) access unit, in order, until fn returns false; the NAL
// units alias au. It allocates nothing. A truncated length, a zero length
// or one past the end makes it fail. It is the one walk over AVC access
// units in sipstream, not mediacommon's h264.AVCC.Unmarshal, which refuses
// access units of more than 50 NAL units (h264.MaxNALUsPerAccessUnit): a
// phone in packetization-mode 0 sends one slice per packet, 30 to 60 for a
// 720p IDR.
func ForEachAVC(au []byte, fn func(nalu []byte) bool) error {
	for len(au) > 0 {
		if len(au) < 4 {
			return errors.New("rtph264: truncated AVC length")
		}
		n := binary.BigEndian.Uint32(au)
		au = au[4:]
		if n == 0 || uint64(n) > uint64(len(au)) {
			return errors.New("rtph264: invalid AVC NAL unit length")
		}
		if !fn(au[:n]) {
			return nil
		}
		au = au[n:]
	}
	return nil
}

// ParamSets picks the first SPS and the first PPS out of the NAL units
// given to Add. The zero value is empty.
type ParamSets struct {
	// SPS and PPS alias the NAL units given to Add; nil until one is seen.
	SPS, PPS []byte
}

// Add keeps nalu if it is the first SPS or the first PPS and returns its
// NAL unit type (ITU-T H.264 §7.4.1); an empty nalu is type 0.
func (p *ParamSets) Add(nalu []byte) h264.NALUType {
	if len(nalu) == 0 {
		return 0
	}
	t := h264.NALUType(nalu[0] & 0x1f)
	switch {
	case t == h264.NALUTypeSPS && p.SPS == nil:
		p.SPS = nalu
	case t == h264.NALUTypePPS && p.PPS == nil:
		p.PPS = nalu
	}
	return t
}

// JoinAVC returns the NAL units in AVC form (each preceded by its 4-byte
// big-endian length): mediacommon's h264.AVCC.Marshal.
func JoinAVC(nalus [][]byte) []byte {
	b, _ := h264.AVCC(nalus).Marshal() // never fails
	return b
}

// JoinAnnexB returns the NAL units in Annex-B form (each preceded by the
// 4-byte start code 00 00 00 01): mediacommon's h264.AnnexB.Marshal.
func JoinAnnexB(nalus [][]byte) []byte {
	b, _ := h264.AnnexB(nalus).Marshal() // never fails
	return b
}

// IsKeyframePacket reports whether an RTP payload carries part of an IDR
// picture or its parameter sets: a single NAL unit of type IDR, SPS or
// PPS, a STAP-A that holds one, or an FU-A fragment of an IDR slice. A
// receiver uses it to tell, packet by packet, that a requested keyframe is
// arriving (and that a loss among these packets has broken it).
func IsKeyframePacket(payload []byte) bool {
	if len(payload) == 0 {
		return false
	}
	switch h264.NALUType(payload[0] & 0x1f) {
	case h264.NALUTypeIDR, h264.NALUTypeSPS, h264.NALUTypePPS:
		return true
	case h264.NALUTypeFUA:
		return len(payload) > 1 && h264.NALUType(payload[1]&0x1f) == h264.NALUTypeIDR
	case h264.NALUTypeSTAPA:
		for b := payload[1:]; len(b) > 2; {
			n := int(binary.BigEndian.Uint16(b))
			b = b[2:]
			if n == 0 || n > len(b) {
				return false
			}
			switch h264.NALUType(b[0] & 0x1f) {
			case h264.NALUTypeIDR, h264.NALUTypeSPS, h264.NALUTypePPS:
				return true
			}
			b = b[n:]
		}
	}
	return false
}
