package callmgr

import (
	"net/netip"
	"strconv"
	"time"

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
	// with a port (both true for a delayed offer).
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
	// sendrecv or recvonly), Record, AppKey, SRTP. CallID, Callee and the
	// SIP* fields are ignored (the INVITE decides them). ActionAnswer only.
	Params CallParams
	// Ring is how long to ring (180 Ringing) before answering. Zero answers
	// at once.
	Ring time.Duration
	// EarlyMedia sends 183 Session Progress with our SDP answer while
	// ringing and plays EarlySound to the caller (silence when nil); the
	// sinks start at the answer.
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

// InboundConfig says who may call the gateway (Config.OnIncoming).
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
	// IncomingUnauthorized: challenged (401) and not (yet) authenticated.
	IncomingUnauthorized IncomingResult = "unauthorized"
	// IncomingForbidden: not allowed to call (403).
	IncomingForbidden IncomingResult = "forbidden"
	// IncomingCancelled: the caller cancelled before the answer.
	IncomingCancelled IncomingResult = "cancelled"
	// IncomingOverloaded: refused 503 (MaxPending, MaxCalls, admission
	// control).
	IncomingOverloaded IncomingResult = "overloaded"
)

// IncomingResults lists every IncomingResult, in a fixed order.
var IncomingResults = []IncomingResult{IncomingAnswered, IncomingRejected, IncomingUnauthorized,
	IncomingForbidden, IncomingCancelled, IncomingOverloaded}

// IncomingCounts returns how many incoming INVITEs ended with each result
// since New.
func (m *Manager) IncomingCounts() map[IncomingResult]uint64 {
	out := make(map[IncomingResult]uint64, len(IncomingResults))
	for _, r := range IncomingResults {
		out[r] = 0
	}
	return out
}
