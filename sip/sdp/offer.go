package sdp

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	psdp "github.com/pion/sdp/v3"

	"github.com/sipstream/sipstream/media"
)

// OfferConfig describes the local side of an SDP exchange: the offer NewOffer
// builds, or what Answer may accept.
type OfferConfig struct {
	// Addr is the connection address written in c= and o= (sipstream's RTP
	// address as the peer must see it). Required.
	Addr netip.Addr
	// Audio and Video configure the m= lines. Nil means no such stream: no
	// m= line in an offer, a rejected (port 0) one in an answer.
	Audio, Video *MediaConfig
	// SessionName is written in s=. Empty means "sipstream".
	SessionName string
	// SessionID and SessionVersion are written in o=. A re-INVITE must keep
	// the ID and increase the version (RFC 3264 §8). Zero SessionID means a
	// random one; zero SessionVersion means 1.
	SessionID, SessionVersion uint64
}

// MediaConfig configures one stream of an offer or answer.
type MediaConfig struct {
	// Port is the local RTP port (RTCP on Port+1 unless multiplexed).
	// Required, 1-65535.
	Port int
	// Codecs lists the codecs in order of preference. Nil means the
	// defaults: PCMA, PCMU, Opus, Speex for audio; H.264, VP8 for video.
	// Speex is offered at 16 kHz and 8 kHz. For audio, telephone-event/8000
	// (RFC 4733 DTMF) is always added last unless NoDTMF is set.
	Codecs []media.Codec
	// Direction is sipstream's direction: SendRecv when the call has media
	// to send, RecvOnly when it only receives; SendOnly or Inactive put the
	// peer on hold. The zero value is SendRecv.
	Direction media.Direction
	// RTCPMux offers (or accepts) RTP and RTCP on one port (RFC 5761).
	RTCPMux bool
	// Feedback offers (or accepts) RTCP feedback for video: nack, nack pli
	// and ccm fir (RFC 4585, RFC 5104). Ignored for audio.
	Feedback bool
	// Crypto, when not nil, offers SRTP with SDES keying (RTP/SAVP and an
	// a=crypto line, RFC 4568) and accepts an RTP/SAVP offer. Suite empty
	// means DefaultCryptoSuite; LocalKey empty means a random key (the
	// negotiated StreamSpec carries it). RemoteKey is ignored.
	Crypto *media.Crypto
	// NoDTMF leaves telephone-event out. The zero value offers it.
	NoDTMF bool
	// RTX offers (or accepts) RFC 4588 retransmission for video: an offer
	// adds, after the video codecs, "a=rtpmap:<pt> rtx/90000" and
	// "a=fmtp:<pt> apt=<codec pt>" for each of them; an answer accepts the
	// offered rtx formats whose apt names an accepted codec. Negotiated rtx
	// formats appear in StreamSpec.Formats as media.CodecRTX after every
	// media format, so they are never the format sent. Ignored for audio.
	// The zero value offers no rtx and drops offered ones.
	RTX bool
}

// Payload type numbers sipstream offers. Static ones come from RFC 3551;
// the dynamic ones are those most endpoints use, which eases reading traces.
const (
	ptPCMU           = 0
	ptPCMA           = 8
	ptH264           = 96
	ptVP8            = 97
	ptSpeex8k        = 98
	ptSpeex16k       = 99
	ptTelephoneEvent = 101
	ptH264RTX        = 102
	ptVP8RTX         = 103
	ptOpus           = 111
)

// h264Fmtp is the H.264 format offered: Constrained Baseline level 3.1 with
// FU-A/STAP-A allowed (RFC 6184 §8.1), what SIP video phones send.
const h264Fmtp = "profile-level-id=42e01f;packetization-mode=1"

var (
	defaultAudio = []media.Codec{media.CodecPCMA, media.CodecPCMU, media.CodecOpus, media.CodecSpeex}
	defaultVideo = []media.Codec{media.CodecH264, media.CodecVP8}
)

