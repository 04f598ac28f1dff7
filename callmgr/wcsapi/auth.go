package wcsapi

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// authMode says who may use the REST API, the events, the page and the
// metrics.
type authMode int

const (
	// authLocked: no credentials were configured and the operator did not
	// opt out: every request that needs a login is refused (401). The
	// server is closed by default.
	authLocked authMode = iota
	// authBasic: HTTP Basic auth with the configured user and password.
	authBasic
	// authOff: no login (-no-auth, or -demo serving loopback only).
	authOff
)

// admins checks admin credentials (HTTP Basic) and throttles clients that
// keep failing.
type admins struct {
	mode     authMode
	user     []byte
	pass     []byte
	throttle *throttle
}

// check reports whether r carries the admin's credentials. A client that
// failed too often recently is refused for retryAfter without its
// credentials being looked at (so guessing stops paying off).
func (a *admins) check(r *http.Request) (ok bool, retryAfter time.Duration) {
	switch a.mode {
	case authOff:
		return true, 0
	case authLocked:
		return false, 0
	}
	ip := clientIP(r)
	if d := a.throttle.blocked(ip); d > 0 {
		return false, d
	}
	u, p, has := r.BasicAuth()
	if !has {
		// A browser's first request never carries credentials: not a
		// failure.
		return false, 0
	}
	// Both compares always run (no early exit on the user name).
	okUser := subtle.ConstantTimeCompare([]byte(u), a.user)
	okPass := subtle.ConstantTimeCompare([]byte(p), a.pass)
	if okUser&okPass == 1 {
		a.throttle.success(ip)
		return true, 0
	}
	a.throttle.fail(ip)
	return false, 0
}

// clientIP is the address the request came from (the TCP peer: forwarded
// headers are not trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// throttle counts failed logins per client address. After maxFails
// failures within window, the client is refused (429) for a delay that
// doubles with every further failure, up to maxDelay. A success forgets the
// client. The table is bounded: at most maxClients addresses are kept.
type throttle struct {
	now        func() time.Time
	maxFails   int
	window     time.Duration
	baseDelay  time.Duration
	maxDelay   time.Duration
	maxClients int

	mu      sync.Mutex
	clients map[string]*failures
}

type failures struct {
	n     int
	first time.Time // start of the window
	until time.Time // refused until then
}

// Defaults of the login throttle.
const (
	throttleFails   = 5
	throttleWindow  = 10 * time.Minute
	throttleBase    = time.Second
	throttleMax     = 5 * time.Minute
	throttleClients = 10000
)

func newThrottle(now func() time.Time) *throttle {
	if now == nil {
		now = time.Now
	}
	return &throttle{
		now: now, maxFails: throttleFails, window: throttleWindow, baseDelay: throttleBase,
		maxDelay: throttleMax, maxClients: throttleClients, clients: make(map[string]*failures),
	}
}

// blocked returns how long ip is still refused (0: not refused).
func (t *throttle) blocked(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.clients[ip]
	if f == nil {
		return 0
	}
	if d := f.until.Sub(t.now()); d > 0 {
		return d
	}
	return 0
}

func (t *throttle) fail(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.clients[ip]
	if f != nil && now.Sub(f.first) > t.window && now.After(f.until) {
		f = nil // an old series: start again
	}
	if f == nil {
		t.makeRoom(now)
		f = &failures{first: now}
		t.clients[ip] = f
	}
	f.n++
	if f.n >= t.maxFails {
		d := t.baseDelay << min(f.n-t.maxFails, 20)
		if d > t.maxDelay || d <= 0 {
			d = t.maxDelay
		}
		f.until = now.Add(d)
	}
}

// makeRoom keeps the table under maxClients: expired entries go first, then
// any entry that is not refusing its client now.
func (t *throttle) makeRoom(now time.Time) {
	if len(t.clients) < t.maxClients {
		return
	}
	for ip, f := range t.clients {
		if now.Sub(f.first) > t.window && now.After(f.until) {
			delete(t.clients, ip)
		}
	}
	for ip, f := range t.clients {
		if len(t.clients) < t.maxClients {
			return
		}
		if now.After(f.until) {
			delete(t.clients, ip)
		}
	}
	for ip := range t.clients {
		if len(t.clients) < t.maxClients {
			return
		}
		delete(t.clients, ip)
	}
}

func (t *throttle) success(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.clients, ip)
}

// retryAfterSeconds is d rounded up to whole seconds, for Retry-After.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}
