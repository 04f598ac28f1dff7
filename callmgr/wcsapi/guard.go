package wcsapi

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
)

// hostPolicy is the Host header check against DNS rebinding: a page of
// evil.example whose name is made to resolve to this server sends
// "Host: evil.example", which is refused (421). IP literals are safe (no
// rebinding without a name) when they are this machine's; names must be
// listed.
type hostPolicy struct {
	any     bool            // -allowed-hosts "*": no check
	names   map[string]bool // lower case, no trailing dot
	suffix  []string        // "*.example.com" entries as ".example.com"
	ips     map[netip.Addr]bool
	localIP bool // a listener is on the unspecified address: any local IP is ours
}

// newHostPolicy builds the policy. allowed is -allowed-hosts (nil: the
// defaults only); listen are the HTTP listen addresses; public is
// -public-ip (may be invalid); local are this machine's interface addresses.
func newHostPolicy(allowed []string, listen []string, public netip.Addr, local []netip.Addr) hostPolicy {
	h := hostPolicy{names: map[string]bool{"localhost": true}, ips: map[netip.Addr]bool{}}
	for _, a := range allowed {
		a = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(a)), ".")
		switch {
		case a == "*":
			h.any = true
		case strings.HasPrefix(a, "*."):
			h.suffix = append(h.suffix, a[1:])
		case a != "":
			if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
				h.ips[ip.Unmap()] = true
			} else {
				h.names[a] = true
			}
		}
	}
	for _, l := range listen {
		host, _, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		ip, err := netip.ParseAddr(host)
		switch {
		case host == "" || (err == nil && ip.IsUnspecified()):
			h.localIP = true
		case err == nil:
			h.ips[ip.Unmap()] = true
		default:
			h.names[strings.ToLower(host)] = true
		}
	}
	if public.IsValid() {
		h.ips[public.Unmap()] = true
	}
	if h.localIP {
		for _, ip := range local {
			h.ips[ip.Unmap()] = true
		}
	}
	return h
}

// localAddrs are the machine's interface addresses.
func localAddrs() []netip.Addr {
	var out []netip.Addr
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// allowed reports whether hostport (a Host header) names this server.
func (h hostPolicy) allowed(hostport string) bool {
	if h.any || hostport == "" {
		// No Host at all (HTTP/1.0 tools): no browser sends that.
		return true
	}
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		return ip.IsLoopback() || h.ips[ip]
	}
	if h.names[host] || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, s := range h.suffix {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// originPolicy decides which browser origins may send requests: the page's
// own origin (same host as the request's Host), and -cors-origins.
type originPolicy struct {
	any     bool
	origins map[string]bool // "scheme://host[:port]", lower case
}

func newOriginPolicy(list []string) originPolicy {
	o := originPolicy{origins: map[string]bool{}}
	for _, s := range list {
		s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "/")
		if s == "*" {
			o.any = true
		} else if s != "" {
			o.origins[s] = true
		}
	}
	return o
}

// check classifies r's Origin header: none (not a browser's cross-origin
// request, or a navigation), same (the page's own origin), listed (allowed
// by -cors-origins), or refused.
func (o originPolicy) check(r *http.Request) (origin string, cross, ok bool) {
	origin = r.Header.Get("Origin")
	if origin == "" {
		// Browsers send Origin with every POST and every CORS request;
		// Sec-Fetch-Site still tells a cross-site no-cors request.
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" && r.Header.Get("Sec-Fetch-Mode") != "navigate" {
			return "", true, false
		}
		return "", false, true
	}
	lo := strings.ToLower(origin)
	if u, err := url.Parse(lo); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return origin, false, true
	}
	return origin, true, o.any || o.origins[lo]
}

// jsonBody reports whether a request body's Content-Type is JSON
// (application/json, with parameters such as charset). The product's
// clients (its REST console, its samples' sendREST) send exactly that.
func jsonBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// allowList is an optional list of glob patterns (path.Match syntax, case
// insensitive). Empty means everything is allowed.
type allowList []string

// ParseAllowList splits a comma-separated list of glob patterns (path.Match
// syntax, case-insensitive; blank entries skipped), as a flag or an
// environment variable gives Config.AllowCallees or Config.AllowRTMPHosts,
// and checks every pattern the way New does.
func ParseAllowList(s string) ([]string, error) {
	l, err := newAllowList(strings.Split(s, ","))
	return []string(l), err
}

// newAllowList checks every pattern of list (blank ones are skipped).
func newAllowList(list []string) (allowList, error) {
	var l allowList
	for _, p := range list {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, errors.New("bad pattern " + p)
		}
		l = append(l, p)
	}
	return l, nil
}

func (l allowList) set() bool { return len(l) > 0 }

func globMatch(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

// matchHost reports whether host (lower-cased, without port) is allowed: by
// a host pattern, or by the host part of a user@host pattern.
func (l allowList) matchHost(host string) bool {
	if !l.set() {
		return true
	}
	host = strings.ToLower(host)
	for _, p := range l {
		if _, hp, ok := strings.Cut(p, "@"); ok {
			p = hp
		}
		if globMatch(p, host) {
			return true
		}
	}
	return false
}

// matchUserHost reports whether user@host is allowed: a pattern without
// '@' matches any user at a matching host.
func (l allowList) matchUserHost(user, host string) bool {
	if !l.set() {
		return true
	}
	user, host = strings.ToLower(user), strings.ToLower(host)
	for _, p := range l {
		up, hp, ok := strings.Cut(p, "@")
		if !ok {
			up, hp = "*", p
		}
		if globMatch(hp, host) && globMatch(up, user) {
			return true
		}
	}
	return false
}

// hostOf returns the host of host[:port], "[v6]:port", or a sip: URI's
// host part, lower case, without the port.
func hostOf(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(s), "sip:"), "sips:")
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(s, "[]")
}

// calleeParts splits a callee (sip:user@host;params, user@host, or user)
// into its user and host (empty when it has none).
func calleeParts(callee string) (user, host string) {
	rest := callee
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		switch strings.ToLower(rest[:i]) {
		case "sip", "sips", "tel":
			rest = rest[i+1:]
		}
	}
	if j := strings.IndexByte(rest, ';'); j >= 0 {
		rest = rest[:j]
	}
	user, h, ok := strings.Cut(rest, "@")
	if !ok {
		return user, ""
	}
	return user, hostOf(h)
}
