package media

import (
	"fmt"
	"strings"
	"testing"
)

func TestCryptoNeverPrintsKeys(t *testing.T) {
	c := &Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: []byte("LOCALSECRETKEY0123456789abcd"), RemoteKey: []byte("REMOTESECRETKEY0123456789abc")}
	spec := StreamSpec{Kind: KindAudio, Crypto: c}
	for _, s := range []string{
		fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(*c),
		fmt.Sprintf("%+v", spec), fmt.Sprintf("%#v", spec), fmt.Sprintf("%v", []StreamSpec{spec}),
	} {
		if strings.Contains(s, "SECRET") || strings.Contains(s, "76 65") {
			t.Fatalf("key material printed: %s", s)
		}
	}
	if got := c.String(); !strings.Contains(got, "AES_CM_128_HMAC_SHA1_80") || !strings.Contains(got, "28 bytes") {
		t.Fatalf("String() = %q", got)
	}
}
