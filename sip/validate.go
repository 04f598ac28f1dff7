package sip

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The SIP grammar for values that end up in requests we build from user
// input: logins, hosts, ports, Call-IDs, custom headers, callees. This file
// is the only place sipstream decides what they may look like; the
// exported Validate functions are what callmgr and the REST layer call, and
// Invite and Register apply the same rules. Every failure is a *ParamError
// (errors.Is ErrInvalidParams).
//
// Specification: RFC 3261 §25.1 (the ABNF quoted next to each check), §7.3.1
// (header names are case-insensitive; compact forms), §19.1.1 (SIP URIs).

// Limits. RFC 3261 sets none; these are sipstream's, chosen once for every
// layer.
const (
	// MaxUserLen is the longest SIP user part (login, authentication name,
	// callee number), in bytes. Real logins and numbers are far shorter.
	MaxUserLen = 256
	// MaxHostLen is the longest host name in bytes, without a trailing dot:
	// the DNS limit (RFC 1035 §2.3.4). MaxLabelLen bounds each label.
	MaxHostLen  = 253
	MaxLabelLen = 63
	// MaxCallIDLen is the longest Call-ID in bytes. PBXs send 16 to ~100
	// (Asterisk a UUID "@" host, Cisco "hex-hex@ip"); 256 leaves room for
	// any of them while keeping every request of the dialog small.
	MaxCallIDLen = 256
	// MaxHeaderNameLen is the longest custom header name in bytes. The
	// longest registered SIP header names have about 30 characters.
	MaxHeaderNameLen = 64
	// MaxHeaderValueLen is the longest custom header value in bytes: room
	// for a signed token (Identity, a JWT in an X- header).
	MaxHeaderValueLen = 4096
	// MaxHeaders is the most custom headers one request may carry.
	MaxHeaders = 32
	// MaxDisplayNameLen is the longest display name in bytes.
	MaxDisplayNameLen = 256
	// MaxURILen is the longest callee (SIP URI, user@host or number) in bytes.
	MaxURILen = 1024
)

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isUnreserved: unreserved = alphanum / mark;
// mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")".
func isUnreserved(c byte) bool {
	if isAlnum(c) {
		return true
	}
	switch c {
	case '-', '_', '.', '!', '~', '*', '\'', '(', ')':
		return true
	}
	return false
}

// isUserUnreserved: user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/".
func isUserUnreserved(c byte) bool {
	switch c {
	case '&', '=', '+', '$', ',', ';', '?', '/':
		return true
	}
	return false
}

// isParamUnreserved: param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$".
func isParamUnreserved(c byte) bool {
	switch c {
	case '[', ']', '/', ':', '&', '+', '$':
		return true
	}
	return false
}

// isHnvUnreserved: hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$".
func isHnvUnreserved(c byte) bool {
	switch c {
	case '[', ']', '/', '?', ':', '+', '$':
		return true
	}
	return false
}

func describeByte(c byte) string {
	switch c {
	case ' ':
		return "space"
	case '\t':
		return "tab"
	case '"':
		return "double quote"
	case '<', '>':
		return "angle bracket"
	case '@':
		return "'@'"
	case ':':
		return "':'"
	}
	if c < 0x20 || c == 0x7f {
		return "control character"
	}
	if c >= 0x80 {
		return "non-ASCII character"
	}
	return strconv.QuoteRune(rune(c))
}

func tooLong(n int) string { return "longer than " + strconv.Itoa(n) + " bytes" }

// checkEscaped checks s as 1*( allowed / escaped ), escaped = "%" HEXDIG HEXDIG.
func checkEscaped(field, s, what string, allowed func(byte) bool) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case allowed(c):
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return paramErr(field, "'%' not followed by two hex digits")
			}
			i += 2
		default:
			return paramErr(field, describeByte(c)+" not allowed in "+what+" (RFC 3261 §25.1)")
		}
	}
	return nil
}

// checkUser validates the user part of a SIP URI:
// user = 1*( unreserved / escaped / user-unreserved ).
//
// One quirk: a user may not start with "//", which sipgo (v1.7) reads as
// the hierarchical slashes of "sip://" and drops, so the user would change
// in every message it parses back (found by FuzzValidateUser).
func checkUser(field, s string) error {
	if s == "" {
		return paramErr(field, "empty")
	}
	if len(s) > MaxUserLen {
		return paramErr(field, tooLong(MaxUserLen))
	}
	if strings.HasPrefix(s, "//") {
		return paramErr(field, "a SIP user part cannot start with \"//\"")
	}
	return checkEscaped(field, s, "a SIP user part", func(c byte) bool { return isUnreserved(c) || isUserUnreserved(c) })
}

