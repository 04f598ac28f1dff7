package sip

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

var dtmfCases = []struct {
	ct    string
	body  string
	digit rune
	dur   time.Duration
	ok    bool
}{
	{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', 160 * time.Millisecond, true},
	{"application/dtmf-relay", "signal = *\nduration = 250", '*', 250 * time.Millisecond, true},
	{"application/dtmf-relay", "Signal=11\r\n", '#', 0, true},
	{"application/dtmf-relay", "Signal=d\r\nDuration=100\r\n", 'D', 100 * time.Millisecond, true},
	{"application/dtmf-relay", "Duration=100\r\n", 0, 0, false},
	{"application/dtmf-relay", "Signal=16\r\n", 0, 0, false},
	{"application/dtmf-relay", "Signal=5\r\nDuration=-1\r\n", 0, 0, false},
	{"application/dtmf-relay", "Signal=5\r\nDuration=9999999999999999999\r\n", 0, 0, false},
	{"application/dtmf-relay", "", 0, 0, false},
	{"application/dtmf", "7", '7', 0, true},
	{"application/dtmf", "10\r\n", '*', 0, true},
	{"application/dtmf", "x", 0, 0, false},
	{"application/dtmf", "", 0, 0, false},
}

func TestParseDTMF(t *testing.T) {
	for _, c := range dtmfCases {
		d, dur, err := parseDTMF(c.ct, []byte(c.body))
		if (err == nil) != c.ok || d != c.digit || dur != c.dur {
			t.Errorf("parseDTMF(%q, %q) = %q, %v, %v; want %q, %v, ok=%v", c.ct, c.body, d, dur, err, c.digit, c.dur, c.ok)
		}
	}
	for _, digit := range "0123456789*#ABCD" {
		for _, relay := range []bool{true, false} {
			body, ct, err := formatDTMF(digit, relay, 160*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			d, _, err := parseDTMF(ct, body)
			if err != nil || d != digit {
				t.Errorf("round trip %q relay=%v: %q %v", digit, relay, d, err)
			}
		}
	}
}

func FuzzParseDTMF(f *testing.F) {
	for _, c := range dtmfCases {
		f.Add(c.ct == "application/dtmf", []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, plain bool, body []byte) {
		ct := "application/dtmf-relay"
		if plain {
			ct = "application/dtmf"
		}
		d, dur, err := parseDTMF(ct, body)
		if err != nil {
			return
		}
		if !strings.ContainsRune("0123456789*#ABCD", d) || dur < 0 || dur > time.Minute {
			t.Fatalf("bad result %q %v", d, dur)
		}
		out, ct2, err := formatDTMF(d, !plain, dur)
		if err != nil {
			t.Fatal(err)
		}
		d2, _, err := parseDTMF(ct2, out)
		if err != nil || d2 != d {
			t.Fatalf("round trip %q -> %q %v", d, d2, err)
		}
	})
}

// FuzzInviteParams: whatever the validators accept must build an INVITE
// that a SIP parser reads back with the same user, display name and headers.
func FuzzInviteParams(f *testing.F) {
	f.Add("alice", "auth", `Alice "A" Smith`, "example.com", "bob", "X-Key", "v=1", "cid@host")
	f.Add("1000", "", "", "10.0.0.1:5080", "sip:bob@example.com;transport=tcp", "X-A", "", "")
	f.Add("a%20b", "u;x=y", "\\", "[::1]", "+4930@pbx.local:5070", "P-Asserted-Identity", "<sip:x@y>", "a:b")
	f.Add("bad user", "x", "y", "exa mple", "b b", "Via", "a\r\nb", "a b")
	f.Fuzz(func(t *testing.T, from, auth, display, domain, callee, hname, hval, callID string) {
		r := InviteRequest{Callee: callee, From: from, AuthUser: auth, DisplayName: display, Domain: domain,
			CallID: callID, Offer: []byte(ourSDP)}
		if hname != "" {
			r.Headers = []Header{{Name: hname, Value: hval}}
		}
		p, err := r.plan()
		if err != nil {
			return
		}
		ua := &UA{publicHost: "127.0.0.1", ports: map[string]int{"udp": 5060, "tcp": 5060, "tls": 5061},
			cfg: Config{UserAgent: "fuzz"}}
		d := &Dialog{localContact: sipgox.ContactHeader{Address: ua.contactURI(from, p.transport)}}
		req := ua.buildInvite(d, &r, p)
		msg, err := sipgox.ParseMessage([]byte(req.String()))
		if err != nil {
			t.Fatalf("built INVITE does not parse: %v\n%s", err, req.String())
		}
		got, ok := msg.(*sipgox.Request)
		if !ok {
			t.Fatal("not a request")
		}
		if got.From() == nil || got.From().Address.User != from {
			t.Fatalf("From user %q, want %q\n%s", got.From().Address.User, from, req.String())
		}
		if got.CallID() == nil || got.CallID().Value() != p.callID {
			t.Fatalf("Call-ID changed\n%s", req.String())
		}
		if hname != "" {
			h := got.GetHeader(hname)
			if h == nil || h.Value() != strings.TrimSpace(hval) {
				t.Fatalf("header %q lost\n%s", hname, req.String())
			}
		}
		if string(got.Body()) != ourSDP {
			t.Fatal("body changed")
		}
	})
}

func FuzzMirrorAnswer(f *testing.F) {
	f.Add([]byte(ourSDP), []byte(peerSDP))
	f.Add([]byte(ourSDP), []byte(strings.Replace(peerSDP, "sendrecv", "sendonly", 1)))
	f.Add([]byte("v=0\r\na=recvonly\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 96\r\na=inactive\r\n"), []byte("m=audio 0 x\r\n"))
	f.Fuzz(func(t *testing.T, base, offer []byte) {
		out := mirrorAnswer(base, offer, 1)
		if len(out) > 2*len(base)+64*(strings.Count(string(base), "m=")+1) {
			t.Fatalf("answer grew too much: %d from %d", len(out), len(base))
		}
		if n, m := len(sdpDirections(out)), len(sdpDirections(base)); n != m {
			t.Fatalf("m= sections %d, want %d", n, m)
		}
	})
}

func FuzzSessionExpires(f *testing.F) {
	for _, s := range []string{"1800;refresher=uac", "90", "x", "0", "3600 ; Refresher = UAS", "-5;refresher=uas"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, r := parseSessionExpires(s)
		if n < 0 || n > 86400*7 {
			t.Fatalf("interval %d", n)
		}
		if n == 0 && r != "" {
			t.Fatal("refresher without interval")
		}
	})
}

func FuzzRouteValues(f *testing.F) {
	for _, s := range []string{"<sip:p1.example.com;lr>, <sip:10.0.0.1:5060;lr;transport=tcp>",
		`"a,b" <sip:x@y;lr>`, "<sip:[::1]:5070;lr>", "<<<>>>,,,", "sip:a@b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		parts := splitHeaderList(v)
		if len(parts) > len(v)+1 {
			t.Fatalf("%d parts from %d bytes", len(parts), len(v))
		}
		for _, u := range parseRouteValues(sipgox.NewHeader("Record-Route", v)) {
			_ = u.String()
		}
	})
}

