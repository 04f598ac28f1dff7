// Package whip receives audio that browsers and encoders publish over
// WebRTC, using the WebRTC-HTTP Ingestion Protocol (WHIP), and hands it to
// subscribers as media.Frames: an operator's microphone, published from a
// web page, spoken into a SIP call (package callmgr/wcsapi plays a
// publication into a call with sound.Live and callmgr.Call.InjectSound).
//
// A Server is an http.Handler for Prefix+NAME (the WHIP endpoint of the
// publication called NAME) and Prefix+NAME/ID (a publication's resource):
//
//   - POST with an SDP offer (Content-Type application/sdp) starts the
//     publication NAME and answers 201 Created with the SDP answer and the
//     resource's URL in Location. The answer is sent once ICE gathering has
//     completed: the publisher needs no trickle ICE (PATCH gets 405). A
//     second POST for a name being published gets 409 Conflict.
//   - DELETE on the resource ends the publication.
//   - OPTIONS answers CORS pre-flight requests when Config.AllowOrigin is
//     set.
//
// Audio in Opus, PCMA or PCMU is accepted (the first audio track of a
// publication; a second one is read and ignored). Video is answered, so
// that an offer whose first, BUNDLE-tagged section is video still
// connects (RFC 8843 §7.3.3), but its packets are read and discarded:
// sipstream sends calls no video from browsers.
//
// Audio RTP packets go through a media/jitter buffer (back in sequence
// order, duplicates dropped, an adaptive wait for missing packets, which
// are then skipped: the gap shows in the timestamps), and each becomes one
// frame: its payload, the codec and a PTS from the RTP timestamp (the first
// packet is PTS 0; the 32-bit timestamp is unwrapped). A packet behind a
// gap leaves with the first packet that arrives after its wait.
//
// A publication ends on DELETE, when its peer connection fails or closes,
// when no audio packet arrived for Config.MediaTimeout, when it does not
// connect within Config.ConnectTimeout, and on Close. Subscribers learn of
// the end through the onEnd function they gave Subscribe.
//
// ICE uses host candidates: loopback and the machine's addresses (or just
// Config.ICEIPs), plus Config.PublicIPs advertised for a 1:1 NAT
// (whep.ICEAddrs picks both for a server). Multicast DNS is disabled.
//
// Specification: RFC 9725 (WHIP), RFC 8829 (JSEP), RFC 7587 (Opus over RTP),
// RFC 3551 (PCMA/PCMU).
package whip
