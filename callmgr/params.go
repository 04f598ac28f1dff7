package callmgr

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Header is a custom SIP header added to the INVITE.
type Header struct {
	Name  string
	Value string
}

// CallParams describes a call to place: every field of the REST API's
// /call/startup. Only Callee is required.
//
// The SIP password is used for digest authentication only: it never appears
// in String, GoString, LogValue, CallInfo, events, errors or logs. Neither
// does the RTMP stream name (a platform's stream key).
type CallParams struct {
	// CallID identifies the call in the Manager and is sent as the SIP
	// Call-ID. Empty means generated. RFC 3261 "word" characters only, at
	// most 256.
	CallID string
	// Callee is who to call: "sip:bob@host[:port]", "bob@host", or "bob"
	// (then SIPDomain is the host). Required.
	Callee string
	// ToStream is the call's stream name inside sipstream (what /push and
	// WebRTC refer to). Empty means CallID.
	ToStream string
	// RTMPURL is the call's own RTMP target ("rtmp://host[:port]/app",
	// "rtmps://..."). Empty means no RTMP leg (sinks can be added later with
	// AddSink).
	RTMPURL string
	// RTMPStream is the publish name (stream key) at RTMPURL. Empty means
	// ToStream.
	RTMPStream string
	// HasAudio and HasVideo choose the direction sipstream offers for each
	// stream. Both m= lines are always offered; true offers sendrecv
	// (sipstream sends silence or a keep-alive so phones that hang up on
	// one-way media stay up), false offers recvonly.
	HasAudio bool
	HasVideo bool

	// SIPLogin is the user the call is placed from (From, Contact, REGISTER
	// To). Empty means Config.DefaultUser.
	SIPLogin string
	// SIPAuthName is the digest authentication user name. Empty means
	// SIPLogin.
	SIPAuthName string
	// SIPPassword is the digest password. Empty means no authentication.
	SIPPassword string
	// SIPDomain is the SIP domain (FQDN or IP, optional ":port"): the host of
	// the From URI, of a Callee without a host, and the registrar.
	SIPDomain string
	// SIPOutboundProxy is where requests are sent instead of the Request-URI
	// host (host[:port]). Empty means none.
	SIPOutboundProxy string
	// SIPPort is the port of SIPDomain (or of the outbound proxy). Zero means
	// 5060 (5061 for TLS).
	SIPPort int
	// SIPTransport is "udp", "tcp" or "tls" (case-insensitive). Empty means
	// UDP.
	SIPTransport string
	// SIPRegisterRequired makes the call REGISTER SIPLogin at SIPDomain
	// before the INVITE (and unREGISTER when the call ends).
	SIPRegisterRequired bool
	// VisibleName is the display name in From.
	VisibleName string
	// AppKey is the application key of the REST API; stored and reported,
	// not interpreted.
	AppKey string
	// Headers are custom headers added to the INVITE. Names must be SIP
	// tokens and must not be headers the user agent manages (Via, From, To,
	// Call-ID, CSeq, Contact, Max-Forwards, Content-Type, Content-Length,
	// Route, Record-Route, Authorization, Proxy-Authorization). At most 32.
	Headers []Header
	// Record writes the call to a file in Config.RecordDir.
	Record bool
	// RingTimeout is how long to wait for an answer before cancelling (the
	// call then ends FAILED with 408). Zero means Config.RingTimeout.
	RingTimeout time.Duration
	// SRTP says whether the call's media is encrypted (see SRTPMode). Zero
	// means Config.SRTP.
	SRTP SRTPMode
}

const maxField = 1024

// String returns a summary for logs: no password, no stream name, RTMP URL
// without query or credentials.
func (p CallParams) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CallParams{CallID:%q Callee:%q ToStream:%q", p.CallID, p.Callee, p.ToStream)
	if p.RTMPURL != "" {
		fmt.Fprintf(&b, " RTMPURL:%q RTMPStream:%s", redactURL(p.RTMPURL), redacted(p.RTMPStream))
	}
	fmt.Fprintf(&b, " HasAudio:%t HasVideo:%t SIPLogin:%q SIPAuthName:%q SIPPassword:%s SIPDomain:%q SIPOutboundProxy:%q SIPPort:%d SIPTransport:%q SIPRegisterRequired:%t VisibleName:%q AppKey:%q Headers:%d Record:%t SRTP:%q}",
		p.HasAudio, p.HasVideo, p.SIPLogin, p.SIPAuthName, redacted(p.SIPPassword), p.SIPDomain,
		p.SIPOutboundProxy, p.SIPPort, p.SIPTransport, p.SIPRegisterRequired, p.VisibleName, p.AppKey,
		len(p.Headers), p.Record, string(p.SRTP))
	return b.String()
}

// GoString is String, so %#v cannot print the password either.
func (p CallParams) GoString() string { return p.String() }

