package session

import (
	"fmt"

	"github.com/pion/srtp/v3"
)

// srtpProfile maps an SDES crypto suite name (RFC 4568 §6.2, RFC 6188,
// RFC 7714) to a pion/srtp profile and its key+salt length.
func srtpProfile(suite string) (srtp.ProtectionProfile, int, error) {
	var p srtp.ProtectionProfile
	switch suite {
	case "", "AES_CM_128_HMAC_SHA1_80":
		p = srtp.ProtectionProfileAes128CmHmacSha1_80
	case "AES_CM_128_HMAC_SHA1_32":
		p = srtp.ProtectionProfileAes128CmHmacSha1_32
	case "AES_256_CM_HMAC_SHA1_80":
		p = srtp.ProtectionProfileAes256CmHmacSha1_80
	case "AES_256_CM_HMAC_SHA1_32":
		p = srtp.ProtectionProfileAes256CmHmacSha1_32
	case "AEAD_AES_128_GCM":
		p = srtp.ProtectionProfileAeadAes128Gcm
	case "AEAD_AES_256_GCM":
		p = srtp.ProtectionProfileAeadAes256Gcm
	default:
		return 0, 0, fmt.Errorf("session: unsupported SRTP crypto suite %q", suite)
	}
	k, err := p.KeyLen()
	if err != nil {
		return 0, 0, err
	}
	sl, err := p.SaltLen()
	if err != nil {
		return 0, 0, err
	}
	return p, k + sl, nil
}

// newSRTP returns a context for keySalt (master key then master salt).
// The error never contains the key.
func newSRTP(suite string, keySalt []byte) (*srtp.Context, error) {
	p, n, err := srtpProfile(suite)
	if err != nil {
		return nil, err
	}
	if len(keySalt) != n {
		return nil, fmt.Errorf("session: SRTP key and salt of %d bytes, %s needs %d", len(keySalt), suite, n)
	}
	kl, _ := p.KeyLen()
	c, err := srtp.CreateContext(keySalt[:kl], keySalt[kl:], p)
	if err != nil {
		return nil, fmt.Errorf("session: SRTP context: %w", err)
	}
	return c, nil
}
