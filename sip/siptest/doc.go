// Package siptest provides a scripted SIP peer for tests, in the spirit of
// net/http/httptest: a user agent on loopback that sipstream (or any SIP
// caller) can call, and that records what it received.
//
// A Peer listens on 127.0.0.1 (UDP, or TCP or TLS when asked) at a free port and
// plays a Script for each incoming INVITE: answer after an optional ring
// (180 Ringing, optionally 183 Session Progress with early media), reject
// with a status code, ring until the caller cancels, never respond, hang up
// after a while, or vanish (stop answering and sending anything without a
// BYE). It answers the SDP offer with sip/sdp.Answer and streams RTP to the
// caller's address at real-time pace: a sine tone (PCMA/PCMU) and the H.264
// test clip (320x240, 25 fps, an IDR every second), with RTCP Sender
// Reports when asked. A PLI, FIR or SIP INFO picture_fast_update makes the
// video jump to the next IDR.
//
// Script.LiveVideo makes the video behave like a phone's encoder on a lossy
// link instead: frames made live by media/h264gen with a long GOP (10 s by
// default), any of which becomes an IDR when a keyframe is requested, padded
// to a real encoder's packet counts (10 RTP packets per IDR, 3 per P frame).
// Whatever the video, the peer keeps the last 1024 video packets sent (2 s
// at most) and answers an RTCP generic NACK (RFC 4585, alone or in a
// compound packet, on the RTCP port or with rtcp-mux) by resending the
// packets at once: as RFC 4588 RTX on an SSRC of its own when the caller
// offered rtx (the peer accepts it), else unchanged.
// Script.IgnoreKeyframeRequests, NoRetransmit and NoRTX make a phone that
// does less; PeerCall.VideoSent counts frames, keyframes sent on request and
// retransmissions.
//
// Each call is a PeerCall that records the INVITE (headers, Call-ID, From
// display name, SDP), INFO requests (DTMF relay, DTMF, picture_fast_update),
// RFC 4733 digits received over RTP, RTP packet counts, decoded G.711 audio,
// RTCP packets (SR, RR, PLI, FIR, NACK), re-INVITEs and the caller's BYE or
// CANCEL, and REFERs (Refer-To, Referred-By, the Replaces of an attended
// transfer, the answers to its NOTIFYs); Wait methods block until something
// arrived, and Peer.Requests
// lists every request received (OPTIONS keepalives, UPDATEs ...). A
// PeerCall can hang up (BYE), put the caller on hold and back (re-INVITE),
// send DTMF (RFC 4733 events on its audio stream) and INFO requests.
// Script.AudioPCM and Script.VideoClip stream frames of your own instead of
// the tone and the clip; Script.SessionExpires asks for RFC 4028 session
// timers. Request.SDPDirections reads the direction of each m= line of a
// re-INVITE's offer (hold: sendonly or inactive).
//
// A REFER in a call (RFC 3515 transfer) is answered 202 Accepted, then the
// peer sends NOTIFYs with message/sipfrag bodies, "SIP/2.0 100 Trying" and
// the final status ("SIP/2.0 200 OK", or Script.ReferResult such as 486),
// the last one ending the implicit subscription, and with
// Script.HangupAfterRefer hangs up after a successful one, as a phone does
// once its new call is up. Script.ReferReject refuses REFERs instead. The
// peer does not call the Refer-To target itself. Its 200 OK advertises
// REFER and NOTIFY in Allow and "Supported: replaces".
//
// A Peer is also a registrar: it accepts REGISTER, with digest
// authentication (RFC 3261 §22, MD5, qop=auth) when Config.Users is set, and
// can challenge INVITEs with 401 or 407. Peer.Register registers the peer
// itself with a registrar (a kamailio in interop tests), so that calls
// routed through a proxy reach it; its in-dialog requests follow the
// Record-Route set.
//
// A Peer also places calls: Peer.Call sends an INVITE with an audio and
// video offer (PCMA, PCMU, telephone-event; H.264 packetization-mode 1), or
// none with CallOptions.DelayedOffer (the answer then goes in the ACK),
// answers one digest challenge, can CANCEL while ringing
// (CallOptions.CancelAfter, or its ctx), and returns once the call is
// answered and acknowledged, or a *StatusError with the final status. The
// call then streams what CallOptions.Script says (tone, clip, LiveVideo,
// Sender Reports) and is a PeerCall like an answered one: Hangup, SendDTMF
// (RFC 4733), SendDTMFInfo (INFO application/dtmf-relay), SendInfo,
// ReceivedAudio, WaitBye for the other side's BYE. An incoming INVITE
// without SDP is answered with the peer's offer in the 200 OK and the
// caller's answer taken from the ACK.
//
// Script.SRTP accepts RTP/SAVP offers with SDES keys (RFC 4568) and then
// encrypts and decrypts its media (RFC 3711); without it an RTP/SAVP offer
// is answered 488.
//
// Limits: no DTLS-SRTP, no PRACK; a call the peer places receives early
// media (a 183 with SDP starts its streams: PeerCall.EarlyAudio) but sends
// only from the 200 OK on; video is answered and sent as H.264 only; only video is retransmitted. Re-INVITE offers from the peer list audio before video.
//
// The peer is built on github.com/emiago/sipgo; none of sipgo's types appear
// in this package's API. It does not use package sip (sipstream's user
// agent), so that the two can test each other.
//
// Specification: RFC 3261 (SIP), RFC 3264 (offer/answer, hold), RFC 3550
// (RTP/RTCP), RFC 4733 (telephone-event), RFC 4585 and RFC 5104 (PLI, FIR),
// RFC 6184 (H.264 over RTP), RFC 4588 (RTX).
package siptest