// LogValue makes slog print the redacted form.
func (p CallParams) LogValue() slog.Value { return slog.StringValue(p.String()) }

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// redactURL keeps scheme, host and the first path element (the RTMP
// application), drops credentials, query and the rest of the path (which may
// hold a stream key).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[redacted]"
	}
	app := strings.TrimPrefix(u.EscapedPath(), "/")
	rest := ""
	if i := strings.IndexByte(app, '/'); i >= 0 {
		app, rest = app[:i], "/…"
	}
	if u.RawQuery != "" {
		rest += "?…"
	}
	return u.Scheme + "://" + u.Host + "/" + app + rest
}

// validate checks p and returns a normalized copy (defaults filled in,
// transport lower-cased). Errors are *ParamError.
func (p CallParams) validate(cfg *Config) (CallParams, error) {
	q := p
	q.Headers = append([]Header(nil), p.Headers...)
	fields := []struct{ name, v string }{
		{"callId", q.CallID}, {"callee", q.Callee}, {"toStream", q.ToStream}, {"rtmpUrl", q.RTMPURL},
		{"rtmpStream", q.RTMPStream}, {"sipLogin", q.SIPLogin}, {"sipAuthenticationName", q.SIPAuthName},
		{"sipPassword", q.SIPPassword}, {"sipDomain", q.SIPDomain}, {"sipOutboundProxy", q.SIPOutboundProxy},
		{"sipTransport", q.SIPTransport}, {"visibleName", q.VisibleName}, {"appKey", q.AppKey},
	}
	for _, f := range fields {
		if len(f.v) > maxField {
			return q, paramErr(f.name, "longer than %d bytes", maxField)
		}
		if hasControl(f.v) {
			return q, paramErr(f.name, "contains control characters")
		}
	}
	if q.CallID == "" {
		q.CallID = newID()
	} else if len(q.CallID) > 256 || !isWord(q.CallID) {
		return q, paramErr("callId", "must be 1-256 letters, digits or -.!%%*_+`'~()<>:\\\"/[]?{}")
	}
	if err := validUser("sipLogin", q.SIPLogin); err != nil {
		return q, err
	}
	if err := validUser("sipAuthenticationName", q.SIPAuthName); err != nil {
		return q, err
	}
	if q.SIPDomain != "" {
		if err := validHostPort("sipDomain", q.SIPDomain); err != nil {
			return q, err
		}
	}
	if q.SIPOutboundProxy != "" {
		if err := validHostPort("sipOutboundProxy", q.SIPOutboundProxy); err != nil {
			return q, err
		}
	}
	if err := validCallee(q.Callee, q.SIPDomain, q.SIPOutboundProxy); err != nil {
		return q, err
	}
	if q.SIPPort < 0 || q.SIPPort > 65535 {
		return q, paramErr("sipPort", "must be 0-65535")
	}
	q.SIPTransport = strings.ToLower(strings.TrimSpace(q.SIPTransport))
	switch q.SIPTransport {
	case "", "udp", "tcp", "tls":
	default:
		return q, paramErr("sipTransport", "must be udp, tcp or tls")
	}
	if q.SIPRegisterRequired && q.SIPLogin == "" {
		return q, paramErr("sipLogin", "required when sipRegisterRequired is true")
	}
	if q.SIPRegisterRequired && q.SIPDomain == "" {
		return q, paramErr("sipDomain", "required when sipRegisterRequired is true")
	}
	if strings.ContainsAny(q.VisibleName, "\"\\") {
		return q, paramErr("visibleName", "must not contain quotes or backslashes")
	}
	if len(q.Headers) > 32 {
		return q, paramErr("headers", "more than 32 custom headers")
	}
	for _, h := range q.Headers {
		if h.Name == "" || !isToken(h.Name) {
			return q, paramErr("headers", "header name %q is not a SIP token", h.Name)
		}
		if reservedHeader(h.Name) {
			return q, paramErr("headers", "header %q is set by the user agent", h.Name)
		}
		if len(h.Value) > maxField || hasControl(h.Value) {
			return q, paramErr("headers", "value of %q is too long or has control characters", h.Name)
		}
	}
	if q.RTMPURL != "" {
		if err := validRTMPURL(q.RTMPURL); err != nil {
			return q, err
		}
	}
	if strings.ContainsFunc(q.RTMPStream, unicode.IsSpace) {
		return q, paramErr("rtmpStream", "contains spaces")
	}
	if q.ToStream == "" {
		q.ToStream = q.CallID
	}
	if q.RTMPURL != "" && q.RTMPStream == "" {
		q.RTMPStream = q.ToStream
	}
	if q.Record && cfg.RecordDir == "" {
		return q, paramErr("record", "recording needs Config.RecordDir")
	}
	if q.RingTimeout < 0 {
		return q, paramErr("ringTimeout", "negative")
	}
	if q.RingTimeout == 0 {
		q.RingTimeout = cfg.RingTimeout
	}
	if !q.SRTP.valid() {
		return q, paramErr("srtp", "want off, optional or required")
	}
	if q.SRTP == SRTPDefault {
		q.SRTP = cfg.SRTP
	}
	if q.SRTP == SRTPDefault {
		q.SRTP = SRTPOff
	}
	return q, nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == unicode.ReplacementChar })
}

