package sip

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxSipfragReason bounds the reason phrase kept from a sipfrag status line.
const maxSipfragReason = 256

// errSipfrag: a message/sipfrag body without a usable status line.
var errSipfrag = errors.New("sip: sipfrag: no SIP/2.0 status line")

// parseSipfrag reads the status line of a message/sipfrag body (RFC 3420)
// as NOTIFYs of a REFER subscription carry it (RFC 3515 §2.4.5):
//
//	SIP/2.0 180 Ringing
//
// Blank lines before it are skipped; header fields and a body after it are
// ignored. The code must be 100 to 699; the reason phrase (which may be
// empty) must be UTF-8 without control characters other than tab, and is
// trimmed and cut to 256 bytes.
func parseSipfrag(b []byte) (code int, reason string, err error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return parseStatusLine(string(bytes.TrimLeft(line, " \t")))
	}
	return 0, "", errSipfrag
}

// parseStatusLine parses "SIP/2.0 Status-Code [SP Reason-Phrase]".
func parseStatusLine(s string) (int, string, error) {
	rest, ok := strings.CutPrefix(s, "SIP/2.0 ")
	if !ok || len(rest) < 3 {
		return 0, "", errSipfrag
	}
	for i := 0; i < 3; i++ {
		if !isDigit(rest[i]) {
			return 0, "", errSipfrag
		}
	}
	code, _ := strconv.Atoi(rest[:3])
	if code < 100 || code > 699 {
		return 0, "", errors.New("sip: sipfrag: status code " + rest[:3] + " out of range")
	}
	rest = rest[3:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return 0, "", errSipfrag
	}
	reason := strings.TrimSpace(rest)
	if !utf8.ValidString(reason) {
		return 0, "", errors.New("sip: sipfrag: reason phrase is not UTF-8")
	}
	for _, r := range reason {
		if r < ' ' && r != '\t' || r == 0x7f {
			return 0, "", errors.New("sip: sipfrag: control character in the reason phrase")
		}
	}
	if len(reason) > maxSipfragReason {
		cut := maxSipfragReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = strings.TrimSpace(reason[:cut])
	}
	return code, reason, nil
}
