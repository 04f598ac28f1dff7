package callmgr

import (
	"errors"
	"fmt"

	"github.com/sipstream/sipstream/sip"
)

// Sentinel errors. Callers branch on them with errors.Is; the REST layer maps
// ErrInvalidParams to 400, ErrCallNotFound and ErrSinkNotFound to 404,
// ErrDuplicateCallID, ErrDuplicateStream and ErrDuplicateSinkID to 409.
var (
	// ErrCallNotFound: no live call has that call ID.
	ErrCallNotFound = errors.New("callmgr: call not found")
	// ErrDuplicateCallID: a live call already has that call ID (conflict).
	ErrDuplicateCallID = errors.New("callmgr: duplicate call ID")
	// ErrDuplicateStream: a live call already publishes to that RTMP URL and
	// stream name (conflict). Sinks added with AddSink are not limited.
	ErrDuplicateStream = errors.New("callmgr: duplicate RTMP URL and stream name")
	// ErrInvalidParams matches every *ParamError (errors.Is).
	ErrInvalidParams = errors.New("callmgr: invalid parameters")
	// ErrStreamNotFound: no live call publishes that stream (ToStream).
	ErrStreamNotFound = errors.New("callmgr: stream not found")
	// ErrSinkNotFound: no live call has a sink with that ID.
	ErrSinkNotFound = errors.New("callmgr: sink not found")
	// ErrDuplicateSinkID: a sink with that ID exists already (conflict).
	ErrDuplicateSinkID = errors.New("callmgr: duplicate sink ID")
	// ErrClosed: the Manager is closed or closing.
	ErrClosed = errors.New("callmgr: manager closed")
	// ErrCallEnded: the call ended (or is ending) before the request could
	// be carried out.
	ErrCallEnded = errors.New("callmgr: call ended")
	// ErrNotEstablished: the request needs an answered call (DTMF).
	ErrNotEstablished = errors.New("callmgr: call not established")
	// ErrTooManyCalls: Config.MaxCalls calls are live already.
	ErrTooManyCalls = errors.New("callmgr: too many calls")
	// ErrNotConfigured: the Manager has no backend for the request (for
	// example recording without Config.RecordDir).
	ErrNotConfigured = errors.New("callmgr: not configured")

	// Reasons a call ended, returned by Call.Err (wrapped where there is more
	// to say).

	// ErrRemoteHangup: the peer sent BYE.
	ErrRemoteHangup = errors.New("callmgr: peer hung up")
	// ErrNoAnswer: the peer did not answer within the ring timeout; the
	// INVITE was cancelled.
	ErrNoAnswer = errors.New("callmgr: no answer")
	// ErrMediaTimeout: no media arrived for too long; the call was hung up.
	ErrMediaTimeout = errors.New("callmgr: media timeout")
	// ErrRTMPFailed: the call's RTMP leg (CallParams.RTMPURL) gave up
	// reconnecting; the call was hung up.
	ErrRTMPFailed = errors.New("callmgr: RTMP connection failed")
	// ErrNegotiation: the peer's SDP answer had nothing usable.
	ErrNegotiation = errors.New("callmgr: media negotiation failed")
)

// ParamError says which parameter of a request is missing or malformed.
// errors.Is(err, ErrInvalidParams) holds for every *ParamError. Field names
// the parameter the way Go spells it, one of the Field constants for
// StartCall; a REST layer maps it to its own name (FieldHeaders is the WCS
// API's "sipHeaders"). When the value breaks the SIP grammar, Err is the
// *sip.ParamError behind Reason (so errors.Is(err, sip.ErrInvalidParams)
// holds too); it is nil for callmgr's own rules. Neither Field nor Reason
// ever contains a password or a stream key.
type ParamError struct {
	Field  string
	Reason string
	Err    error
}

// Error returns e.g. "callmgr: invalid parameters: SIPLogin: space not
// allowed in a SIP user part (RFC 3261 §25.1)".
func (e *ParamError) Error() string {
	return fmt.Sprintf("callmgr: invalid parameters: %s: %s", e.Field, e.Reason)
}

// Is matches ErrInvalidParams.
func (e *ParamError) Is(target error) bool { return target == ErrInvalidParams }

// Unwrap returns the SIP grammar error behind e, nil if none.
func (e *ParamError) Unwrap() error { return e.Err }

func paramErr(field, format string, args ...any) error {
	return &ParamError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// grammarErr relabels an error from sip's validators with field; nil stays
// nil.
func grammarErr(field string, err error) error {
	if err == nil {
		return nil
	}
	reason := err.Error()
	var pe *sip.ParamError
	if errors.As(err, &pe) {
		reason = pe.Reason
	}
	return &ParamError{Field: field, Reason: reason, Err: err}
}

// The values of ParamError.Field for StartCall: the name of the CallParams
// field at fault. AddSink reports FieldRTMPURL and FieldRTMPStream for the
// SinkSpec fields of the same names, ParseSRTPMode FieldSRTP. (AddSink's
// ID, SendDTMF's digits and the DTMF type are still reported as the REST
// API spells them: "mediaSessionId", "dtmf" and "type".)
const (
	FieldCallID              = "CallID"
	FieldCallee              = "Callee"
	FieldToStream            = "ToStream"
	FieldRTMPURL             = "RTMPURL"
	FieldRTMPStream          = "RTMPStream"
	FieldSIPLogin            = "SIPLogin"
	FieldSIPAuthName         = "SIPAuthName"
	FieldSIPPassword         = "SIPPassword"
	FieldSIPDomain           = "SIPDomain"
	FieldSIPOutboundProxy    = "SIPOutboundProxy"
	FieldSIPPort             = "SIPPort"
	FieldSIPTransport        = "SIPTransport"
	FieldSIPRegisterRequired = "SIPRegisterRequired"
	FieldVisibleName         = "VisibleName"
	FieldAppKey              = "AppKey"
	FieldHeaders             = "Headers"
	FieldRecord              = "Record"
	FieldRingTimeout         = "RingTimeout"
	FieldSRTP                = "SRTP"
)

// SIPError is why a call failed at the SIP level: a final non-2xx response to
// REGISTER or INVITE (Code and Reason as received), or a local failure that
// the product reports with a SIP code (408 for no answer). Err is the
// underlying error (for the real user agent a *sip.StatusError, which matches
// sip.ErrBusy and friends with errors.Is).
type SIPError struct {
	Code   int
	Reason string
	Err    error
}

// Error returns e.g. "callmgr: SIP 486 Busy Here".
func (e *SIPError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("callmgr: SIP %d", e.Code)
	}
	return fmt.Sprintf("callmgr: SIP %d %s", e.Code, e.Reason)
}

// Unwrap returns the underlying error.
func (e *SIPError) Unwrap() error { return e.Err }
