package sip

import (
	"errors"
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	sipgox "github.com/emiago/sipgo/sip"

	"github.com/sipstream/sipstream/internal/grammarcases"
)

// validateCase runs the sip validator for c's kind.
func validateCase(c grammarcases.Case) error {
	switch c.Kind {
	case grammarcases.User:
		return ValidateUser(c.In)
	case grammarcases.HostPort:
		return ValidateHostPort(c.In)
	case grammarcases.CallID:
		return ValidateCallID(c.In)
	case grammarcases.HeaderName:
		return ValidateHeaderName(c.In)
	case grammarcases.HeaderValue:
		return ValidateHeaderValue(c.In)
	case grammarcases.Callee:
		return ValidateCallee(c.In, c.Domain)
	case grammarcases.Proxy:
		return ValidateOutboundProxy(c.In)
	}
	panic("unknown kind " + string(c.Kind))
}

func TestGrammarGolden(t *testing.T) {
	for _, c := range grammarcases.Cases {
		err := validateCase(c)
		name := string(c.Kind) + " " + shorten(c.In)
		if c.Valid {
			if err != nil {
				t.Errorf("%s: refused: %v", name, err)
			}
			continue
		}
		var pe *ParamError
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case !errors.Is(err, ErrInvalidParams) || !errors.As(err, &pe):
			t.Errorf("%s: %T %v is not a *ParamError", name, err, err)
		case pe.Field == "" || pe.Reason == "":
			t.Errorf("%s: %+v names no field or reason", name, pe)
		}
	}
}

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// TestGrammarLimits pins the limits at their documented values.
func TestGrammarLimits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		validate func(string) error
		limit    int
		unit     string
	}{
		{"user", ValidateUser, MaxUserLen, "u"},
		{"Call-ID", ValidateCallID, MaxCallIDLen, "c"},
		{"header name", ValidateHeaderName, MaxHeaderNameLen, "h"},
		{"header value", ValidateHeaderValue, MaxHeaderValueLen, "v"},
		{"display name", ValidateDisplayName, MaxDisplayNameLen, "d"},
	} {
		if err := tc.validate(strings.Repeat(tc.unit, tc.limit)); err != nil {
			t.Errorf("%s at %d bytes: %v", tc.name, tc.limit, err)
		}
		if err := tc.validate(strings.Repeat(tc.unit, tc.limit+1)); err == nil {
			t.Errorf("%s at %d bytes accepted", tc.name, tc.limit+1)
		}
	}
	if MaxUserLen != 256 || MaxCallIDLen != 256 || MaxHeaderNameLen != 64 || MaxHeaderValueLen != 4096 ||
		MaxHostLen != 253 || MaxLabelLen != 63 || MaxHeaders != 32 || MaxURILen != 1024 {
		t.Error("a documented limit changed: update the docs and callmgr")
	}
	for _, p := range []int{1, 5060, 65535} {
		if err := ValidatePort(p); err != nil {
			t.Errorf("port %d: %v", p, err)
		}
	}
	for _, p := range []int{-1, 0, 65536} {
		if err := ValidatePort(p); err == nil {
			t.Errorf("port %d accepted", p)
		}
	}
	for _, s := range []string{"", "Front Desk", `Bob "The Builder" \o/`, "Jörg\tM"} {
		if err := ValidateDisplayName(s); err != nil {
			t.Errorf("display name %q: %v", s, err)
		}
	}
	for _, s := range []string{"a\r\nVia: x", "a\x00", "\xff"} {
		if err := ValidateDisplayName(s); err == nil {
			t.Errorf("display name %q accepted", s)
		}
	}
}

