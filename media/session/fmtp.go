package session

import (
	"encoding/base64"
	"strings"

	"github.com/sipstream/sipstream/media/rtph264"
)

// spropParameterSets returns the SPS and PPS of an H.264 a=fmtp line's
// sprop-parameter-sets (RFC 6184 §8.1: base64 NAL units separated by
// commas), nil for what is absent or malformed.
func spropParameterSets(fmtp string) (sps, pps []byte) {
	var ps rtph264.ParamSets
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
			ps.Add(nalu)
		}
	}
	return ps.SPS, ps.PPS
}
