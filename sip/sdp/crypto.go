package sdp

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// DefaultCryptoSuite is the SDES suite offered when MediaConfig.Crypto names
// none: the one every SRTP endpoint supports (RFC 4568 §6.2.1).
const DefaultCryptoSuite = "AES_CM_128_HMAC_SHA1_80"

// cryptoKeyLen returns the master key plus master salt length of a suite, and
// false for suites sipstream cannot use (pion/srtp's).
func cryptoKeyLen(suite string) (int, bool) {
	switch suite {
	case "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32":
		return 16 + 14, true
	case "AEAD_AES_128_GCM":
		return 16 + 12, true
	case "AEAD_AES_256_GCM":
		return 32 + 12, true
	}
	return 0, false
}

// cryptoLine is one parsed a=crypto attribute.
type cryptoLine struct {
	tag   int
	suite string
	key   []byte
}

// parseCrypto parses "1 AES_CM_128_HMAC_SHA1_80 inline:<base64>|2^20|1:32"
// (RFC 4568 §9.1). Only the first key is used; lifetime and MKI are ignored.
func parseCrypto(v string) (cryptoLine, error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return cryptoLine{}, fmt.Errorf("%w: a=crypto:%s", ErrInvalid, v)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return cryptoLine{}, fmt.Errorf("%w: a=crypto tag %q", ErrInvalid, f[0])
	}
	cl := cryptoLine{tag: tag, suite: f[1]}
	n, ok := cryptoKeyLen(f[1])
	if !ok {
		return cl, nil // unknown suite: key left nil, never chosen
	}
	params, found := strings.CutPrefix(f[2], "inline:")
	if !found {
		return cryptoLine{}, fmt.Errorf("%w: a=crypto key method is not inline", ErrInvalid)
	}
	b64, _, _ := strings.Cut(params, "|")
	if len(b64) > 128 {
		return cryptoLine{}, fmt.Errorf("%w: a=crypto key too long", ErrInvalid)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Some endpoints omit the padding.
		key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	}
	if err != nil || len(key) != n {
		// Never put key material in an error.
		return cryptoLine{}, fmt.Errorf("%w: a=crypto %s inline key is not %d bytes of base64", ErrInvalid, f[1], n)
	}
	cl.key = key
	return cl, nil
}

func formatCrypto(tag int, suite string, key []byte) string {
	return strconv.Itoa(tag) + " " + suite + " inline:" + base64.StdEncoding.EncodeToString(key)
}

// localKey returns key when it has the suite's length, a new random key
// when it is empty, and an error otherwise.
func localKey(suite string, key []byte) ([]byte, error) {
	n, ok := cryptoKeyLen(suite)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported SRTP suite %q", ErrConfig, suite)
	}
	if len(key) == 0 {
		k := make([]byte, n)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("sdp: SRTP key: %w", err)
		}
		return k, nil
	}
	if len(key) != n {
		return nil, fmt.Errorf("%w: SRTP key for %s must be %d bytes, got %d", ErrConfig, suite, n, len(key))
	}
	return append([]byte(nil), key...), nil
}
