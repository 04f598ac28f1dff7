package aac

import "errors"

// ErrADTS is returned by ParseADTS for a malformed header.
var ErrADTS = errors.New("aac: malformed ADTS header")

// ADTSHeaderSize is the size of an ADTS header without CRC.
const ADTSHeaderSize = 7

// AppendADTS appends an ADTS header (MPEG-4, AAC LC, no CRC) and the access
// unit au to dst, making a frame playable from a .aac file.
// Specification: ISO/IEC 14496-3 §1.A.2.2 adts_frame (fixed and variable
// header).
func (e *Encoder) AppendADTS(dst, au []byte) []byte {
	return AppendADTS(dst, e.sfIdx, e.cfg.Channels, au)
}

// AppendADTS appends an ADTS header for an AAC-LC access unit au at the
// given samplingFrequencyIndex and channel configuration, then au.
func AppendADTS(dst []byte, sfIndex, channels int, au []byte) []byte {
	n := ADTSHeaderSize + len(au)
	h := [ADTSHeaderSize]byte{
		0xFF,
		0xF1,                                  // syncword end, ID 0 (MPEG-4), layer 00, protection_absent 1
		byte(1<<6 | sfIndex<<2 | channels>>2), // profile LC (object type − 1)
		byte(channels&3<<6 | n>>11),
		byte(n >> 3),
		byte(n&7<<5 | 0x1F), // buffer fullness 0x7FF: variable rate
		0xFC,                // rest of fullness, one raw_data_block
	}
	dst = append(dst, h[:]...)
	return append(dst, au...)
}

// ADTSHeader is what ParseADTS reads from an ADTS header.
type ADTSHeader struct {
	SampleRateIndex int // samplingFrequencyIndex
	Channels        int // channel_configuration
	ObjectType      int // profile + 1 (2 = AAC LC)
	FrameLength     int // header plus payload, bytes
	HeaderLength    int // 7, or 9 with CRC
}

// ParseADTS reads the ADTS header at the start of b.
func ParseADTS(b []byte) (ADTSHeader, error) {
	if len(b) < ADTSHeaderSize || b[0] != 0xFF || b[1]&0xF6 != 0xF0 {
		return ADTSHeader{}, ErrADTS
	}
	h := ADTSHeader{
		ObjectType:      int(b[2]>>6) + 1,
		SampleRateIndex: int(b[2]>>2) & 0xF,
		Channels:        int(b[2]&1)<<2 | int(b[3]>>6),
		FrameLength:     int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5),
		HeaderLength:    ADTSHeaderSize,
	}
	if b[1]&1 == 0 {
		h.HeaderLength = 9
	}
	if h.FrameLength < h.HeaderLength || h.SampleRateIndex > 12 {
		return ADTSHeader{}, ErrADTS
	}
	return h, nil
}
