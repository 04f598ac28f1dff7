package callmgr

import (
	"context"
	"errors"
	"time"
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

// Registrations returns the accounts' registrations (by Name), then the
// bindings of the Manager's registrar (by user).
func (m *Manager) Registrations() []RegistrationInfo {
	return nil
}

// AddAccount adds a and registers it in the background (state REGISTERING,
// then REGISTERED or FAILED; a failure is retried with backoff). Errors:
// *ParamError, ErrDuplicateAccount, ErrClosed.
func (m *Manager) AddAccount(ctx context.Context, a Account) error {
	return errors.New("callmgr: AddAccount not implemented yet")
}

// RemoveAccount unregisters the account (REGISTER with Expires 0, bounded
// by ctx) and forgets it. ErrAccountNotFound when no account has that name.
func (m *Manager) RemoveAccount(ctx context.Context, name string) error {
	return errors.New("callmgr: RemoveAccount not implemented yet")
}
