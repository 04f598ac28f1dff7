package sip

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// RegisterRequest describes a registration (sipRegisterRequired).
// Specification: RFC 3261 §10.
type RegisterRequest struct {
	// User is the login: the user part of the address of record.
	User string
	// AuthUser is the digest user name. Zero means User.
	AuthUser string
	// Password answers 401/407 challenges to REGISTERs sent where this
	// request says (Registrar, OutboundProxy or Domain); there is no other
	// place they go. Never logged.
	Password string
	// AuthRealm, when set, is the only digest realm Password is given to;
	// a challenge of another realm fails with a *ChallengeError. Zero means
	// any.
	AuthRealm string
	// Domain is the registrar's domain, "host" or "host:port"; the
	// address of record is sip:User@Domain.
	Domain string
	// Registrar is where REGISTER goes, "host[:port]" or a SIP URI. Zero
	// means OutboundProxy, else Domain.
	Registrar string
	// OutboundProxy is used when Registrar is empty.
	OutboundProxy string
	// Transport is "udp", "tcp" or "tls". Zero means "udp".
	Transport string
	// Expires is the registration lifetime we ask for. Zero means 3600 s.
	// The registrar's answer decides; we refresh at half the granted time.
	Expires time.Duration
	// Headers are added to every REGISTER.
	Headers []Header
	// OnRefreshError is called (from the registration's goroutine) when a
	// refresh fails; the registration keeps retrying. nil ignores failures.
	OnRefreshError func(error)
	// OnRefresh is called (from the registration's goroutine) after every
	// refresh: nil when the registrar granted it, the error otherwise (then
	// after OnRefreshError). Must not block. nil means no call.
	OnRefresh func(err error)
}

// Registration is an active registration, refreshed in the background
// until Close.
type Registration struct {
	ua        *UA
	transport string
	dest      string
	ruri      sipgox.Uri
	from      sipgox.FromHeader
	to        sipgox.ToHeader
	contact   sipgox.ContactHeader
	callID    string
	creds     *credentials
	headers   []Header
	asked     time.Duration
	onErr     func(error)
	onRefresh func(error)

	mu      sync.Mutex
	cseq    uint32
	granted time.Duration

	stopOnce sync.Once
	stopC    chan struct{}
	loopDone chan struct{}
	closeMu  sync.Mutex
	closed   bool
}

// Register registers User at Domain and returns once the registrar has
// accepted (2xx). A refusal is a *StatusError (ErrForbidden,
// ErrUnauthorized …); invalid parameters a *ParamError.
func (ua *UA) Register(ctx context.Context, r RegisterRequest) (*Registration, error) {
	if ua.isClosed() {
		return nil, ErrClosed
	}
	if err := checkUser("User", r.User); err != nil {
		return nil, err
	}
	auth := r.AuthUser
	if auth == "" {
		auth = r.User
	}
	if err := checkUser("AuthUser", auth); err != nil {
		return nil, err
	}
	host, port, err := splitHostPort("Domain", r.Domain)
	if err != nil {
		return nil, err
	}
	transport := "udp"
	if r.Transport != "" {
		if transport, err = normTransport("Transport", r.Transport); err != nil {
			return nil, err
		}
	}
	if _, err := ua.client(transport); err != nil {
		return nil, err
	}
	for i, h := range r.Headers {
		if err := checkCustomHeader("Headers["+strconv.Itoa(i)+"]", h); err != nil {
			return nil, err
		}
	}
	if strings.ContainsAny(r.Password, "\r\n") {
		return nil, paramErr("Password", "control character not allowed")
	}
	if r.Expires < 0 {
		return nil, paramErr("Expires", "negative")
	}
	reg := &Registration{
		ua:        ua,
		transport: transport,
		ruri:      sipgox.Uri{Scheme: "sip", Host: host, Port: port},
		callID:    sipgox.GenerateTagN(24),
		headers:   r.Headers,
		asked:     r.Expires,
		onErr:     r.OnRefreshError,
		onRefresh: r.OnRefresh,
		cseq:      1,
		stopC:     make(chan struct{}),
		loopDone:  make(chan struct{}),
	}
	if reg.asked == 0 {
		reg.asked = time.Hour
	}
	if transport == "tls" {
		reg.ruri.Scheme = "sips"
	}
	reg.dest = destination(reg.ruri, transport)
	target := r.Registrar
	if target == "" {
		target = r.OutboundProxy
	}
	if target != "" {
		if reg.dest, err = proxyDest(target, transport); err != nil {
			return nil, err
		}
	}
	if r.Password != "" {
		// The registrar is what the caller configured: Domain, Registrar
		// or OutboundProxy, whichever the REGISTER goes to.
		reg.creds = &credentials{user: auth, password: r.Password,
			scope: authScope{hosts: []string{reg.dest}, realm: r.AuthRealm}}
	}
	aor := sipgox.Uri{Scheme: "sip", User: r.User, Host: host}
	reg.from = sipgox.FromHeader{Address: aor, Params: sipgox.NewParams()}
	reg.from.Params.Add("tag", sipgox.GenerateTagN(16))
	reg.to = sipgox.ToHeader{Address: aor, Params: sipgox.NewParams()}
	reg.contact = sipgox.ContactHeader{Address: ua.contactURI(r.User, transport)}

	granted, err := reg.send(ctx, reg.asked)
	if err != nil {
		return nil, err
	}
	reg.setGranted(granted)
	ua.mu.Lock()
	if ua.closed {
		ua.mu.Unlock()
		return nil, ErrClosed
	}
	ua.regs[reg] = struct{}{}
	ua.wg.Add(1)
	ua.mu.Unlock()
	ua.log.Info("sip: registered", "aor", aor.String(), "expires", granted)
	go reg.run()
	return reg, nil
}

