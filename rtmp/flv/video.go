package flv

import (
	"encoding/binary"
	"fmt"
)

// Video frame types (FLV specification, VIDEODATA FrameType).
const (
	FrameKey        = 1
	FrameInter      = 2
	FrameDisposable = 3
	FrameCommand    = 5
)

// Video codec IDs (VIDEODATA CodecID) and AVC packet types.
const (
	CodecAVC = 7

	AVCSequenceHeaderPacket = 0
	AVCNALUPacket           = 1
	AVCEndOfSequencePacket  = 2
)

// Enhanced RTMP video packet types (Enhanced RTMP v1, ExVideoTagHeader).
const (
	PacketTypeSequenceStart = 0
	PacketTypeCodedFrames   = 1
	PacketTypeSequenceEnd   = 2
	PacketTypeCodedFramesX  = 3
	PacketTypeMetadata      = 4
)

// FourCC codes of Enhanced RTMP.
const (
	FourCCAVC  = 'a'<<24 | 'v'<<16 | 'c'<<8 | '1'
	FourCCHEVC = 'h'<<24 | 'v'<<16 | 'c'<<8 | '1'
	FourCCAV1  = 'a'<<24 | 'v'<<16 | '0'<<8 | '1'
	FourCCVP9  = 'v'<<24 | 'p'<<16 | '0'<<8 | '9'
	FourCCOpus = 'O'<<24 | 'p'<<16 | 'u'<<8 | 's'
	FourCCAAC  = 'm'<<24 | 'p'<<16 | '4'<<8 | 'a'
)

// AVCSequenceHeader returns a video tag body carrying an
// AVCDecoderConfigurationRecord built from one SPS and one PPS (NAL units
// without start codes or length prefixes). NAL unit lengths are 4 bytes.
//
// Specification: ISO/IEC 14496-15 section 5.2.4.1.
func AVCSequenceHeader(sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || sps[0]&0x1f != 7 {
		return nil, fmt.Errorf("%w: not an SPS", ErrInvalid)
	}
	if len(pps) < 1 || pps[0]&0x1f != 8 {
		return nil, fmt.Errorf("%w: not a PPS", ErrInvalid)
	}
	if len(sps) > 0xffff || len(pps) > 0xffff {
		return nil, fmt.Errorf("%w: parameter set too long", ErrInvalid)
	}
	b := make([]byte, 0, 16+len(sps)+len(pps))
	b = append(b, 0x10|CodecAVC, AVCSequenceHeaderPacket, 0, 0, 0)
	b = append(b, 1, sps[1], sps[2], sps[3], 0xff, 0xe1) // version, profile, compat, level, lengthSizeMinusOne=3, 1 SPS
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	b = append(b, pps...)
	// High profiles carry chroma format and bit depths (ISO/IEC 14496-15
	// 5.3.3.1.2); 4:2:0 8-bit is what SIP endpoints send.
	switch sps[1] {
	case 100, 110, 122, 144:
		b = append(b, 0xfc|1, 0xf8, 0xf8, 0)
	}
	return b, nil
}

// AppendAVCFrame appends to dst a video tag body with one AVC access unit
// (NAL units in AVC format, each with a 4-byte length prefix) and its
// composition time (PTS - DTS in milliseconds).
func AppendAVCFrame(dst []byte, keyframe bool, cts int32, avcc []byte) []byte {
	ft := byte(FrameInter)
	if keyframe {
		ft = FrameKey
	}
	dst = append(dst, ft<<4|CodecAVC, AVCNALUPacket, byte(cts>>16), byte(cts>>8), byte(cts))
	return append(dst, avcc...)
}

// AVCEndOfSequence returns the video tag body that ends an AVC sequence.
func AVCEndOfSequence() []byte {
	return []byte{FrameKey<<4 | CodecAVC, AVCEndOfSequencePacket, 0, 0, 0}
}

// HEVCSequenceHeader returns an Enhanced RTMP video tag body carrying an
// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 section 8.3.3.1).
//
// Specification: Enhanced RTMP v1 (Veovera), ExVideoTagHeader.
func HEVCSequenceHeader(hvcc []byte) []byte {
	b := []byte{0x80 | FrameKey<<4 | PacketTypeSequenceStart, 'h', 'v', 'c', '1'}
	return append(b, hvcc...)
}

// AppendHEVCFrame appends an Enhanced RTMP video tag body with one HEVC
// access unit (4-byte length-prefixed NAL units) and its composition time.
func AppendHEVCFrame(dst []byte, keyframe bool, cts int32, nalus []byte) []byte {
	ft := byte(FrameInter)
	if keyframe {
		ft = FrameKey
	}
	if cts == 0 {
		dst = append(dst, 0x80|ft<<4|PacketTypeCodedFramesX, 'h', 'v', 'c', '1')
	} else {
		dst = append(dst, 0x80|ft<<4|PacketTypeCodedFrames, 'h', 'v', 'c', '1', byte(cts>>16), byte(cts>>8), byte(cts))
	}
	return append(dst, nalus...)
}

