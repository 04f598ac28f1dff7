package media

import (
	"fmt"
	"strings"
	"testing"
)

func TestCryptoNeverPrintsKeys(t *testing.T) {
	c := &Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: []byte("LOCALSECRETKEY0123456789abcd"), RemoteKey: []byte("REMOTESECRETKEY0123456789abc")}
	spec := StreamSpec{Kind: KindAudio, Crypto: c}
	// How fmt would render the keys: as text, as decimal bytes (%v) and as
	// hex bytes (%#v).
	var leaks []string
	for _, k := range [][]byte{c.LocalKey, c.RemoteKey} {
		leaks = append(leaks, string(k[:6]),
			strings.Trim(fmt.Sprint(k[:6]), "[]"),
			strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", k[:6]), "[]byte{"), "}"))
	}
	for _, s := range []string{
		fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(*c),
		fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", *c),
		fmt.Sprintf("%+v", spec), fmt.Sprintf("%#v", spec), fmt.Sprintf("%v", []StreamSpec{spec}),
	} {
		for _, leak := range leaks {
			if strings.Contains(s, leak) {
				t.Fatalf("key material %q printed: %s", leak, s)
			}
		}
	}
	if got := c.String(); !strings.Contains(got, "AES_CM_128_HMAC_SHA1_80") || !strings.Contains(got, "28 bytes") {
		t.Fatalf("String() = %q", got)
	}
}

func TestAssociatedPayloadType(t *testing.T) {
	rtx := func(fmtp string) PayloadFormat {
		return PayloadFormat{PayloadType: 97, Codec: CodecRTX, ClockRate: 90000, Fmtp: fmtp}
	}
	for _, c := range []struct {
		f    PayloadFormat
		want uint8
		ok   bool
	}{
		{rtx("apt=96"), 96, true},
		{rtx("rtx-time=3000; APT = 100"), 100, true},
		{rtx("apt=128"), 0, false},
		{rtx("apt=-1"), 0, false},
		{rtx("apt"), 0, false},
		{rtx(""), 0, false},
		{PayloadFormat{PayloadType: 96, Codec: CodecH264, Fmtp: "apt=96"}, 0, false},
	} {
		got, ok := c.f.AssociatedPayloadType()
		if ok != c.ok || got != c.want {
			t.Errorf("%q: got %d %v, want %d %v", c.f.Fmtp, got, ok, c.want, c.ok)
		}
	}
}
