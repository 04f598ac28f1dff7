// Package rtpdtmf reads and writes RFC 4733 telephone-event RTP payloads
// (DTMF digits sent as named events rather than as tones).
//
// Specification: RFC 4733 (RTP Payload for DTMF Digits, Telephony Tones, and
// Telephony Signals), §2.3 payload format, §2.5 sender and receiver rules.
//
// A Decoder turns the redundant stream of event packets a phone sends for
// one key press (start packet with the marker bit, duration updates, the end
// packet three times) into exactly one Event. An Encoder produces the packet
// schedule for one key press, sharing the audio stream's SSRC and RTP clock.
package rtpdtmf

import (
	"encoding/binary"
	"errors"
	"time"
)

// PayloadSize is the size of one telephone-event payload (RFC 4733 §2.3).
const PayloadSize = 4

// Named event codes of RFC 4733 §3.2 (DTMF).
const (
	EventStar  uint8 = 10 // '*'
	EventPound uint8 = 11 // '#'
	EventA     uint8 = 12
	EventB     uint8 = 13
	EventC     uint8 = 14
	EventD     uint8 = 15
	EventFlash uint8 = 16 // hook flash
)

// ErrMorePacketsNeeded is returned by Decoder.Decode when the packet did not
// complete an event (a start or update packet, or a redundant copy).
var ErrMorePacketsNeeded = errors.New("rtpdtmf: more packets needed")

// ErrShortPayload is returned for a payload shorter than 4 bytes.
var ErrShortPayload = errors.New("rtpdtmf: payload shorter than 4 bytes")

// Payload is one decoded telephone-event payload (RFC 4733 §2.3).
type Payload struct {
	Event    uint8  // event code, 0-255 (0-15 are DTMF digits)
	End      bool   // E bit: last packet(s) of the event
	Volume   uint8  // power level in -dBm0, 0-63
	Duration uint16 // duration so far, in RTP clock units
}

// Unmarshal parses a telephone-event payload. Extra bytes (RFC 4733 §2.5.1.5
// allows several events in one packet via redundancy, rarely used) are
// ignored; only the first 4 bytes are read.
func (p *Payload) Unmarshal(b []byte) error {
	if len(b) < PayloadSize {
		return ErrShortPayload
	}
	p.Event = b[0]
	p.End = b[1]&0x80 != 0
	p.Volume = b[1] & 0x3f
	p.Duration = binary.BigEndian.Uint16(b[2:4])
	return nil
}

// AppendTo appends the 4-byte wire form of p to b.
func (p Payload) AppendTo(b []byte) []byte {
	b1 := p.Volume & 0x3f
	if p.End {
		b1 |= 0x80
	}
	return append(b, p.Event, b1, byte(p.Duration>>8), byte(p.Duration))
}

// Digit returns the DTMF character of an event code: '0'-'9', '*', '#',
// 'A'-'D', or 0 for events that are not DTMF digits.
func Digit(event uint8) rune {
	switch {
	case event <= 9:
		return rune('0' + event)
	case event == EventStar:
		return '*'
	case event == EventPound:
		return '#'
	case event >= EventA && event <= EventD:
		return rune('A' + event - EventA)
	default:
		return 0
	}
}

// EventCode returns the event code for a DTMF character ('0'-'9', '*', '#',
// 'A'-'D', lower case accepted) and false for anything else.
func EventCode(digit rune) (uint8, bool) {
	switch {
	case digit >= '0' && digit <= '9':
		return uint8(digit - '0'), true
	case digit == '*':
		return EventStar, true
	case digit == '#':
		return EventPound, true
	case digit >= 'A' && digit <= 'D':
		return EventA + uint8(digit-'A'), true
	case digit >= 'a' && digit <= 'd':
		return EventA + uint8(digit-'a'), true
	}
	return 0, false
}

// Event is one key press (or other named event) as reported by a Decoder or
// sent by an Encoder.
type Event struct {
	// Code is the RFC 4733 event code (0-9 digits, 10 '*', 11 '#', 12-15
	// A-D, 16 flash).
	Code uint8
	// Duration is how long the key was pressed.
	Duration time.Duration
	// Volume is the power level in -dBm0 (0-63; 10 means -10 dBm0).
	Volume uint8
	// Timestamp is the RTP timestamp of the event's start, on the clock of
	// the audio stream that carries it.
	Timestamp uint32
	// Ended is true when the sender's end packet was received; false when
	// the event was closed because a newer event began or Flush was called
	// (its end packets were lost).
	Ended bool
}

// Digit returns the event's DTMF character, or 0 when it is not a digit.
func (e Event) Digit() rune { return Digit(e.Code) }

func unitsToDuration(units uint64, clockRate uint32) time.Duration {
	return time.Duration(units * uint64(time.Second) / uint64(clockRate))
}
