package callmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sip"
)

// IncomingCall describes a call offered to the gateway (an out-of-dialog
// INVITE) that passed Config.Inbound's checks: what Config.OnIncoming
// decides on. It is a copy.
type IncomingCall struct {
	// CallID is the SIP Call-ID; it is also the Manager's call ID if the
	// call is answered, when it is a valid CallParams.CallID and no live
	// call has it (otherwise a generated one).
	CallID string
	// Caller is the From user, CallerName its display name, CallerURI its
	// URI.
	Caller     string
	CallerName string
	CallerURI  string
	// Callee is the Request-URI user (the To user when empty), CalleeURI
	// the To URI, RequestURI the Request-URI as received.
	Callee     string
	CalleeURI  string
	RequestURI string
	// Headers are the INVITE's headers as received, except Via, Route,
	// Record-Route, Content-Length and credentials.
	Headers []sip.Header
	// Source is where the INVITE came from, Transport "udp", "tcp" or
	// "tls".
	Source    netip.AddrPort
	Transport string
	// Account is the Name of the Account the call came in for; empty if
	// none.
	Account string
	// AuthUser is the Inbound.Users user that authenticated; empty if
	// none.
	AuthUser string
	// Audio and Video report the offered media: the offer has that m= line
	// with a port and a codec sipstream takes (both true for a delayed
	// offer). An offer with neither is refused 488 before OnIncoming.
	Audio, Video bool
	// SRTP is true when the offer is RTP/SAVP with SDES keys.
	SRTP bool
	// DelayedOffer is true for an INVITE without SDP: our offer goes in
	// the 200 OK, the caller's answer in the ACK.
	DelayedOffer bool
}

// Action says what a Decision does with an incoming call.
type Action int

// Actions of a Decision.
const (
	// ActionAnswer answers the call (after Decision.Ring) with
	// Decision.Params.
	ActionAnswer Action = iota + 1
	// ActionReject refuses it with Decision.Code and Reason.
	ActionReject
	// ActionRedirect answers 302 Moved Temporarily to Decision.Target.
	ActionRedirect
)

