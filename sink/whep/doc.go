// Package whep serves one call's media to any number of browser viewers over
// WebRTC, using the WebRTC-HTTP Egress Protocol (WHEP).
//
// A Sink is both a sink.Sink (the call's fan-out writes frames into it) and an
// http.Handler implementing the WHEP endpoint:
//
//   - POST with an SDP offer (Content-Type application/sdp) creates a viewer
//     and answers 201 Created with the SDP answer and the viewer resource's
//     URL in Location. The answer is sent once ICE gathering has completed,
//     so the viewer needs no trickle ICE.
//   - DELETE on the viewer resource stops that viewer.
//   - PATCH on the viewer resource with application/trickle-ice-sdpfrag adds
//     the viewer's ICE candidates (optional for a viewer).
//   - OPTIONS answers CORS pre-flight requests when Config.AllowOrigin is set.
//
// Media is passed through without transcoding: H.264 and VP8 video, Opus,
// PCMA and PCMU audio, as the call's frames carry them. The codecs a sink sends
// come from Config or from the first frames; the answer offers exactly those,
// in the forms browsers offer (H.264 packetization-mode 1 in the common
// profiles). Audio-only calls are answered audio-only: the viewer's video
// section stays in the answer (it may carry the BUNDLE tag) but gets no
// track, and the player shows "audio only". Frames are packetized
// once per sink (H.264 with media/rtph264, VP8 with pion/rtp's payloader, one
// RTP packet per audio frame) and every viewer numbers the shared packets in
// its own RTP sequence.
//
// New viewers start on a keyframe: the sink caches the last keyframe (SPS, PPS
// and IDR for H.264) and sends it first, then holds back the frames that
// depend on pictures the viewer never got until the next keyframe, which it
// asks for with Config.RequestKeyframe (rate-limited). RTCP PLI and FIR from
// viewers also ask for one; NACKs are answered by pion/interceptor's
// retransmission buffer.
//
// WriteFrame never blocks on a viewer: each viewer has a bounded queue and its
// own goroutine; when the queue is full the frame is dropped for that viewer
// only, counted, and that viewer waits for the next keyframe.
//
// RTP timestamps are strictly increasing per track whatever the call's
// frames do: a frame whose time is not after the previous one's in the
// track's RTP clock (a duplicate, a late frame, two frames within one tick)
// is stamped one tick after it, and later frames keep their own time once
// they are ahead again (media.DTSGuard). A browser would otherwise merge two
// frames with one timestamp, or drop frames that go back in time.
//
// ICE uses host candidates only unless Config.ICEServers lists STUN or TURN
// servers: loopback and the machine's addresses (or just Config.ICEIPs), plus
// Config.PublicIPs advertised for a 1:1 NAT (ICEAddrs picks both for a
// server). Multicast DNS is disabled.
//
// A Mux serves many sinks under one prefix: POST /whep/{name} reaches the
// sink registered as name, /whep/{name}/{viewer} its viewer resources; a
// name belongs to one owner (a call) at a time, and a MuxConfig.Authorize
// hook decides who may watch (package callmgr/wcsapi plugs its viewer tokens
// in there).
//
// PlayerHandler serves a small vanilla-JavaScript player page (no CDN) that
// plays a WHEP URL in a <video> element; PlayerScript returns its script for
// pages of your own.
//
// Specification: draft-ietf-wish-whep (WHEP), RFC 8840 (trickle ICE SDP
// fragments), RFC 8829 (JSEP), RFC 6184 (H.264 over RTP), RFC 7741 (VP8 over
// RTP), RFC 7587 (Opus over RTP), RFC 3551 (PCMA/PCMU), RFC 4585 and RFC 5104
// (PLI, FIR, NACK).
package whep
