package siptest

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Digest authentication as a registrar or UAS checks it.
// Specification: RFC 3261 §22.4, RFC 2617 §3.2 (MD5, qop=auth or none).

var errNoCredentials = errors.New("siptest: no credentials")

// credentials are the parameters of an Authorization or
// Proxy-Authorization header.
type credentials struct {
	username, realm, nonce, uri, response, algorithm, qop, nc, cnonce string
}

// maxAuthHeader bounds the header parseCredentials accepts.
const maxAuthHeader = 4096

// parseCredentials parses `Digest username="bob", realm="x", ...`.
func parseCredentials(v string) (credentials, error) {
	if len(v) > maxAuthHeader {
		return credentials{}, errors.New("siptest: authorization header too long")
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return credentials{}, fmt.Errorf("siptest: authorization scheme %q", scheme)
	}
	var c credentials
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return credentials{}, errors.New("siptest: malformed digest parameter")
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return credentials{}, errors.New("siptest: unterminated quoted digest parameter")
			}
			val, rest = rest[1:1+end], rest[2+end:]
		} else {
			end := strings.IndexAny(rest, ", \t")
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		switch key {
		case "username":
			c.username = val
		case "realm":
			c.realm = val
		case "nonce":
			c.nonce = val
		case "uri":
			c.uri = val
		case "response":
			c.response = val
		case "algorithm":
			c.algorithm = val
		case "qop":
			c.qop = val
		case "nc":
			c.nc = val
		case "cnonce":
			c.cnonce = val
		}
	}
	if c.username == "" || c.nonce == "" || c.response == "" {
		return credentials{}, errors.New("siptest: digest credentials incomplete")
	}
	return c, nil
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// digestResponse computes the expected response for method with c's
// parameters and password.
func digestResponse(c credentials, method, password string) string {
	ha1 := md5hex(c.username + ":" + c.realm + ":" + password)
	ha2 := md5hex(method + ":" + c.uri)
	if c.qop == "auth" {
		return md5hex(ha1 + ":" + c.nonce + ":" + c.nc + ":" + c.cnonce + ":" + c.qop + ":" + ha2)
	}
	return md5hex(ha1 + ":" + c.nonce + ":" + ha2)
}

// authenticator issues nonces and checks credentials against the users.
type authenticator struct {
	realm  string
	users  map[string]string
	nonces map[string]bool // issued and not yet expired; bounded
	order  []string
}

const maxNonces = 1024

func newAuthenticator(realm string, users map[string]string) *authenticator {
	u := make(map[string]string, len(users))
	for k, v := range users {
		u[k] = v
	}
	return &authenticator{realm: realm, users: u, nonces: map[string]bool{}}
}

// challenge returns a new WWW-Authenticate/Proxy-Authenticate value. The
// caller holds the peer's lock.
func (a *authenticator) challenge() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	if len(a.order) >= maxNonces {
		delete(a.nonces, a.order[0])
		a.order = a.order[1:]
	}
	a.nonces[nonce] = true
	a.order = append(a.order, nonce)
	return fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, a.realm, nonce)
}

// authResult says what check found.
type authResult int

const (
	authMissing   authResult = iota // no credentials, or a nonce we did not issue: challenge
	authOK                          // valid
	authForbidden                   // our nonce, wrong user or password: 403
)

// check verifies the header value hdr for method. The caller holds the
// peer's lock.
func (a *authenticator) check(hdr, method string) (authResult, string) {
	if hdr == "" {
		return authMissing, ""
	}
	c, err := parseCredentials(hdr)
	if err != nil || !a.nonces[c.nonce] || c.realm != a.realm {
		return authMissing, ""
	}
	if c.algorithm != "" && !strings.EqualFold(c.algorithm, "MD5") {
		return authMissing, ""
	}
	pass, ok := a.users[c.username]
	if !ok {
		return authForbidden, c.username
	}
	want := digestResponse(c, method, pass)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.response))) != 1 {
		return authForbidden, c.username
	}
	return authOK, c.username
}
