package sip

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Grammar checks for values that end up in SIP headers we build from user
// input. Specification: RFC 3261 §25.1.

const maxParamLen = 256

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isUnreserved: alphanum / mark; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")".
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

// isUserUnreserved: "&" / "=" / "+" / "$" / "," / ";" / "?" / "/".
func isUserUnreserved(c byte) bool {
	switch c {
	case '&', '=', '+', '$', ',', ';', '?', '/':
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

// checkUser validates the user part of a SIP URI:
// user = 1*( unreserved / escaped / user-unreserved ).
func checkUser(field, s string) error {
	if s == "" {
		return paramErr(field, "empty")
	}
	if len(s) > maxParamLen {
		return paramErr(field, "longer than 256 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isUnreserved(c), isUserUnreserved(c):
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return paramErr(field, "'%' not followed by two hex digits")
			}
			i += 2
		default:
			return paramErr(field, describeByte(c)+" not allowed in a SIP user part (RFC 3261 §25.1)")
		}
	}
	return nil
}

// checkHost validates a host: hostname / IPv4address / IPv6reference.
func checkHost(field, s string) error {
	if s == "" {
		return paramErr(field, "empty host")
	}
	if len(s) > maxParamLen {
		return paramErr(field, "longer than 256 bytes")
	}
	if s[0] == '[' {
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
		return nil
	}
	h := strings.TrimSuffix(s, ".")
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return paramErr(field, "empty label in host name")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return paramErr(field, "host label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isAlnum(c) && c != '-' {
				return paramErr(field, describeByte(c)+" not allowed in a host name")
			}
		}
	}
	return nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port" and
// validates both parts. port is 0 when absent.
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
			return "", 0, err
		}
	}
	if err := checkHost(field, host); err != nil {
		return "", 0, err
	}
	return host, port, nil
}

func parsePort(field, s string) (int, error) {
	if s == "" || len(s) > 5 {
		return 0, paramErr(field, "invalid port")
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, paramErr(field, "invalid port")
	}
	return p, nil
}

// checkDisplayName allows any UTF-8 text without control characters; it is
// sent as a quoted-string (quoteDisplayName escapes '"' and '\').
func checkDisplayName(field, s string) error {
	if len(s) > maxParamLen {
		return paramErr(field, "longer than 256 bytes")
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

// isTokenChar: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
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

func checkToken(field, s string) error {
	if s == "" {
		return paramErr(field, "empty")
	}
	if len(s) > maxParamLen {
		return paramErr(field, "longer than 256 bytes")
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return paramErr(field, describeByte(s[i])+" not allowed in a token")
		}
	}
	return nil
}

// reservedHeaders are built by the UA itself and cannot be overridden.
var reservedHeaders = map[string]bool{
	"via": true, "v": true, "from": true, "f": true, "to": true, "t": true,
	"call-id": true, "i": true, "cseq": true, "contact": true, "m": true,
	"content-length": true, "l": true, "content-type": true, "c": true,
	"max-forwards": true, "route": true, "record-route": true,
	"authorization": true, "proxy-authorization": true,
}

func checkHeader(field string, h Header) error {
	if err := checkToken(field+" name", h.Name); err != nil {
		return err
	}
	if reservedHeaders[strings.ToLower(h.Name)] {
		return paramErr(field, "header "+h.Name+" is set by the user agent")
	}
	if len(h.Value) > 4096 {
		return paramErr(field, "value longer than 4096 bytes")
	}
	if !utf8.ValidString(h.Value) {
		return paramErr(field, "value is not valid UTF-8")
	}
	for i := 0; i < len(h.Value); i++ {
		if c := h.Value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return paramErr(field, "control character (CR/LF) not allowed in a header value")
		}
	}
	return nil
}

// isWordChar: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" /
// "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}".
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
	if len(s) > maxParamLen {
		return paramErr(field, "longer than 256 bytes")
	}
	at := strings.IndexByte(s, '@')
	parts := []string{s}
	if at >= 0 {
		parts = []string{s[:at], s[at+1:]}
	}
	for _, p := range parts {
		if p == "" {
			return paramErr(field, "empty word around '@'")
		}
		for i := 0; i < len(p); i++ {
			if !isWordChar(p[i]) {
				return paramErr(field, describeByte(p[i])+" not allowed in a Call-ID")
			}
		}
	}
	return nil
}

// ValidateUser reports whether s may be used as the user part of a SIP URI
// (a login or an authentication name). The error matches ErrInvalidParams.
func ValidateUser(s string) error { return checkUser("user", s) }

// ValidateHost reports whether s is a valid SIP host, optionally with
// ":port" (a domain, an IPv4 address or a bracketed IPv6 address).
func ValidateHost(s string) error {
	_, _, err := splitHostPort("host", s)
	return err
}
