package sip

import (
	"errors"
	"net/netip"
	"sync"
	"time"
)

// RegistrarConfig configures UA.ServeRegistrar.
type RegistrarConfig struct {
	// Auth challenges every REGISTER; required.
	Auth *Authenticator
	// MinExpires is the shortest registration granted; a shorter one asked
	// for gets 423 Interval Too Brief with Min-Expires. Zero means 60 s.
	MinExpires time.Duration
	// MaxExpires is the longest registration granted (longer requests are
	// shortened). Zero means 3600 s.
	MaxExpires time.Duration
	// MaxBindings caps the bindings kept in total; further new bindings get
	// 503 Service Unavailable. Zero means 1000.
	MaxBindings int
	// OnChange is called when a binding is added or refreshed (removed
	// false) or removed or expired (removed true); from the UA's
	// goroutines, never with a lock held; must not block.
	OnChange func(b Binding, removed bool)
}

// Binding is a contact registered to our Registrar.
type Binding struct {
	User      string         // the authenticated user (the To user)
	Contact   string         // the Contact URI as registered
	Source    netip.AddrPort // where the REGISTER came from
	Transport string         // "udp", "tcp" or "tls"
	Expires   time.Time      // when the binding lapses unless refreshed
	UserAgent string         // the REGISTER's User-Agent, may be empty
}

// Registrar makes the UA a registrar for the Authenticator's users (trunks,
// phones that register to the gateway): REGISTER is challenged, then
// bindings are kept in memory with their expiry and answered 200 with the
// current Contacts. Safe for concurrent use.
//
// Specification: RFC 3261 §10.3.
type Registrar struct {
	ua  *UA
	cfg RegistrarConfig

	mu       sync.Mutex
	bindings map[string]map[string]*Binding // user → contact URI → binding
	count    int
}

// ServeRegistrar makes the UA answer REGISTER as a registrar (RFC 3261
// §10.3). Without it, REGISTER gets 405 Method Not Allowed. Only one
// Registrar per UA.
func (ua *UA) ServeRegistrar(cfg RegistrarConfig) (*Registrar, error) {
	return nil, errors.New("sip: not implemented yet")
}

// Bindings returns the live bindings, sorted by user (then contact).
func (r *Registrar) Bindings() []Binding { return nil }

// Lookup returns the live bindings of user.
func (r *Registrar) Lookup(user string) []Binding { return nil }
