// Package sipstream turns SIP calls into live streams.
//
// A service imports sipstream, places a SIP call to a phone, a PBX or a video
// conference system (or answers one), and republishes the call's audio and
// video live: to RTMP and RTMPS servers (YouTube, Facebook Live, Twitch,
// nginx-rtmp, Wowza), to recordings on disk, and to browsers over WebRTC.
//
// # How data flows
//
//	callmgr.Manager.StartCall
//	   │  sip: REGISTER (optional) → INVITE + SDP offer → 1xx → 200 → ACK
//	   ▼
//	media session (one per call; RTP/RTCP UDP ports from a pool)
//	   │  per stream: latch source → jitter buffer → depacketizer → Frame
//	   │  → common timeline (RTCP sender reports map RTP time to wall time)
//	   ▼
//	fan-out: one bounded queue and goroutine per sink
//	   ├─> RTMP/RTMPS publisher (audio encoded to AAC where the target needs it)
//	   ├─> recorder (FLV, Matroska)
//	   └─> WebRTC (WHEP) viewers
//
// # Packages
//
//   - sip: the SIP user agent (built on github.com/emiago/sipgo, whose types
//     never appear in sipstream's API), SDP offer/answer, and siptest, a
//     scripted SIP peer for tests in the spirit of net/http/httptest.
//   - media: RTP in, timed frames out: the Frame type, jitter buffer,
//     depacketizers for H.264, VP8, G.711, Opus and Speex, RTCP, lip sync, and
//     the audio codecs (G.711, AAC-LC encoder, resampler).
//   - rtmp: an RTMP/RTMPS client (publisher) and a small server, written from
//     the handshake up, with FLV and AMF0.
//   - sink: the Sink interface, the per-sink fan-out, and the RTMP, recording
//     and WebRTC sinks.
//   - callmgr: the call lifecycle: Manager.StartCall, Terminate, SendDTMF,
//     status events, sinks added to and removed from live calls.
//   - examples/restserver: a ready server that reproduces the REST API of
//     Flashphoner Web Call Server's "SIP as RTMP" feature.
//
// The library is pure Go: it builds with CGO_ENABLED=0.
package sipstream
