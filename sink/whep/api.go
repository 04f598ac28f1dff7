package whep

import (
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media"
)

// newSettingEngine builds the ICE settings shared by every viewer.
func newSettingEngine(cfg *Config) (webrtc.SettingEngine, error) {
	var se webrtc.SettingEngine
	// Local use needs no external server: no mDNS, loopback allowed.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(cfg.ICEIPs) > 0 {
		allowed := append([]netip.Addr(nil), cfg.ICEIPs...)
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			if !ok {
				return false
			}
			a = a.Unmap()
			for _, b := range allowed {
				if a == b.Unmap() {
					return true
				}
			}
			return false
		})
	}
	if cfg.UDPPortMin != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return se, err
		}
	}
	if len(cfg.PublicIPs) > 0 {
		var v4, v6 []string
		for _, ip := range cfg.PublicIPs {
			if ip.Unmap().Is4() {
				v4 = append(v4, ip.Unmap().String())
			} else {
				v6 = append(v6, ip.String())
			}
		}
		var rules []webrtc.ICEAddressRewriteRule
		// Append: keep the local candidates (LAN and loopback viewers) and
		// advertise the public address with the same port (1:1 NAT).
		// Replace (PublicIPsOnly): the public address instead of every
		// local one.
		mode := webrtc.ICEAddressRewriteAppend
		if cfg.PublicIPsOnly {
			mode = webrtc.ICEAddressRewriteReplace
			// A family without a public address would show its local
			// addresses: gather only on the families rewritten.
			var types []webrtc.NetworkType
			if len(v4) > 0 {
				types = append(types, webrtc.NetworkTypeUDP4)
			}
			if len(v6) > 0 {
				types = append(types, webrtc.NetworkTypeUDP6)
			}
			se.SetNetworkTypes(types)
		}
		if len(v4) > 0 {
			rules = append(rules, webrtc.ICEAddressRewriteRule{
				External: v4, CIDR: "0.0.0.0/0",
				AsCandidateType: webrtc.ICECandidateTypeHost, Mode: mode,
			})
		}
		if len(v6) > 0 {
			rules = append(rules, webrtc.ICEAddressRewriteRule{
				External: v6, CIDR: "::/0",
				AsCandidateType: webrtc.ICECandidateTypeHost, Mode: mode,
			})
		}
		if err := se.SetICEAddressRewriteRules(rules...); err != nil {
			return se, err
		}
	}
	return se, nil
}

const h264FmtpPrefix = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id="

var videoFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}

// offeredCodec is one codec of an SDP offer's m= section.
type offeredCodec struct {
	pt    uint8
	name  string // encoding name as in a=rtpmap
	clock uint32
	fmtp  string
}

// parseOffer returns the codecs offered for each kind ("audio", "video"),
// ignoring rejected m= sections.
func parseOffer(offer string) (map[string][]offeredCodec, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, err
	}
	out := make(map[string][]offeredCodec)
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 {
			continue
		}
		kind := md.MediaName.Media
		fmtps := make(map[string]string)
		for _, a := range md.Attributes {
			if a.Key == "fmtp" {
				if pt, rest, ok := strings.Cut(a.Value, " "); ok {
					fmtps[pt] = strings.TrimSpace(rest)
				}
			}
		}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			pt, enc, ok := strings.Cut(a.Value, " ")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(pt, 10, 7)
			if err != nil {
				continue
			}
			name, rest, _ := strings.Cut(enc, "/")
			clockStr, _, _ := strings.Cut(rest, "/")
			clock, _ := strconv.ParseUint(clockStr, 10, 32)
			out[kind] = append(out[kind], offeredCodec{pt: uint8(n), name: name, clock: uint32(clock), fmtp: fmtps[pt]})
		}
	}
	return out, nil
}