// offeredFormats expands a codec list into the payload formats to offer.
func offeredFormats(kind media.Kind, mc *MediaConfig) ([]media.PayloadFormat, error) {
	codecs := mc.Codecs
	if codecs == nil {
		codecs = defaultAudio
		if kind == media.KindVideo {
			codecs = defaultVideo
		}
	}
	var out []media.PayloadFormat
	seen := map[media.Codec]bool{}
	for _, c := range codecs {
		if c.Kind() != kind || c == media.CodecAAC {
			return nil, fmt.Errorf("%w: codec %s in the %s stream", ErrConfig, c, kind)
		}
		if seen[c] || c == media.CodecTelephoneEvent {
			continue
		}
		seen[c] = true
		switch c {
		case media.CodecPCMA:
			out = append(out, media.PayloadFormat{PayloadType: ptPCMA, Codec: c, ClockRate: 8000})
		case media.CodecPCMU:
			out = append(out, media.PayloadFormat{PayloadType: ptPCMU, Codec: c, ClockRate: 8000})
		case media.CodecOpus:
			out = append(out, media.PayloadFormat{PayloadType: ptOpus, Codec: c, ClockRate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"})
		case media.CodecSpeex:
			out = append(out,
				media.PayloadFormat{PayloadType: ptSpeex16k, Codec: c, ClockRate: 16000},
				media.PayloadFormat{PayloadType: ptSpeex8k, Codec: c, ClockRate: 8000})
		case media.CodecH264:
			out = append(out, media.PayloadFormat{PayloadType: ptH264, Codec: c, ClockRate: 90000, Fmtp: h264Fmtp})
		case media.CodecVP8:
			out = append(out, media.PayloadFormat{PayloadType: ptVP8, Codec: c, ClockRate: 90000})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no %s codec", ErrConfig, kind)
	}
	if kind == media.KindVideo && mc.RTX {
		for _, f := range out[:len(out):len(out)] {
			pt := uint8(ptH264RTX)
			if f.Codec == media.CodecVP8 {
				pt = ptVP8RTX
			}
			out = append(out, rtxFormat(pt, f))
		}
	}
	if kind == media.KindAudio && !mc.NoDTMF {
		out = append(out, media.PayloadFormat{PayloadType: ptTelephoneEvent, Codec: media.CodecTelephoneEvent, ClockRate: 8000, Fmtp: "0-16"})
	}
	return out, nil
}

// offeredStream is one m= line of an offer, kept to negotiate the answer.
type offeredStream struct {
	kind      media.Kind
	port      int
	formats   []media.PayloadFormat
	direction media.Direction
	rtcpMux   bool
	feedback  bool
	rtx       bool
	suite     string // empty: plain RTP
	key       []byte
}

// Offer is an SDP offer built by NewOffer. It remembers what it offered so
// that Negotiate can check the answer against it. An Offer is immutable and
// safe for concurrent use.
type Offer struct {
	addr    netip.Addr
	streams []offeredStream
	body    []byte
}

// NewOffer validates cfg and builds the offer: an audio m= line first when
// cfg.Audio is set, then a video one when cfg.Video is set.
func NewOffer(cfg OfferConfig) (*Offer, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.Audio == nil && cfg.Video == nil {
		return nil, fmt.Errorf("%w: neither audio nor video", ErrConfig)
	}
	o := &Offer{addr: cfg.Addr.Unmap()}
	for _, k := range []media.Kind{media.KindAudio, media.KindVideo} {
		mc := cfg.Audio
		if k == media.KindVideo {
			mc = cfg.Video
		}
		if mc == nil {
			continue
		}
		formats, err := offeredFormats(k, mc)
		if err != nil {
			return nil, err
		}
		st := offeredStream{
			kind: k, port: mc.Port, formats: formats, direction: mc.Direction,
			rtcpMux: mc.RTCPMux, feedback: mc.Feedback && k == media.KindVideo,
			rtx: mc.RTX && k == media.KindVideo,
		}
		if mc.Crypto != nil {
			st.suite = mc.Crypto.Suite
			if st.suite == "" {
				st.suite = DefaultCryptoSuite
			}
			if st.key, err = localKey(st.suite, mc.Crypto.LocalKey); err != nil {
				return nil, err
			}
		}
		o.streams = append(o.streams, st)
	}
	sd := newSession(&cfg)
	for i := range o.streams {
		sd.MediaDescriptions = append(sd.MediaDescriptions, o.streams[i].description())
	}
	body, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sdp: marshal offer: %w", err)
	}
	o.body = body
	return o, nil
}

// Marshal returns the offer's SDP body. The returned slice must not be
// modified.
func (o *Offer) Marshal() []byte { return o.body }

func checkConfig(cfg *OfferConfig) error {
	if !cfg.Addr.IsValid() {
		return fmt.Errorf("%w: no connection address", ErrConfig)
	}
	for _, mc := range []*MediaConfig{cfg.Audio, cfg.Video} {
		if mc == nil {
			continue
		}
		if mc.Port <= 0 || mc.Port > 65535 {
			return fmt.Errorf("%w: RTP port %d", ErrConfig, mc.Port)
		}
		if mc.Direction > media.Inactive {
			return fmt.Errorf("%w: direction %d", ErrConfig, mc.Direction)
		}
	}
	return nil
}

// newSession returns the session-level part of an SDP body.
func newSession(cfg *OfferConfig) *psdp.SessionDescription {
	id := cfg.SessionID
	if id == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = binary.BigEndian.Uint64(b[:]) >> 2 // keep it positive as a signed 64-bit value
	}
	ver := cfg.SessionVersion
	if ver == 0 {
		ver = 1
	}
	name := cfg.SessionName
	if name == "" {
		name = "sipstream"
	}
	addr := cfg.Addr.Unmap()
	return &psdp.SessionDescription{
		Origin: psdp.Origin{
			Username: "-", SessionID: id, SessionVersion: ver,
			NetworkType: "IN", AddressType: addrType(addr), UnicastAddress: addr.String(),
		},
		SessionName: psdp.SessionName(sanitizeLine(name)),
		ConnectionInformation: &psdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType(addr), Address: &psdp.Address{Address: addr.String()},
		},
		TimeDescriptions: []psdp.TimeDescription{{Timing: psdp.Timing{}}},
	}
}

