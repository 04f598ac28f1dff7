// Package media holds the types every other sipstream package speaks: a
// Frame (one video access unit or one audio packet's worth of samples, on a
// call's common timeline, with explicit buffer ownership), the Codec and
// Kind of a stream, and the StreamSpec that SDP negotiation produces and a
// media session consumes.
//
// The subpackages do the work: jitter (per-stream jitter buffer), rtph264,
// rtpvp8, rtpaudio and rtpdtmf (RTP payload formats, each with an Encoder
// and a Decoder), session (a call's RTP/RTCP sockets, from packets to
// frames), timeline and rtcpx (lip sync through RTCP sender reports), and
// the audio path for RTMP: g711, resample, aac (a pure-Go AAC-LC encoder)
// and transcode; h264gen makes a video track for audio-only calls.
package media