// fmtpParam returns parameter key of an fmtp line ("" if absent).
func fmtpParam(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// codecPlan is what one viewer negotiates: the codecs registered with its
// media engine and the capability of each track (zero MimeType: no track).
type codecPlan struct {
	video, audio       webrtc.RTPCodecCapability
	videoPTs, audioPTs []webrtc.RTPCodecParameters
}

// plan picks, from the viewer's offer, the forms of the call's codecs it
// accepts. For H.264 every offered profile with packetization-mode=1 is
// accepted (browsers decode any profile); the track announces the one that
// matches the stream's profile-level-id (plid), or the first.
func plan(offer map[string][]offeredCodec, video, audio media.Codec, plid string) codecPlan {
	var p codecPlan
	best := -1
	for _, oc := range offer["video"] {
		switch {
		case video == media.CodecH264 && strings.EqualFold(oc.name, "H264") && oc.clock == 90000 &&
			fmtpParam(oc.fmtp, "packetization-mode") == "1" && len(fmtpParam(oc.fmtp, "profile-level-id")) == 6:
			c := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: h264FmtpPrefix + strings.ToLower(fmtpParam(oc.fmtp, "profile-level-id")), RTCPFeedback: videoFeedback}
			p.videoPTs = append(p.videoPTs, webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(oc.pt), RTPCodecCapability: c})
			if sc := profileScore(fmtpParam(oc.fmtp, "profile-level-id"), plid); p.video.MimeType == "" || sc > best {
				p.video, best = c, sc
			}
		case video == media.CodecVP8 && strings.EqualFold(oc.name, "VP8") && oc.clock == 90000 && len(p.videoPTs) == 0:
			c := trackCodec(media.CodecVP8)
			p.videoPTs = append(p.videoPTs, webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(oc.pt), RTPCodecCapability: c})
			p.video = c
		}
	}
	if audio != media.CodecUnknown {
		for _, oc := range offer["audio"] {
			if strings.EqualFold(oc.name, audio.String()) && len(p.audioPTs) == 0 {
				c := trackCodec(audio)
				p.audioPTs = append(p.audioPTs, webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(oc.pt), RTPCodecCapability: c})
				p.audio = c
			}
		}
	}
	// A kind the call does not send keeps its m= section, inactive, with
	// one of the offered codecs: rejecting it (port 0) would reject the
	// offerer's BUNDLE-tagged section when it comes first, and Chromium
	// then never connects (RFC 8843 §7.3.3).
	p.videoPTs = keepSection(p.videoPTs, offer["video"], "video/")
	p.audioPTs = keepSection(p.audioPTs, offer["audio"], "audio/")
	return p
}

func keepSection(have []webrtc.RTPCodecParameters, offered []offeredCodec, prefix string) []webrtc.RTPCodecParameters {
	if len(have) > 0 || len(offered) == 0 {
		return have
	}
	oc := offered[0]
	return []webrtc.RTPCodecParameters{{PayloadType: webrtc.PayloadType(oc.pt), RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: prefix + oc.name, ClockRate: oc.clock, SDPFmtpLine: oc.fmtp}}}
}

// profileScore rates how well an offered H.264 profile-level-id suits the
// stream's: 3 same profile and constraints, 2 same profile and same
// constrained-baseline bit (constraint_set1), 1 same profile, 0 otherwise.
func profileScore(offered, stream string) int {
	o, err1 := hex.DecodeString(offered)
	st, err2 := hex.DecodeString(stream)
	if err1 != nil || err2 != nil || len(o) != 3 || len(st) != 3 || o[0] != st[0] {
		return 0
	}
	switch {
	case o[1] == st[1]:
		return 3
	case o[1]&0x40 == st[1]&0x40:
		return 2
	}
	return 1
}

// trackCodec returns the RTP capability of a VP8 or audio track.
func trackCodec(c media.Codec) webrtc.RTPCodecCapability {
	switch c {
	case media.CodecVP8:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}
	case media.CodecOpus:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"}
	case media.CodecPCMA:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}
	case media.CodecPCMU:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}
	}
	return webrtc.RTPCodecCapability{}
}

// newAPI builds a pion API that negotiates exactly the planned codecs, with
// NACK responses and RTCP sender reports.
func (s *Sink) newAPI(p codecPlan) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range p.videoPTs {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	for _, c := range p.audioPTs {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s.setting),
		webrtc.WithInterceptorRegistry(ir)), nil
}
