package wcsapi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sip"
)

// ParseAccount reads a SIP account as a flag or a configuration file gives
// it: sip:USER[:PASSWORD]@HOST[:PORT][;transport=udp|tcp|tls]
// [;proxy=HOST[:PORT]][;authuser=NAME] ("sips:" means TLS; the password may
// be percent-encoded). HOST is the Account's Domain, PORT its Port. An
// error quotes the value without its password, never the password.
func ParseAccount(v string) (callmgr.Account, error) {
	a, err := parseAccount(v)
	if err != nil {
		return callmgr.Account{}, fmt.Errorf("%s: %w", redactAccount(v), err)
	}
	return a, nil
}

func parseAccount(v string) (callmgr.Account, error) {
	var a callmgr.Account
	rest, ok := strings.CutPrefix(v, "sip:")
	if !ok {
		if rest, ok = strings.CutPrefix(v, "sips:"); !ok {
			return a, errors.New("want sip:USER[:PASSWORD]@HOST[:PORT]")
		}
		a.Transport = "tls"
	}
	rest, params, _ := strings.Cut(rest, ";")
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return a, errors.New("want sip:USER[:PASSWORD]@HOST[:PORT]")
	}
	userinfo, hostport := rest[:at], rest[at+1:]
	user, pass, hasPass := strings.Cut(userinfo, ":")
	if p, err := url.PathUnescape(pass); err == nil {
		pass = p
	}
	if hasPass && pass == "" {
		return a, errors.New("empty password")
	}
	a.User, a.Password = user, pass
	if err := sip.ValidateUser(user); err != nil {
		return a, fmt.Errorf("user: %v", err)
	}
	if err := sip.ValidateHostPort(hostport); err != nil {
		return a, fmt.Errorf("host: %v", err)
	}
	a.Domain = hostport
	if h, p := splitHostPort(hostport); p != "" {
		port, _ := strconv.Atoi(p)
		a.Domain, a.Port = h, port
	}
	for _, kv := range strings.Split(params, ";") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "transport":
			a.Transport = strings.ToLower(val)
			if a.Transport != "udp" && a.Transport != "tcp" && a.Transport != "tls" {
				return a, fmt.Errorf("transport %q: want udp, tcp or tls", val)
			}
		case "proxy":
			if err := sip.ValidateHostPort(val); err != nil {
				return a, fmt.Errorf("proxy: %v", err)
			}
			a.Proxy = val
		case "authuser":
			if err := sip.ValidateUser(val); err != nil {
				return a, fmt.Errorf("authuser: %v", err)
			}
			a.AuthUser = val
		default:
			return a, fmt.Errorf("unknown parameter %q (transport, proxy, authuser)", k)
		}
	}
	return a, nil
}

// splitHostPort splits host[:port]; an IPv6 host keeps its brackets, as
// a SIP host has them; port is empty when none is given.
func splitHostPort(s string) (host, port string) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return s, ""
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h, p
}

// redactAccount is an account's URI without its password.
func redactAccount(v string) string {
	scheme, rest, ok := strings.Cut(v, ":")
	at := strings.LastIndexByte(rest, '@')
	if !ok || at < 0 || (scheme != "sip" && scheme != "sips") {
		return "not a sip: URI"
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + ":" + user + "@" + rest[at+1:]
}
