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

// sdpVersion returns the session version of b's o= line.
func sdpVersion(b []byte) (uint64, bool) {
	for _, l := range sdpLines(b) {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "o=") {
			f := strings.Fields(t)
			if len(f) != 6 {
				return 0, false
			}
			v, err := strconv.ParseUint(f[2], 10, 63)
			return v, err == nil
		}
	}
	return 0, false
}

// raiseSDPVersion returns offer with its o= session version raised to one
// more than last's when it is not already higher (RFC 3264 §8: each new
// offer increments the version). offer is returned as it is when either
// has no readable o= line or nothing needs to change.
func raiseSDPVersion(offer, last []byte) []byte {
	prev, ok := sdpVersion(last)
	cur, ok2 := sdpVersion(offer)
	if !ok || !ok2 || cur > prev || prev >= 1<<63-1 {
		return offer
	}
	var out bytes.Buffer
	done := false
	for _, l := range sdpLines(offer) {
		if t := strings.TrimSpace(l); !done && strings.HasPrefix(t, "o=") {
			f := strings.Fields(t)
			f[2] = strconv.FormatUint(prev+1, 10)
			l, done = strings.Join(f, " "), true
		}
		out.WriteString(l + "\r\n")
	}
	return out.Bytes()
}
