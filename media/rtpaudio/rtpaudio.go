// Package rtpaudio packetizes and depacketizes the frame-based audio codecs
// SIP peers send: G.711 A-law and µ-law, Opus and Speex. For all of them
// one RTP packet carries one frame's worth of audio, so depacketizing is
// describing the payload: its clock rate, channels and duration.
//
// Specification: RFC 3551 §4.5.14 (PCMA, PCMU: one octet per sample),
// RFC 7587 (Opus over RTP: 48 kHz clock) with RFC 6716 §3.1 (the TOC byte:
// frame size and frame count), RFC 5574 (Speex over RTP: 20 ms frames).
package rtpaudio

import (
	"errors"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media"
)

// ErrEmpty is returned for a packet without payload.
var ErrEmpty = errors.New("rtpaudio: empty payload")

// ErrUnsupported is returned for a codec this package does not handle.
var ErrUnsupported = errors.New("rtpaudio: unsupported codec")

// Format describes an audio payload format.
type Format struct {
	// Codec is PCMA, PCMU, Opus or Speex.
	Codec media.Codec
	// ClockRate is the RTP clock rate. Zero means the codec's usual one:
	// 8000 for G.711 and Speex, 48000 for Opus (the only valid value, RFC
	// 7587 §4.1).
	ClockRate uint32
	// Channels is the channel count for G.711 (zero means one). Opus
	// packets say their own channel count in the TOC byte; Speex is mono.
	Channels uint8
	// SpeexFramesPerPacket is the number of 20 ms Speex frames in one
	// packet (RFC 5574 §3.3 allows several). Zero means one.
	SpeexFramesPerPacket int
}

// normalize returns f with defaults applied, or an error.
func (f Format) normalize() (Format, error) {
	switch f.Codec {
	case media.CodecPCMA, media.CodecPCMU:
		if f.ClockRate == 0 {
			f.ClockRate = 8000
		}
		if f.Channels == 0 {
			f.Channels = 1
		}
	case media.CodecOpus:
		if f.ClockRate == 0 {
			f.ClockRate = 48000
		}
		if f.ClockRate != 48000 {
			return f, fmt.Errorf("rtpaudio: Opus clock rate must be 48000, not %d", f.ClockRate)
		}
	case media.CodecSpeex:
		if f.ClockRate == 0 {
			f.ClockRate = 8000
		}
		if f.ClockRate != 8000 && f.ClockRate != 16000 && f.ClockRate != 32000 {
			return f, fmt.Errorf("rtpaudio: Speex clock rate %d is not 8000, 16000 or 32000", f.ClockRate)
		}
		f.Channels = 1
		if f.SpeexFramesPerPacket < 0 {
			return f, errors.New("rtpaudio: negative SpeexFramesPerPacket")
		}
		if f.SpeexFramesPerPacket == 0 {
			f.SpeexFramesPerPacket = 1
		}
	default:
		return f, fmt.Errorf("%w: %v", ErrUnsupported, f.Codec)
	}
	return f, nil
}

// samples returns the number of samples per channel in payload and its
// channel count.
func (f Format) samples(payload []byte) (uint32, uint8, error) {
	if len(payload) == 0 {
		return 0, 0, ErrEmpty
	}
	switch f.Codec {
	case media.CodecPCMA, media.CodecPCMU:
		if len(payload)%int(f.Channels) != 0 {
			return 0, 0, fmt.Errorf("rtpaudio: G.711 payload of %d bytes is not a multiple of %d channels", len(payload), f.Channels)
		}
		return uint32(len(payload) / int(f.Channels)), f.Channels, nil
	case media.CodecOpus:
		d, ch, err := OpusPacketDuration(payload)
		if err != nil {
			return 0, 0, err
		}
		return uint32(d * 48000 / time.Second), ch, nil
	default: // Speex
		return uint32(f.SpeexFramesPerPacket) * f.ClockRate / 50, 1, nil
	}
}

// opusFrameSize is RFC 6716 §3.1 Table 2: the frame duration of each TOC
// configuration.
func opusFrameSize(config byte) time.Duration {
	switch {
	case config < 12: // SILK-only: 10, 20, 40, 60 ms
		return [4]time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond}[config%4]
	case config < 16: // Hybrid: 10, 20 ms
		return [2]time.Duration{10 * time.Millisecond, 20 * time.Millisecond}[config%2]
	default: // CELT-only: 2.5, 5, 10, 20 ms
		return [4]time.Duration{2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}[config%4]
	}
}

// OpusPacketDuration returns the duration and channel count of an Opus
// packet from its TOC byte and, for code 3, its frame count byte (RFC 6716
// §3.1, §3.2.5). It rejects packets over 120 ms (§3.2.5, R5).
func OpusPacketDuration(p []byte) (time.Duration, uint8, error) {
	if len(p) == 0 {
		return 0, 0, ErrEmpty
	}
	toc := p[0]
	size := opusFrameSize(toc >> 3)
	ch := uint8(1)
	if toc&0x04 != 0 {
		ch = 2
	}
	var frames int
	switch toc & 0x03 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, 0, errors.New("rtpaudio: Opus code 3 packet without frame count")
		}
		frames = int(p[1] & 0x3f)
		if frames == 0 {
			return 0, 0, errors.New("rtpaudio: Opus code 3 packet with zero frames")
		}
	}
	d := time.Duration(frames) * size
	if d > 120*time.Millisecond {
		return 0, 0, fmt.Errorf("rtpaudio: Opus packet of %v exceeds 120 ms", d)
	}
	return d, ch, nil
}
