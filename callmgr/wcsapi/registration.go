package wcsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sipstream/sipstream/callmgr"
)

// registrationService is what the /registration endpoints need of the
// Manager (*callmgr.Manager is one; tests use a fake).
type registrationService interface {
	Registrations() []callmgr.RegistrationInfo
	AddAccount(ctx context.Context, a callmgr.Account) error
	RemoveAccount(ctx context.Context, name string) error
}

// Registration is a registration as /rest-api/registration/find and
// find_all return it, and as RegistrationStatusEvent reports it: one of the
// gateway's SIP accounts (registered to a registrar or trunk, refreshed in
// the background) or, with inbound true, a phone or trunk registered to the
// gateway's own registrar. It never carries a password.
type Registration struct {
	// Account is the account's name (the user for inbound bindings).
	Account string `json:"account"`
	User    string `json:"user"`
	Domain  string `json:"domain"`
	// State is REGISTERING, REGISTERED, FAILED or UNREGISTERED.
	State string `json:"state"`
	// Expires is when the registration runs out, Unix milliseconds; 0
	// when not registered.
	Expires int64 `json:"expires"`
	// Since is when State was entered, Unix milliseconds.
	Since int64 `json:"since"`
	// LastError says why the last REGISTER failed; empty when none.
	LastError string `json:"lastError"`
	// Inbound is true for a binding of the gateway's registrar.
	Inbound bool `json:"inbound"`
	// Contact is the bound contact of an inbound binding.
	Contact string `json:"contact"`
}

// registrationOf is ri in the REST API's terms, its error text made safe
// for any API caller.
func (s *server) registrationOf(ri callmgr.RegistrationInfo) Registration {
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	return Registration{
		Account: ri.Account, User: ri.User, Domain: ri.Domain, State: string(ri.State),
		Expires: ms(ri.Expires), Since: ms(ri.Since), LastError: publicReason(ri.LastError, s.secrets),
		Inbound: ri.Inbound, Contact: ri.Contact,
	}
}

// RegistrationEvent is the body of the RegistrationStatusEvent POSTed to the
// default application's hook (the product's name for a registration's
// change, WCS-API.md 4.4) and of the "registration" events of /events: the
// Registration, with status the same as state.
type RegistrationEvent struct {
	Type   string `json:"type"` // "RegistrationStatusEvent"
	NodeID string `json:"nodeId"`
	Status string `json:"status"`
	Registration
	Timestamp int64 `json:"timestamp"` // Unix milliseconds
}

// notifyRegistration publishes a registration's change to the default
// application's hook and the event stream, without blocking.
func (s *server) notifyRegistration(ri callmgr.RegistrationInfo, nodeID string) {
	r := s.registrationOf(ri)
	ev := RegistrationEvent{Type: "RegistrationStatusEvent", NodeID: nodeID, Status: r.State, Registration: r, Timestamp: s.now().UnixMilli()}
	s.events.Inc()
	if s.webhook != nil {
		s.webhook.postTo("", hookMessage{name: ev.Type, body: ev, id: r.Account, status: r.State})
	}
	if b, err := json.Marshal(ev); err == nil {
		s.hub.publish(sseMessage("registration", b))
	}
}

// registrationRoutes are the /registration endpoints.
func (s *server) registrationRoutes() map[string]func(http.ResponseWriter, *http.Request) error {
	return map[string]func(http.ResponseWriter, *http.Request) error{
		"/registration/find_all":  s.registrationFindAll,
		"/registration/find":      s.registrationFind,
		"/registration/startup":   s.registrationStartup,
		"/registration/terminate": s.registrationTerminate,
	}
}

