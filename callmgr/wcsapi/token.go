package wcsapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// viewerTokens issues and checks viewer tokens: what a WHEP viewer shows
// instead of the admin's password. A token names one stream and the call
// that streams it (a later call reusing the name does not play with it), and
// expires. It is signed with HMAC-SHA256 under a key made at start-up, so a
// restart revokes every token. It carries no stream key or URL: only the
// stream name (already in the WHEP URL), the call ID and the expiry.
//
// Format: base64url("v1\n" + expiry-unix + "\n" + stream + "\n" + callId)
// + "." + base64url(HMAC).
type viewerTokens struct {
	key []byte
	now func() time.Time
}

// Viewer token lifetimes: the default and the longest a request may ask.
const (
	tokenTTL    = time.Hour
	tokenMaxTTL = 24 * time.Hour
)

var (
	errTokenInvalid = errors.New("invalid viewer token")
	errTokenExpired = errors.New("viewer token expired")
	errTokenStream  = errors.New("viewer token is for another stream or call")
)

func newViewerTokens(now func() time.Time) *viewerTokens {
	if now == nil {
		now = time.Now
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &viewerTokens{key: k, now: now}
}

func (v *viewerTokens) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, v.key)
	m.Write(payload)
	return m.Sum(nil)
}

// issue returns a token for stream of callID valid until exp.
func (v *viewerTokens) issue(stream, callID string, exp time.Time) string {
	payload := []byte("v1\n" + strconv.FormatInt(exp.Unix(), 10) + "\n" + stream + "\n" + callID)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(v.mac(payload))
}

// verify checks tok for stream and returns the call it was issued for.
func (v *viewerTokens) verify(tok, stream string) (callID string, err error) {
	if len(tok) > 2048 {
		return "", errTokenInvalid
	}
	p64, m64, ok := strings.Cut(tok, ".")
	if !ok {
		return "", errTokenInvalid
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p64)
	mac, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, v.mac(payload)) {
		return "", errTokenInvalid
	}
	parts := strings.SplitN(string(payload), "\n", 4)
	if len(parts) != 4 || parts[0] != "v1" {
		return "", errTokenInvalid
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", errTokenInvalid
	}
	if v.now().Unix() >= exp {
		return "", errTokenExpired
	}
	if parts[2] != stream {
		return "", errTokenStream
	}
	return parts[3], nil
}
