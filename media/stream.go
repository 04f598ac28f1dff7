package media

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Direction is a stream's direction from sipstream's side, as in the SDP
// attributes a=sendrecv, a=sendonly, a=recvonly and a=inactive (RFC 3264).
type Direction uint8

// Directions. The zero value, SendRecv, is SDP's default when no attribute is
// given.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the SDP attribute name ("sendrecv", ...).
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	default:
		return "sendrecv"
	}
}

// Sends reports whether sipstream sends media in this direction.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether sipstream receives media in this direction.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// PayloadFormat is one RTP payload type of a stream as negotiated in SDP: its
// number and what a=rtpmap and a=fmtp say about it.
type PayloadFormat struct {
	// PayloadType is the RTP payload type number (0-127).
	PayloadType uint8
	// Codec is the encoding; CodecTelephoneEvent for RFC 4733 events.
	Codec Codec
	// ClockRate is the RTP clock rate from a=rtpmap (8000 for PCMA, 48000
	// for Opus, 90000 for video).
	ClockRate uint32
	// Channels is the channel count from a=rtpmap; zero means one (and
	// video).
	Channels uint8
	// Fmtp is the format parameters from a=fmtp, as written, without the
	// payload type ("packetization-mode=1;profile-level-id=42e01f").
	Fmtp string
}

// AssociatedPayloadType returns the payload type an RTX format (CodecRTX)
// retransmits: its a=fmtp apt= parameter (RFC 4588 §8.6). It returns false
// for other codecs and for an apt that is missing or not 0-127.
func (f PayloadFormat) AssociatedPayloadType() (uint8, bool) {
	if f.Codec != CodecRTX {
		return 0, false
	}
	for _, p := range strings.Split(f.Fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "apt") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 127 {
			return 0, false
		}
		return uint8(n), true
	}
	return 0, false
}

// Feedback lists the RTCP feedback messages the peer accepts for a stream
// (a=rtcp-fb, RFC 4585, RFC 5104).
type Feedback struct {
	NACK bool // generic NACK ("nack")
	PLI  bool // picture loss indication ("nack pli")
	FIR  bool // full intra request ("ccm fir")
}

// Crypto is the SDES-negotiated SRTP keying of a stream (a=crypto, RFC 4568).
type Crypto struct {
	// Suite is the crypto suite name, e.g. "AES_CM_128_HMAC_SHA1_80".
	Suite string
	// LocalKey is the master key followed by the master salt that sipstream
	// encrypts with (the one in its own SDP).
	LocalKey []byte
	// RemoteKey is the master key and salt the peer encrypts with.
	RemoteKey []byte
}

// String describes the keying without the keys, so that printing a Crypto
// or a StreamSpec (%v, %+v) never leaks SRTP key material into logs.
func (c Crypto) String() string {
	return fmt.Sprintf("{Suite:%s LocalKey:[%d bytes] RemoteKey:[%d bytes]}", c.Suite, len(c.LocalKey), len(c.RemoteKey))
}

// GoString is String, so that %#v hides the keys too.
func (c Crypto) GoString() string { return c.String() }

// StreamSpec is one negotiated media stream: an m= line of the offer and the
// matching one of the answer, seen from sipstream's side. The sip package
// produces it from an SDP exchange; a media session consumes it.
type StreamSpec struct {
	// Kind is audio or video.
	Kind Kind
	// Formats are the payload formats both sides agreed on, in the order of
	// preference of the answer. The first format that is not
	// telephone-event is the one sipstream sends; incoming packets may use
	// any of them (a peer may switch codec without a re-INVITE).
	Formats []PayloadFormat
	// Local is sipstream's RTP address as written in its own SDP.
	Local netip.AddrPort
	// Remote is where the peer asked to receive RTP. Before the first packet
	// arrives it is also the expected source; symmetric RTP latching may
	// replace it afterwards.
	Remote netip.AddrPort
	// RemoteRTCP is where the peer asked to receive RTCP (a=rtcp). The zero
	// value means the port after Remote's, or Remote itself with RTCPMux.
	RemoteRTCP netip.AddrPort
	// RTCPMux is true when both sides agreed on a=rtcp-mux (RFC 5761).
	RTCPMux bool
	// Direction is the stream's direction from sipstream's side.
	Direction Direction
	// Feedback is what RTCP feedback the peer accepts.
	Feedback Feedback
	// Crypto is the SRTP keying when the stream is RTP/SAVP with SDES; nil
	// for plain RTP.
	Crypto *Crypto
}
