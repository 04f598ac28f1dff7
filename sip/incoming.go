package sip

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// ErrAnswered: a final answer (Answer, Reject, Redirect, or the UA's own
// 487/480/4xx) has already been sent for this INVITE.
var ErrAnswered = errors.New("sip: INVITE already answered")

// Address is the From or To of a received request.
type Address struct {
	DisplayName string // unquoted, may be empty
	URI         string // "sip:alice@example.com" (parameters of the URI kept, header params such as tag dropped)
	User        string // user part, may be empty
	Host        string // host[:port]
}

// AnswerOptions are the in-dialog callbacks and extra headers of a call we
// answer; they work as InviteRequest's fields of the same names.
type AnswerOptions struct {
	// OnReinvite answers an offer of a re-INVITE or UPDATE from the caller;
	// an error answers 488. nil mirrors our last SDP. Dialog goroutine; must
	// not block for long or call the Dialog's methods.
	OnReinvite func(offer []byte) (answer []byte, err error)
	// OnDTMF receives DTMF of SIP INFO. Dialog goroutine; must not block.
	OnDTMF func(digit rune, duration time.Duration)
	// OnInfo receives any other INFO. Dialog goroutine; must not block.
	OnInfo func(contentType string, body []byte)
	// KeepAliveInterval sends in-dialog OPTIONS at this interval. Zero means none.
	KeepAliveInterval time.Duration
	// Headers are added to the 200 OK (checked as InviteRequest.Headers).
	Headers []Header
}

// Timer values of RFC 3261 §17.1.1.1 for the 2xx retransmissions of a
// call we answer.
const (
	t1 = 500 * time.Millisecond
	t2 = 4 * time.Second
)

// unansweredTimeout is how long an INVITE may wait for the handler's
// final answer before the UA answers 480 itself (Timer C's spirit).
const unansweredTimeout = 3 * time.Minute

// IncomingInvite is an out-of-dialog INVITE offered to the handler set by
// UA.OnInvite. Its methods are safe for concurrent use; exactly one final
// answer (Answer, Reject, Redirect or the UA's own) is ever sent.
type IncomingInvite struct {
	ua        *UA
	req       *sipgox.Request
	tx        sipgox.ServerTransaction
	callID    string
	from, to  Address
	source    netip.AddrPort
	transport string
	offer     []byte

	done     chan struct{}
	doneOnce sync.Once

	mu        sync.Mutex
	final     bool // a final answer was sent (or is being sent)
	cancelled bool
	toTag     string
}

// CallID returns the INVITE's Call-ID.
func (in *IncomingInvite) CallID() string { return in.callID }

// From returns the caller (the From header).
func (in *IncomingInvite) From() Address { return in.from }

// To returns the To header (usually the number or user called).
func (in *IncomingInvite) To() Address { return in.to }

// RequestURI returns the Request-URI as received.
func (in *IncomingInvite) RequestURI() string { return in.req.Recipient.String() }

// RequestUser returns the user part of the Request-URI (may be empty).
func (in *IncomingInvite) RequestUser() string { return in.req.Recipient.User }

// Headers returns the headers as received, in order, except Via, Route,
// Record-Route, Content-Length and the credentials headers (Authorization,
// Proxy-Authorization), which are never exposed.
func (in *IncomingInvite) Headers() []Header { return exposedHeaders(in.req) }

// Source returns where the INVITE came from (the transport source address).
func (in *IncomingInvite) Source() netip.AddrPort { return in.source }

// Transport returns "udp", "tcp" or "tls".
func (in *IncomingInvite) Transport() string { return in.transport }

// Offer returns the SDP offer (a copy); nil for a delayed offer (an INVITE
// without body).
func (in *IncomingInvite) Offer() []byte {
	if in.offer == nil {
		return nil
	}
	return append([]byte(nil), in.offer...)
}

// Done is closed when the INVITE is over: answered and ACKed, rejected,
// redirected, cancelled by the caller (the UA answered 487 itself), or the
// UA closed.
func (in *IncomingInvite) Done() <-chan struct{} { return in.done }

// Cancelled reports whether the caller cancelled (CANCEL) before our final answer.
func (in *IncomingInvite) Cancelled() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cancelled
}

// Progress sends a provisional response (180 Ringing, 183 Session
// Progress; 101-199), with an SDP answer (early media) when sdp is not nil.
func (in *IncomingInvite) Progress(code int, reason string, sdp []byte) error {
	return errors.New("sip: not implemented yet")
}

// Reject sends a final 300-699 answer (ErrAnswered if a final answer was
// already sent). hdrs are added to the response (checked as
// InviteRequest.Headers).
func (in *IncomingInvite) Reject(code int, reason string, hdrs ...Header) error {
	return errors.New("sip: not implemented yet")
}

// Redirect answers 302 Moved Temporarily with a Contact per target (SIP
// URIs, validated).
func (in *IncomingInvite) Redirect(targets ...string) error {
	return errors.New("sip: not implemented yet")
}

// Answer sends 200 OK with sdp (our answer to the offer; for a delayed
// offer, our offer: the ACK then carries the peer's answer), retransmits
// it (T1 doubling up to T2) until the ACK arrives and returns the
// established Dialog. No ACK within 64*T1 (32 s): the UA sends BYE and
// returns a 408 *StatusError. ctx bounds the wait. opts are the in-dialog
// callbacks, as InviteRequest's.
func (in *IncomingInvite) Answer(ctx context.Context, sdp []byte, opts AnswerOptions) (*Dialog, error) {
	return nil, errors.New("sip: not implemented yet")
}

// OnInvite sets the handler of new calls (out-of-dialog INVITEs). nil (the
// default) answers 480 as before. The handler runs on a goroutine of its own
// per INVITE (never for retransmissions: the UA absorbs them) and may return
// before the INVITE is answered; it must eventually call exactly one of
// Answer, Reject or Redirect, unless Done closes first (CANCEL, UA closed).
// The UA sends 100 Trying itself at once. An INVITE nobody answers within
// 3 minutes gets 480 (RFC 3261 Timer C's spirit).
func (ua *UA) OnInvite(h func(*IncomingInvite)) {
	ua.mu.Lock()
	ua.onInvite = h
	ua.mu.Unlock()
}

func exposedHeaders(req *sipgox.Request) []Header { return nil }
