package sdp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sipstream/sipstream/media"
)

// Limits that bound what parsing an untrusted SDP body may cost.
const (
	// MaxSize is the largest SDP body accepted (real ones are below 4 KiB).
	MaxSize = 64 << 10
	// maxMedia bounds the number of m= lines.
	maxMedia = 32
	// maxFormats bounds the number of payload formats of one m= line.
	maxFormats = 128
)

// attr is one a= line: "a=key:value" or the property "a=key".
type attr struct {
	key, value string
}

// session is a parsed SDP body, keeping what offer/answer needs.
type session struct {
	origin  string
	conn    netip.Addr // session-level c=; invalid if absent
	hasConn bool
	attrs   []attr
	media   []*mediaDesc
}

// mediaDesc is one m= section.
type mediaDesc struct {
	kind    string // "audio", "video", "image", ...
	port    int
	proto   string
	formats []string
	conn    netip.Addr
	hasConn bool
	attrs   []attr
}

// parse reads an SDP body tolerantly: CRLF or LF line ends, blank lines and
// unknown line types skipped, fields in any order within a section. It fails
// on what makes the description unusable: no v= line first, a malformed m= or
// c= line, a size over MaxSize.
func parse(b []byte) (*session, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrInvalid, len(b), MaxSize)
	}
	s := &session{}
	var cur *mediaDesc
	sawVersion := false
	for len(b) > 0 {
		var line []byte
		if i := indexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		l := strings.TrimSpace(string(line))
		if l == "" {
			continue
		}
		if len(l) < 2 || l[1] != '=' {
			if !sawVersion {
				return nil, fmt.Errorf("%w: does not start with v=0", ErrInvalid)
			}
			continue // tolerate junk lines
		}
		typ, val := l[0], strings.TrimSpace(l[2:])
		if !sawVersion {
			if typ != 'v' || val != "0" {
				return nil, fmt.Errorf("%w: does not start with v=0", ErrInvalid)
			}
			sawVersion = true
			continue
		}
		switch typ {
		case 'o':
			if cur == nil {
				s.origin = val
			}
		case 'c':
			addr, err := parseConn(val)
			if err != nil {
				return nil, err
			}
			if cur != nil {
				cur.conn, cur.hasConn = addr, true
			} else {
				s.conn, s.hasConn = addr, true
			}
		case 'a':
			a := parseAttr(val)
			if cur != nil {
				if len(cur.attrs) < 4*maxFormats {
					cur.attrs = append(cur.attrs, a)
				}
			} else if len(s.attrs) < 4*maxFormats {
				s.attrs = append(s.attrs, a)
			}
		case 'm':
			if len(s.media) >= maxMedia {
				return nil, fmt.Errorf("%w: more than %d m= lines", ErrInvalid, maxMedia)
			}
			m, err := parseMediaLine(val)
			if err != nil {
				return nil, err
			}
			s.media = append(s.media, m)
			cur = m
		}
	}
	if !sawVersion {
		return nil, fmt.Errorf("%w: empty", ErrInvalid)
	}
	return s, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func parseAttr(v string) attr {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		return attr{key: strings.TrimSpace(v[:i]), value: strings.TrimSpace(v[i+1:])}
	}
	return attr{key: v}
}

// parseConn parses "IN IP4 192.0.2.1" (with an optional /ttl suffix).
func parseConn(v string) (netip.Addr, error) {
	f := strings.Fields(v)
	if len(f) < 3 || f[0] != "IN" {
		return netip.Addr{}, fmt.Errorf("%w: c=%s", ErrInvalid, v)
	}
	host := f[2]
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q is not an IP address", ErrInvalid, host)
	}
	return addr.Unmap(), nil
}

// parseMediaLine parses "audio 49170 RTP/AVP 0 8 101" (port may be "port/count").
func parseMediaLine(v string) (*mediaDesc, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return nil, fmt.Errorf("%w: m=%s", ErrInvalid, v)
	}
	port := f[1]
	if i := strings.IndexByte(port, '/'); i >= 0 {
		port = port[:i]
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("%w: m= port %q", ErrInvalid, f[1])
	}
	if len(f)-3 > maxFormats {
		return nil, fmt.Errorf("%w: m= line with %d formats", ErrInvalid, len(f)-3)
	}
	return &mediaDesc{kind: strings.ToLower(f[0]), port: p, proto: f[2], formats: f[3:]}, nil
}

// attr returns the value of the first a=key line of the section and whether
// there is one.
func (m *mediaDesc) attr(key string) (string, bool) {
	for _, a := range m.attrs {
		if strings.EqualFold(a.key, key) {
			return a.value, true
		}
	}
	return "", false
}

// addr returns the section's connection address: its own c= or the
// session's.
func (m *mediaDesc) addr(s *session) (netip.Addr, bool) {
	if m.hasConn {
		return m.conn, true
	}
	return s.conn, s.hasConn
}

// direction returns the direction the SDP's author states for this section
// (media-level attribute, else session-level, else sendrecv).
func (m *mediaDesc) direction(s *session) media.Direction {
	if d, ok := directionOf(m.attrs); ok {
		return d
	}
	if d, ok := directionOf(s.attrs); ok {
		return d
	}
	return media.SendRecv
}

