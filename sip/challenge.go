package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// ErrUntrustedChallenge: a 401/407 challenge came from a host other than the
// Domain, Registrar or OutboundProxy the request was configured for, or
// named another realm than AuthRealm. The credentials were not used (a
// hostile callee, redirect target or proxy must not get a digest of our
// password to crack offline); the request fails with a *ChallengeError,
// which also matches ErrUnauthorized.
var ErrUntrustedChallenge = errors.New("sip: challenge from an untrusted host")

// ChallengeError is a 401/407 challenge that was not answered because it
// did not come from where our credentials belong. It never holds the
// password.
type ChallengeError struct {
	Method     string // the challenged request
	Code       int    // 401 or 407
	Challenger string // "host:port" the request was sent to
	Realm      string // the challenge's realm, as received (at most 64 bytes)
	Reason     string // why it was not answered
}

func (e *ChallengeError) Error() string {
	return "sip: " + e.Method + ": " + strconv.Itoa(e.Code) + " challenge from " + e.Challenger +
		" (realm " + strconv.Quote(e.Realm) + ") not answered: " + e.Reason
}

// Is matches ErrUntrustedChallenge and ErrUnauthorized.
func (e *ChallengeError) Is(target error) bool {
	return target == ErrUntrustedChallenge || target == ErrUnauthorized || target == ErrRejected
}

// authScope says where credentials may be used: requests whose next hop is
// one of hosts ("host:port", from the configuration), and, when realm is
// set, challenges of that realm only.
type authScope struct {
	hosts []string
	realm string
}

// check returns nil when the challenge res to req (sent to dest) may be
// answered with our credentials, else a *ChallengeError.
func (s *authScope) check(ctx context.Context, method, dest string, res *sipgox.Response) error {
	realm := challengeRealm(res)
	fail := func(reason string) error {
		if len(realm) > 64 {
			realm = realm[:64]
		}
		return &ChallengeError{Method: method, Code: res.StatusCode, Challenger: dest, Realm: realm, Reason: reason}
	}
	if s.realm != "" && realm != s.realm {
		return fail("realm is not AuthRealm")
	}
	for _, h := range s.hosts {
		if sameHop(ctx, h, dest) {
			return nil
		}
	}
	return fail("not the configured domain or outbound proxy")
}

// challengeRealm returns the realm parameter of the response's
// WWW-Authenticate or Proxy-Authenticate header.
func challengeRealm(res *sipgox.Response) string {
	name := "WWW-Authenticate"
	if res.StatusCode == 407 {
		name = "Proxy-Authenticate"
	}
	h := res.GetHeader(name)
	if h == nil {
		return ""
	}
	v := h.Value()
	i := strings.Index(strings.ToLower(v), "realm=")
	if i < 0 {
		return ""
	}
	v = v[i+len("realm="):]
	if strings.HasPrefix(v, `"`) {
		if j := strings.IndexByte(v[1:], '"'); j >= 0 {
			return v[1 : 1+j]
		}
		return v[1:]
	}
	if j := strings.IndexAny(v, ", \t"); j >= 0 {
		return v[:j]
	}
	return v
}

// sameHop reports whether two "host:port" next hops are the same: equal
// ports and equal hosts, or a host name that resolves to the other's
// address.
func sameHop(ctx context.Context, a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	if strings.EqualFold(ah, bh) {
		return true
	}
	aa, err1 := hopAddrs(ctx, ah)
	ba, err2 := hopAddrs(ctx, bh)
	if err1 != nil || err2 != nil {
		return false
	}
	for _, x := range aa {
		for _, y := range ba {
			if x == y {
				return true
			}
		}
	}
	return false
}

func hopAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, err
}
