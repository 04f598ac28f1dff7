package callmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sipstream/sipstream/sip"
)

// Account is a SIP account the Manager keeps registered (Config.Accounts,
// Manager.AddAccount): calls that come in for it are accepted, and
// outgoing calls with SIPRegisterRequired for the same SIPLogin and
// SIPDomain use it instead of registering per call.
//
// The password is used for digest authentication only: it never appears
// in logs, events, errors or RegistrationInfo.
type Account struct {
	// Name identifies the account in the Manager. Zero means User@Domain.
	Name string
	// User is the SIP user (address of record sip:User@Domain). Required.
	User string
	// AuthUser is the digest user name. Zero means User.
	AuthUser string
	// Password is the digest password. Zero means no authentication.
	Password string
	// Domain is the registrar's domain, host or host:port. Required.
	Domain string
	// Proxy is the outbound proxy / registrar address, host[:port]. Zero
	// means Domain.
	Proxy string
	// Port is the port of Domain (or Proxy) when they name none. Zero means
	// 5060 (5061 for TLS).
	Port int
	// Transport is "udp", "tcp" or "tls". Zero means "udp".
	Transport string
	// Expires is the registration lifetime asked for. Zero means 3600 s.
	Expires time.Duration
}

// String returns a summary for logs, without the password.
func (a Account) String() string {
	return fmt.Sprintf("Account{Name:%q User:%q AuthUser:%q Password:%s Domain:%q Proxy:%q Port:%d Transport:%q Expires:%s}",
		a.Name, a.User, a.AuthUser, redacted(a.Password), a.Domain, a.Proxy, a.Port, a.Transport, a.Expires)
}

// GoString is String, so %#v cannot print the password either.
func (a Account) GoString() string { return a.String() }

// LogValue makes slog print the redacted form.
func (a Account) LogValue() slog.Value { return slog.StringValue(a.String()) }

// RegState is the state of a registration.
type RegState string

// Registration states.
const (
	// RegRegistering: a REGISTER is on its way (first one, or a retry after
	// a failure).
	RegRegistering RegState = "REGISTERING"
	// RegRegistered: the registrar granted the registration; refreshed in
	// the background.
	RegRegistered RegState = "REGISTERED"
	// RegFailed: the last REGISTER failed (LastError says why); retried
	// with backoff.
	RegFailed RegState = "FAILED"
	// RegUnregistered: removed (RemoveAccount, Close) or not registered.
	RegUnregistered RegState = "UNREGISTERED"
)

// RegistrationInfo is a snapshot of a registration: one of our Accounts,
// or (Inbound true) a binding of the Manager's own registrar
// (Inbound.Registrar). It never holds a password.
type RegistrationInfo struct {
	Account string // the Account's Name; the user for Inbound
	User    string
	Domain  string
	State   RegState
	// Expires is when the registration runs out (zero when not
	// registered).
	Expires time.Time
	// Since is when State was entered.
	Since time.Time
	// LastError says why the last REGISTER failed (no secrets).
	LastError string
	// Inbound is true for a binding of our registrar (a trunk or phone
	// registered to us), not an Account.
	Inbound bool
	// Contact is the bound contact (Inbound only).
	Contact string
}

var (
	// ErrDuplicateAccount: an account with that Name exists already.
	ErrDuplicateAccount = errors.New("callmgr: duplicate account")
	// ErrAccountNotFound: no account has that Name.
	ErrAccountNotFound = errors.New("callmgr: account not found")
)

// Backoff of a failed registration: doubled after each failure.
const (
	accountRetryMin = 2 * time.Second
	accountRetryMax = 5 * time.Minute
)

// accountEntry is an Account the Manager keeps registered; its goroutine
// (keepRegistered) owns reg.
type accountEntry struct {
	a     Account
	stop  context.CancelFunc
	ctx   context.Context
	done  chan struct{}
	mu    sync.Mutex
	info  RegistrationInfo
	addrs []netip.Addr // the registrar's addresses (its calls are accepted)
	reg   registration
}

// validate checks a and fills in its Name.
func (a Account) validate() (Account, error) {
	q := a
	if q.User == "" {
		return q, paramErr("User", "required")
	}
	if err := sip.ValidateUser(q.User); err != nil {
		return q, grammarErr("User", err)
	}
	if q.AuthUser != "" {
		if err := sip.ValidateUser(q.AuthUser); err != nil {
			return q, grammarErr("AuthUser", err)
		}
	}
	if q.Domain == "" {
		return q, paramErr("Domain", "required")
	}
	if err := sip.ValidateHostPort(q.Domain); err != nil {
		return q, grammarErr("Domain", err)
	}
	if q.Proxy != "" {
		if err := sip.ValidateHostPort(q.Proxy); err != nil {
			return q, grammarErr("Proxy", err)
		}
	}
	if q.Port != 0 {
		if err := sip.ValidatePort(q.Port); err != nil {
			return q, grammarErr("Port", err)
		}
	}
	q.Transport = strings.ToLower(strings.TrimSpace(q.Transport))
	switch q.Transport {
	case "", "udp", "tcp", "tls":
	default:
		return q, paramErr("Transport", "must be udp, tcp or tls")
	}
	if q.Expires < 0 {
		return q, paramErr("Expires", "negative")
	}
	if hasControl(q.Password) || len(q.Password) > maxField {
		return q, paramErr("Password", "control characters or too long")
	}
	if q.Name == "" {
		q.Name = q.User + "@" + q.Domain
	}
	if hasControl(q.Name) || len(q.Name) > maxField {
		return q, paramErr("Name", "control characters or too long")
	}
	return q, nil
}

