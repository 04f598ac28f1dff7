package session

import (
	"encoding/base64"
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// spropParameterSets returns the SPS and PPS of an H.264 a=fmtp line's
// sprop-parameter-sets (RFC 6184 §8.1: base64 NAL units separated by
// commas), nil for what is absent or malformed.
func spropParameterSets(fmtp string) (sps, pps []byte) {
	for _, param := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(param), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "sprop-parameter-sets") {
			continue
		}
		for _, enc := range strings.Split(v, ",") {
			enc = strings.TrimSpace(enc)
			nalu, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				nalu, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "="))
			}
			if err != nil || len(nalu) == 0 || nalu[0]&0x80 != 0 {
				continue
			}
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				if sps == nil {
					sps = nalu
				}
			case h264.NALUTypePPS:
				if pps == nil {
					pps = nalu
				}
			}
		}
	}
	return sps, pps
}
