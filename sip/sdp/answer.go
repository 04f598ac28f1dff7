package sdp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"

	"github.com/sipstream/sipstream/media"
)

// Answer answers an SDP offer (an incoming INVITE, or a re-INVITE that puts
// the call on hold, resumes it or changes codec or port) with what cfg
// accepts, and returns the answer's body and the negotiated streams seen from
// the local side.
//
// Each m= line of the offer gets one in the answer, in the same order (RFC
// 3264 §6). The first audio and the first video line are accepted when cfg
// has a MediaConfig for that kind and a codec in common; every other line is
// rejected with port 0. Accepted lines keep the offer's payload type numbers
// and list the common codecs in cfg's order of preference, then the rtx
// formats (RFC 4588) of the accepted video codecs when cfg's Video has RTX,
// then telephone-event. The direction is the offer's inverted and limited to
// cfg's (a sendonly or inactive offer, or c=0.0.0.0, puts the local side on
// hold). rtcp-mux and rtcp-fb are accepted when cfg asks for them; an
// RTP/SAVP line is accepted only when cfg has Crypto, with the first offered
// suite sipstream supports; DTLS-SRTP lines are rejected.
//
// When no line can be accepted the error wraps ErrNoCommonCodec (answer 488);
// a malformed offer gives an error wrapping ErrInvalid.
func Answer(offer []byte, cfg OfferConfig) ([]byte, []media.StreamSpec, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, nil, err
	}
	s, err := parse(offer)
	if err != nil {
		return nil, nil, err
	}
	if len(s.media) == 0 {
		return nil, nil, fmt.Errorf("%w: offer has no m= line", ErrInvalid)
	}
	local := cfg.Addr.Unmap()
	sd := newSession(&cfg)
	var specs []media.StreamSpec
	var why []string
	used := map[string]bool{}
	for _, m := range s.media {
		var mc *MediaConfig
		var kind media.Kind
		switch m.kind {
		case "audio":
			mc, kind = cfg.Audio, media.KindAudio
		case "video":
			mc, kind = cfg.Video, media.KindVideo
		}
		reason := ""
		var md *psdp.MediaDescription
		var spec media.StreamSpec
		switch {
		case mc == nil:
			reason = "m=" + m.kind + " not accepted"
		case used[m.kind]:
			reason = "second m=" + m.kind + " line"
		case m.port == 0:
			reason = "disabled in the offer (port 0)"
		default:
			md, spec, reason, err = answerStream(s, m, kind, mc, local)
			if err != nil {
				return nil, nil, err
			}
		}
		if reason != "" {
			why = append(why, m.kind+": "+reason)
			sd.MediaDescriptions = append(sd.MediaDescriptions, rejected(m))
			continue
		}
		used[m.kind] = true
		specs = append(specs, spec)
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	}
	if len(specs) == 0 {
		return nil, nil, fmt.Errorf("%w: %s", ErrNoCommonCodec, strings.Join(why, "; "))
	}
	body, err := sd.Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("sdp: marshal answer: %w", err)
	}
	return body, specs, nil
}

// rejected returns the port-0 m= line that declines an offered one (RFC 3264
// §6: same media and transport, at least one format).
func rejected(m *mediaDesc) *psdp.MediaDescription {
	formats := m.formats
	if len(formats) == 0 {
		formats = []string{"0"}
	}
	kind := sanitizeToken(m.kind)
	proto := sanitizeToken(m.proto)
	fs := make([]string, 0, len(formats))
	for _, f := range formats {
		fs = append(fs, sanitizeToken(f))
	}
	return &psdp.MediaDescription{MediaName: psdp.MediaName{
		Media: kind, Port: psdp.RangedPort{Value: 0}, Protos: []string{proto}, Formats: fs,
	}}
}

// sanitizeToken keeps an echoed token from the offer a single SDP field.
func sanitizeToken(s string) string {
	s = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	return s
}