// checkHost validates host = hostname / IPv4address / IPv6reference.
//
// Host names are checked with two deliberate departures from RFC 3261's
// hostname production (domainlabel = alphanum / alphanum *( alphanum / "-" )
// alphanum; toplabel = ALPHA ...):
//   - "_" is allowed in a label. Docker Compose service and container names
//     ("sip_pbx", "stack_asterisk_1") are resolvable host names that carry
//     it, Go's resolver and the PBXs we meet (Asterisk, FreeSWITCH,
//     Kamailio) accept it, and it cannot break the message it is written
//     into.
//   - the top label may start with a digit (RFC 1123 §2.1: Docker's default
//     container host name is a hex ID) but may not be all digits (RFC 3696
//     §2), so a malformed dotted quad like "10.0.0.256" is refused.
//
// Labels are 1 to 63 bytes and do not start or end with "-"; the name is at
// most 253 bytes (RFC 1035), a trailing "." allowed.
func checkHost(field, s string) error {
	if s == "" {
		return paramErr(field, "empty host")
	}
	if s[0] == '[' {
		// IPv6reference = "[" IPv6address "]"
		if s[len(s)-1] != ']' {
			return paramErr(field, "unterminated IPv6 reference")
		}
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return paramErr(field, "invalid IPv6 reference")
		}
		return nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is6() {
			return paramErr(field, "IPv6 address must be enclosed in [ ]")
		}
		return nil // IPv4address
	}
	h := strings.TrimSuffix(s, ".")
	if len(h) > MaxHostLen {
		return paramErr(field, "host name "+tooLong(MaxHostLen))
	}
	labels := strings.Split(h, ".")
	for _, label := range labels {
		if label == "" {
			return paramErr(field, "empty label in host name")
		}
		if len(label) > MaxLabelLen {
			return paramErr(field, "host label "+tooLong(MaxLabelLen))
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return paramErr(field, "host label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return paramErr(field, describeByte(c)+" not allowed in a host name")
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return paramErr(field, "not an IPv4 address, and a host name's last label cannot be all digits")
	}
	return nil
}

// splitHostPort splits hostport = host [ ":" port ] ("host", "host:port",
// "[v6]" or "[v6]:port") and validates both parts. port is 0 when absent.
func splitHostPort(field, s string) (host string, port int, err error) {
	host = s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, paramErr(field, "unterminated IPv6 reference")
		}
		host = s[:end+1]
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", 0, paramErr(field, "garbage after IPv6 reference")
			}
			if port, err = parsePort(field, rest[1:]); err != nil {
				return "", 0, err
			}
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host = s[:i]
		if port, err = parsePort(field, s[i+1:]); err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil && a.Is6() {
				return "", 0, paramErr(field, "IPv6 address must be enclosed in [ ]")
			}
			return "", 0, err
		}
	}
	if err := checkHost(field, host); err != nil {
		return "", 0, err
	}
	return host, port, nil
}

// parsePort parses port = 1*DIGIT, 1 to 65535.
func parsePort(field, s string) (int, error) {
	if s == "" || len(s) > 5 {
		return 0, paramErr(field, "invalid port")
	}
	p := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, paramErr(field, "invalid port")
		}
		p = p*10 + int(s[i]-'0')
	}
	if err := checkPort(field, p); err != nil {
		return 0, err
	}
	return p, nil
}

func checkPort(field string, p int) error {
	if p < 1 || p > 65535 {
		return paramErr(field, "port must be 1-65535")
	}
	return nil
}

// checkDisplayName allows any UTF-8 text without control characters other
// than tab; it is sent as a quoted-string (quoteDisplayName escapes '"' and
// '\' as quoted-pair).
func checkDisplayName(field, s string) error {
	if len(s) > MaxDisplayNameLen {
		return paramErr(field, tooLong(MaxDisplayNameLen))
	}
	if !utf8.ValidString(s) {
		return paramErr(field, "not valid UTF-8")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return paramErr(field, "control character not allowed")
		}
	}
	return nil
}

