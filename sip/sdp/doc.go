// Package sdp builds and negotiates the SDP (Session Description Protocol)
// bodies of sipstream's SIP calls: the offer of an outbound INVITE, the
// negotiation of the peer's answer into media.StreamSpec values a media session
// consumes, and the answer to an incoming offer (a UAS, a re-INVITE for hold
// or a codec change).
//
// Offers list H.264 (packetization-mode=1) then VP8 for video, and PCMA, PCMU,
// Opus, Speex and telephone-event for audio by default, with a=rtcp,
// optional a=rtcp-mux, RTCP feedback (nack, nack pli, ccm fir) and RFC 4588
// retransmission formats (rtx, apt=) for video, and SDES keying (a=crypto,
// RTP/SAVP) when asked. Negotiated rtx formats follow the media formats in a
// StreamSpec, so the first format that is not telephone-event is always a
// codec.
//
// Incoming SDP is parsed by a small tolerant parser of this package rather
// than by pion/sdp, which rejects what real endpoints send (m=image udptl for
// T.38 fax from gateways, unknown transport protocols, lines out of the RFC's
// order); outgoing SDP is marshalled with pion/sdp. Errors wrap ErrInvalid for
// malformed SDP and ErrNoCommonCodec when nothing usable remains (a SIP user
// agent answers 488 Not Acceptable Here).
//
// Specification: RFC 8866 (SDP), RFC 3264 (offer/answer), RFC 3551 (static
// payload types), RFC 3605 (a=rtcp), RFC 5761 (rtcp-mux), RFC 4585 and RFC 5104
// (rtcp-fb), RFC 4588 (rtx), RFC 4568 (SDES a=crypto), RFC 6184 §8 (H.264 fmtp), RFC 7587
// (Opus), RFC 5574 (Speex), RFC 4733 (telephone-event).
package sdp
