package callmgr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sipstream/sipstream/sip"
)

// sipAdapter plugs the sip user agent in.
type sipAdapter struct {
	ua *sip.UA
	// in is what Serve set up: the Authenticator of Inbound.Users (one per
	// Manager) and the registrar; nil before Serve.
	in *sipInbound
}

type sipInbound struct {
	auth      *sip.Authenticator
	registrar *sip.Registrar
}

func (a sipAdapter) Register(ctx context.Context, acct account) (registration, error) {
	r, err := a.ua.Register(ctx, sip.RegisterRequest{
		User:          acct.User,
		AuthUser:      acct.AuthUser,
		Password:      acct.Password,
		Domain:        acct.Domain,
		Registrar:     registrarAddr(acct),
		OutboundProxy: proxyAddr(acct),
		Transport:     acct.Transport,
		Expires:       acct.Expires,
		OnRefresh:     acct.OnRefresh,
	})
	if err != nil {
		return nil, sipErr(err)
	}
	return r, nil
}

// Serve sets the UA's INVITE handler and, when asked, its registrar; one
// Authenticator checks both.
func (a sipAdapter) Serve(cfg serveConfig) error {
	if len(cfg.Users) > 0 {
		users := cfg.Users
		a.in.auth = sip.NewAuthenticator(cfg.Realm, func(user string) (string, bool) {
			pw, ok := users[user]
			return pw, ok
		})
	}
	if cfg.Registrar {
		if a.in.auth == nil {
			return errors.New("callmgr: Inbound.Registrar needs Inbound.Users")
		}
		r, err := a.ua.ServeRegistrar(sip.RegistrarConfig{Auth: a.in.auth, OnChange: cfg.OnBinding})
		if err != nil {
			return fmt.Errorf("callmgr: registrar: %w", err)
		}
		a.in.registrar = r
	}
	if h := cfg.OnInvite; h != nil {
		auth := a.in.auth
		a.ua.OnInvite(func(in *sip.IncomingInvite) { h(sipIncoming{in: in, auth: auth}) })
	}
	return nil
}

func (a sipAdapter) Bindings() []sip.Binding {
	if a.in.registrar == nil {
		return nil
	}
	return a.in.registrar.Bindings()
}

// registrarAddr is where REGISTER goes when SIPPort names the domain's
// port: "domain:port" (empty otherwise: the sip package then uses the
// outbound proxy or the domain).
func registrarAddr(acct account) string {
	if acct.Port == 0 || acct.Proxy != "" || hasPort(acct.Domain) {
		return ""
	}
	return joinHostPort(acct.Domain, acct.Port)
}

// proxyAddr is the outbound proxy with SIPPort when it names no port of its
// own: the REST API's sipPort is the port of the SIP server, whichever of
// domain and proxy that is.
func proxyAddr(acct account) string {
	if acct.Proxy == "" || acct.Port == 0 || hasPort(acct.Proxy) || strings.Contains(acct.Proxy, ":") && !strings.HasPrefix(acct.Proxy, "[") {
		return acct.Proxy
	}
	return joinHostPort(acct.Proxy, acct.Port)
}

func (a sipAdapter) Invite(ctx context.Context, req *inviteRequest) (dialog, error) {
	d, err := a.ua.Invite(ctx, sip.InviteRequest{
		Callee:        req.Callee,
		From:          req.User,
		DisplayName:   req.DisplayName,
		AuthUser:      req.AuthUser,
		Password:      req.Password,
		Domain:        req.Domain,
		OutboundProxy: proxyAddr(req.account),
		Port:          req.Port,
		Transport:     req.Transport,
		CallID:        req.CallID,
		Headers:       req.Headers,
		Offer:         req.Offer,
		OnProgress: func(p sip.Progress) {
			req.OnProgress(p.StatusCode, p.Reason, p.SDP)
		},
		OnReinvite: req.OnReinvite,
		OnDTMF: func(d rune, _ time.Duration) {
			req.OnDTMF(d)
		},
	})
	if err != nil {
		return nil, sipErr(err)
	}
	return sipDialog{d}, nil
}

