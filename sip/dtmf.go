package sip

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// DTMF in SIP INFO. application/dtmf-relay is the Cisco/Asterisk format
// ("Signal=5\r\nDuration=160\r\n"); application/dtmf carries the digit
// alone. Both have no RFC; event numbers follow RFC 4733 §3.2 (10 = *,
// 11 = #, 12–15 = A–D).

const maxDTMFBody = 1024

var errBadDTMF = errors.New("sip: malformed DTMF INFO body")

// dtmfDigit normalises a digit or an RFC 4733 event number.
func dtmfDigit(s string) (rune, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 1 {
		c := s[0]
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#':
			return rune(c), true
		case c >= 'A' && c <= 'D':
			return rune(c), true
		case c >= 'a' && c <= 'd':
			return rune(c - 'a' + 'A'), true
		}
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 2 {
		return 0, false
	}
	switch {
	case n >= 0 && n <= 9:
		return rune('0' + n), true
	case n == 10:
		return '*', true
	case n == 11:
		return '#', true
	case n >= 12 && n <= 15:
		return rune('A' + n - 12), true
	}
	return 0, false
}

// parseDTMF decodes an INFO body of content type ct ("application/dtmf-relay"
// or "application/dtmf"). duration is 0 when the body gives none.
func parseDTMF(ct string, body []byte) (digit rune, duration time.Duration, err error) {
	if len(body) > maxDTMFBody {
		return 0, 0, errBadDTMF
	}
	if ct == "application/dtmf" {
		d, ok := dtmfDigit(string(body))
		if !ok {
			return 0, 0, errBadDTMF
		}
		return d, 0, nil
	}
	found := false
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue // tolerate unknown lines
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "signal":
			d, ok := dtmfDigit(v)
			if !ok {
				return 0, 0, errBadDTMF
			}
			digit, found = d, true
		case "duration":
			v = strings.TrimSpace(v)
			ms, err := strconv.Atoi(v)
			if err != nil || ms < 0 || ms > 60000 {
				return 0, 0, errBadDTMF
			}
			duration = time.Duration(ms) * time.Millisecond
		}
	}
	if !found {
		return 0, 0, errBadDTMF
	}
	return digit, duration, nil
}

// formatDTMF builds the INFO body and content type for one digit.
func formatDTMF(digit rune, relay bool, duration time.Duration) ([]byte, string, error) {
	if digit > 0x7f {
		return nil, "", paramErr("digit", "want 0-9, *, #, A-D")
	}
	d, ok := dtmfDigit(string(digit))
	if !ok {
		return nil, "", paramErr("digit", "want 0-9, *, #, A-D")
	}
	if !relay {
		return []byte(string(d)), "application/dtmf", nil
	}
	ms := duration.Milliseconds()
	return []byte("Signal=" + string(d) + "\r\nDuration=" + strconv.FormatInt(ms, 10) + "\r\n"), "application/dtmf-relay", nil
}
