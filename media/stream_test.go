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