// registrations returns every registration matching keep.
func (s *server) registrations(keep func(Registration) bool) ([]Registration, error) {
	if s.regs == nil {
		return nil, errStatus(http.StatusNotFound, "registrations are not served here")
	}
	var out []Registration
	for _, ri := range s.regs.Registrations() {
		if r := s.registrationOf(ri); keep(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// writeRegistrations answers the registrations matching keep, or 404 with
// none when there are none.
func (s *server) writeRegistrations(w http.ResponseWriter, keep func(Registration) bool, none string) error {
	out, err := s.registrations(keep)
	if err != nil {
		return err
	}
	if len(out) == 0 {
		return errStatus(http.StatusNotFound, none)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) registrationFindAll(w http.ResponseWriter, r *http.Request) error {
	if err := s.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	return s.writeRegistrations(w, func(Registration) bool { return true }, "no registrations")
}

// registrationFind filters by account, user, state and inbound (each
// optional).
func (s *server) registrationFind(w http.ResponseWriter, r *http.Request) error {
	var f struct {
		Account flexString `json:"account"`
		User    flexString `json:"user"`
		State   flexString `json:"state"`
		Inbound flexBool   `json:"inbound"`
	}
	if err := s.decode(w, r, &f); err != nil {
		return err
	}
	return s.writeRegistrations(w, func(g Registration) bool {
		return (f.Account == "" || string(f.Account) == g.Account) && (f.User == "" || string(f.User) == g.User) &&
			(f.State == "" || strings.EqualFold(string(f.State), g.State)) && (!f.Inbound.Set || f.Inbound.Value == g.Inbound)
	}, "no registration matches")
}

// accountFields are the Account's REST names (callmgr.Account's Go names
// in ParamError.Field).
var accountFields = map[string]string{
	"Name": "account", "User": "sipLogin", "AuthUser": "sipAuthenticationName", "Password": "sipPassword",
	"Domain": "sipDomain", "Proxy": "sipOutboundProxy", "Port": "sipPort", "Transport": "sipTransport", "Expires": "expires",
}

// registrationStartup adds an account and registers it in the background:
// 200 with the registration (REGISTERING) at once; its later states come as
// RegistrationStatusEvents and in find. The SIP fields are /call/startup's,
// checked the same way (-allow-callees applies to sipDomain and
// sipOutboundProxy); expires is in seconds (default 3600).
func (s *server) registrationStartup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		connectionFields            // the SIP ones; appKey, visibleName and sipRegisterRequired are ignored
		Account          flexString `json:"account"`
		Expires          flexInt    `json:"expires"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if s.regs == nil {
		return errStatus(http.StatusNotFound, "registrations are not served here")
	}
	a := callmgr.Account{
		Name:      strings.TrimSpace(string(req.Account)),
		User:      strings.TrimSpace(string(req.SIPLogin)),
		AuthUser:  strings.TrimSpace(string(req.SIPAuthenticationName)),
		Password:  string(req.SIPPassword),
		Domain:    strings.TrimSpace(string(req.SIPDomain)),
		Proxy:     strings.TrimSpace(string(req.SIPOutboundProxy)),
		Port:      req.SIPPort.Value,
		Transport: strings.ToLower(strings.TrimSpace(string(req.SIPTransport))),
	}
	s.secrets.Add(a.Password)
	errs := checkSIPAccount(a.User, a.AuthUser, a.Domain, a.Proxy, req.SIPPort, a.Transport)
	if a.User == "" {
		errs = append(errs, badField("sipLogin", "is required"))
	}
	if a.Domain == "" {
		errs = append(errs, badField("sipDomain", "is required"))
	}
	if req.Expires.Set {
		if req.Expires.Value < 60 || req.Expires.Value > 86400 {
			errs = append(errs, badField("expires", "must be 60 to 86400 seconds"))
		}
		a.Expires = time.Duration(req.Expires.Value) * time.Second
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := s.checkSIPHosts(a.Domain, a.Proxy); err != nil {
		return err
	}
	if err := s.regs.AddAccount(r.Context(), a); err != nil {
		return accountErr(err)
	}
	name := a.Name
	if name == "" {
		name = a.User + "@" + a.Domain // callmgr's default Name
	}
	out, _ := s.registrations(func(g Registration) bool { return !g.Inbound && g.Account == name })
	if len(out) == 0 {
		out = []Registration{{Account: name, User: a.User, Domain: a.Domain, State: string(callmgr.RegRegistering)}}
	}
	writeJSON(w, http.StatusOK, out[0])
	return nil
}

// registrationTerminate unregisters an account and forgets it.
func (s *server) registrationTerminate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Account flexString `json:"account"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	name := strings.TrimSpace(string(req.Account))
	if name == "" {
		return badField("account", "is required")
	}
	if s.regs == nil {
		return errStatus(http.StatusNotFound, "registrations are not served here")
	}
	if err := s.regs.RemoveAccount(r.Context(), name); err != nil {
		return accountErr(err)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// accountErr maps AddAccount's and RemoveAccount's errors to HTTP.
func accountErr(err error) error {
	var pe *callmgr.ParamError
	switch {
	case errors.As(err, &pe):
		field, ok := accountFields[pe.Field]
		if !ok {
			field = restField(pe.Field)
		}
		return &fieldError{Field: field, Reason: pe.Reason}
	case errors.Is(err, callmgr.ErrDuplicateAccount):
		return fmt.Errorf("%w: an account with that name exists already", errConflict)
	case errors.Is(err, callmgr.ErrAccountNotFound):
		return fmt.Errorf("%w: no account with that name", errNotFound)
	}
	return mapErr(err)
}