// sipErr turns the sip package's final answers into *SIPError (code and
// reason for the call's status); other errors pass unchanged.
func sipErr(err error) error {
	var se *sip.StatusError
	if errors.As(err, &se) {
		return &SIPError{Code: se.Code, Reason: se.Reason, Err: err}
	}
	if errors.Is(err, sip.ErrTimeout) {
		return &SIPError{Code: 408, Reason: "Request Timeout", Err: err}
	}
	return err
}

// sipIncoming is an incoming INVITE of the UA.
type sipIncoming struct {
	in   *sip.IncomingInvite
	auth *sip.Authenticator // nil: no users
}

func (s sipIncoming) Info() inviteInfo {
	return inviteInfo{
		CallID:      s.in.CallID(),
		From:        s.in.From(),
		To:          s.in.To(),
		RequestURI:  s.in.RequestURI(),
		RequestUser: s.in.RequestUser(),
		Headers:     s.in.Headers(),
		Source:      s.in.Source(),
		Transport:   s.in.Transport(),
	}
}

func (s sipIncoming) Offer() []byte         { return s.in.Offer() }
func (s sipIncoming) Done() <-chan struct{} { return s.in.Done() }
func (s sipIncoming) Cancelled() bool       { return s.in.Cancelled() }
func (s sipIncoming) Progress(code int, reason string, sdp []byte) error {
	return s.in.Progress(code, reason, sdp)
}
func (s sipIncoming) Reject(code int, reason string) error { return s.in.Reject(code, reason) }
func (s sipIncoming) Redirect(target string) error         { return s.in.Redirect(target) }

func (s sipIncoming) Authenticate() (string, error) {
	if s.auth == nil {
		_ = s.in.Reject(403, "Forbidden")
		return "", sip.ErrForbidden
	}
	return s.in.Authenticate(s.auth)
}

func (s sipIncoming) Answer(ctx context.Context, sdp []byte, opts answerOptions) (dialog, error) {
	d, err := s.in.Answer(ctx, sdp, sip.AnswerOptions{
		OnReinvite: opts.OnReinvite,
		OnDTMF:     func(d rune, _ time.Duration) { opts.OnDTMF(d) },
	})
	if err != nil {
		return nil, sipErr(err)
	}
	return sipDialog{d}, nil
}

type sipDialog struct{ d *sip.Dialog }

func (s sipDialog) AnswerSDP() []byte                         { return s.d.AnswerSDP() }
func (s sipDialog) Done() <-chan struct{}                     { return s.d.Done() }
func (s sipDialog) Bye(ctx context.Context) error             { return s.d.Bye(ctx) }
func (s sipDialog) RequestKeyframe(ctx context.Context) error { return s.d.RequestKeyframe(ctx) }
func (s sipDialog) SendDTMF(ctx context.Context, digit rune, relay bool) error {
	return s.d.SendDTMF(ctx, digit, relay)
}

func (s sipDialog) Reinvite(ctx context.Context, offer []byte) ([]byte, error) {
	return s.d.Reinvite(ctx, offer)
}

func (s sipDialog) Refer(ctx context.Context, target string, replaces dialog, onProgress func(int, string)) error {
	opts := sip.ReferOptions{OnProgress: func(p sip.ReferProgress) {
		code := p.StatusCode
		if p.Final && code < 200 {
			code = 0 // the subscription ended without a final report
		}
		onProgress(code, p.Reason)
	}}
	if r, ok := replaces.(sipDialog); ok {
		opts.Replaces = r.d
	}
	return s.d.Refer(ctx, target, opts)
}

// PeerAllows: a UA that sends Allow in its answer to an INVITE lists
// INVITE there, so no INVITE means no Allow header: unknown, tried.
// (Supported: replaces is not checked: phones often leave their extensions
// out (baresip 1.0 sends no Supported: replaces); a peer that cannot
// replace a call reports the failure by NOTIFY.)
func (s sipDialog) PeerAllows(method string) bool {
	return s.d.PeerAllows(method) || !s.d.PeerAllows("INVITE")
}

func (s sipDialog) Err() error {
	err := s.d.Err()
	if errors.Is(err, sip.ErrRemoteBye) {
		return ErrRemoteHangup
	}
	return err
}
