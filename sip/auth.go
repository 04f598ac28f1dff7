package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Authenticator verifies digest credentials of incoming requests (RFC 3261
// §22.4, RFC 2617 qop=auth, MD5, and SHA-256 of RFC 8760). Nonces are
// stateless: the time they were made and an HMAC-SHA256 of it and of the
// requester's IP address under a random key made by NewAuthenticator, so a
// stranger costs no memory and a nonce works only from the address it was
// given to. A nonce is accepted until it is older than the nonce TTL
// (then a new challenge says stale=true); within that time a captured
// Authorization could be replayed from the same address (no nonce-count
// state is kept). The password function is the only source of secrets;
// none is ever logged or put in an error. Safe for concurrent use.
type Authenticator struct {
	realm    string
	password func(user string) (string, bool)
	key      [32]byte
	ttl      time.Duration
	now      func() time.Time
}

// defaultNonceTTL is how long a nonce is accepted unless SetNonceTTL says otherwise.
const defaultNonceTTL = 5 * time.Minute

// NewAuthenticator returns an Authenticator for realm whose passwords come
// from password (false: unknown user). An empty realm means "sipstream".
// Nonces live 5 minutes (SetNonceTTL).
func NewAuthenticator(realm string, password func(user string) (string, bool)) *Authenticator {
	if realm == "" {
		realm = "sipstream"
	}
	a := &Authenticator{realm: realm, password: password, ttl: defaultNonceTTL, now: time.Now}
	// crypto/rand.Read never returns an error since Go 1.24.
	_, _ = rand.Read(a.key[:])
	return a
}

// Realm returns the digest realm of the challenges.
func (a *Authenticator) Realm() string { return a.realm }

// SetNonceTTL sets how long a nonce is accepted; an older one is answered
// with a new challenge marked stale=true. Zero or less means 5 minutes.
// Call it before the Authenticator is used.
func (a *Authenticator) SetNonceTTL(d time.Duration) {
	if d <= 0 {
		d = defaultNonceTTL
	}
	a.ttl = d
}

const nonceMACLen = 16

// nonce makes a nonce for src at t: base64url(8-byte Unix nanoseconds ‖
// HMAC-SHA256(key, time ‖ IP)[:16]).
func (a *Authenticator) nonce(src netip.Addr, t time.Time) string {
	var b [8 + nonceMACLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	copy(b[8:], a.mac(b[:8], src))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (a *Authenticator) mac(ts []byte, src netip.Addr) []byte {
	m := hmac.New(sha256.New, a.key[:])
	m.Write(ts)
	ip := src.Unmap().AsSlice()
	m.Write(ip)
	return m.Sum(nil)[:nonceMACLen]
}

// checkNonce reports whether n is one of ours for src and whether it is
// still fresh.
func (a *Authenticator) checkNonce(n string, src netip.Addr) (ours, fresh bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 8+nonceMACLen {
		return false, false
	}
	if !hmac.Equal(b[8:], a.mac(b[:8], src)) {
		return false, false
	}
	made := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := a.now().Sub(made)
	return true, age >= -time.Minute && age <= a.ttl
}

// challenges are the WWW-Authenticate values of a 401: MD5 first (what
// most phones and sipgo's client read), then SHA-256 (RFC 8760).
func (a *Authenticator) challenges(src netip.Addr, stale bool) []string {
	n := a.nonce(src, a.now())
	out := make([]string, 0, 2)
	for _, alg := range []string{"MD5", "SHA-256"} {
		c := digest.Challenge{Realm: a.realm, Nonce: n, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// authOutcome is the result of verifying a request's credentials.
type authOutcome int

const (
	authOK        authOutcome = iota
	authChallenge             // 401 with a fresh challenge
	authStale                 // 401 with stale=true
	authForbidden             // 403
)

// verify checks the Authorization values of a request (method, from src)
// against a. reason never holds a secret.
func (a *Authenticator) verify(method string, authz []string, src netip.Addr) (user string, out authOutcome, reason string) {
	var cred *digest.Credentials
	for _, v := range authz {
		c, err := parseCredentials(v)
		if err != nil {
			return "", authForbidden, "malformed credentials"
		}
		if c.Realm == a.realm {
			cred = c
			break
		}
	}
	if cred == nil {
		return "", authChallenge, "no credentials for our realm"
	}
	ours, fresh := a.checkNonce(cred.Nonce, src)
	if !ours {
		return "", authChallenge, "nonce not ours"
	}
	if !fresh {
		return "", authStale, "nonce expired"
	}
	alg := strings.ToUpper(cred.Algorithm)
	if alg != "" && alg != "MD5" && alg != "SHA-256" {
		return "", authForbidden, "unsupported algorithm"
	}
	if cred.Userhash {
		return "", authForbidden, "userhash not supported"
	}
	chal := &digest.Challenge{Realm: a.realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
	switch cred.QOP {
	case "":
	case "auth":
		if cred.Cnonce == "" || cred.Nc <= 0 {
			return "", authForbidden, "qop=auth without cnonce or nc"
		}
		chal.QOP = []string{"auth"}
	default:
		return "", authForbidden, "unsupported qop"
	}
	if a.password == nil {
		return cred.Username, authForbidden, "unknown user"
	}
	pass, ok := a.password(cred.Username)
	if !ok {
		return cred.Username, authForbidden, "unknown user"
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: cred.URI, Username: cred.Username, Password: pass,
		Cnonce: cred.Cnonce, Count: cred.Nc,
	})
	if err != nil {
		return cred.Username, authForbidden, "cannot compute digest"
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(cred.Response)), []byte(want.Response)) != 1 {
		return cred.Username, authForbidden, "wrong credentials"
	}
	return cred.Username, authOK, ""
}

// parseCredentials reads one Authorization value (Digest only).
func parseCredentials(v string) (*digest.Credentials, error) {
	c, err := digest.ParseCredentials(strings.TrimSpace(v))
	if err != nil {
		return nil, err
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return nil, errors.New("sip: digest credentials lack username, nonce, uri or response")
	}
	return c, nil
}

// authorizations returns the values of the Authorization headers of req.
func authorizations(req *sipgox.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Authorization") {
		out = append(out, h.Value())
	}
	return out
}

// authenticate verifies req and builds the refusal when it fails.
func (a *Authenticator) authenticate(req *sipgox.Request, src netip.Addr) (user string, res *sipgox.Response, err error) {
	user, out, reason := a.verify(string(req.Method), authorizations(req), src)
	switch out {
	case authOK:
		return user, nil, nil
	case authChallenge, authStale:
		res = sipgox.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		for _, c := range a.challenges(src, out == authStale) {
			res.AppendHeader(sipgox.NewHeader("WWW-Authenticate", c))
		}
		return "", res, fmt.Errorf("%w: %s", ErrUnauthorized, reason)
	default:
		res = sipgox.NewResponseFromRequest(req, 403, "Forbidden", nil)
		return "", res, fmt.Errorf("%w: %s", ErrForbidden, reason)
	}
}

// Authenticate checks the INVITE's Authorization header against a. It
// returns the authenticated user name; otherwise it has already answered
// (401 with a fresh challenge when credentials are missing or the nonce is
// stale, 403 when they are wrong or the user unknown) and returns an error
// matching ErrUnauthorized or ErrForbidden (ErrAnswered, or a 487
// *StatusError after a CANCEL, when the INVITE was already answered).
func (in *IncomingInvite) Authenticate(a *Authenticator) (user string, err error) {
	if a == nil {
		return "", paramErr("Authenticator", "nil")
	}
	user, res, authErr := a.authenticate(in.req, in.source.Addr())
	if authErr == nil {
		return user, nil
	}
	if err := in.claim(); err != nil {
		return "", err
	}
	if to := res.To(); to != nil {
		to.Params.Add("tag", in.toTag)
	}
	in.ua.log.Info("sip: incoming call not authenticated", "call_id", in.callID, "status", res.StatusCode,
		"source", in.source.String())
	if err := in.sendFinal(res); err != nil {
		return "", err
	}
	return "", authErr
}