// answerStream builds the accepted answer to one offered m= section.
func answerStream(s *session, m *mediaDesc, kind media.Kind, mc *MediaConfig, local netip.Addr) (*psdp.MediaDescription, media.StreamSpec, string, error) {
	addr, ok := m.addr(s)
	if !ok {
		return nil, media.StreamSpec{}, "", fmt.Errorf("%w: no c= line for the %s stream", ErrInvalid, m.kind)
	}
	sdes, dtls := m.secure()
	if dtls {
		return nil, media.StreamSpec{}, "DTLS-SRTP (" + m.proto + ") not supported", nil
	}
	if sdes && mc.Crypto == nil {
		return nil, media.StreamSpec{}, "SRTP offered, not configured", nil
	}
	if !strings.Contains(strings.ToUpper(m.proto), "RTP") {
		return nil, media.StreamSpec{}, "transport " + m.proto + " not supported", nil
	}
	supported, err := offeredFormats(kind, mc)
	if err != nil {
		return nil, media.StreamSpec{}, "", err
	}
	offered := m.formatsOf()
	var formats []media.PayloadFormat
	for _, want := range supported {
		if want.Codec == media.CodecTelephoneEvent || want.Codec == media.CodecRTX {
			continue
		}
		for _, of := range offered {
			if of.codec != want.Codec || of.clock != want.ClockRate || !fmtpUsable(of) {
				continue
			}
			if !containsPT(formats, of.pt) {
				formats = append(formats, media.PayloadFormat{PayloadType: of.pt, Codec: of.codec, ClockRate: of.clock, Channels: of.channels, Fmtp: of.fmtp})
			}
		}
	}
	if len(formats) == 0 {
		return nil, media.StreamSpec{}, "no codec in common (offer: " + strings.Join(m.formats, " ") + ")", nil
	}
	if kind == media.KindVideo && mc.RTX {
		formats = append(formats, rtxFormats(offered, formats)...)
	}
	if !mc.NoDTMF {
		for _, of := range offered {
			if of.codec == media.CodecTelephoneEvent && !containsPT(formats, of.pt) {
				formats = append(formats, media.PayloadFormat{PayloadType: of.pt, Codec: of.codec, ClockRate: of.clock, Channels: of.channels, Fmtp: of.fmtp})
			}
		}
	}
	pts := make([]uint8, len(formats))
	for i, f := range formats {
		pts[i] = f.PayloadType
	}
	spec := media.StreamSpec{
		Kind:      kind,
		Formats:   formats,
		Local:     netip.AddrPortFrom(local, uint16(mc.Port)),
		Remote:    netip.AddrPortFrom(addr, uint16(m.port)),
		RTCPMux:   mc.RTCPMux && m.has("rtcp-mux"),
		Direction: ours(mc.Direction, m.direction(s), addr),
	}
	switch rtcp, ok := m.rtcpAddr(addr); {
	case spec.RTCPMux:
		spec.RemoteRTCP = spec.Remote
	case ok:
		spec.RemoteRTCP = rtcp
	case m.port < 65535:
		spec.RemoteRTCP = netip.AddrPortFrom(addr, uint16(m.port+1))
	}
	fb := m.feedback(pts)
	if kind == media.KindVideo && mc.Feedback {
		spec.Feedback = fb
	}
	tag := 0
	var suite string
	var key []byte
	if sdes {
		for _, a := range m.attrs {
			if a.key != "crypto" {
				continue
			}
			cl, err := parseCrypto(a.value)
			if err != nil {
				return nil, media.StreamSpec{}, "", err
			}
			if cl.key == nil || (mc.Crypto.Suite != "" && cl.suite != mc.Crypto.Suite) {
				continue
			}
			if key, err = localKey(cl.suite, mc.Crypto.LocalKey); err != nil {
				return nil, media.StreamSpec{}, "", err
			}
			tag, suite = cl.tag, cl.suite
			spec.Crypto = &media.Crypto{Suite: cl.suite, LocalKey: key, RemoteKey: cl.key}
			break
		}
		if spec.Crypto == nil {
			return nil, media.StreamSpec{}, "no supported a=crypto suite in the offer", nil
		}
	}

	md := &psdp.MediaDescription{MediaName: psdp.MediaName{
		Media: kind.String(), Port: psdp.RangedPort{Value: mc.Port}, Protos: []string{"RTP", "AVP"},
	}}
	if sdes {
		md.MediaName.Protos = []string{sanitizeToken(m.proto)}
	}
	for _, f := range formats {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(f.PayloadType)))
	}
	wire := make([]media.PayloadFormat, len(formats))
	for i, f := range formats {
		f.Fmtp = sanitizeLine(f.Fmtp)
		if f.Fmtp == "-" {
			f.Fmtp = ""
		}
		wire[i] = f
	}
	writeFormats(md, wire, spec.Feedback != (media.Feedback{}), &spec.Feedback)
	if kind == media.KindAudio {
		if pt, ok := m.attr("ptime"); ok {
			if n, err := strconv.Atoi(pt); err == nil && n > 0 && n <= 200 {
				md.WithValueAttribute("ptime", strconv.Itoa(n))
			}
		}
	}
	writeTransport(md, mc.Port, spec.RTCPMux, suite, tag, key)
	md.WithPropertyAttribute(spec.Direction.String())
	return md, spec, "", nil
}

// fmtpUsable reports whether sipstream can receive the format: H.264
// packetization-mode 2 (interleaved) is not supported.
func fmtpUsable(f rtpFormat) bool {
	if f.codec != media.CodecH264 {
		return true
	}
	for _, p := range strings.Split(f.fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "packetization-mode") && strings.TrimSpace(v) == "2" {
			return false
		}
	}
	return true
}

func containsPT(fs []media.PayloadFormat, pt uint8) bool {
	for _, f := range fs {
		if f.PayloadType == pt {
			return true
		}
	}
	return false
}
