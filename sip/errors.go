package sip

import (
	"context"
	"errors"
	"strconv"
)

// Sentinel errors callers branch on with errors.Is. A *StatusError matches
// the sentinel of its SIP status class (see StatusError.Is).
var (
	// ErrBusy: the callee is busy (486 Busy Here, 600 Busy Everywhere).
	ErrBusy = errors.New("sip: busy")
	// ErrNotFound: no such user (404 Not Found, 604 Does Not Exist Anywhere).
	ErrNotFound = errors.New("sip: not found")
	// ErrTimeout: no final answer in time (408 Request Timeout, a transaction
	// timeout, or the caller's context deadline while ringing).
	ErrTimeout = errors.New("sip: timeout")
	// ErrUnavailable: the callee is not reachable now (480 Temporarily Unavailable).
	ErrUnavailable = errors.New("sip: temporarily unavailable")
	// ErrCanceled: the call was cancelled before the answer (487 Request Terminated).
	ErrCanceled = errors.New("sip: request terminated")
	// ErrNotAcceptable: the callee accepts none of the offered media
	// (488 Not Acceptable Here, 606 Not Acceptable).
	ErrNotAcceptable = errors.New("sip: not acceptable")
	// ErrForbidden: 403 Forbidden (often wrong credentials on a PBX).
	ErrForbidden = errors.New("sip: forbidden")
	// ErrUnauthorized: 401/407 after our credentials were tried (or none were given).
	ErrUnauthorized = errors.New("sip: unauthorized")
	// ErrDeclined: 603 Decline.
	ErrDeclined = errors.New("sip: declined")
	// ErrServiceUnavailable: 503 Service Unavailable.
	ErrServiceUnavailable = errors.New("sip: service unavailable")
	// ErrServerError: any other 5xx.
	ErrServerError = errors.New("sip: server error")
	// ErrRejected matches every *StatusError (any non-2xx final answer).
	ErrRejected = errors.New("sip: rejected")

	// ErrInvalidParams: a request parameter (login, auth name, domain, URI,
	// display name, header, Call-ID …) violates the SIP grammar. The
	// returned error is a *ParamError that names the field.
	ErrInvalidParams = errors.New("sip: invalid parameters")
	// ErrRemoteBye: the dialog ended because the peer sent BYE.
	ErrRemoteBye = errors.New("sip: remote hangup")
	// ErrSessionExpired: the dialog ended because a session-timer refresh
	// failed or the peer stopped refreshing (RFC 4028).
	ErrSessionExpired = errors.New("sip: session expired")
	// ErrKeepAliveFailed: in-dialog OPTIONS keepalives went unanswered (the
	// peer vanished) or were answered 481.
	ErrKeepAliveFailed = errors.New("sip: keepalive failed")
	// ErrDialogClosed: the dialog has already ended.
	ErrDialogClosed = errors.New("sip: dialog closed")
	// ErrClosed: the UA (or registration) has been closed.
	ErrClosed = errors.New("sip: closed")
	// ErrDuplicateCallID: a dialog with this Call-ID is already in progress on this UA.
	ErrDuplicateCallID = errors.New("sip: duplicate Call-ID")
)

// StatusError is a final non-2xx SIP answer to one of our requests. Match
// its class with errors.Is (ErrBusy, ErrNotFound, …) or read the code with
// errors.As.
type StatusError struct {
	Method string // the request that was answered: "INVITE", "REGISTER", …
	Code   int    // SIP status code, 300–699
	Reason string // reason phrase as received
	// Err is an underlying cause (e.g. the transaction timeout behind a
	// locally generated 408); nil for answers received from the network.
	Err error
}

// Error returns e.g. "sip: INVITE: 486 Busy Here".
func (e *StatusError) Error() string {
	s := "sip: "
	if e.Method != "" {
		s += e.Method + ": "
	}
	s += strconv.Itoa(e.Code)
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause, if any.
func (e *StatusError) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's status class.
func (e *StatusError) Is(target error) bool {
	if target == ErrRejected {
		return true
	}
	return sentinelFor(e.Code) == target
}

func sentinelFor(code int) error {
	switch code {
	case 486, 600:
		return ErrBusy
	case 404, 604:
		return ErrNotFound
	case 408:
		return ErrTimeout
	case 480:
		return ErrUnavailable
	case 487:
		return ErrCanceled
	case 488, 606:
		return ErrNotAcceptable
	case 403:
		return ErrForbidden
	case 401, 407:
		return ErrUnauthorized
	case 603:
		return ErrDeclined
	case 503:
		return ErrServiceUnavailable
	}
	if code >= 500 && code < 600 {
		return ErrServerError
	}
	return nil
}

// ParamError says which request parameter is invalid and why. It matches
// ErrInvalidParams with errors.Is. Its message never contains passwords.
type ParamError struct {
	Field  string // "From", "AuthUser", "Domain", "Callee", "Headers[2]" …
	Reason string
}

// Error returns e.g. `sip: invalid parameters: From: space not allowed in user part`.
func (e *ParamError) Error() string {
	return "sip: invalid parameters: " + e.Field + ": " + e.Reason
}

// Is matches ErrInvalidParams.
func (e *ParamError) Is(target error) bool { return target == ErrInvalidParams }

func paramErr(field, reason string) error { return &ParamError{Field: field, Reason: reason} }

// StatusCode is the one place that maps an error from this package to the
// SIP status code that best describes it (for CDRs, logs and for answering
// SIP requests): the code of a *StatusError, 408 for timeouts, 487 for a
// cancelled context, 400 for invalid parameters, 481 for a closed dialog,
// 200 for nil, and 500 for anything else.
func StatusCode(err error) int {
	if err == nil {
		return 200
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	switch {
	case errors.Is(err, ErrInvalidParams):
		return 400
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrKeepAliveFailed), errors.Is(err, ErrSessionExpired):
		return 408
	case errors.Is(err, context.Canceled), errors.Is(err, ErrCanceled):
		return 487
	case errors.Is(err, ErrDialogClosed):
		return 481
	case errors.Is(err, ErrClosed):
		return 503
	}
	return 500
}