var sipfragCases = []struct {
	body   string
	code   int
	reason string
	ok     bool
}{
	{"SIP/2.0 100 Trying\r\n", 100, "Trying", true},
	{"SIP/2.0 200 OK", 200, "OK", true},
	{"\r\n\r\nSIP/2.0 180 Ringing\r\nContact: <sip:carol@pbx>\r\nCSeq: 1 INVITE\r\n\r\n", 180, "Ringing", true},
	{"SIP/2.0 603 Decline  \n", 603, "Decline", true},
	{"SIP/2.0 486\r\n", 486, "", true},
	{"  SIP/2.0 503 Service Unavailable\r\n", 503, "Service Unavailable", true},
	{"SIP/2.0 200 Очень хорошо\r\n", 200, "Очень хорошо", true},
	{"", 0, "", false},
	{"\r\n", 0, "", false},
	{"INVITE sip:carol@pbx SIP/2.0\r\n", 0, "", false},
	{"SIP/2.0 99 Low\r\n", 0, "", false},
	{"SIP/2.0 700 High\r\n", 0, "", false},
	{"SIP/2.0 2000 OK\r\n", 0, "", false},
	{"SIP/2.0 20x OK\r\n", 0, "", false},
	{"SIP/1.0 200 OK\r\n", 0, "", false},
	{"SIP/2.0 200 O\x00K\r\n", 0, "", false},
	{"SIP/2.0 200 \xff\xfe\r\n", 0, "", false},
}

func TestParseSipfrag(t *testing.T) {
	for _, c := range sipfragCases {
		code, reason, err := parseSipfrag([]byte(c.body))
		if (err == nil) != c.ok || code != c.code || reason != c.reason {
			t.Errorf("parseSipfrag(%q) = %d, %q, %v; want %d, %q, ok=%v", c.body, code, reason, err, c.code, c.reason, c.ok)
		}
	}
	long := "SIP/2.0 200 " + strings.Repeat("é", 200)
	_, reason, err := parseSipfrag([]byte(long))
	if err != nil || len(reason) > maxSipfragReason || !strings.HasPrefix(long, "SIP/2.0 200 "+reason) {
		t.Errorf("long reason: %q, %v", reason, err)
	}
}

