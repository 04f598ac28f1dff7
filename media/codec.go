package media

import "strings"

// Kind says whether a stream or frame carries audio or video.
type Kind uint8

// Kinds of media.
const (
	KindUnknown Kind = iota
	KindAudio
	KindVideo
)

// String returns "audio", "video" or "unknown".
func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	default:
		return "unknown"
	}
}

// Codec identifies a media encoding independently of any RTP payload type
// number. The zero value is CodecUnknown.
type Codec uint8

// Codecs sipstream receives from SIP peers or produces for sinks.
const (
	CodecUnknown Codec = iota
	// CodecH264 is H.264/AVC video. Specification: RFC 6184 (RTP), ITU-T H.264.
	CodecH264
	// CodecVP8 is VP8 video. Specification: RFC 7741 (RTP), RFC 6386.
	CodecVP8
	// CodecPCMA is G.711 A-law audio, 8 kHz. Specification: RFC 3551.
	CodecPCMA
	// CodecPCMU is G.711 µ-law audio, 8 kHz. Specification: RFC 3551.
	CodecPCMU
	// CodecOpus is Opus audio; its RTP clock is always 48 kHz. Specification: RFC 7587.
	CodecOpus
	// CodecSpeex is Speex audio (8, 16 or 32 kHz). Specification: RFC 5574.
	CodecSpeex
	// CodecAAC is AAC audio (raw access units, no ADTS header). Produced by
	// sipstream's encoder for RTMP, never received over RTP here.
	CodecAAC
	// CodecTelephoneEvent is RFC 4733 named telephone events (DTMF). It never
	// appears in a Frame: received events are reported as DTMF events.
	CodecTelephoneEvent
	// CodecRTX is an RFC 4588 retransmission payload format: packets that
	// resend lost packets of the format named by its a=fmtp apt= parameter,
	// on their own SSRC, each payload starting with the original sequence
	// number. It never appears in a Frame: the media session turns RTX
	// packets back into the packets they resend. Specification: RFC 4588.
	CodecRTX
)

var codecNames = [...]string{
	CodecUnknown:        "unknown",
	CodecH264:           "H264",
	CodecVP8:            "VP8",
	CodecPCMA:           "PCMA",
	CodecPCMU:           "PCMU",
	CodecOpus:           "opus",
	CodecSpeex:          "speex",
	CodecAAC:            "AAC",
	CodecTelephoneEvent: "telephone-event",
	CodecRTX:            "rtx",
}

// String returns the codec's SDP encoding name as RFC 3551 and its successors
// spell it ("H264", "PCMA", "opus", "telephone-event").
func (c Codec) String() string {
	if int(c) < len(codecNames) {
		return codecNames[c]
	}
	return "unknown"
}

// Kind returns KindVideo for video codecs and KindAudio for audio codecs
// (telephone-event included).
func (c Codec) Kind() Kind {
	switch c {
	case CodecH264, CodecVP8:
		return KindVideo
	case CodecPCMA, CodecPCMU, CodecOpus, CodecSpeex, CodecAAC, CodecTelephoneEvent:
		return KindAudio
	default:
		return KindUnknown
	}
}

// ParseCodec maps an SDP encoding name (case-insensitive, as in an a=rtpmap
// line) to a Codec. It returns CodecUnknown for names it does not know.
func ParseCodec(name string) Codec {
	for c, n := range codecNames {
		if c != int(CodecUnknown) && strings.EqualFold(n, name) {
			return Codec(c)
		}
	}
	if strings.EqualFold(name, "MPEG4-GENERIC") {
		return CodecAAC
	}
	return CodecUnknown
}
