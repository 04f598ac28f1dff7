package wcsapi

import (
	"testing"

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