// Registrations returns the accounts' registrations (by Name), then the
// bindings of the Manager's registrar (by user).
func (m *Manager) Registrations() []RegistrationInfo {
	m.accMu.Lock()
	out := make([]RegistrationInfo, 0, len(m.accounts))
	for _, e := range m.accounts {
		e.mu.Lock()
		out = append(out, e.info)
		e.mu.Unlock()
	}
	m.accMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	for _, b := range m.be.sig.Bindings() {
		out = append(out, m.bindingInfo(b, false))
	}
	return out
}

// AddAccount adds a and registers it in the background (state REGISTERING,
// then REGISTERED or FAILED; a failure is retried with backoff, from 2 s
// doubling up to 5 min). ctx is not used beyond the checks: the account
// lives until RemoveAccount or Close. Errors: *ParamError,
// ErrDuplicateAccount, ErrClosed.
func (m *Manager) AddAccount(ctx context.Context, a Account) error {
	q, err := a.validate()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	life, stop := context.WithCancel(context.Background())
	e := &accountEntry{a: q, ctx: life, stop: stop, done: make(chan struct{})}
	e.info = RegistrationInfo{Account: q.Name, User: q.User, Domain: q.Domain, State: RegRegistering, Since: time.Now()}
	m.accMu.Lock()
	switch {
	case m.accClosed:
		err = ErrClosed
	case m.accounts[q.Name] != nil:
		err = ErrDuplicateAccount
	default:
		m.accounts[q.Name] = e
		m.accWG.Add(1)
	}
	m.accMu.Unlock()
	if err != nil {
		stop()
		return err
	}
	m.emitRegistration(e.info)
	go m.keepRegistered(e)
	return nil
}

