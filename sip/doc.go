// Package sip is sipstream's SIP user agent: it places calls (INVITE with
// an SDP offer, digest authentication on 401 and 407, CANCEL, ACK), keeps
// their dialogs (BYE both ways, INFO with DTMF and keyframe requests,
// re-INVITE and UPDATE answers for hold/unhold, OPTIONS keepalive, session
// timers), changes them (Dialog.Reinvite sends a new offer: hold, unhold;
// Dialog.Refer transfers the call, blind or attended with Replaces, and
// reports the transferee's NOTIFY progress) and registers (REGISTER with
// refresh and unREGISTER).
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
// transfer), RFC 5057 (dialog usages: what ends a dialog).
package sip
