package wcsapi

import (
	"strings"
	"testing"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sip"
)

// FuzzStartupDecode feeds arbitrary bodies through the /call/startup
// decoding and validation: no panic, and whatever is accepted satisfies the
// rules the SIP layer relies on.
func FuzzStartupDecode(f *testing.F) {
	f.Add([]byte(startBody))
	f.Add([]byte(`{"callId":"c2","callee":1002,"hasAudio":false,"hasVideo":true,"sipPort":5080}`))
	f.Add([]byte(`{"callId":"c4","callee":"1003","connection":{"sipLogin":"bob","sipPort":"5060","sipRegisterRequired":"true","sipDomain":"d"}}`))
	f.Add([]byte(`{"callId":"a","callee":"1","sipHeaders":{"X-A":"1\r\nBYE"}}`))
	f.Add([]byte(`{"callId":"a","callee":"sip:%41@[::1]:5060;transport=tcp"}`))
	f.Add([]byte(``))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"sipPort":"99999999999999999999"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req startupRequest
		if err := decodeJSON(body, &req); err != nil {
			if status, _ := statusOf(err); status != 400 {
				t.Fatalf("decode error maps to %d, want 400", status)
			}
			return
		}
		p, err := req.validate()
		if err != nil {
			if status, _ := statusOf(err); status != 400 {
				t.Fatalf("validation error maps to %d, want 400: %v", status, err)
			}
			return
		}
		// What the REST layer accepts, sip's grammar (the one callmgr and
		// the INVITE use) accepts too.
		if checkCallID(p.CallID) != nil || sip.ValidateCallee(p.Callee, p.SIPDomain) != nil {
			t.Fatalf("accepted invalid call: %+v", p)
		}
		if p.SIPLogin != "" && sip.ValidateUser(p.SIPLogin) != nil {
			t.Fatalf("accepted invalid login %q", p.SIPLogin)
		}
		if p.SIPPort < 0 || p.SIPPort > 65535 {
			t.Fatalf("accepted port %d", p.SIPPort)
		}
		for _, h := range p.Headers {
			if sip.ValidateHeader(sip.Header{Name: h[0], Value: h[1]}) != nil {
				t.Fatalf("accepted header %q", h)
			}
		}
	})
}

// FuzzDialinAnswer feeds arbitrary hook answers through the dial-in
// decision: no panic, and whatever decision comes out is one callmgr and
// the SIP layer accept (an rtmp:// target, a reject code of 400-699 with a
// header-safe reason, a SIP redirect).
func FuzzDialinAnswer(f *testing.F) {
	f.Add([]byte(`{"rtmpUrl":"rtmp://h.example/app/","rtmpStream":"key","toStream":"s1","hasVideo":false,"record":false}`))
	f.Add([]byte(`{"reject":true,"sipStatus":486,"reason":"Busy Here"}`))
	f.Add([]byte(`{"reject":true,"sipStatus":99999999999,"reason":"a\r\nb"}`))
	f.Add([]byte(`{"redirect":"sip:desk@pbx.example"}`))
	f.Add([]byte(`{"redirect":"sip:"}`))
	f.Add([]byte(`{"callId":"x","incoming":true,"rtmpUrl":null}`))
	f.Add([]byte(`{"record":"true"}`))
	f.Add([]byte(``))
	f.Add([]byte(`[]`))
	d := &dialin{cfg: DialinConfig{RTMPURL: "rtmp://def.example/in"}, srv: newServer(nil, serverOptions{}), log: discardLog()}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := parseHookAnswer(body)
		if err != nil {
			return
		}
		dec, err := d.fromAnswer(offeredCall(), a)
		if err != nil {
			return
		}
		switch dec.Action {
		case callmgr.ActionAnswer:
			if checkRTMPURL(dec.Params.RTMPURL) != nil || dec.Params.ToStream == "" || dec.Params.Record {
				t.Fatalf("answer %+v", dec.Params)
			}
		case callmgr.ActionReject:
			if dec.Code != 0 && (dec.Code < 400 || dec.Code > 699) || sip.ValidateHeaderValue(dec.Reason) != nil {
				t.Fatalf("reject %d %q", dec.Code, dec.Reason)
			}
		case callmgr.ActionRedirect:
			if !strings.HasPrefix(strings.ToLower(dec.Target), "sip") || sip.ValidateCallee(dec.Target, "") != nil {
				t.Fatalf("redirect %q", dec.Target)
			}
		default:
			t.Fatalf("action %v", dec.Action)
		}
	})
}

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
		// The password sits between the user's ":" and the last "@": the
		// redacted form has no such segment left (it may hold the
		// password's characters by chance elsewhere: sip:!:!@@A is
		// sip:!@A).
		rest := v[strings.IndexByte(v, ':')+1:]
		if i := strings.IndexByte(rest, ':'); a.Password != "" && i >= 0 {
			raw := rest[i : strings.LastIndexByte(rest, '@')+1] // ":PASSWORD@"
			if strings.Contains(red[strings.IndexByte(red, ':')+1:], raw) {
				t.Fatalf("redacted %q still holds the password %q", red, raw)
			}
		}
	})
}