func (r *Registration) setGranted(g time.Duration) {
	r.mu.Lock()
	r.granted = g
	r.mu.Unlock()
}

// Expires returns the lifetime the registrar granted last.
func (r *Registration) Expires() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.granted
}

// send does one REGISTER and returns the granted lifetime.
func (r *Registration) send(ctx context.Context, expires time.Duration) (time.Duration, error) {
	req := sipgox.NewRequest(sipgox.REGISTER, r.ruri)
	req.AppendHeader(r.ua.newVia(r.transport))
	from := r.from
	from.Params = r.from.Params.Clone()
	req.AppendHeader(&from)
	to := r.to
	to.Params = r.to.Params.Clone()
	req.AppendHeader(&to)
	cid := sipgox.CallIDHeader(r.callID)
	req.AppendHeader(&cid)
	r.mu.Lock()
	r.cseq++
	seq := r.cseq
	r.mu.Unlock()
	req.AppendHeader(&sipgox.CSeqHeader{SeqNo: seq, MethodName: sipgox.REGISTER})
	c := r.contact
	req.AppendHeader(&c)
	secs := int(expires / time.Second)
	req.AppendHeader(sipgox.NewHeader("Expires", strconv.Itoa(secs)))
	req.AppendHeader(sipgox.NewHeader("Allow", allowedMethods))
	for _, h := range r.headers {
		req.AppendHeader(sipgox.NewHeader(h.Name, h.Value))
	}
	r.ua.prepare(req, r.transport, r.dest)
	req.SetBody(nil)
	res, err := r.ua.do(ctx, req, r.transport, r.creds)
	r.mu.Lock()
	if n := req.CSeq().SeqNo; n > r.cseq {
		r.cseq = n
	}
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if res.StatusCode == 423 && secs > 0 {
		// RFC 3261 §10.2.8: Interval Too Brief, retry with Min-Expires.
		if h := res.GetHeader("Min-Expires"); h != nil {
			if n, perr := strconv.Atoi(strings.TrimSpace(h.Value())); perr == nil && n > secs && n <= 86400 {
				r.asked = time.Duration(n) * time.Second // send never runs concurrently
				return r.send(ctx, r.asked)
			}
		}
	}
	if !res.IsSuccess() {
		return 0, statusError("REGISTER", res)
	}
	if secs == 0 {
		return 0, nil
	}
	return grantedExpiry(res, r.contact.Address, expires), nil
}

// grantedExpiry reads the lifetime from our Contact's expires parameter,
// else the Expires header, else what we asked for.
func grantedExpiry(res *sipgox.Response, ours sipgox.Uri, asked time.Duration) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		ch, ok := h.(*sipgox.ContactHeader)
		if !ok || ch.Address.User != ours.User || ch.Address.Host != ours.Host || ch.Address.Port != ours.Port {
			continue
		}
		if v, ok := ch.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return asked
}

// refreshAfter is when to refresh a registration granted for g: half-way.
func refreshAfter(g time.Duration) time.Duration {
	return max(g/2, 500*time.Millisecond)
}

func (r *Registration) run() {
	defer r.ua.wg.Done()
	defer close(r.loopDone)
	t := time.NewTimer(refreshAfter(r.Expires()))
	defer t.Stop()
	for {
		select {
		case <-r.stopC:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-r.stopC:
				cancel()
			case <-ctx.Done():
			}
		}()
		g, err := r.send(ctx, r.asked)
		cancel()
		if err != nil {
			r.ua.log.Warn("sip: registration refresh failed", "err", err)
			if r.onErr != nil {
				r.onErr(err)
			}
			if r.onRefresh != nil {
				r.onRefresh(err)
			}
			t.Reset(min(30*time.Second, refreshAfter(r.Expires())/2+time.Second))
			continue
		}
		r.setGranted(g)
		if r.onRefresh != nil {
			r.onRefresh(nil)
		}
		t.Reset(refreshAfter(g))
	}
}

// stop ends the refresh loop without unREGISTER.
func (r *Registration) stop() {
	r.stopOnce.Do(func() { close(r.stopC) })
	<-r.loopDone
	r.ua.mu.Lock()
	delete(r.ua.regs, r)
	r.ua.mu.Unlock()
}

// Close stops refreshing and unregisters (REGISTER with Expires: 0). The
// unREGISTER runs even if ctx is already cancelled, bounded by
// Config.CleanupTimeout. Closing twice returns nil.
func (r *Registration) Close(ctx context.Context) error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.stop()
	if r.ua.isClosed() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.ua.cfg.CleanupTimeout)
	defer cancel()
	_, err := r.send(ctx, 0)
	return err
}