// isWord reports whether s is made of RFC 3261 "word" characters (Call-ID).
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("-.!%*_+`'~()<>:\\\"/[]?{}@", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}

// isToken reports whether s is an RFC 3261 token (header names).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("-.!%*_+`'~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "contact", "m", "max-forwards",
		"content-type", "c", "content-length", "l", "route", "record-route", "authorization",
		"proxy-authorization", "www-authenticate", "proxy-authenticate":
		return true
	}
	return false
}

// validUser checks a SIP user part given by a client: no spaces, angle
// brackets, quotes, '@', ':' or '/', which would break the URIs built from it.
func validUser(field, s string) error {
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return paramErr(field, "contains spaces")
	}
	if strings.ContainsAny(s, "<>\"@:/\\;?") {
		return paramErr(field, "contains one of < > \" @ : / \\ ; ?")
	}
	return nil
}

// validHostPort checks "host", "host:port" or "[v6]:port".
func validHostPort(field, s string) error {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if port != "" {
		n := 0
		for _, c := range port {
			if c < '0' || c > '9' || n > 65535 {
				return paramErr(field, "bad port")
			}
			n = n*10 + int(c-'0')
		}
		if n == 0 || n > 65535 {
			return paramErr(field, "bad port")
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if host == "" || len(host) > 253 {
		return paramErr(field, "not a host name or IP address")
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return paramErr(field, "not a host name or IP address")
		}
	}
	return nil
}

// validCallee accepts "sip:user@host", "sips:...", "tel:..." and bare "user"
// or "user@host". A bare user needs a domain or proxy to go to.
func validCallee(callee, domain, proxy string) error {
	if callee == "" {
		return paramErr("callee", "required")
	}
	if strings.ContainsFunc(callee, unicode.IsSpace) {
		return paramErr("callee", "contains spaces")
	}
	if strings.ContainsAny(callee, "<>\"\\") {
		return paramErr("callee", "contains one of < > \" \\")
	}
	rest := callee
	lower := strings.ToLower(callee)
	for _, scheme := range []string{"sip:", "sips:", "tel:"} {
		if strings.HasPrefix(lower, scheme) {
			rest = callee[len(scheme):]
			if rest == "" {
				return paramErr("callee", "empty after %q", scheme)
			}
			if scheme == "tel:" {
				return nil
			}
			break
		}
	}
	if i := strings.IndexByte(rest, ';'); i >= 0 { // URI parameters
		rest = rest[:i]
	}
	user, host, hasHost := strings.Cut(rest, "@")
	if hasHost {
		if user == "" {
			return paramErr("callee", "empty user part")
		}
		return validHostPort("callee", host)
	}
	if domain == "" && proxy == "" {
		if validHostPort("callee", rest) == nil && (strings.Contains(rest, ".") || strings.Contains(rest, ":")) && strings.HasPrefix(lower, "sip") {
			return nil // sip:host
		}
		return paramErr("callee", "has no host: give user@host or set sipDomain")
	}
	return nil
}

func validRTMPURL(raw string) error {
	if strings.ContainsFunc(raw, unicode.IsSpace) {
		return paramErr("rtmpUrl", "contains spaces")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return paramErr("rtmpUrl", "not a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "rtmp", "rtmps":
	default:
		return paramErr("rtmpUrl", "scheme must be rtmp or rtmps")
	}
	if u.Host == "" {
		return paramErr("rtmpUrl", "has no host")
	}
	return nil
}

// streamKey is the duplicate check's key: the URL with scheme and host
// lower-cased and trailing slashes removed, then the stream name.
func streamKey(rawURL, stream string) string {
	if rawURL == "" {
		return ""
	}
	u := strings.TrimRight(rawURL, "/")
	if pu, err := url.Parse(u); err == nil {
		pu.Scheme = strings.ToLower(pu.Scheme)
		pu.Host = strings.ToLower(pu.Host)
		u = pu.String()
	}
	return u + "\x00" + stream
}

// randUint63 returns a random positive 63-bit number (SDP session IDs).
func randUint63() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])>>1 | 1
}

// newID returns 16 random hex digits.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// hasPort reports whether a host string ends in ":port".
func hasPort(hostport string) bool {
	_, _, err := net.SplitHostPort(hostport)
	return err == nil
}

func joinHostPort(host string, port int) string {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.JoinHostPort(h, fmt.Sprint(port))
}
