package sdp

import (
	"strconv"
	"strings"

	"github.com/sipstream/sipstream/media"
)

// rtxFormat is the RFC 4588 retransmission format offered for f: same clock
// rate, a=fmtp apt= naming f's payload type (§8.1).
func rtxFormat(pt uint8, f media.PayloadFormat) media.PayloadFormat {
	return media.PayloadFormat{PayloadType: pt, Codec: media.CodecRTX, ClockRate: f.ClockRate,
		Fmtp: "apt=" + strconv.Itoa(int(f.PayloadType))}
}

// AssociatedPayloadType returns the payload type an RFC 4588 rtx format
// resends, from the apt parameter of its a=fmtp line (§8.1), and whether f
// is an rtx format with a valid one.
func AssociatedPayloadType(f media.PayloadFormat) (uint8, bool) {
	if f.Codec != media.CodecRTX {
		return 0, false
	}
	return aptOf(f.Fmtp)
}

// aptOf reads apt=<0-127> from a format parameter list ("apt=96;rtx-time=3000").
func aptOf(fmtp string) (uint8, bool) {
	for _, p := range strings.Split(fmtp, ";") {
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
			if apt, ok := aptOf(f.fmtp); ok && apt == k.PayloadType {
				out = append(out, media.PayloadFormat{PayloadType: f.pt, Codec: media.CodecRTX, ClockRate: f.clock, Fmtp: f.fmtp})
				break
			}
		}
	}
	return out
}