// Video is a parsed video tag body.
type Video struct {
	// FrameType is FrameKey, FrameInter, ...
	FrameType uint8
	// Codec is the legacy CodecID (CodecAVC) for classic tags, zero for
	// Enhanced RTMP tags.
	Codec uint8
	// Enhanced is set for an Enhanced RTMP tag.
	Enhanced bool
	// FourCC names the codec of an Enhanced RTMP tag (FourCCHEVC, ...).
	FourCC uint32
	// PacketType is the AVCPacketType for classic AVC tags and the Enhanced
	// RTMP VideoPacketType otherwise.
	PacketType uint8
	// CompositionTime is PTS - DTS in milliseconds (AVC, HEVC coded frames).
	CompositionTime int32
	// Payload is what follows the headers: the decoder configuration record
	// or length-prefixed NAL units. It aliases the tag body.
	Payload []byte
}

// Keyframe reports whether the tag holds a keyframe.
func (v *Video) Keyframe() bool { return v.FrameType == FrameKey }

// SequenceHeader reports whether the tag carries a decoder configuration
// record rather than media.
func (v *Video) SequenceHeader() bool {
	if v.Enhanced {
		return v.PacketType == PacketTypeSequenceStart
	}
	return v.Codec == CodecAVC && v.PacketType == AVCSequenceHeaderPacket
}

// ParseVideo parses a video tag body (classic and Enhanced RTMP headers).
func ParseVideo(data []byte) (Video, error) {
	if len(data) < 1 {
		return Video{}, fmt.Errorf("%w: empty video tag", ErrInvalid)
	}
	var v Video
	if data[0]&0x80 != 0 {
		v.Enhanced = true
		v.FrameType = data[0] >> 4 & 7
		v.PacketType = data[0] & 0x0f
		if v.FrameType == FrameCommand && v.PacketType != PacketTypeMetadata {
			v.Payload = data[1:]
			return v, nil
		}
		if len(data) < 5 {
			return Video{}, fmt.Errorf("%w: short enhanced video header", ErrInvalid)
		}
		v.FourCC = binary.BigEndian.Uint32(data[1:])
		data = data[5:]
		if v.PacketType == PacketTypeCodedFrames && (v.FourCC == FourCCAVC || v.FourCC == FourCCHEVC) {
			if len(data) < 3 {
				return Video{}, fmt.Errorf("%w: short composition time", ErrInvalid)
			}
			v.CompositionTime = si24(data)
			data = data[3:]
		}
		v.Payload = data
		return v, nil
	}
	v.FrameType = data[0] >> 4
	v.Codec = data[0] & 0x0f
	if v.Codec != CodecAVC {
		v.Payload = data[1:]
		return v, nil
	}
	if len(data) < 5 {
		return Video{}, fmt.Errorf("%w: short AVC video header", ErrInvalid)
	}
	v.PacketType = data[1]
	v.CompositionTime = si24(data[2:])
	v.Payload = data[5:]
	return v, nil
}

func si24(b []byte) int32 {
	return int32(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8) >> 8
}

// AVCConfig is a parsed AVCDecoderConfigurationRecord.
type AVCConfig struct {
	// Profile, Compatibility and Level are profile_idc, the constraint
	// flags byte and level_idc, copied from the SPS.
	Profile, Compatibility, Level uint8
	// LengthSize is the size of NAL unit length prefixes (1, 2 or 4).
	LengthSize int
	// SPS and PPS alias the parsed record.
	SPS, PPS [][]byte
}

// ParseAVCConfig parses an AVCDecoderConfigurationRecord (the payload of an
// AVC sequence header tag).
func ParseAVCConfig(b []byte) (AVCConfig, error) {
	var c AVCConfig
	if len(b) < 6 || b[0] != 1 {
		return c, fmt.Errorf("%w: bad AVCDecoderConfigurationRecord", ErrInvalid)
	}
	c.Profile, c.Compatibility, c.Level = b[1], b[2], b[3]
	c.LengthSize = int(b[4]&3) + 1
	if c.LengthSize == 3 {
		return c, fmt.Errorf("%w: NAL length size 3", ErrInvalid)
	}
	n := int(b[5] & 0x1f)
	b = b[6:]
	var err error
	if c.SPS, b, err = paramSets(b, n); err != nil {
		return c, err
	}
	if len(b) < 1 {
		return c, fmt.Errorf("%w: no PPS count", ErrInvalid)
	}
	n = int(b[0])
	if c.PPS, _, err = paramSets(b[1:], n); err != nil {
		return c, err
	}
	return c, nil
}

func paramSets(b []byte, n int) ([][]byte, []byte, error) {
	var out [][]byte
	for i := 0; i < n; i++ {
		if len(b) < 2 {
			return nil, nil, fmt.Errorf("%w: truncated parameter set", ErrInvalid)
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l || l == 0 {
			return nil, nil, fmt.Errorf("%w: truncated parameter set", ErrInvalid)
		}
		out = append(out, b[2:2+l])
		b = b[2+l:]
	}
	return out, b, nil
}