// FuzzParseSipfrag: no panic; what parses has a code of 100-699 and a
// reason without CR, LF or other controls (so it can go into logs and
// events), and parses again to the same from its own status line.
func FuzzParseSipfrag(f *testing.F) {
	for _, c := range sipfragCases {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, reason, err := parseSipfrag(body)
		if err != nil {
			return
		}
		if code < 100 || code > 699 || len(reason) > maxSipfragReason || !utf8.ValidString(reason) ||
			strings.ContainsAny(reason, "\r\n\x00") || reason != strings.TrimSpace(reason) {
			t.Fatalf("parseSipfrag(%q) = %d, %q", body, code, reason)
		}
		line := "SIP/2.0 " + strconv.Itoa(code) + " " + reason
		c2, r2, err := parseSipfrag([]byte(line))
		if err != nil || c2 != code || r2 != reason {
			t.Fatalf("round trip of %q: %d, %q, %v", line, c2, r2, err)
		}
	})
}

// FuzzParseEventHeader: no panic; the package is lower case and trimmed.
func FuzzParseEventHeader(f *testing.F) {
	for _, s := range []string{"refer", "refer;id=93809824", " Refer ; ID = 7 ", "refer;id=", "refer;id=99999999999", "presence;id=1;x", ";", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		pkg, id, hasID := parseEventHeader(v)
		if pkg != strings.ToLower(pkg) || pkg != strings.TrimSpace(pkg) {
			t.Fatalf("parseEventHeader(%q) package %q", v, pkg)
		}
		if !hasID && id != 0 {
			t.Fatalf("parseEventHeader(%q) id %d without an id", v, id)
		}
	})
}

// FuzzReferTarget: what referTarget accepts is a valid SIP URI, and the
// Replaces it carries unescapes to exactly what was given.
func FuzzReferTarget(f *testing.F) {
	for _, c := range [][2]string{
		{"carol", ""}, {"+4930123", "abc@host;to-tag=1;from-tag=2"}, {"sip:carol@pbx.example;transport=tcp", "x%y;to-tag=;from-tag=z"},
		{"carol@other.example:5080", "consult:1@x;to-tag=a b;from-tag=é"}, {"sip:carol@pbx.example?X-A=1", "[v6]"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, target, replaces string) {
		uri, err := referTarget(target, "pbx.example:5060", replaces)
		if err != nil {
			return
		}
		if err := ValidateURI(uri); err != nil {
			t.Fatalf("referTarget(%q, %q) = %q: %v", target, replaces, uri, err)
		}
		if replaces == "" {
			return
		}
		i := strings.LastIndex(uri, "Replaces=")
		if i < 0 {
			t.Fatalf("referTarget(%q, %q) = %q: no Replaces", target, replaces, uri)
		}
		got, err := url.PathUnescape(uri[i+len("Replaces="):])
		if err != nil || got != replaces {
			t.Fatalf("referTarget(%q, %q) = %q: Replaces unescapes to %q, %v", target, replaces, uri, got, err)
		}
	})
}

const fuzzInvite = "INVITE sip:bob@127.0.0.1:5060;user=phone SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"Alice \\\"A\\\"\" <sip:alice@example.com;transport=tcp>;tag=a1\r\n" +
	"To: Bob <sip:bob@127.0.0.1:5060>\r\n" +
	"Call-ID: fuzz-1@example.com\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:alice@127.0.0.1:5062>\r\n" +
	"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n" +
	"Authorization: Digest username=\"alice\", realm=\"test.realm\", nonce=\"abc\", uri=\"sip:bob@127.0.0.1\", response=\"0123\"\r\n" +
	"Session-Expires: 1800;refresher=uac\r\n" +
	"Require: timer\r\n" +
	"X-Custom: hello\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: %d\r\n\r\n%s"

