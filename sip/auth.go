package sip

import (
	"errors"
	"time"
)

// Authenticator verifies digest credentials of incoming requests (RFC 3261
// §22.4, RFC 2617 qop=auth; MD5 and SHA-256 of RFC 8760). Nonces are
// stateless: an HMAC of their timestamp under a random key made by
// NewAuthenticator, so a stranger costs no memory. The password function is
// the only source of secrets; none is ever logged. Safe for concurrent use.
type Authenticator struct {
	realm    string
	password func(user string) (string, bool)
	key      []byte
	ttl      time.Duration
}

// NewAuthenticator returns an Authenticator for realm whose passwords come
// from password (false: unknown user). Nonces live 5 minutes (SetNonceTTL).
func NewAuthenticator(realm string, password func(user string) (string, bool)) *Authenticator {
	return &Authenticator{realm: realm, password: password, ttl: 5 * time.Minute}
}

// SetNonceTTL sets how long a nonce is accepted; an older one is answered
// with a new challenge marked stale=true. Zero or less means 5 minutes.
// Call it before the Authenticator is used.
func (a *Authenticator) SetNonceTTL(d time.Duration) {
	if d <= 0 {
		d = 5 * time.Minute
	}
	a.ttl = d
}

// Authenticate checks the INVITE's Authorization header against a. It
// returns the authenticated user name; otherwise it has already answered
// (401 with a fresh challenge when credentials are missing or the nonce is
// stale, 403 when they are wrong or the user unknown) and returns an error
// matching ErrUnauthorized or ErrForbidden.
func (in *IncomingInvite) Authenticate(a *Authenticator) (user string, err error) {
	return "", errors.New("sip: not implemented yet")
}