func addrType(a netip.Addr) string {
	if a.Is4() {
		return "IP4"
	}
	return "IP6"
}

// sanitizeLine keeps a user-supplied string on one SDP line.
func sanitizeLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// description renders the stream as an m= section.
func (st *offeredStream) description() *psdp.MediaDescription {
	md := &psdp.MediaDescription{
		MediaName: psdp.MediaName{
			Media:  st.kind.String(),
			Port:   psdp.RangedPort{Value: st.port},
			Protos: []string{"RTP", "AVP"},
		},
	}
	if st.suite != "" {
		md.MediaName.Protos = []string{"RTP", "SAVP"}
	}
	for _, f := range st.formats {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(f.PayloadType)))
	}
	writeFormats(md, st.formats, st.feedback, nil)
	if st.kind == media.KindAudio {
		md.WithValueAttribute("ptime", "20")
	}
	writeTransport(md, st.port, st.rtcpMux, st.suite, 1, st.key)
	md.WithPropertyAttribute(st.direction.String())
	return md
}

// writeFormats adds a=rtpmap, a=fmtp and (for video with feedback) a=rtcp-fb
// lines. When only is not nil, rtcp-fb lines are limited to those feedback
// types.
func writeFormats(md *psdp.MediaDescription, formats []media.PayloadFormat, feedback bool, only *media.Feedback) {
	for _, f := range formats {
		name := f.Codec.String()
		rtpmap := fmt.Sprintf("%d %s/%d", f.PayloadType, name, f.ClockRate)
		if f.Channels > 1 {
			rtpmap += "/" + strconv.Itoa(int(f.Channels))
		}
		md.WithValueAttribute("rtpmap", rtpmap)
		if f.Fmtp != "" {
			md.WithValueAttribute("fmtp", fmt.Sprintf("%d %s", f.PayloadType, f.Fmtp))
		}
		if feedback && f.Codec.Kind() == media.KindVideo {
			pt := strconv.Itoa(int(f.PayloadType))
			if only == nil || only.NACK {
				md.WithValueAttribute("rtcp-fb", pt+" nack")
			}
			if only == nil || only.PLI {
				md.WithValueAttribute("rtcp-fb", pt+" nack pli")
			}
			if only == nil || only.FIR {
				md.WithValueAttribute("rtcp-fb", pt+" ccm fir")
			}
		}
	}
}

// writeTransport adds a=rtcp, a=rtcp-mux and a=crypto.
func writeTransport(md *psdp.MediaDescription, port int, mux bool, suite string, tag int, key []byte) {
	if port < 65535 {
		md.WithValueAttribute("rtcp", strconv.Itoa(port+1))
	}
	if mux {
		md.WithPropertyAttribute("rtcp-mux")
	}
	if suite != "" {
		md.WithValueAttribute("crypto", formatCrypto(tag, suite, key))
	}
}