// quoteDisplayName returns s as an RFC 3261 quoted-string.
func quoteDisplayName(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isTokenChar: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" /
// "+" / "`" / "'" / "~").
func isTokenChar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	switch c {
	case '-', '.', '!', '%', '*', '_', '+', '`', '\'', '~':
		return true
	}
	return false
}

// reservedHeaders are the headers the user agent writes itself (lower
// case, long and compact forms, RFC 3261 §7.3.3 and §20): a caller setting
// one would duplicate or contradict ours and break the transaction, the
// dialog, authentication or the SDP body.
var reservedHeaders = map[string]bool{
	"via": true, "v": true, // transaction and response routing
	"from": true, "f": true, "to": true, "t": true, "call-id": true, "i": true, // dialog identity
	"cseq": true, "max-forwards": true,
	"contact": true, "m": true, // our own address
	"route": true, "record-route": true, // route set (outbound proxy, loose routing)
	"content-length": true, "l": true, "content-type": true, "c": true, // the SDP body
	"content-encoding": true, "e": true,
	"authorization": true, "proxy-authorization": true, // digest answers
	"www-authenticate": true, "proxy-authenticate": true, // challenges (responses only)
	"session-expires": true, "x": true, "min-se": true, // session timer (RFC 4028)
	"rseq": true, "rack": true, // reliable provisional responses (RFC 3262)
}

// IsReservedHeader reports whether name (any case, long or compact form) is
// a header the user agent writes itself and a caller may not set: Via (v),
// From (f), To (t), Call-ID (i), CSeq, Max-Forwards, Contact (m), Route,
// Record-Route, Content-Length (l), Content-Type (c), Content-Encoding (e),
// Authorization, Proxy-Authorization, WWW-Authenticate, Proxy-Authenticate,
// Session-Expires (x), Min-SE, RSeq and RAck.
func IsReservedHeader(name string) bool { return reservedHeaders[strings.ToLower(name)] }

// checkHeaderName validates a header a caller adds: field-name = token,
// not a reserved header.
func checkHeaderName(field, s string) error {
	if err := checkToken(field, s); err != nil {
		return err
	}
	if IsReservedHeader(s) {
		return paramErr(field, "header "+s+" is set by the user agent")
	}
	return nil
}

// checkToken validates field-name = token, at most MaxHeaderNameLen bytes.
func checkToken(field, s string) error {
	if s == "" {
		return paramErr(field, "empty header name")
	}
	if len(s) > MaxHeaderNameLen {
		return paramErr(field, "header name "+tooLong(MaxHeaderNameLen))
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return paramErr(field, describeByte(s[i])+" not allowed in a header name (RFC 3261 token)")
		}
	}
	return nil
}

// checkHeaderValue validates a header value as RFC 3261 writes it:
// *(TEXT-UTF8char / LWS), TEXT-UTF8char = %x21-7E / UTF8-NONASCII. Spaces
// and tabs are allowed; CR, LF (no line folding: obs-fold would let a value
// start a new header), NUL, other control characters and invalid UTF-8 are
// not. An empty value is allowed.
func checkHeaderValue(field, s string) error {
	if len(s) > MaxHeaderValueLen {
		return paramErr(field, "value "+tooLong(MaxHeaderValueLen))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return paramErr(field, "control character (CR, LF, NUL …) not allowed in a header value")
		}
	}
	if !utf8.ValidString(s) {
		return paramErr(field, "value is not valid UTF-8")
	}
	return nil
}

// checkHeader validates a header the user agent itself writes from a
// configured value (User-Agent, an INFO's Content-Type): a token name and a
// valid value. Headers from callers go through checkCustomHeader.
func checkHeader(field string, h Header) error {
	if err := checkToken(field, h.Name); err != nil {
		return err
	}
	return checkHeaderValue(field, h.Value)
}

// checkCustomHeader validates a header a caller adds to a request.
func checkCustomHeader(field string, h Header) error {
	if err := checkHeaderName(field, h.Name); err != nil {
		return err
	}
	return checkHeaderValue(field, h.Value)
}

// isWordChar: word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" /
// "`" / "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" /
// "]" / "?" / "{" / "}").
func isWordChar(c byte) bool {
	if isTokenChar(c) {
		return true
	}
	switch c {
	case '(', ')', '<', '>', ':', '\\', '"', '/', '[', ']', '?', '{', '}':
		return true
	}
	return false
}

