package callmgr

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/sipstream/sipstream/sip"
)

// CallParams describes a call to place: every field of the REST API's
// /call/startup. Only Callee is required.
//
// The SIP password is used for digest authentication only: it never appears
// in String, GoString, LogValue, CallInfo, events, errors or logs. Neither
// does the RTMP stream name (a platform's stream key).
type CallParams struct {
	// CallID identifies the call in the Manager and is sent as the SIP
	// Call-ID (sip.ValidateCallID: RFC 3261 word ["@" word], at most 256
	// bytes). Empty means generated.
	CallID string
	// Callee is who to call (sip.ValidateCallee): a SIP or SIPS URI
	// "sip:bob@host[:port][;params]", "bob@host[:port]", or "bob" (then
	// SIPDomain is the host, and is required). Required.
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
	// To), a SIP user part (sip.ValidateUser). Empty means
	// Config.DefaultUser.
	SIPLogin string
	// SIPAuthName is the digest authentication user name
	// (sip.ValidateUser). Empty means SIPLogin.
	SIPAuthName string
	// SIPPassword is the digest password. Empty means no authentication.
	SIPPassword string
	// SIPDomain is the SIP domain (host name or IP, optional ":port",
	// sip.ValidateHostPort): the host of the From URI, of a Callee without
	// a host, and the registrar.
	SIPDomain string
	// SIPOutboundProxy is where requests are sent instead of the Request-URI
	// host: host[:port] or a SIP URI (sip.ValidateOutboundProxy). Empty
	// means none.
	SIPOutboundProxy string
	// SIPPort is the port of SIPDomain (or of the outbound proxy), 1-65535.
	// Zero means 5060 (5061 for TLS).
	SIPPort int
	// SIPTransport is "udp", "tcp" or "tls" (case-insensitive). Empty means
	// UDP.
	SIPTransport string
	// SIPRegisterRequired makes the call REGISTER SIPLogin at SIPDomain
	// before the INVITE (and unREGISTER when the call ends).
	SIPRegisterRequired bool
	// VisibleName is the display name in From (sip.ValidateDisplayName:
	// no control characters, at most 256 bytes; quotes are escaped).
	VisibleName string
	// AppKey is the application key of the REST API; stored and reported,
	// not interpreted.
	AppKey string
	// Headers are custom headers added to the INVITE (sip.ValidateHeader):
	// names are SIP tokens and not headers the user agent writes itself
	// (sip.IsReservedHeader), values have no CR, LF or other control
	// character. At most sip.MaxHeaders.
	Headers []sip.Header
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
// transport lower-cased). Errors are *ParamError. Everything that ends up
// in a SIP message is checked by package sip's validators, the rules
// Invite applies itself.
func (p CallParams) validate(cfg *Config) (CallParams, error) {
	q := p
	q.Headers = append([]sip.Header(nil), p.Headers...)
	// The fields that are not SIP grammar: bounded, no control characters.
	fields := []struct{ name, v string }{
		{FieldToStream, q.ToStream}, {FieldRTMPURL, q.RTMPURL}, {FieldRTMPStream, q.RTMPStream},
		{FieldSIPPassword, q.SIPPassword}, {FieldSIPTransport, q.SIPTransport}, {FieldAppKey, q.AppKey},
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
	} else if err := sip.ValidateCallID(q.CallID); err != nil {
		return q, grammarErr(FieldCallID, err)
	}
	if q.SIPLogin != "" {
		if err := sip.ValidateUser(q.SIPLogin); err != nil {
			return q, grammarErr(FieldSIPLogin, err)
		}
	}
	if q.SIPAuthName != "" {
		if err := sip.ValidateUser(q.SIPAuthName); err != nil {
			return q, grammarErr(FieldSIPAuthName, err)
		}
	}
	if q.SIPDomain != "" {
		if err := sip.ValidateHostPort(q.SIPDomain); err != nil {
			return q, grammarErr(FieldSIPDomain, err)
		}
	}
	if q.SIPOutboundProxy != "" {
		if err := sip.ValidateOutboundProxy(q.SIPOutboundProxy); err != nil {
			return q, grammarErr(FieldSIPOutboundProxy, err)
		}
	}
	if q.Callee == "" {
		return q, paramErr(FieldCallee, "required")
	}
	if err := sip.ValidateCallee(q.Callee, q.SIPDomain); err != nil {
		return q, grammarErr(FieldCallee, err)
	}
	if q.SIPPort != 0 {
		if err := sip.ValidatePort(q.SIPPort); err != nil {
			return q, grammarErr(FieldSIPPort, err)
		}
	}
	q.SIPTransport = strings.ToLower(strings.TrimSpace(q.SIPTransport))
	switch q.SIPTransport {
	case "", "udp", "tcp", "tls":
	default:
		return q, paramErr(FieldSIPTransport, "must be udp, tcp or tls")
	}
	if q.SIPRegisterRequired && q.SIPLogin == "" {
		return q, paramErr(FieldSIPLogin, "required when SIPRegisterRequired is true")
	}
	if q.SIPRegisterRequired && q.SIPDomain == "" {
		return q, paramErr(FieldSIPDomain, "required when SIPRegisterRequired is true")
	}
	if err := sip.ValidateDisplayName(q.VisibleName); err != nil {
		return q, grammarErr(FieldVisibleName, err)
	}
	if len(q.Headers) > sip.MaxHeaders {
		return q, paramErr(FieldHeaders, "more than %d custom headers", sip.MaxHeaders)
	}
	for _, h := range q.Headers {
		if err := sip.ValidateHeaderName(h.Name); err != nil {
			return q, grammarErr(FieldHeaders, err)
		}
		if err := sip.ValidateHeaderValue(h.Value); err != nil {
			pe := grammarErr(FieldHeaders, err).(*ParamError)
			pe.Reason = h.Name + ": " + pe.Reason
			return q, pe
		}
	}
	if q.RTMPURL != "" {
		if err := validRTMPURL(q.RTMPURL); err != nil {
			return q, err
		}
	}
	if strings.ContainsFunc(q.RTMPStream, unicode.IsSpace) {
		return q, paramErr(FieldRTMPStream, "contains spaces")
	}
	if q.ToStream == "" {
		q.ToStream = q.CallID
	}
	if q.RTMPURL != "" && q.RTMPStream == "" {
		q.RTMPStream = q.ToStream
	}
	if q.Record && cfg.RecordDir == "" {
		return q, paramErr(FieldRecord, "recording needs Config.RecordDir")
	}
	if q.RingTimeout < 0 {
		return q, paramErr(FieldRingTimeout, "negative")
	}
	if q.RingTimeout == 0 {
		q.RingTimeout = cfg.RingTimeout
	}
	if !q.SRTP.valid() {
		return q, paramErr(FieldSRTP, "want off, optional or required")
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

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func validRTMPURL(raw string) error {
	if strings.ContainsFunc(raw, unicode.IsSpace) {
		return paramErr(FieldRTMPURL, "contains spaces")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return paramErr(FieldRTMPURL, "not a URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "rtmp", "rtmps":
	default:
		return paramErr(FieldRTMPURL, "scheme must be rtmp or rtmps")
	}
	if u.Host == "" {
		return paramErr(FieldRTMPURL, "has no host")
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

// StreamKey is the key that makes a call's RTMP target unique: two live
// calls may not publish to the same StreamKey (ErrDuplicateStream). The URL's
// scheme and host are compared without case and trailing slashes are
// ignored; "" for a call without an RTMP target. A cluster of Managers
// claims it across nodes (package cluster).
func StreamKey(rtmpURL, rtmpStream string) string { return streamKey(rtmpURL, rtmpStream) }