// TestReservedHeadersCompactForms checks every compact form RFC 3261 §7.3.3
// and RFC 4028 give a reserved header, in both cases.
func TestReservedHeadersCompactForms(t *testing.T) {
	for _, c := range []string{"i", "f", "t", "v", "m", "l", "c", "e", "x"} {
		for _, n := range []string{c, strings.ToUpper(c)} {
			if !IsReservedHeader(n) {
				t.Errorf("%s not reserved", n)
			}
			if err := ValidateHeader(Header{Name: n, Value: "x"}); err == nil {
				t.Errorf("header %s accepted", n)
			}
		}
	}
	// Compact forms of headers a caller may set.
	for _, n := range []string{"s", "k", "o", "r", "u", "y", "j"} {
		if IsReservedHeader(n) {
			t.Errorf("%s reserved", n)
		}
	}
}

// TestInviteUsesTheGrammar: Invite's own checks agree with the exported
// validators on the golden table (a callee, a custom header, a Call-ID).
func TestInviteUsesTheGrammar(t *testing.T) {
	for _, c := range grammarcases.Cases {
		r := InviteRequest{Callee: "bob@pbx.example", From: "alice"}
		switch c.Kind {
		case grammarcases.Callee:
			if strings.TrimSpace(c.In) != c.In {
				continue // Invite trims spaces
			}
			r.Callee, r.Domain = c.In, c.Domain
		case grammarcases.HeaderName:
			r.Headers = []Header{{Name: c.In, Value: "v"}}
		case grammarcases.HeaderValue:
			r.Headers = []Header{{Name: "X-Y", Value: c.In}}
		case grammarcases.CallID:
			if c.In == "" {
				continue // generated
			}
			r.CallID = c.In
		case grammarcases.User:
			r.From = c.In
		case grammarcases.HostPort:
			r.Domain = c.In
			if c.In == "" {
				continue // optional
			}
		case grammarcases.Proxy:
			r.OutboundProxy = c.In
			if c.In == "" {
				continue // optional
			}
		}
		_, err := r.plan()
		if (err == nil) != c.Valid {
			t.Errorf("%s %q: Invite says %v, the table says valid=%t", c.Kind, shorten(c.In), err, c.Valid)
		}
	}
}

func FuzzValidateUser(f *testing.F) {
	addCases(f, grammarcases.User)
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateUser(s) != nil {
			return
		}
		if len(s) > MaxUserLen || strings.ContainsAny(s, " \t\r\n\x00<>\"@:[]#\\") {
			t.Fatalf("accepted %q", s)
		}
		var u sipgox.Uri
		if err := sipgox.ParseUri("sip:"+s+"@pbx.example", &u); err != nil || u.User != s || u.Host != "pbx.example" {
			t.Fatalf("user %q does not survive a URI: %+v, %v", s, u, err)
		}
	})
}

func FuzzValidateHostPort(f *testing.F) {
	addCases(f, grammarcases.HostPort)
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := splitHostPort("host", s)
		if err != nil {
			if ValidateHostPort(s) == nil {
				t.Fatal("ValidateHostPort disagrees")
			}
			return
		}
		if strings.ContainsAny(s, " \t\r\n\x00<>\"@;?,/") || port < 0 || port > 65535 {
			t.Fatalf("accepted %q", s)
		}
		if ValidateHost(host) != nil {
			t.Fatalf("host %q of %q refused alone", host, s)
		}
		var u sipgox.Uri
		if err := sipgox.ParseUri("sip:bob@"+s, &u); err != nil || u.Host != host || u.Port != port {
			t.Fatalf("%q reads as %q %d here, %+v (%v) in sipgo", s, host, port, u, err)
		}
	})
}

