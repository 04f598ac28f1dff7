package sdp

import (
	"strconv"

	"github.com/sipstream/sipstream/media"
)

// rtxFormat is the RFC 4588 retransmission format offered for f: same clock
// rate, a=fmtp apt= naming f's payload type (§8.1).
func rtxFormat(pt uint8, f media.PayloadFormat) media.PayloadFormat {
	return media.PayloadFormat{PayloadType: pt, Codec: media.CodecRTX, ClockRate: f.ClockRate,
		Fmtp: "apt=" + strconv.Itoa(int(f.PayloadType))}
}

// rtxFormats returns the rtx formats of a section (listed) that resend one
// of the negotiated media formats (kept): apt must name a kept payload type
// that is not telephone-event, with the same clock rate. One rtx format per
// kept format, the first listed for it, in kept's order (so the first rtx
// format resends the format sent); fmtp as written.
func rtxFormats(listed []rtpFormat, kept []media.PayloadFormat) []media.PayloadFormat {
	var out []media.PayloadFormat
	for _, k := range kept {
		if k.Codec == media.CodecTelephoneEvent || k.Codec == media.CodecRTX {
			continue
		}
		for _, f := range listed {
			if f.codec != media.CodecRTX || f.clock != k.ClockRate || containsPT(kept, f.pt) || containsPT(out, f.pt) {
				continue
			}
			rtx := media.PayloadFormat{PayloadType: f.pt, Codec: media.CodecRTX, ClockRate: f.clock, Fmtp: f.fmtp}
			if apt, ok := rtx.AssociatedPayloadType(); ok && apt == k.PayloadType {
				out = append(out, rtx)
				break
			}
		}
	}
	return out
}