// String returns "answer", "reject", "redirect" or "Action(n)".
func (a Action) String() string {
	switch a {
	case ActionAnswer:
		return "answer"
	case ActionReject:
		return "reject"
	case ActionRedirect:
		return "redirect"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Decision is what Config.OnIncoming decided for an incoming call. Build it
// with AnswerWith, RejectWith or RedirectTo, then set the optional fields.
type Decision struct {
	// Action is what to do. The zero value is invalid (the INVITE is
	// refused with 500).
	Action Action
	// Params are the answered call's sinks and options, as for StartCall:
	// ToStream, RTMPURL, RTMPStream, HasAudio, HasVideo (what we send back:
	// sendrecv or recvonly), Record, AppKey, SRTP (SRTPRequired refuses a
	// plain offer with 488, SRTPOff an RTP/SAVP-only one, SRTPOptional
	// answers in kind; when neither Params nor Config.SRTP chooses, the
	// call answers in kind; a delayed offer gets our SRTP offer only when
	// required). CallID, Callee,
	// the SIP* fields, VisibleName, Headers and RingTimeout are ignored (the
	// INVITE decides them). ActionAnswer only.
	Params CallParams
	// Ring is how long to ring (180 Ringing) before answering. Zero answers
	// at once. The user agent answers 480 to an INVITE still unanswered
	// after 3 minutes.
	Ring time.Duration
	// EarlyMedia sends 183 Session Progress with our SDP answer while
	// ringing and plays EarlySound to the caller (silence when nil; it
	// stops at the answer); the sinks start at the answer. A delayed offer
	// has nothing to answer yet: it rings with 180 instead.
	EarlyMedia bool
	EarlySound sound.Source
	// Code and Reason are the SIP status (400-699) and reason phrase of
	// ActionReject. Zero Code means 603 Decline; empty Reason the code's
	// usual phrase.
	Code   int
	Reason string
	// Target is the SIP URI of ActionRedirect's 302 Contact.
	Target string
}

// AnswerWith returns a Decision that answers at once with p.
func AnswerWith(p CallParams) Decision { return Decision{Action: ActionAnswer, Params: p} }

// RejectWith returns a Decision that refuses the call with code (400-699;
// zero means 603 Decline) and reason (empty: the code's usual phrase).
func RejectWith(code int, reason string) Decision {
	return Decision{Action: ActionReject, Code: code, Reason: reason}
}

// RedirectTo returns a Decision that answers 302 Moved Temporarily with
// target (a SIP URI) as Contact.
func RedirectTo(target string) Decision { return Decision{Action: ActionRedirect, Target: target} }

// InboundConfig says who may call the gateway (Config.OnIncoming). Its
// String and LogValue leave the passwords out.
//
// Who may call: an INVITE is considered only when it comes from an
// AllowFrom network, or authenticates as one of Users (digest, 401
// challenge), or comes from the registrar/outbound proxy address of a
// registered Account with the Request-URI user of that account, or from the
// source address of a Registrar binding. Anything else gets 401 when Users
// is set (a challenge), else 403. With OnIncoming set but none of these
// configured, every INVITE gets 403. A refused INVITE allocates no port,
// starts no goroutine of the Manager's, and is counted
// (Manager.IncomingCounts).
type InboundConfig struct {
	// AllowFrom accepts INVITEs from these source networks without
	// authentication.
	AllowFrom []netip.Prefix
	// Users are the digest users callers may authenticate as (user →
	// password). Secrets: never logged.
	Users map[string]string
	// Realm of the digest challenge. Zero means "sipstream".
	Realm string
	// Registrar lets Users register to the gateway (a trunk or phone);
	// calls from a registered contact's source address are then accepted.
	Registrar bool
	// DecisionTimeout bounds OnIncoming. Zero means 10 s.
	DecisionTimeout time.Duration
	// MaxPending caps INVITEs waiting for a decision or ringing at once;
	// more get 503. Zero means 100.
	MaxPending int
}

// String returns a summary for logs: the user names, not their passwords.
func (ic InboundConfig) String() string {
	users := make([]string, 0, len(ic.Users))
	for u := range ic.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	return fmt.Sprintf("InboundConfig{AllowFrom:%v Users:%v Realm:%q Registrar:%t DecisionTimeout:%s MaxPending:%d}",
		ic.AllowFrom, users, ic.Realm, ic.Registrar, ic.DecisionTimeout, ic.MaxPending)
}

// GoString is String, so %#v cannot print a password either.
func (ic InboundConfig) GoString() string { return ic.String() }

// LogValue makes slog print the redacted form.
func (ic InboundConfig) LogValue() slog.Value { return slog.StringValue(ic.String()) }

// IncomingResult is what became of an incoming INVITE, as counted by
// Manager.IncomingCounts.
type IncomingResult string

// Incoming INVITE results.
const (
	// IncomingAnswered: answered (a Call was started).
	IncomingAnswered IncomingResult = "answered"
	// IncomingRejected: refused by the decision, its error, a refused
	// Params, or no decision (OnIncoming nil or too slow); redirects count
	// here too.
	IncomingRejected IncomingResult = "rejected"
	// IncomingUnauthorized: challenged (401 without credentials or with a
	// stale nonce). A caller that then authenticates sends a second INVITE,
	// counted by its own result.
	IncomingUnauthorized IncomingResult = "unauthorized"
	// IncomingForbidden: not allowed to call (403).
	IncomingForbidden IncomingResult = "forbidden"
	// IncomingCancelled: the caller cancelled before the answer.
	IncomingCancelled IncomingResult = "cancelled"
	// IncomingOverloaded: refused 503 (MaxPending, MaxCalls, admission
	// control).
	IncomingOverloaded IncomingResult = "overloaded"
)

// incomingResults indexes Manager.inCounts.
var incomingResults = [...]IncomingResult{IncomingAnswered, IncomingRejected, IncomingUnauthorized,
	IncomingForbidden, IncomingCancelled, IncomingOverloaded}

// IncomingCounts returns how many incoming INVITEs ended with each result
// since New (every result is a key, zero or not).
func (m *Manager) IncomingCounts() map[IncomingResult]uint64 {
	out := make(map[IncomingResult]uint64, len(incomingResults))
	for i, r := range incomingResults {
		out[r] = m.inCounts[i].Load()
	}
	return out
}

const (
	defaultDecisionTimeout = 10 * time.Second
	defaultMaxPending      = 100
	defaultRealm           = "sipstream"
)

// validate returns the normalized copy of ic.
func (ic InboundConfig) validate() (InboundConfig, error) {
	q := ic
	if q.DecisionTimeout < 0 || q.MaxPending < 0 {
		return q, fmt.Errorf("callmgr: Config.Inbound: negative DecisionTimeout or MaxPending")
	}
	if q.DecisionTimeout == 0 {
		q.DecisionTimeout = defaultDecisionTimeout
	}
	if q.MaxPending == 0 {
		q.MaxPending = defaultMaxPending
	}
	if q.Realm == "" {
		q.Realm = defaultRealm
	}
	if hasControl(q.Realm) || strings.ContainsRune(q.Realm, '"') {
		return q, fmt.Errorf("callmgr: Config.Inbound.Realm: control characters or quotes")
	}
	q.AllowFrom = append([]netip.Prefix(nil), q.AllowFrom...)
	for i, p := range q.AllowFrom {
		if !p.IsValid() {
			return q, fmt.Errorf("callmgr: Config.Inbound.AllowFrom[%d] is not a network", i)
		}
		q.AllowFrom[i] = p.Masked()
	}
	users := make(map[string]string, len(q.Users))
	for u, pw := range q.Users {
		if err := sip.ValidateUser(u); err != nil {
			return q, fmt.Errorf("callmgr: Config.Inbound.Users: %w", err)
		}
		if hasControl(pw) {
			return q, fmt.Errorf("callmgr: Config.Inbound.Users: the password of %q has control characters", u)
		}
		users[u] = pw
	}
	q.Users = users
	if q.Registrar && len(q.Users) == 0 {
		return q, fmt.Errorf("callmgr: Config.Inbound.Registrar needs Users")
	}
	return q, nil
}

// serveInbound hands the user agent what it answers by itself (New).
func (m *Manager) serveInbound() error {
	in := m.cfg.Inbound
	sc := serveConfig{Users: in.Users, Realm: in.Realm, Registrar: in.Registrar, OnBinding: m.onBinding}
	if m.cfg.OnIncoming != nil {
		sc.OnInvite = m.onInvite
	}
	if sc.OnInvite == nil && !sc.Registrar {
		return nil
	}
	return m.be.sig.Serve(sc)
}

func (m *Manager) countIncoming(r IncomingResult) {
	for i, x := range incomingResults {
		if x == r {
			m.inCounts[i].Add(1)
		}
	}
}

// onInvite handles a new INVITE (on the user agent's goroutine for it):
// who may call, the limits, the decision, then the call.
func (m *Manager) onInvite(inv incomingInvite) {
	m.mu.Lock()
	closing := m.closing
	if !closing {
		m.wg.Add(1) // Close waits for the handler
	}
	m.mu.Unlock()
	if closing {
		_ = inv.Reject(480, "Temporarily Unavailable")
		return
	}
	defer m.wg.Done()
	info := inv.Info()
	acct, authUser, ok := m.mayCall(inv, &info)
	if !ok {
		return
	}
	if m.pending.Add(1) > int64(m.cfg.Inbound.MaxPending) {
		m.pending.Add(-1)
		m.refuseIncoming(inv, ErrTooManyCalls)
		return
	}
	release := sync.OnceFunc(func() { m.pending.Add(-1) })
	defer func() {
		if release != nil {
			release()
		}
	}()
	if err := m.admissible("", "", nil); err != nil {
		m.refuseIncoming(inv, err)
		return
	}
	ic, err := m.describe(inv, &info, acct, authUser)
	if err != nil {
		m.refuseIncoming(inv, err)
		return
	}
	ctx, cancel := context.WithTimeout(m.life, m.cfg.Inbound.DecisionTimeout)
	go func() {
		select {
		case <-inv.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	d, err := m.cfg.OnIncoming(ctx, ic)
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()
	log := m.cfg.Logger.With("callID", info.CallID, "caller", ic.Caller, "callee", ic.Callee)
	select {
	case <-inv.Done():
		if inv.Cancelled() {
			m.countIncoming(IncomingCancelled)
		}
		return
	default:
	}
	switch {
	case m.life.Err() != nil:
		log.Info("incoming call: the Manager is closing")
		m.rejectIncoming(inv, 480, "Temporarily Unavailable")
		return
	case timedOut:
		log.Info("incoming call: no decision in time")
		m.rejectIncoming(inv, 480, "Temporarily Unavailable")
		return
	case err != nil:
		log.Info("incoming call: decision failed", "err", err)
		m.rejectIncoming(inv, 500, "Server Internal Error")
		return
	}
	switch d.Action {
	case ActionAnswer:
		in := &incomingSetup{inv: inv, decision: d, caller: ic.Caller, callee: ic.Callee, offer: inv.Offer(), release: release}
		c, err := m.answerIncoming(in, d.Params, info)
		if err != nil {
			log.Info("incoming call: refused", "err", err)
			m.refuseIncoming(inv, err)
			return
		}
		release = nil // the call's setup releases it
		log.Info("incoming call: answering", "id", c.ID(), "ring", d.Ring, "earlyMedia", d.EarlyMedia)
	case ActionReject:
		code, reason := d.Code, d.Reason
		if code == 0 {
			code = 603
			if reason == "" {
				reason = "Decline"
			}
		}
		if code < 400 || code > 699 {
			log.Info("incoming call: decision's Code not 400-699", "code", code)
			code, reason = 500, "Server Internal Error"
		}
		if reason == "" {
			reason = reasonPhrase(code)
		}
		m.rejectIncoming(inv, code, reason)
	case ActionRedirect:
		m.countIncoming(IncomingRejected)
		if err := inv.Redirect(d.Target); err != nil {
			log.Info("incoming call: redirect failed", "err", err)
			_ = inv.Reject(500, "Server Internal Error")
		}
	default:
		log.Info("incoming call: decision without an Action")
		m.rejectIncoming(inv, 500, "Server Internal Error")
	}
}

// answerIncoming starts the call that answers in: p as StartCall takes it,
// with the INVITE's Call-ID when it can be the call's ID.
func (m *Manager) answerIncoming(in *incomingSetup, p CallParams, info inviteInfo) (*Call, error) {
	p.Callee = info.RequestURI
	if sip.ValidateCallee(p.Callee, "") != nil {
		p.Callee = "sip:incoming@invalid" // only validated: the call shows in.callee
	}
	p.SIPLogin, p.SIPAuthName, p.SIPPassword, p.SIPDomain = "", "", "", ""
	p.SIPOutboundProxy, p.SIPPort, p.SIPTransport, p.SIPRegisterRequired = "", 0, "", false
	p.Headers, p.VisibleName = nil, ""
	p.RingTimeout = in.decision.Ring + answerWait
	p.CallID = ""
	if p.SRTP == SRTPDefault && m.cfg.srtpUnset {
		// Nobody chose: answer the caller in kind, SRTP to an RTP/SAVP
		// offer and plain RTP to a plain one (a phone set to SRTP only must
		// not be refused for a default).
		p.SRTP = SRTPOptional
	}
	if _, live := m.Call(info.CallID); !live && sip.ValidateCallID(info.CallID) == nil {
		p.CallID = info.CallID
	}
	for try := 0; ; try++ {
		q, err := p.validate(&m.cfg)
		if err != nil {
			return nil, err
		}
		q.Callee = in.callee
		c, err := m.launch(q, p.ToStream == "", in)
		if errors.Is(err, ErrDuplicateCallID) && try == 0 {
			p.CallID = "" // taken meanwhile: a generated one
			continue
		}
		return c, err
	}
}

// describe is the IncomingCall OnIncoming gets. The offer is answered once
// with placeholder ports (nothing allocated) to learn what it holds; an
// offer sipstream cannot answer fails with ErrNegotiation.
func (m *Manager) describe(inv incomingInvite, info *inviteInfo, acct, authUser string) (IncomingCall, error) {
	callee := info.RequestUser
	if callee == "" {
		callee = info.To.User
	}
	ic := IncomingCall{
		CallID:     info.CallID,
		Caller:     info.From.User,
		CallerName: info.From.DisplayName,
		CallerURI:  info.From.URI,
		Callee:     callee,
		CalleeURI:  info.To.URI,
		RequestURI: info.RequestURI,
		Headers:    info.Headers,
		Source:     info.Source,
		Transport:  info.Transport,
		Account:    acct,
		AuthUser:   authUser,
	}
	offer := inv.Offer()
	if offer == nil {
		ic.DelayedOffer, ic.Audio, ic.Video = true, true, true
		return ic, nil
	}
	_, specs, err := m.be.sdp.Answer(offer, offerConfig{
		Addr: m.cfg.PublicIP, AudioPort: 9, VideoPort: 9, AudioDir: media.SendRecv, VideoDir: media.SendRecv,
		AudioCodecs: m.cfg.AudioCodecs, VideoCodecs: m.cfg.VideoCodecs, SessionID: 1, Version: 1, SRTP: true,
	})
	if err != nil {
		return ic, fmt.Errorf("%w: %w", ErrNegotiation, err)
	}
	for _, s := range specs {
		ic.Audio = ic.Audio || s.Kind == media.KindAudio
		ic.Video = ic.Video || s.Kind == media.KindVideo
	}
	ic.SRTP = secureSpecs(specs)
	return ic, nil
}

// mayCall applies Inbound's rules: the account the call came in for, the
// authenticated user. A refused INVITE has been answered and counted.
func (m *Manager) mayCall(inv incomingInvite, info *inviteInfo) (acct, authUser string, ok bool) {
	src := info.Source.Addr().Unmap()
	if a := m.accountFrom(src, info.RequestUser); a != "" {
		return a, "", true
	}
	for _, p := range m.cfg.Inbound.AllowFrom {
		if p.Contains(src) {
			return "", "", true
		}
	}
	for _, b := range m.be.sig.Bindings() {
		if boundSource(b, info.Source, info.Transport) {
			return "", "", true
		}
	}
	if len(m.cfg.Inbound.Users) > 0 {
		user, err := inv.Authenticate()
		if err == nil {
			return "", user, true
		}
		if errors.Is(err, sip.ErrUnauthorized) {
			m.countIncoming(IncomingUnauthorized)
		} else {
			m.countIncoming(IncomingForbidden)
		}
		return "", "", false
	}
	_ = inv.Reject(403, "Forbidden")
	m.countIncoming(IncomingForbidden)
	return "", "", false
}

// refuseIncoming answers an INVITE the Manager cannot take with the SIP
// status that fits err.
func (m *Manager) refuseIncoming(inv incomingInvite, err error) {
	switch {
	case errors.Is(err, ErrTooManyCalls) || errors.Is(err, ErrOverloaded):
		m.countIncoming(IncomingOverloaded)
		_ = inv.Reject(503, "Service Unavailable")
	case errors.Is(err, ErrClosed):
		m.rejectIncoming(inv, 480, "Temporarily Unavailable")
	case errors.Is(err, ErrDuplicateStream):
		m.rejectIncoming(inv, 486, "Busy Here")
	case errors.Is(err, ErrNegotiation):
		m.rejectIncoming(inv, 488, "Not Acceptable Here")
	default:
		m.rejectIncoming(inv, 500, "Server Internal Error")
	}
}

// rejectIncoming counts before it answers, so that whoever sees the answer
// (the caller, a test reading /metrics) finds it counted. A CANCEL that
// crosses the rejection is counted as a rejection.
func (m *Manager) rejectIncoming(inv incomingInvite, code int, reason string) {
	if inv.Cancelled() {
		m.countIncoming(IncomingCancelled)
		return
	}
	m.countIncoming(IncomingRejected)
	_ = inv.Reject(code, reason)
}

// reasonPhrase is the usual phrase of a SIP status a Decision gave without
// one.
func reasonPhrase(code int) string {
	switch code {
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	}
	return "Rejected"
}

// boundSource reports whether an INVITE from src over transport comes from
// the phone or trunk that registered binding b. Over UDP it must come from
// the very address and port that registered (another program on the same
// host is a stranger); over TCP and TLS a phone may open a new connection,
// so the host is enough.
func boundSource(b sip.Binding, src netip.AddrPort, transport string) bool {
	if b.Source.Addr().Unmap() != src.Addr().Unmap() {
		return false
	}
	if b.Transport == "udp" || transport == "udp" {
		return b.Transport == transport && b.Source.Port() == src.Port()
	}
	return true
}