// RemoveAccount unregisters the account (REGISTER with Expires 0) and
// forgets it. It returns when that is done or ctx is (the unREGISTER goes
// on, bounded by Config.TeardownTimeout). ErrAccountNotFound when no
// account has that name.
func (m *Manager) RemoveAccount(ctx context.Context, name string) error {
	m.accMu.Lock()
	e := m.accounts[name]
	delete(m.accounts, name)
	m.accMu.Unlock()
	if e == nil {
		return ErrAccountNotFound
	}
	e.stop()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopAccounts unregisters every account (Close) and waits for them.
func (m *Manager) stopAccounts(ctx context.Context) error {
	m.accMu.Lock()
	m.accClosed = true
	for name, e := range m.accounts {
		e.stop()
		delete(m.accounts, name)
	}
	m.accMu.Unlock()
	done := make(chan struct{})
	go func() {
		m.accWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keepRegistered registers e until it is stopped: retried with backoff
// while it fails, then refreshed by the user agent (OnRefresh reports each
// refresh), unregistered at the end.
func (m *Manager) keepRegistered(e *accountEntry) {
	defer m.accWG.Done()
	defer close(e.done)
	acct := account{
		User: e.a.User, AuthUser: e.a.AuthUser, Password: e.a.Password, Domain: e.a.Domain,
		Proxy: e.a.Proxy, Port: e.a.Port, Transport: e.a.Transport, Expires: e.a.Expires,
		OnRefresh: func(err error) { m.refreshed(e, err) },
	}
	if acct.AuthUser == "" {
		acct.AuthUser = acct.User
	}
	delay := m.accountRetry
	for {
		addrs, err := resolveHost(e.ctx, registrarHost(e.a))
		var reg registration
		if err == nil {
			reg, err = m.be.sig.Register(e.ctx, acct)
		}
		if e.ctx.Err() != nil {
			if reg != nil {
				m.unregister(e, reg)
			}
			break
		}
		if err == nil {
			e.mu.Lock()
			e.reg, e.addrs = reg, addrs
			e.mu.Unlock()
			m.setRegState(e, RegRegistered, reg.Expires(), "")
			<-e.ctx.Done()
			m.unregister(e, reg)
			break
		}
		m.cfg.Logger.Info("account registration failed", "account", e.a.Name, "err", err, "retry", delay)
		m.setRegState(e, RegFailed, 0, regError(err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-e.ctx.Done():
		}
		t.Stop()
		if e.ctx.Err() != nil {
			break
		}
		delay = min(2*delay, accountRetryMax)
		m.setRegState(e, RegRegistering, 0, "")
	}
	m.setRegState(e, RegUnregistered, 0, "")
}

func (m *Manager) unregister(e *accountEntry, reg registration) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.TeardownTimeout)
	defer cancel()
	if err := reg.Close(ctx); err != nil {
		m.cfg.Logger.Info("account unREGISTER failed", "account", e.a.Name, "err", err)
	}
	e.mu.Lock()
	e.reg, e.addrs = nil, nil
	e.mu.Unlock()
}

// refreshed is the user agent's report of a refresh (its goroutine).
func (m *Manager) refreshed(e *accountEntry, err error) {
	e.mu.Lock()
	reg := e.reg
	e.mu.Unlock()
	if reg == nil || e.ctx.Err() != nil {
		return // the first REGISTER's outcome, or ending: keepRegistered reports
	}
	if err != nil {
		m.setRegState(e, RegFailed, 0, regError(err))
		return
	}
	m.setRegState(e, RegRegistered, reg.Expires(), "")
}

// setRegState records and reports a state (or a new expiry).
func (m *Manager) setRegState(e *accountEntry, st RegState, expires time.Duration, lastErr string) {
	now := time.Now()
	e.mu.Lock()
	if e.info.State != st {
		e.info.Since = now
	}
	e.info.State = st
	e.info.Expires = time.Time{}
	if expires > 0 {
		e.info.Expires = now.Add(expires)
	}
	if lastErr != "" {
		e.info.LastError = lastErr
	}
	info := e.info
	e.mu.Unlock()
	m.emitRegistration(info)
}

// regError is a registration failure as RegistrationInfo says it: package
// sip's errors carry no secrets; at most 200 bytes.
func regError(err error) string { return setupReason(err) }

// registrarHost is the host REGISTERs of a go to: its proxy, else its
// domain.
func registrarHost(a Account) string {
	h := a.Proxy
	if h == "" {
		h = a.Domain
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

// resolveHost returns host's addresses (once per registration: calls from
// them are accepted for the account).
func resolveHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("callmgr: resolving the registrar %q: %w", host, err)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs, nil
}

// accountFrom returns the Name of the registered account a call from src to
// user came in for, or "".
func (m *Manager) accountFrom(src netip.Addr, user string) string {
	m.accMu.Lock()
	defer m.accMu.Unlock()
	for name, e := range m.accounts {
		if e.a.User != user {
			continue
		}
		e.mu.Lock()
		ok := e.info.State == RegRegistered && containsAddr(e.addrs, src)
		e.mu.Unlock()
		if ok {
			return name
		}
	}
	return ""
}

func containsAddr(addrs []netip.Addr, a netip.Addr) bool {
	for _, x := range addrs {
		if x == a {
			return true
		}
	}
	return false
}

// accountRegistered reports whether an account of user at domain is
// registered (an outgoing call with SIPRegisterRequired then uses it).
func (m *Manager) accountRegistered(user, domain string) bool {
	m.accMu.Lock()
	defer m.accMu.Unlock()
	for _, e := range m.accounts {
		if e.a.User != user || !strings.EqualFold(e.a.Domain, domain) {
			continue
		}
		e.mu.Lock()
		ok := e.info.State == RegRegistered
		e.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// onBinding reports a change of our registrar's bindings (the user agent's
// goroutines).
func (m *Manager) onBinding(b sip.Binding, removed bool) {
	m.emitRegistration(m.bindingInfo(b, removed))
}

func (m *Manager) bindingInfo(b sip.Binding, removed bool) RegistrationInfo {
	key := b.User + "\x00" + b.Contact
	now := time.Now()
	m.accMu.Lock()
	since, ok := m.bindSince[key]
	switch {
	case removed:
		delete(m.bindSince, key)
	case !ok:
		since = now
		m.bindSince[key] = since
	}
	m.accMu.Unlock()
	ri := RegistrationInfo{Account: b.User, User: b.User, State: RegRegistered, Expires: b.Expires, Since: since, Inbound: true, Contact: b.Contact}
	if removed {
		ri.State, ri.Expires, ri.Since = RegUnregistered, time.Time{}, now
	}
	return ri
}

// emitRegistration queues an EventRegistration for Config.OnEvent.
func (m *Manager) emitRegistration(ri RegistrationInfo) {
	m.regEvents.push(Event{Type: EventRegistration, Time: time.Now(), Registration: ri})
}

// dispatchRegistrations delivers registration events in order, from one
// goroutine, until Close.
func (m *Manager) dispatchRegistrations() {
	defer close(m.regDone)
	deliver(m.regEvents, m.cfg.OnEvent)
}
