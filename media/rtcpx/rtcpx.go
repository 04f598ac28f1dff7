// Package rtcpx is the RTCP a media session needs as a receiver: a robust,
// allocation-free walk over compound packets with parsers for the packets a
// receiver acts on (Sender Report, BYE), and per-source reception
// statistics for Receiver Reports (loss, interarrival jitter, LSR/DLSR).
//
// Outgoing RTCP (RR, SDES, PLI, FIR, NACK) is built with pion/rtcp.
//
// Specification: RFC 3550 §6.4 (SR/RR), §6.6 (BYE), §A.1 (sequence
// numbers), §A.3 (loss), §A.8 (jitter); RFC 5761 §4 (telling RTP from RTCP
// on one port).
package rtcpx

import (
	"encoding/binary"
	"errors"
	"time"
)

// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1).
const (
	TypeSR    = 200
	TypeRR    = 201
	TypeSDES  = 202
	TypeBYE   = 203
	TypeAPP   = 204
	TypeRTPFB = 205
	TypePSFB  = 206
)

// Errors of Walk and the parsers.
var (
	ErrTruncated = errors.New("rtcpx: truncated RTCP packet")
	ErrVersion   = errors.New("rtcpx: RTCP version is not 2")
	ErrPadding   = errors.New("rtcpx: invalid RTCP padding")
)

// Packet is one RTCP packet of a compound packet.
type Packet struct {
	// Type is the packet type (200 SR, 201 RR, 203 BYE, ...).
	Type uint8
	// Count is the 5-bit count field (reception reports, sources, or the
	// feedback message type).
	Count uint8
	// Body is the packet after its 4-byte header, padding removed. It
	// aliases the buffer given to Walk.
	Body []byte
}

// IsRTCP reports whether a packet received on a multiplexed RTP/RTCP port
// is RTCP: its second byte is a packet type 192-223 (RFC 5761 §4), which
// RTP payload types 64-95 with or without the marker bit would collide
// with.
func IsRTCP(b []byte) bool {
	return len(b) >= 2 && b[1] >= 192 && b[1] <= 223
}

// Walk calls fn for each packet of the compound RTCP packet b, in order,
// stopping early when fn returns false. It validates each header (version
// 2, length within b, padding) and returns an error for the first invalid
// one; packets before it have been passed to fn. It allocates nothing.
func Walk(b []byte, fn func(Packet) bool) error {
	if len(b) == 0 {
		return ErrTruncated
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return ErrTruncated
		}
		if b[0]>>6 != 2 {
			return ErrVersion
		}
		n := 4 * (int(binary.BigEndian.Uint16(b[2:])) + 1)
		if n > len(b) {
			return ErrTruncated
		}
		body := b[4:n]
		if b[0]&0x20 != 0 {
			if len(body) == 0 {
				return ErrPadding
			}
			pad := int(body[len(body)-1])
			if pad == 0 || pad > len(body) {
				return ErrPadding
			}
			body = body[:len(body)-pad]
		}
		if !fn(Packet{Type: b[1], Count: b[0] & 0x1f, Body: body}) {
			return nil
		}
		b = b[n:]
	}
	return nil
}

// SenderReport is the sender information of an RTCP SR (RFC 3550 §6.4.1).
type SenderReport struct {
	SSRC        uint32
	NTPTime     uint64 // 32.32 fixed-point seconds since 1900
	RTPTime     uint32 // RTP timestamp of the same instant
	PacketCount uint32
	OctetCount  uint32
}

// ParseSenderReport reads the sender information of an SR packet (its
// reception report blocks, if any, are ignored).
func ParseSenderReport(p Packet) (SenderReport, error) {
	if p.Type != TypeSR {
		return SenderReport{}, errors.New("rtcpx: not a sender report")
	}
	b := p.Body
	if len(b) < 24 {
		return SenderReport{}, ErrTruncated
	}
	return SenderReport{
		SSRC:        binary.BigEndian.Uint32(b),
		NTPTime:     binary.BigEndian.Uint64(b[4:]),
		RTPTime:     binary.BigEndian.Uint32(b[12:]),
		PacketCount: binary.BigEndian.Uint32(b[16:]),
		OctetCount:  binary.BigEndian.Uint32(b[20:]),
	}, nil
}

