package sip

import (
	"bytes"
	"strconv"
	"strings"
)

// A minimal SDP rewrite used when the caller installs no OnReinvite hook:
// answer a re-INVITE/UPDATE offer (hold, unhold) with our original SDP,
// each m= section's direction mirrored and the o= version raised.
// Specification: RFC 3264 §6.1 (direction), §8 (o= version), RFC 6337 §5 (hold).

func isDirection(s string) bool {
	switch s {
	case "sendrecv", "sendonly", "recvonly", "inactive":
		return true
	}
	return false
}

func sdpLines(b []byte) []string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// sdpDirections returns the direction of each m= section (session-level
// attribute as default, else sendrecv).
func sdpDirections(b []byte) []string {
	session := "sendrecv"
	var out []string
	for _, l := range sdpLines(b) {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "m="):
			out = append(out, session)
		case strings.HasPrefix(l, "a=") && isDirection(l[2:]):
			if len(out) == 0 {
				session = l[2:]
			} else {
				out[len(out)-1] = l[2:]
			}
		}
	}
	return out
}

// answerDirection combines what the peer offers with what we want.
func answerDirection(offer, ours string) string {
	weSend := ours == "sendrecv" || ours == "sendonly"
	weRecv := ours == "sendrecv" || ours == "recvonly"
	theySend := offer == "sendrecv" || offer == "sendonly"
	theyRecv := offer == "sendrecv" || offer == "recvonly"
	send, recv := weSend && theyRecv, weRecv && theySend
	switch {
	case send && recv:
		return "sendrecv"
	case send:
		return "sendonly"
	case recv:
		return "recvonly"
	}
	return "inactive"
}

// mirrorAnswer answers offer with base (our original SDP). bump is added to
// the o= session version.
func mirrorAnswer(base, offer []byte, bump int) []byte {
	offered := sdpDirections(offer)
	ours := sdpDirections(base)
	var out bytes.Buffer
	section := -1
	flush := func() {
		if section >= 0 && section < len(ours) {
			od := "sendrecv"
			if section < len(offered) {
				od = offered[section]
			}
			out.WriteString("a=" + answerDirection(od, ours[section]) + "\r\n")
		}
	}
	for _, l := range sdpLines(base) {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "a=") && isDirection(t[2:]):
			continue // rewritten per section
		case strings.HasPrefix(t, "m="):
			flush()
			section++
		case strings.HasPrefix(t, "o=") && bump != 0:
			f := strings.Fields(t)
			if len(f) == 6 {
				if v, err := strconv.ParseUint(f[2], 10, 63); err == nil {
					f[2] = strconv.FormatUint(v+uint64(bump), 10)
					t = strings.Join(f, " ")
				}
			}
		}
		out.WriteString(t + "\r\n")
	}
	flush()
	return out.Bytes()
}
