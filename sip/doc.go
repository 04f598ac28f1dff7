// Package sip is sipstream's SIP user agent: it places calls (INVITE with
// an SDP offer, digest authentication on 401 and 407, CANCEL, ACK), keeps
// their dialogs (BYE both ways, INFO with DTMF and keyframe requests,
// re-INVITE and UPDATE answers for hold/unhold, OPTIONS keepalive, session
// timers), changes them (Dialog.Reinvite sends a new offer: hold, unhold;
// Dialog.Refer transfers the call, blind or attended with Replaces, and
// reports the transferee's NOTIFY progress) and registers (REGISTER with
// refresh and unREGISTER).
//
// It also answers calls. UA.OnInvite sets a handler that gets each new
// INVITE as an *IncomingInvite, on a goroutine of its own, after the UA
// has sent 100 Trying, absorbed retransmissions and refused what it cannot
// offer (malformed requests, a body that is not SDP, a loop: 400, 415,
// 483, 482 …). The handler reads the caller (From, To, Request-URI,
// headers, source address, the SDP offer, nil for a delayed offer),
// optionally authenticates it with an Authenticator (digest, stateless
// nonces: 401 then 403), may send 180/183 with early media (Progress) and
// ends with exactly one of Answer, Reject or Redirect. Answer retransmits
// the 200 until the caller's ACK and returns a Dialog that works like one
// we placed (Bye, SendDTMF, Reinvite, Refer …; Dialog.Incoming reports
// it). A CANCEL is answered by the UA (200, 487) and closes Done; an
// INVITE nobody answers within 3 minutes gets 480. ServeRegistrar makes the
// UA a registrar for the same Authenticator's users (trunks and phones
// that register to us), with bindings kept in memory.
//
// It is built on github.com/emiago/sipgo, whose types never appear in this
// package's API. Everything a caller passes in (login, auth name, domain,
// display name, Call-ID, custom headers) is checked against the SIP grammar
// first: a bad value is a *ParamError (ErrInvalidParams), never a
// malformed request. The same rules are exported (ValidateUser,
// ValidateHostPort, ValidateCallID, ValidateCallee, ValidateHeader,
// IsReservedHeader …) with their limits (MaxUserLen, MaxCallIDLen …), so
// the layers above check a request before placing it and give the same
// answer. Failures are typed: a non-2xx answer is a *StatusError
// that matches ErrBusy, ErrNotFound, ErrTimeout, … with errors.Is, and
// StatusCode maps any error of this package to a SIP status code.
//
// Each Dialog is owned by one goroutine; hooks (OnReinvite, OnDTMF, OnInfo)
// run on it and must not block for long. Teardown (Bye, CANCEL,
// unREGISTER) runs on a context the caller's cancellation cannot end, with
// Config.CleanupTimeout as its bound.
//
// Interoperability notes: the UA listens on one concrete IPv4 address (or
// 0.0.0.0 as "udp4") because sipgo binds "udp" on 0.0.0.0 as [::]; the
// outbound proxy and the Record-Route route set are applied to every
// in-dialog request here, since sipgo's dialog helpers do not reuse them.
//
// Specification: RFC 3261 (SIP), RFC 3581 (rport), RFC 4028 (session
// timers), RFC 3311 (UPDATE), RFC 6086 (INFO), RFC 5168 (picture_fast_update),
// RFC 3264 (offer/answer directions), RFC 2617/RFC 8760 (digest), RFC 3515
// (REFER), RFC 3420 (message/sipfrag), RFC 3891 (Replaces), RFC 5589 (call
// transfer), RFC 5057 (dialog usages: what ends a dialog), RFC 6026 (2xx
// retransmission by the UAS core).
package sip