func FuzzValidateCallID(f *testing.F) {
	addCases(f, grammarcases.CallID)
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateCallID(s) != nil {
			return
		}
		if s == "" || len(s) > MaxCallIDLen || strings.Count(s, "@") > 1 || strings.ContainsAny(s, " \t\r\n\x00;,=&") {
			t.Fatalf("accepted %q", s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] >= 0x7f {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

func FuzzValidateHeader(f *testing.F) {
	for _, c := range grammarcases.Cases {
		switch c.Kind {
		case grammarcases.HeaderName:
			f.Add(c.In, "v")
		case grammarcases.HeaderValue:
			f.Add("X-Y", c.In)
		}
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		err := ValidateHeader(Header{Name: name, Value: value})
		if (err == nil) != (ValidateHeaderName(name) == nil && ValidateHeaderValue(value) == nil) {
			t.Fatal("ValidateHeader disagrees with its parts")
		}
		if err != nil {
			return
		}
		if IsReservedHeader(name) || strings.ContainsAny(name+value, "\r\n\x00") || strings.ContainsAny(name, " :") {
			t.Fatalf("accepted %q: %q", name, value)
		}
		// The header reads back from a message.
		msg := "INVITE sip:bob@pbx.example SIP/2.0\r\n" + name + ": " + value + "\r\nContent-Length: 0\r\n\r\n"
		m, perr := sipgox.ParseMessage([]byte(msg))
		if perr != nil {
			t.Fatalf("%q: %q: %v", name, value, perr)
		}
		if len(m.GetHeaders(name)) == 0 {
			t.Fatalf("%q: %q does not read back", name, value)
		}
	})
}

func FuzzValidateCallee(f *testing.F) {
	for _, c := range grammarcases.Cases {
		if c.Kind == grammarcases.Callee || c.Kind == grammarcases.Proxy {
			f.Add(c.In, c.Domain)
		}
	}
	f.Fuzz(func(t *testing.T, s, domain string) {
		if err := ValidateCallee(s, domain); err != nil {
			return
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' {
				t.Fatalf("accepted %q", s)
			}
		}
		if !hasSIPScheme(s) {
			return
		}
		if ValidateURI(s) != nil || ValidateOutboundProxy(s) != nil {
			t.Fatal("ValidateURI disagrees")
		}
		mine, _ := parseSIPURI("callee", s)
		var u sipgox.Uri
		if err := sipgox.ParseUri(s, &u); err != nil || u.User != mine.user || u.Host != mine.host || u.Port != mine.port || u.Password != "" {
			t.Fatalf("%q: %+v here, %+v (%v) in sipgo", s, mine, u, err)
		}
	})
}

func addCases(f *testing.F, k grammarcases.Kind) {
	for _, c := range grammarcases.Cases {
		if c.Kind == k {
			f.Add(c.In)
		}
	}
}

// FuzzValidateOutboundProxy: an accepted proxy gives Invite a destination
// "host:port" whose host is a valid host and whose port is 1-65535.
func FuzzValidateOutboundProxy(f *testing.F) {
	addCases(f, grammarcases.Proxy)
	addCases(f, grammarcases.HostPort)
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateOutboundProxy(s)
		dest, derr := proxyDest(s, "udp")
		if (err == nil) != (derr == nil) {
			t.Fatalf("%q: ValidateOutboundProxy says %v, Invite %v", s, err, derr)
		}
		if err != nil {
			return
		}
		host, port, serr := net.SplitHostPort(dest)
		if serr != nil || port == "0" || strings.ContainsAny(dest, " \r\n;?@") {
			t.Fatalf("%q: destination %q", s, dest)
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if ValidateHost(host) != nil {
			t.Fatalf("%q: destination host %q refused", s, host)
		}
	})
}

// FuzzValidateDisplayName: an accepted display name is sent as one
// quoted-string without line breaks.
func FuzzValidateDisplayName(f *testing.F) {
	for _, s := range []string{"", "Front Desk", `Bob "The Builder" \o/`, "Jörg\tM", "a\r\nVia: x", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateDisplayName(s) != nil {
			return
		}
		q := quoteDisplayName(s)
		if len(s) > MaxDisplayNameLen || strings.ContainsAny(q, "\r\n\x00") || !utf8.ValidString(q) {
			t.Fatalf("accepted %q", s)
		}
		// The quoted-string ends at the last byte: every inner quote is escaped.
		for i := 1; i < len(q)-1; i++ {
			if q[i] == '\\' {
				i++
			} else if q[i] == '"' {
				t.Fatalf("%q: unescaped quote in %s", s, q)
			}
		}
	})
}
