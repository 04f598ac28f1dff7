package main

import (
	"strings"
	"testing"

	"github.com/sipstream/sipstream/sip"
)

// FuzzParseAccount feeds arbitrary -account values to its parser: no panic;
// what is accepted is an account callmgr's SIP layer takes; the redacted
// form shown in errors never holds the password.
func FuzzParseAccount(f *testing.F) {
	f.Add("sip:gw:Acc-Pw-2@127.0.0.1:5070;transport=tcp")
	f.Add("sips:desk@pbx.example;authuser=desk-auth;proxy=edge.example:5061")
	f.Add("sip:a:p%40ss@[2001:db8::1]:5060")
	f.Add("sip:a:b:c@d@e;transport=")
	f.Add("bob:secret@host")
	f.Add("sip:@")
	f.Fuzz(func(t *testing.T, v string) {
		red := redactAccount(v)
		a, err := parseAccount(v)
		if err != nil {
			return
		}
		if sip.ValidateUser(a.User) != nil || a.Port < 0 || a.Port > 65535 || sip.ValidateHost(a.Domain) != nil && sip.ValidateHostPort(a.Domain) != nil {
			t.Fatalf("accepted %+v", a)
		}
		switch a.Transport {
		case "", "udp", "tcp", "tls":
		default:
			t.Fatalf("transport %q", a.Transport)
		}
		if a.Password != "" && strings.Count(v, a.Password) == 1 && strings.Contains(red, a.Password) {
			t.Fatalf("redacted %q still holds the password %q", red, a.Password)
		}
	})
}