// ByeSources calls fn for each SSRC a BYE packet says goodbye for (RFC
// 3550 §6.6). A count that exceeds the packet is an error.
func ByeSources(p Packet, fn func(ssrc uint32)) error {
	if p.Type != TypeBYE {
		return errors.New("rtcpx: not a BYE")
	}
	if len(p.Body) < 4*int(p.Count) {
		return ErrTruncated
	}
	for i := 0; i < int(p.Count); i++ {
		fn(binary.BigEndian.Uint32(p.Body[4*i:]))
	}
	return nil
}

// SenderSSRC returns the SSRC of the packet's sender (the first word of
// SR, RR, APP and feedback packets; of SDES and BYE it is the first
// source).
func SenderSSRC(p Packet) (uint32, bool) {
	if len(p.Body) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p.Body), true
}

// ntpEpochOffset is the number of seconds from 1900 to 1970.
const ntpEpochOffset = 2208988800

// NTP converts a wall-clock time to a 64-bit NTP timestamp.
func NTP(t time.Time) uint64 {
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + ntpEpochOffset
	frac := uint64(ns%1e9) << 32 / 1e9
	return sec<<32 | frac
}

// ReportBlock is the part of an SR or RR reception report block (RFC 3550
// §6.4.1) a sender uses to measure the round trip: whom it reports on and
// the LSR/DLSR pair.
type ReportBlock struct {
	// SSRC is the source the block reports on.
	SSRC uint32
	// FractionLost is the fraction of packets lost since the previous
	// report, in 1/256.
	FractionLost uint8
	// LastSR is the middle 32 bits of the NTP timestamp of the last SR
	// received from SSRC (zero: none yet).
	LastSR uint32
	// DelaySinceLastSR is the time between receiving that SR and sending
	// this report, in 1/65536 s.
	DelaySinceLastSR uint32
}

// ReportBlocks calls fn for each reception report block of an SR or RR
// packet. A count that exceeds the packet is an error; packets of other
// types have none.
func ReportBlocks(p Packet, fn func(ReportBlock)) error {
	var b []byte
	switch p.Type {
	case TypeSR:
		if len(p.Body) < 24 {
			return ErrTruncated
		}
		b = p.Body[24:]
	case TypeRR:
		if len(p.Body) < 4 {
			return ErrTruncated
		}
		b = p.Body[4:]
	default:
		return nil
	}
	if len(b) < 24*int(p.Count) {
		return ErrTruncated
	}
	for i := 0; i < int(p.Count); i++ {
		blk := b[24*i:]
		fn(ReportBlock{
			SSRC:             binary.BigEndian.Uint32(blk),
			FractionLost:     blk[4],
			LastSR:           binary.BigEndian.Uint32(blk[16:]),
			DelaySinceLastSR: binary.BigEndian.Uint32(blk[20:]),
		})
	}
	return nil
}

// RoundTrip computes the round-trip time from a report block about one's
// own SRs that arrived at now (RFC 3550 §6.4.1: arrival − LSR − DLSR). It
// returns false when the block names no SR (LSR zero) or the result is not
// plausible (negative, or more than 10 s: a clock step or a block about
// an SR long gone).
func RoundTrip(blk ReportBlock, now time.Time) (time.Duration, bool) {
	if blk.LastSR == 0 {
		return 0, false
	}
	a := uint32(NTP(now) >> 16)
	d := int64(int32(a - blk.LastSR - blk.DelaySinceLastSR))
	if d < 0 || d > 10<<16 {
		return 0, false
	}
	return time.Duration(d * int64(time.Second) >> 16), true
}