// FuzzIncomingInvite feeds a received INVITE through what the UA reads of
// it before the handler runs: checkInvite, the Addresses of From and To,
// the exposed headers and the credentials.
func FuzzIncomingInvite(f *testing.F) {
	f.Add([]byte(strings.Replace(strings.Replace(fuzzInvite, "%d", strconv.Itoa(len(ourSDP)), 1), "%s", ourSDP, 1)))
	f.Add([]byte(strings.Replace(strings.Replace(fuzzInvite, "%d", "0", 1), "%s", "", 1)))
	f.Add([]byte(strings.Replace(strings.Replace(fuzzInvite, "%d", "5", 1), "%s", "hello", 1)))
	a := testAuth()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := sipgox.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := m.(*sipgox.Request)
		if !ok {
			return
		}
		code, reason, _ := checkInvite(req, MinSessionExpires)
		if code != 0 {
			if code < 400 || code > 499 || reason == "" {
				t.Fatalf("checkInvite: %d %q", code, reason)
			}
			return
		}
		for _, addr := range []Address{newAddress(req.From().DisplayName, req.From().Address), newAddress(req.To().DisplayName, req.To().Address)} {
			if strings.ContainsAny(addr.URI, "\r\n") || strings.ContainsAny(addr.Host, "\r\n") {
				t.Fatalf("address with a line break: %+v", addr)
			}
			if addr.User != "" && !strings.Contains(addr.URI, "@") {
				t.Fatalf("user %q but URI %q", addr.User, addr.URI)
			}
		}
		for _, h := range exposedHeaders(req) {
			if hiddenHeaders[strings.ToLower(h.Name)] {
				t.Fatalf("header %q exposed", h.Name)
			}
		}
		src := netip.MustParseAddr("127.0.0.1")
		if user, out, _ := a.verify("INVITE", authorizations(req), src); out == authOK && user != "alice" {
			t.Fatalf("authenticated as %q", user)
		}
	})
}

// FuzzAuthorization checks credentials parsing and verification: nothing
// but the right response for alice's password authenticates.
func FuzzAuthorization(f *testing.F) {
	a := testAuth()
	src := netip.MustParseAddr("192.0.2.1")
	n := a.nonce(src, time.Now())
	good, err := digest.Digest(&digest.Challenge{Realm: "test.realm", Nonce: n, Algorithm: "MD5", QOP: []string{"auth"}},
		digest.Options{Method: "INVITE", URI: "sip:bob@example.com", Username: "alice", Password: "s3cret"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.String())
	f.Add(`Digest username="alice", realm="test.realm", nonce="` + n + `", uri="sip:x", response="00", algorithm=SHA-256`)
	f.Add(`Digest username="bob", realm="other", nonce="x", uri="sip:x", response="1", qop=auth, nc=zz, cnonce="c"`)
	f.Add(`Basic YWxpY2U6czNjcmV0`)
	f.Add(`Digest ,,, =""`)
	f.Fuzz(func(t *testing.T, v string) {
		if c, err := parseCredentials(v); err == nil && (c.Username == "" || c.Nonce == "") {
			t.Fatalf("accepted credentials without user or nonce: %q", v)
		}
		user, out, reason := a.verify("INVITE", []string{v}, src)
		if strings.Contains(reason, "s3cret") {
			t.Fatalf("reason %q holds the password", reason)
		}
		if out == authOK {
			if user != "alice" {
				t.Fatalf("authenticated as %q", user)
			}
			c, _ := parseCredentials(v)
			want, _ := digest.Digest(&digest.Challenge{Realm: c.Realm, Nonce: c.Nonce, Algorithm: c.Algorithm, QOP: qopList(c.QOP)},
				digest.Options{Method: "INVITE", URI: c.URI, Username: "alice", Password: "s3cret", Cnonce: c.Cnonce, Count: c.Nc})
			if !strings.EqualFold(want.Response, c.Response) {
				t.Fatalf("authenticated with a wrong response: %q", v)
			}
		}
	})
}

func qopList(q string) []string {
	if q == "" {
		return nil
	}
	return []string{q}
}

// FuzzRegisterContacts checks the Contact and Expires reading of REGISTER.
func FuzzRegisterContacts(f *testing.F) {
	f.Add("<sip:a@h:5060>;expires=60, \"X, Y\" <sip:b@h;transport=tcp>", "120")
	f.Add("*", "0")
	f.Add("sip:a@h", "")
	f.Add("<sips:a@[::1]:5061>;q=0.5;expires=99999999999999", "x")
	f.Fuzz(func(t *testing.T, contact, expires string) {
		cs, star, err := parseRegisterContacts([]string{contact}, expires)
		if err != nil {
			return
		}
		if star && len(cs) > 0 {
			t.Fatal("star with contacts")
		}
		if len(cs) > maxContactsPerRegister {
			t.Fatalf("%d contacts", len(cs))
		}
		for _, c := range cs {
			if c.expires < 0 {
				t.Fatalf("negative expires %d", c.expires)
			}
			var u sipgox.Uri
			if err := sipgox.ParseUri(c.uri, &u); err != nil {
				t.Fatalf("contact %q does not parse back: %v", c.uri, err)
			}
			if strings.ContainsAny(c.uri, "\r\n") {
				t.Fatalf("contact %q with a line break", c.uri)
			}
		}
	})
}