// checkCallID validates callid = word [ "@" word ].
func checkCallID(field, s string) error {
	if s == "" {
		return paramErr(field, "empty")
	}
	if len(s) > MaxCallIDLen {
		return paramErr(field, tooLong(MaxCallIDLen))
	}
	parts := []string{s}
	if at := strings.IndexByte(s, '@'); at >= 0 {
		parts = []string{s[:at], s[at+1:]}
	}
	for _, p := range parts {
		if p == "" {
			return paramErr(field, "empty word around '@'")
		}
		for i := 0; i < len(p); i++ {
			if !isWordChar(p[i]) {
				return paramErr(field, describeByte(p[i])+" not allowed in a Call-ID (RFC 3261 word)")
			}
		}
	}
	return nil
}

// hasSIPScheme reports whether s starts with "sip:" or "sips:", any case.
func hasSIPScheme(s string) bool {
	return len(s) >= 4 && strings.EqualFold(s[:4], "sip:") || len(s) >= 5 && strings.EqualFold(s[:5], "sips:")
}

// sipURI is what parseSIPURI found in a SIP or SIPS URI.
type sipURI struct {
	user, host string
	port       int
}

// parseSIPURI validates
//
//	SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
//	userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
//
// (and SIPS-URI alike) without a password: a password in a URI would be
// sent in clear in every request. uri-parameter = pname [ "=" pvalue ] with
// paramchar = param-unreserved / unreserved / escaped; header = hname "="
// hvalue with hnv-unreserved / unreserved / escaped. Since "@" is in none of
// those sets, the first "@" ends the userinfo.
//
// One quirk: "[" and "]", allowed by param-unreserved and hnv-unreserved,
// are refused in parameters and headers (escape them as %5B and %5D):
// sipgo (v1.7) takes a "[" anywhere in a URI without userinfo for the start
// of an IPv6 host and fails to parse it (found by FuzzValidateCallee).
func parseSIPURI(field, s string) (sipURI, error) {
	var u sipURI
	if !hasSIPScheme(s) {
		return u, paramErr(field, "not a sip: or sips: URI")
	}
	rest := s[strings.IndexByte(s, ':')+1:]
	if rest == "" {
		return u, paramErr(field, "empty after the scheme")
	}
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		userinfo := rest[:at]
		rest = rest[at+1:]
		user, _, hasPassword := strings.Cut(userinfo, ":")
		if hasPassword {
			return u, paramErr(field, "password in URI not allowed")
		}
		if err := checkUser(field, user); err != nil {
			return u, err
		}
		u.user = user
	}
	hp := rest
	tail := ""
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		hp, tail = rest[:i], rest[i:]
	}
	var err error
	if u.host, u.port, err = splitHostPort(field, hp); err != nil {
		return u, err
	}
	params, headers, hasHeaders := strings.Cut(tail, "?")
	if params != "" {
		for _, p := range strings.Split(params[1:], ";") {
			name, value, hasValue := strings.Cut(p, "=")
			if name == "" || hasValue && value == "" {
				return u, paramErr(field, "empty URI parameter name or value")
			}
			paramchar := func(c byte) bool { return isUnreserved(c) || isParamUnreserved(c) && c != '[' && c != ']' }
			if err := checkEscaped(field, name+value, "a URI parameter", paramchar); err != nil {
				return u, err
			}
		}
	}
	if hasHeaders {
		for _, h := range strings.Split(headers, "&") {
			name, value, ok := strings.Cut(h, "=")
			if name == "" || !ok {
				return u, paramErr(field, "URI header without a name or '='")
			}
			hnv := func(c byte) bool { return isUnreserved(c) || isHnvUnreserved(c) && c != '[' && c != ']' }
			if err := checkEscaped(field, name+value, "a URI header", hnv); err != nil {
				return u, err
			}
		}
	}
	return u, nil
}

// checkCallee validates a callee in one of three forms: a SIP or SIPS URI
// (see parseSIPURI), "user@hostport", or a bare user (a number or an
// extension, addressed at domain). A bare user without a domain has nowhere
// to go: that error names domainField. domain itself is not checked here.
func checkCallee(field, domainField, callee, domain string) error {
	switch {
	case callee == "":
		return paramErr(field, "empty")
	case len(callee) > MaxURILen:
		return paramErr(field, tooLong(MaxURILen))
	case hasSIPScheme(callee):
		_, err := parseSIPURI(field, callee)
		return err
	}
	if at := strings.IndexByte(callee, '@'); at >= 0 {
		if err := checkUser(field, callee[:at]); err != nil {
			return err
		}
		_, _, err := splitHostPort(field, callee[at+1:])
		return err
	}
	if err := checkUser(field, callee); err != nil {
		return err
	}
	if domain == "" {
		return paramErr(domainField, "required when the callee is a bare user: give user@host, a sip: URI, or a domain")
	}
	return nil
}

