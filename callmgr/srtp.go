package callmgr

import (
	"strings"

	"github.com/sipstream/sipstream/media"
)

// SRTPMode says whether a call's media is encrypted: SRTP (RFC 3711) keyed
// by SDES (RFC 4568, a=crypto lines in the SDP, so the keys are only as
// private as the signalling: use SIP over TLS).
type SRTPMode string

// SRTP modes.
const (
	// SRTPDefault in CallParams means Config.SRTP; in Config it means
	// SRTPOff.
	SRTPDefault SRTPMode = ""
	// SRTPOff offers plain RTP (RTP/AVP).
	SRTPOff SRTPMode = "off"
	// SRTPOptional offers SRTP (RTP/SAVP with a=crypto) and falls back to
	// plain RTP when the peer refuses it: when the INVITE is answered 488
	// Not Acceptable Here or 415 Unsupported Media Type, the INVITE is sent
	// again (same Call-ID) with a plain RTP offer; when the peer answers
	// 200 without usable a=crypto (RTP/AVP, as some PBXs do to an
	// RTP/SAVP offer), that answer is taken as plain RTP. Either way the
	// call's CallInfo.SRTPFallback says why (reported with the ESTABLISHED
	// event) and the Manager logs a warning.
	SRTPOptional SRTPMode = "optional"
	// SRTPRequired offers SRTP only: a peer that refuses it fails the call
	// with its own status (488 or 415), a 200 without usable a=crypto fails
	// it with 488 Not Acceptable Here (sipstream hangs up), and a re-INVITE
	// that offers plain RTP is refused with 488.
	SRTPRequired SRTPMode = "required"
)

// ParseSRTPMode maps "off", "optional" and "required" (any case), the
// booleans "true"/"false", "yes"/"no", "on"/"off", "1"/"0" (true meaning
// required, false off), and "" (SRTPDefault) to an SRTPMode. Anything else
// gives a *ParamError for FieldSRTP.
func ParseSRTPMode(s string) (SRTPMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return SRTPDefault, nil
	case "off", "false", "no", "0", "none", "disabled":
		return SRTPOff, nil
	case "optional", "best-effort", "besteffort":
		return SRTPOptional, nil
	case "required", "true", "yes", "on", "1", "mandatory":
		return SRTPRequired, nil
	}
	return "", paramErr(FieldSRTP, "want off, optional or required")
}

// valid reports whether m is one of the modes.
func (m SRTPMode) valid() bool {
	switch m {
	case SRTPDefault, SRTPOff, SRTPOptional, SRTPRequired:
		return true
	}
	return false
}

// secureSpecs reports whether every stream is SRTP.
func secureSpecs(specs []media.StreamSpec) bool {
	for _, sp := range specs {
		if sp.Crypto == nil {
			return false
		}
	}
	return len(specs) > 0
}