func directionOf(attrs []attr) (media.Direction, bool) {
	for _, a := range attrs {
		switch strings.ToLower(a.key) {
		case "sendrecv":
			return media.SendRecv, true
		case "sendonly":
			return media.SendOnly, true
		case "recvonly":
			return media.RecvOnly, true
		case "inactive":
			return media.Inactive, true
		}
	}
	return 0, false
}

// secure reports whether the section's transport is SRTP with SDES keying
// (RTP/SAVP, RTP/SAVPF), and dtls whether it is DTLS-SRTP (UDP/TLS/...).
func (m *mediaDesc) secure() (sdes, dtls bool) {
	p := strings.ToUpper(m.proto)
	if strings.Contains(p, "TLS") {
		return false, true
	}
	return strings.Contains(p, "SAVP"), false
}

// rtpFormat is what the section says about one payload type.
type rtpFormat struct {
	pt       uint8
	codec    media.Codec
	clock    uint32
	channels uint8
	fmtp     string
}

// formatsOf resolves the section's payload types through a=rtpmap, a=fmtp
// and the static types of RFC 3551. Payload types that are not numbers or
// name no codec sipstream knows are left out.
func (m *mediaDesc) formatsOf() []rtpFormat {
	out := make([]rtpFormat, 0, len(m.formats))
	for _, f := range m.formats {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 127 {
			continue
		}
		pt := uint8(n)
		rf := rtpFormat{pt: pt}
		if v, ok := m.ptAttr("rtpmap", pt); ok {
			rf.codec, rf.clock, rf.channels = parseRtpmap(v)
		} else {
			switch pt {
			case 0:
				rf.codec, rf.clock = media.CodecPCMU, 8000
			case 8:
				rf.codec, rf.clock = media.CodecPCMA, 8000
			}
		}
		if rf.codec == media.CodecUnknown || rf.codec == media.CodecAAC || rf.clock == 0 {
			continue
		}
		rf.fmtp, _ = m.ptAttr("fmtp", pt)
		dup := false
		for _, o := range out {
			dup = dup || o.pt == pt
		}
		if !dup {
			out = append(out, rf)
		}
	}
	return out
}

// ptAttr returns the rest of the first "a=key:<pt> rest" line for pt.
func (m *mediaDesc) ptAttr(key string, pt uint8) (string, bool) {
	for _, a := range m.attrs {
		if !strings.EqualFold(a.key, key) {
			continue
		}
		num, rest, _ := strings.Cut(a.value, " ")
		if n, err := strconv.Atoi(num); err == nil && n == int(pt) {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}

// parseRtpmap parses "PCMA/8000" or "opus/48000/2".
func parseRtpmap(v string) (media.Codec, uint32, uint8) {
	parts := strings.Split(v, "/")
	if len(parts) < 2 {
		return media.CodecUnknown, 0, 0
	}
	c := media.ParseCodec(strings.TrimSpace(parts[0]))
	clock, err := strconv.ParseUint(strings.TrimSpace(parts[1]), 10, 32)
	if err != nil {
		return media.CodecUnknown, 0, 0
	}
	var ch uint8
	if len(parts) > 2 {
		n, err := strconv.ParseUint(strings.TrimSpace(parts[2]), 10, 8)
		if err != nil {
			return media.CodecUnknown, 0, 0
		}
		ch = uint8(n)
	}
	return c, uint32(clock), ch
}

// feedback returns the RTCP feedback the section accepts for any of pts
// (a=rtcp-fb:<pt> or a=rtcp-fb:*).
func (m *mediaDesc) feedback(pts []uint8) media.Feedback {
	var fb media.Feedback
	for _, a := range m.attrs {
		if !strings.EqualFold(a.key, "rtcp-fb") {
			continue
		}
		f := strings.Fields(a.value)
		if len(f) < 2 {
			continue
		}
		match := f[0] == "*"
		if n, err := strconv.Atoi(f[0]); err == nil {
			for _, pt := range pts {
				match = match || n == int(pt)
			}
		}
		if !match {
			continue
		}
		typ := strings.ToLower(f[1])
		param := ""
		if len(f) > 2 {
			param = strings.ToLower(f[2])
		}
		switch {
		case typ == "nack" && param == "":
			fb.NACK = true
		case typ == "nack" && param == "pli":
			fb.PLI = true
		case typ == "ccm" && param == "fir":
			fb.FIR = true
		}
	}
	return fb
}

// rtcpAddr returns the address from a=rtcp:<port> [IN IP4 <addr>] (RFC 3605).
func (m *mediaDesc) rtcpAddr(rtp netip.Addr) (netip.AddrPort, bool) {
	v, ok := m.attr("rtcp")
	if !ok {
		return netip.AddrPort{}, false
	}
	f := strings.Fields(v)
	if len(f) == 0 {
		return netip.AddrPort{}, false
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p <= 0 || p > 65535 {
		return netip.AddrPort{}, false
	}
	addr := rtp
	if len(f) >= 4 && f[1] == "IN" {
		if a, err := netip.ParseAddr(f[3]); err == nil {
			addr = a.Unmap()
		}
	}
	return netip.AddrPortFrom(addr, uint16(p)), true
}

func (m *mediaDesc) has(key string) bool {
	_, ok := m.attr(key)
	return ok
}
