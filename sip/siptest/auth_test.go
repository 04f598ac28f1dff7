package siptest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// authCases are Authorization header values as real clients send them.
var authCases = []string{
	// RFC 2617 §3.5 example, SIP flavoured.
	`Digest username="Mufasa", realm="siptest", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:127.0.0.1", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", algorithm=MD5`,
	// Linphone: no qop.
	`Digest realm="siptest",nonce="abc",algorithm=MD5,opaque="",username="alice", uri="sip:127.0.0.1:5060", response="0123456789abcdef0123456789abcdef"`,
	`digest username=bob,realm=siptest,nonce=n,uri="sip:x",response=r`,
	`Basic YWxhZGRpbjpvcGVuc2VzYW1l`,
	`Digest username="unterminated`,
	``,
}

func TestParseCredentials(t *testing.T) {
	c, err := parseCredentials(authCases[0])
	require.NoError(t, err)
	assert.Equal(t, credentials{username: "Mufasa", realm: "siptest", nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
		uri: "sip:127.0.0.1", response: "6629fae49393a05397450978507c4ef1", algorithm: "MD5", qop: "auth", nc: "00000001", cnonce: "0a4f113b"}, c)
	c, err = parseCredentials(authCases[2])
	require.NoError(t, err)
	assert.Equal(t, "bob", c.username)
	for _, bad := range authCases[3:] {
		_, err := parseCredentials(bad)
		assert.Error(t, err, bad)
	}
}

func TestDigestCheck(t *testing.T) {
	a := newAuthenticator("siptest", map[string]string{"alice": "pw"})
	chal := a.challenge()
	nonce := chal[len(`Digest realm="siptest", nonce="`):][:32]
	c := credentials{username: "alice", realm: "siptest", nonce: nonce, uri: "sip:127.0.0.1", qop: "auth", nc: "00000001", cnonce: "xyz"}
	c.response = digestResponse(c, "REGISTER", "pw")
	hdr := `Digest username="alice", realm="siptest", nonce="` + nonce + `", uri="sip:127.0.0.1", qop=auth, nc=00000001, cnonce="xyz", response="` + c.response + `"`
	res, user := a.check(hdr, "REGISTER")
	assert.Equal(t, authOK, res)
	assert.Equal(t, "alice", user)
	res, _ = a.check(hdr, "INVITE") // response covers the method
	assert.Equal(t, authForbidden, res)
	res, _ = a.check(`Digest username="alice", realm="siptest", nonce="stale", uri="x", response="y"`, "REGISTER")
	assert.Equal(t, authMissing, res)
	res, _ = a.check("", "REGISTER")
	assert.Equal(t, authMissing, res)
}

func FuzzParseCredentials(f *testing.F) {
	for _, c := range authCases {
		f.Add(c)
	}
	a := newAuthenticator("siptest", map[string]string{"alice": "pw"})
	a.challenge()
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCredentials(s)
		if err == nil && (c.username == "" || c.nonce == "" || c.response == "") {
			t.Fatal("incomplete credentials accepted")
		}
		if res, _ := a.check(s, "REGISTER"); res == authOK {
			t.Fatal("random credentials accepted")
		}
	})
}

func TestG711RoundTrip(t *testing.T) {
	for s := -32768; s <= 32767; s += 7 {
		x := int16(s)
		for name, rt := range map[string]int16{
			"alaw": alawToLinear(linearToALaw(x)),
			"ulaw": ulawToLinear(linearToULaw(x)),
		} {
			diff := int(rt) - int(x)
			if diff < 0 {
				diff = -diff
			}
			// G.711 keeps about 8 % relative precision (1/16 of a segment).
			limit := max(int(x)/12, -int(x)/12, 40)
			if diff > limit {
				t.Fatalf("%s: %d -> %d", name, x, rt)
			}
		}
	}
	// The silence codes of ITU-T G.711.
	assert.Equal(t, byte(0xD5), linearToALaw(0))
	assert.Equal(t, byte(0xFF), linearToULaw(0))
}

func TestDTMFRune(t *testing.T) {
	for in, want := range map[string]rune{"5": '5', "*": '*', "#": '#', "10": '*', "11": '#', "a": 'A', "D": 'D', "x": 0, "": 0, "12": 0} {
		assert.Equal(t, want, dtmfRune(in), in)
	}
}

var infoCases = []struct {
	ct, body string
	digit    rune
	keyframe bool
}{
	{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', false},
	{"application/dtmf-relay; charset=utf-8", "Signal= #\nDuration= 250", '#', false},
	{"Application/DTMF", "*", '*', false},
	{"application/dtmf", "11", '#', false},
	{"application/media_control+xml", `<?xml version="1.0"?><media_control><vc_primitive><to_encoder><picture_fast_update/></to_encoder></vc_primitive></media_control>`, 0, true},
	{"text/plain", "Signal=5", 0, false},
	{"application/dtmf-relay", "Signal=", 0, false},
}

func TestParseInfo(t *testing.T) {
	for _, tc := range infoCases {
		d, k := parseInfo(tc.ct, []byte(tc.body))
		assert.Equal(t, tc.digit, d, tc.body)
		assert.Equal(t, tc.keyframe, k, tc.body)
	}
}

func FuzzParseInfo(f *testing.F) {
	for _, tc := range infoCases {
		f.Add(tc.ct, []byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, _ := parseInfo(ct, body)
		if d != 0 && !strings.ContainsRune("0123456789*#ABCD", d) {
			t.Fatalf("digit %q", d)
		}
	})
}