// ValidateUser checks s as the user part of a SIP URI (a login, an
// authentication name, a number):
//
//	user = 1*( unreserved / escaped / user-unreserved )
//
// at most MaxUserLen bytes. The *ParamError's Field is "user".
func ValidateUser(s string) error { return checkUser("user", s) }

// ValidateHost checks s as a SIP host: a host name (see below), an IPv4
// address, or an IPv6 reference "[2001:db8::1]".
//
//	host = hostname / IPv4address / IPv6reference
//
// Host names may contain "_" (Docker Compose names such as "sip_pbx") and
// may have a top label that starts with a digit but is not all digits;
// labels are at most MaxLabelLen bytes, the name MaxHostLen. The
// *ParamError's Field is "host".
func ValidateHost(s string) error { return checkHost("host", s) }

// ValidateHostPort checks s as hostport = host [ ":" port ]: "pbx.example",
// "pbx.example:5080", "10.0.0.1:5060", "[::1]:5060". The *ParamError's
// Field is "host".
func ValidateHostPort(s string) error {
	_, _, err := splitHostPort("host", s)
	return err
}

// ValidatePort checks that p is a usable port, 1 to 65535 (port = 1*DIGIT).
// The *ParamError's Field is "port".
func ValidatePort(p int) error { return checkPort("port", p) }

// ValidateCallID checks s as a Call-ID, at most MaxCallIDLen bytes:
//
//	callid = word [ "@" word ]
//
// The *ParamError's Field is "Call-ID".
func ValidateCallID(s string) error { return checkCallID("Call-ID", s) }

// ValidateHeaderName checks s as the name of a header a caller adds:
// field-name = token, at most MaxHeaderNameLen bytes, and not a header the
// user agent writes itself (IsReservedHeader). The *ParamError's Field is
// "header".
func ValidateHeaderName(s string) error { return checkHeaderName("header", s) }

// ValidateHeaderValue checks s as a header value: UTF-8 text, spaces and
// tabs allowed, no CR, LF, NUL or other control character, at most
// MaxHeaderValueLen bytes. The *ParamError's Field is "header".
func ValidateHeaderValue(s string) error { return checkHeaderValue("header", s) }

// ValidateHeader checks h's name (ValidateHeaderName) and value
// (ValidateHeaderValue).
func ValidateHeader(h Header) error { return checkCustomHeader("header", h) }

// ValidateDisplayName checks s as a display name: UTF-8 without control
// characters other than tab, at most MaxDisplayNameLen bytes. Quotes and
// backslashes are allowed (they are escaped when sent). The *ParamError's
// Field is "display name".
func ValidateDisplayName(s string) error { return checkDisplayName("display name", s) }

// ValidateURI checks s as a SIP or SIPS URI ("sip:bob@pbx.example:5060;
// transport=tcp") as RFC 3261 §19.1.1 writes it, without a password, at
// most MaxURILen bytes. The *ParamError's Field is "URI".
func ValidateURI(s string) error {
	if len(s) > MaxURILen {
		return paramErr("URI", tooLong(MaxURILen))
	}
	_, err := parseSIPURI("URI", s)
	return err
}

// ValidateCallee checks s the way InviteRequest.Callee is read: a SIP or
// SIPS URI (ValidateURI), "user@host[:port]", or a bare user such as a
// number, which is then addressed at domain; a bare user with an empty
// domain is refused. domain itself is not checked (ValidateHostPort). No
// spaces are trimmed. The *ParamError's Field is "callee".
func ValidateCallee(s, domain string) error { return checkCallee("callee", "callee", s, domain) }

// ValidateOutboundProxy checks s the way InviteRequest.OutboundProxy is
// read: "host[:port]" (ValidateHostPort) or a SIP URI (ValidateURI). The
// *ParamError's Field is "proxy".
func ValidateOutboundProxy(s string) error {
	if hasSIPScheme(s) {
		if len(s) > MaxURILen {
			return paramErr("proxy", tooLong(MaxURILen))
		}
		_, err := parseSIPURI("proxy", s)
		return err
	}
	_, _, err := splitHostPort("proxy", s)
	return err
}