// Negotiate parses the peer's answer and matches its m= lines to the offer's
// by position (RFC 3264 §6). It returns one StreamSpec per usable stream, in
// m= line order: rejected lines (port 0), lines without a codec in common and
// lines whose SRTP keying fails are left out. An answered rtx format is kept
// only when rtx was offered and its apt names a negotiated codec; it follows
// the media formats. When no stream is usable the
// error wraps ErrNoCommonCodec and says why for each line; malformed SDP
// gives an error wrapping ErrInvalid.
func (o *Offer) Negotiate(answer []byte) ([]media.StreamSpec, error) {
	s, err := parse(answer)
	if err != nil {
		return nil, err
	}
	if len(s.media) == 0 {
		return nil, fmt.Errorf("%w: answer has no m= line", ErrInvalid)
	}
	var specs []media.StreamSpec
	var why []string
	for i := range o.streams {
		st := &o.streams[i]
		if i >= len(s.media) {
			why = append(why, st.kind.String()+": missing from the answer")
			continue
		}
		spec, reason, err := st.negotiate(s, s.media[i], o.addr)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			why = append(why, st.kind.String()+": "+reason)
			continue
		}
		specs = append(specs, spec)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoCommonCodec, strings.Join(why, "; "))
	}
	return specs, nil
}

// negotiate matches one answered m= section. A non-empty reason says why
// the stream is not usable; an error means the answer is malformed.
func (st *offeredStream) negotiate(s *session, m *mediaDesc, local netip.Addr) (media.StreamSpec, string, error) {
	if m.kind != st.kind.String() {
		return media.StreamSpec{}, "answered with m=" + m.kind, nil
	}
	if m.port == 0 {
		return media.StreamSpec{}, "rejected (port 0)", nil
	}
	addr, ok := m.addr(s)
	if !ok {
		return media.StreamSpec{}, "", fmt.Errorf("%w: no c= line for the %s stream", ErrInvalid, m.kind)
	}
	var formats []media.PayloadFormat
	var pts []uint8
	hasMedia := false
	answered := m.formatsOf()
	for _, af := range answered {
		if af.codec == media.CodecRTX {
			continue // after the media formats, below
		}
		for _, of := range st.formats {
			if of.Codec != af.codec || of.ClockRate != af.clock {
				continue
			}
			pf := media.PayloadFormat{PayloadType: af.pt, Codec: af.codec, ClockRate: af.clock, Channels: af.channels, Fmtp: af.fmtp}
			if pf.Channels == 0 {
				pf.Channels = of.Channels
			}
			formats = append(formats, pf)
			pts = append(pts, af.pt)
			hasMedia = hasMedia || af.codec != media.CodecTelephoneEvent
			break
		}
	}
	if !hasMedia {
		return media.StreamSpec{}, "no codec in common (answer: " + strings.Join(m.formats, " ") + ")", nil
	}
	if st.rtx {
		formats = append(formats, rtxFormats(answered, formats)...)
	}
	spec := media.StreamSpec{
		Kind:    st.kind,
		Formats: formats,
		Local:   netip.AddrPortFrom(local, uint16(st.port)),
		Remote:  netip.AddrPortFrom(addr, uint16(m.port)),
		RTCPMux: st.rtcpMux && m.has("rtcp-mux"),
	}
	switch rtcp, ok := m.rtcpAddr(addr); {
	case spec.RTCPMux:
		spec.RemoteRTCP = spec.Remote
	case ok:
		spec.RemoteRTCP = rtcp
	case m.port < 65535:
		spec.RemoteRTCP = netip.AddrPortFrom(addr, uint16(m.port+1))
	}
	spec.Direction = ours(st.direction, m.direction(s), addr)
	spec.Feedback = m.feedback(pts)
	if st.suite != "" {
		sdes, _ := m.secure()
		if !sdes {
			return media.StreamSpec{}, "SRTP offered, answered with " + m.proto, nil
		}
		var remote []byte
		for _, a := range m.attrs {
			if a.key != "crypto" {
				continue
			}
			cl, err := parseCrypto(a.value)
			if err != nil {
				return media.StreamSpec{}, "", err
			}
			if cl.suite == st.suite && cl.key != nil {
				remote = cl.key
				break
			}
		}
		if remote == nil {
			return media.StreamSpec{}, "no a=crypto for " + st.suite + " in the answer", nil
		}
		spec.Crypto = &media.Crypto{Suite: st.suite, LocalKey: append([]byte(nil), st.key...), RemoteKey: remote}
	}
	return spec, "", nil
}

// ours returns sipstream's direction for a stream it wants in direction
// local, when the other side's SDP states peer (RFC 3264 §6.1): the peer's
// sendonly is our recvonly and so on, never more than we asked for. A peer
// address of 0.0.0.0 (RFC 2543 hold) means we cannot send.
func ours(local, peer media.Direction, peerAddr netip.Addr) media.Direction {
	send := local.Sends() && peer.Receives() && !peerAddr.IsUnspecified()
	recv := local.Receives() && peer.Sends()
	switch {
	case send && recv:
		return media.SendRecv
	case send:
		return media.SendOnly
	case recv:
		return media.RecvOnly
	default:
		return media.Inactive
	}
}
