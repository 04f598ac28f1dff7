package flv

import (
	"encoding/binary"
	"fmt"
)

// Sound formats (AUDIODATA SoundFormat).
const (
	SoundLinearPCM = 0
	SoundMP3       = 2
	SoundLinearLE  = 3
	SoundG711ALaw  = 7
	SoundG711MuLaw = 8
	SoundExHeader  = 9 // Enhanced RTMP v2: a FourCC follows
	SoundAAC       = 10
	SoundSpeex     = 11
)

// AAC packet types.
const (
	AACSequenceHeaderPacket = 0
	AACRawPacket            = 1
)

// First bytes of audio tag bodies. AAC always declares 44 kHz, 16-bit,
// stereo (the AudioSpecificConfig has the real values); G.711 declares
// 5.5 kHz (the field cannot say 8 kHz, which is implied), 16-bit, mono;
// Speex declares 5.5 kHz, 16-bit, mono (16 kHz is implied).
const (
	aacByte   = SoundAAC<<4 | 3<<2 | 1<<1 | 1 // 0xAF
	alawByte  = SoundG711ALaw<<4 | 1<<1       // 0x72
	ulawByte  = SoundG711MuLaw<<4 | 1<<1      // 0x82
	speexByte = SoundSpeex<<4 | 1<<1          // 0xB2
)

// AACSequenceHeader returns the audio tag body that carries an
// AudioSpecificConfig (ISO/IEC 14496-3 section 1.6.2.1).
func AACSequenceHeader(asc []byte) []byte {
	return append([]byte{aacByte, AACSequenceHeaderPacket}, asc...)
}

// AppendAACFrame appends to dst the audio tag body for one raw AAC access
// unit.
func AppendAACFrame(dst, au []byte) []byte {
	return append(append(dst, aacByte, AACRawPacket), au...)
}

// AppendG711Frame appends to dst the audio tag body for G.711 samples:
// A-law if alaw, µ-law otherwise (8 kHz mono).
func AppendG711Frame(dst []byte, alaw bool, payload []byte) []byte {
	if alaw {
		dst = append(dst, alawByte)
	} else {
		dst = append(dst, ulawByte)
	}
	return append(dst, payload...)
}

// AppendSpeexFrame appends to dst the audio tag body for one Speex packet.
// FLV Speex is 16 kHz (wideband) mono only.
func AppendSpeexFrame(dst, payload []byte) []byte {
	return append(append(dst, speexByte), payload...)
}

// OpusSequenceHeader returns an Enhanced RTMP v2 audio tag body carrying an
// Opus identification header ("OpusHead", RFC 7845 section 5.1).
//
// Specification: Enhanced RTMP v2 (Veovera), ExAudioTagHeader.
func OpusSequenceHeader(opusHead []byte) []byte {
	return append([]byte{SoundExHeader<<4 | PacketTypeSequenceStart, 'O', 'p', 'u', 's'}, opusHead...)
}

// AppendOpusFrame appends an Enhanced RTMP v2 audio tag body with one Opus
// packet to dst.
func AppendOpusFrame(dst, packet []byte) []byte {
	return append(append(dst, SoundExHeader<<4|PacketTypeCodedFrames, 'O', 'p', 'u', 's'), packet...)
}

// Audio is a parsed audio tag body.
type Audio struct {
	// Format is the SoundFormat (SoundAAC, SoundG711ALaw, ...;
	// SoundExHeader for Enhanced RTMP, with FourCC set).
	Format uint8
	// Rate is the SoundRate field (0: 5.5 kHz, 1: 11 kHz, 2: 22 kHz, 3: 44 kHz).
	Rate uint8
	// Bits16 and Stereo are the SoundSize and SoundType fields.
	Bits16, Stereo bool
	// PacketType is the AACPacketType for AAC and the AudioPacketType for
	// Enhanced RTMP; zero otherwise.
	PacketType uint8
	// FourCC names the codec of an Enhanced RTMP tag.
	FourCC uint32
	// Payload aliases the tag body after the headers.
	Payload []byte
}

// SequenceHeader reports whether the tag carries a codec configuration
// (AAC AudioSpecificConfig, Enhanced RTMP sequence start).
func (a *Audio) SequenceHeader() bool {
	return (a.Format == SoundAAC || a.Format == SoundExHeader) && a.PacketType == 0
}

// ParseAudio parses an audio tag body.
func ParseAudio(data []byte) (Audio, error) {
	if len(data) < 1 {
		return Audio{}, fmt.Errorf("%w: empty audio tag", ErrInvalid)
	}
	a := Audio{
		Format: data[0] >> 4,
		Rate:   data[0] >> 2 & 3,
		Bits16: data[0]&2 != 0,
		Stereo: data[0]&1 != 0,
	}
	switch a.Format {
	case SoundAAC:
		if len(data) < 2 {
			return Audio{}, fmt.Errorf("%w: short AAC header", ErrInvalid)
		}
		a.PacketType = data[1]
		a.Payload = data[2:]
	case SoundExHeader:
		a.Rate, a.Bits16, a.Stereo = 0, false, false
		a.PacketType = data[0] & 0x0f
		if len(data) < 5 {
			return Audio{}, fmt.Errorf("%w: short enhanced audio header", ErrInvalid)
		}
		a.FourCC = binary.BigEndian.Uint32(data[1:])
		a.Payload = data[5:]
	default:
		a.Payload = data[1:]
	}
	return a, nil
}
