package media

import "time"

// Frame is one whole unit of media on a call's common timeline: a video access
// unit (all NAL units of one picture) or one audio packet's worth of samples.
//
// Ownership has two regimes:
//   - A Frame delivered by a depacketizer or a media session's frame callback
//     is borrowed: its Payload aliases the producer's reusable buffers and is
//     valid only until the call returns. Copy it before retaining it. This
//     keeps the RTP path free of allocations.
//   - A Frame handed to a sink.Sink by the fan-out is shared and immutable:
//     the fan-out copies the payload once and every sink sees that copy. Sinks
//     may retain it but must never modify it.
type Frame struct {
	// Codec says how Payload is encoded.
	Codec Codec

	// PTS is the presentation time on the call's common timeline: the time
	// since the timeline's origin (the first media of the call). All streams
	// of a call share one timeline, so PTS values of audio and video frames
	// can be compared directly for lip sync. PTS never decreases within a
	// stream for audio; for video it follows the presentation order.
	PTS time.Duration

	// DTS is the decoding time on the same timeline. It equals PTS for audio
	// and for video without B-frames (the norm for SIP endpoints).
	DTS time.Duration

	// Keyframe marks a video frame that can be decoded without earlier frames
	// (an H.264 IDR access unit, a VP8 key frame). For audio it is always
	// true.
	Keyframe bool

	// Payload is the encoded frame:
	//   - H.264: AVC format, each NAL unit preceded by its 4-byte big-endian
	//     length (what FLV and Matroska store). A keyframe carries the SPS and
	//     PPS NAL units in front of the IDR slices.
	//   - VP8: one complete VP8 frame (RFC 6386), payload descriptors removed.
	//   - PCMA, PCMU, Speex, Opus: the RTP payload of one packet.
	//   - AAC: one raw access unit (no ADTS header).
	Payload []byte

	// ClockRate is the codec's sampling rate for audio (8000 for G.711,
	// 48000 for Opus) and the RTP clock (90000) for video.
	ClockRate uint32

	// Channels is the number of audio channels; zero for video.
	Channels uint8

	// Duration is the frame's length for audio (samples per channel divided by
	// ClockRate); zero when unknown and for video.
	Duration time.Duration
}

// Kind returns the frame's kind, derived from its codec.
func (f *Frame) Kind() Kind { return f.Codec.Kind() }
