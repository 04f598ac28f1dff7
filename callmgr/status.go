package callmgr

import (
	"fmt"
	"strings"
	"time"

	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sip"
)

// Status is a call's state. Its values are the names SIP call states
// commonly go by (TRYING, RING, ESTABLISHED, …); a REST layer maps them to
// its own (callmgr/wcsapi does for the WCS API).
type Status string

// Call statuses. A call starts in StatusTrying and ends in exactly one of
// StatusBusy, StatusFailed or StatusFinish.
const (
	// StatusTrying: the call was accepted; REGISTER (if required) and INVITE
	// are on their way.
	StatusTrying Status = "TRYING"
	// StatusRing: the peer rings (180/181/182 without SDP).
	StatusRing Status = "RING"
	// StatusRingMedia: early media (a 18x with SDP, usually 183 Session
	// Progress): the media session has started and the peer's ringback or
	// announcements reach the sinks before the answer, continuous into the
	// answered call.
	StatusRingMedia Status = "RING_MEDIA"
	// StatusSessionProgress: 183 Session Progress without SDP.
	StatusSessionProgress Status = "SESSION_PROGRESS"
	// StatusEstablished: answered (2xx + ACK), media flows to the sinks.
	StatusEstablished Status = "ESTABLISHED"
	// StatusHold: the call is on hold: put there by Call.Hold (Info.Held),
	// or by the peer's re-INVITE (all its streams sendonly or inactive, or a
	// 0.0.0.0 connection address). The sinks keep publishing a still
	// picture and silence while nothing arrives.
	StatusHold Status = "HOLD"
	// StatusBusy: the peer answered 486 Busy Here or 600 Busy Everywhere.
	StatusBusy Status = "BUSY"
	// StatusFailed: the call could not be set up (rejected, no answer,
	// registration or negotiation failed) or broke (media timeout, RTMP leg
	// failed). Info.SIPStatus and SIPReason say why.
	StatusFailed Status = "FAILED"
	// StatusFinish: the call ended normally: BYE from either side, or
	// cancelled by Terminate/Close before it was answered (SIP 487).
	StatusFinish Status = "FINISH"
)

// Final reports whether s is a status a call ends in.
func (s Status) Final() bool {
	return s == StatusBusy || s == StatusFailed || s == StatusFinish
}

// SinkStatus is the state of one sink of a call: sink.State, the state
// every sink reports. RTMP legs go through all of them; recordings and
// custom sinks are Wait until the first frame is written, Active while
// writing, Failed when they failed and were detached. CallInfo.RTMPStatus is
// StateNone for a call without an RTMP leg. The WCS REST API's names for
// these states (RTMP_STREAM_WAIT ...) are package callmgr/wcsapi's.
type SinkStatus = sink.State

// Sink statuses.
const (
	// SinkWait: created, waiting for the call's media (or a keyframe) and for
	// the RTMP connection.
	SinkWait = sink.StateWait
	// SinkActive: publishing.
	SinkActive = sink.StateActive
	// SinkLost: the connection dropped; reconnecting with backoff.
	SinkLost = sink.StateLost
	// SinkFailed: gave up (or failed to start); the sink is detached.
	SinkFailed = sink.StateFailed
)

// DTMFType says how SendDTMF sends digits.
type DTMFType uint8

// DTMF types, as the REST API's "type" field names them.
const (
	// DTMFRFC2833 sends RFC 4733 (formerly RFC 2833) telephone-event RTP
	// packets on the audio stream. The zero value.
	DTMFRFC2833 DTMFType = iota
	// DTMFInfo sends one SIP INFO per digit with Content-Type
	// application/dtmf.
	DTMFInfo
	// DTMFInfoRelay sends one SIP INFO per digit with Content-Type
	// application/dtmf-relay ("Signal=5\r\nDuration=160").
	DTMFInfoRelay
)

// String returns "RFC2833", "INFO" or "INFO_RELAY".
func (t DTMFType) String() string {
	switch t {
	case DTMFInfo:
		return "INFO"
	case DTMFInfoRelay:
		return "INFO_RELAY"
	case DTMFRFC2833:
		return "RFC2833"
	default:
		return fmt.Sprintf("DTMFType(%d)", uint8(t))
	}
}

// ParseDTMFType maps the REST API's names ("RFC2833", "INFO", "INFO_RELAY",
// case-insensitive; "" means RFC2833) to a DTMFType. An unknown name gives a
// *ParamError for field "type".
func ParseDTMFType(s string) (DTMFType, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "RFC2833", "RFC4733":
		return DTMFRFC2833, nil
	case "INFO":
		return DTMFInfo, nil
	case "INFO_RELAY":
		return DTMFInfoRelay, nil
	}
	return 0, paramErr("type", "unknown DTMF type (want RFC2833, INFO or INFO_RELAY)")
}

// EventType says what an Event reports.
type EventType uint8

// Event types.
const (
	// EventCallStatus: the call's Status (or its SIP status) changed.
	EventCallStatus EventType = iota + 1
	// EventSinkStatus: a sink's SinkStatus changed, or a sink was added or
	// removed.
	EventSinkStatus
	// EventDTMF: the peer sent a DTMF digit (RFC 4733 or SIP INFO).
	EventDTMF
	// EventTransfer: a transfer (Call.Transfer) progressed: the peer sent a
	// NOTIFY, or the outcome is known. Info.Transfer has it.
	EventTransfer
	// EventAudio: the audio injected toward the peer changed
	// (Info.InjectedSound, Info.InjectedStream): started, stopped, or a
	// sound reached its end.
	EventAudio
	// EventRegistration: an Account's registration (or a binding of the
	// Manager's registrar) changed state; Registration has it, CallID is
	// empty and the call fields are zero.
	EventRegistration
)

// String returns "call", "sink", "dtmf", "transfer", "audio" or
// "registration".
func (t EventType) String() string {
	switch t {
	case EventCallStatus:
		return "call"
	case EventSinkStatus:
		return "sink"
	case EventDTMF:
		return "dtmf"
	case EventTransfer:
		return "transfer"
	case EventAudio:
		return "audio"
	case EventRegistration:
		return "registration"
	default:
		return fmt.Sprintf("EventType(%d)", uint8(t))
	}
}

// Event is one change in a call's life, delivered to Config.OnEvent.
type Event struct {
	// Type says which of the fields below are meaningful.
	Type EventType
	// Time is when the change happened.
	Time time.Time
	// CallID is the call the event belongs to.
	CallID string
	// Status, SIPStatus and SIPReason are the call's status after the
	// change (for every event type).
	Status    Status
	SIPStatus int
	SIPReason string
	// Sink is the sink whose status changed (EventSinkStatus).
	Sink SinkInfo
	// Removed is true when Sink was removed (RemoveSink, or call end).
	Removed bool
	// Digit is the received digit (EventDTMF).
	Digit rune
	// Info is a snapshot of the call after the change.
	Info CallInfo
	// Registration is the registration after the change
	// (EventRegistration).
	Registration RegistrationInfo
}

// CallInfo is a snapshot of a call: everything its CallParams said except
// the password, and its current state. It is a copy; changing it changes
// nothing.
type CallInfo struct {
	CallID string
	// Incoming is true for a call the Manager answered (Config.OnIncoming),
	// false for one it placed.
	Incoming bool
	// Callee is who the call is to: the CallParams' Callee, or for an
	// incoming call the Request-URI user.
	Callee string
	// Caller is the SIP identity the call is placed from (SIPLogin, or the
	// Manager's default user when empty), or for an incoming call the From
	// user.
	Caller   string
	ToStream string
	// ToStreamDefaulted reports that CallParams had no ToStream, so
	// ToStream is the CallID.
	ToStreamDefaulted bool
	RTMPURL           string
	RTMPStream        string
	HasAudio          bool
	HasVideo          bool
	VisibleName       string
	AppKey            string

	SIPLogin            string
	SIPAuthName         string
	SIPDomain           string
	SIPOutboundProxy    string
	SIPPort             int
	SIPTransport        string
	SIPRegisterRequired bool
	Headers             []sip.Header

	Status    Status
	SIPStatus int    // last SIP status code seen (0 before any)
	SIPReason string // its reason phrase

	// RTMPStatus and RTMPReason are the state of the call's own RTMP leg
	// (the sink created from RTMPURL); empty when the call has none.
	RTMPStatus SinkStatus
	RTMPReason string

	Record     bool
	RecordPath string // the recording's file; empty when not recording

	// SRTP is the call's SRTP mode (CallParams.SRTP, or Config.SRTP).
	SRTP SRTPMode
	// Secure is true once the call is established with SRTP on every
	// stream.
	Secure bool
	// SRTPFallback says why a call in SRTPOptional mode runs on plain RTP
	// ("488 Not Acceptable Here", "415 Unsupported Media Type" or the
	// answer's problem, such as "SRTP offered, answered with RTP/AVP");
	// empty otherwise. It is set with the ESTABLISHED event.
	SRTPFallback string

	// Held is true while the call is on hold by Call.Hold (the peer may
	// hold it too: Status is then HOLD either way).
	Held bool
	// Transfer is the last transfer asked with Call.Transfer (nil: none).
	Transfer *TransferInfo
	// InjectedSound names the sound playing toward the peer (the name given
	// to InjectSound); empty when none.
	InjectedSound string
	// InjectedStream is the stream whose audio is sent to the peer
	// (InjectStream); empty when none.
	InjectedStream string

	Started     time.Time
	Established time.Time // zero until answered
	Ended       time.Time // zero while live

	// Sinks lists the call's sinks: its RTMP leg (ID CallID+"/rtmp"), its
	// recording (CallID+"/record") and those added with AddSink.
	Sinks []SinkInfo
}

// String returns a one-line summary without secrets (the RTMP URL is reduced
// to scheme, host and application; the stream name is not shown).
func (ci CallInfo) String() string {
	s := fmt.Sprintf("call %q to %q: %s", ci.CallID, ci.Callee, ci.Status)
	if ci.SIPStatus != 0 {
		s += fmt.Sprintf(" (%d %s)", ci.SIPStatus, ci.SIPReason)
	}
	if ci.RTMPURL != "" {
		s += fmt.Sprintf(", rtmp %s: %s", redactURL(ci.RTMPURL), ci.RTMPStatus)
	}
	return s
}

// ReasonRecordQuota is the SinkInfo.Reason of a recording that stopped
// because it reached Config.RecordQuota (its status is SinkFailed, its file
// finalized and playable; the call goes on).
const ReasonRecordQuota = "recording quota reached"

// SinkKind says what a sink is.
type SinkKind string

// Sink kinds.
const (
	SinkKindRTMP   SinkKind = "rtmp"
	SinkKindRecord SinkKind = "record"
	SinkKindCustom SinkKind = "custom"
	// SinkKindTap: another call of the Manager takes this call's audio
	// (InjectStream on that call). Removed by that call.
	SinkKindTap SinkKind = "tap"
)

// SinkInfo is a snapshot of one sink of a call. The REST API calls its ID
// mediaSessionId.
type SinkInfo struct {
	ID       string
	CallID   string
	ToStream string // the call's ToStream (the REST API's streamName)
	Kind     SinkKind
	// RTMPURL and RTMPStream are the target of an RTMP sink.
	RTMPURL    string
	RTMPStream string
	// Path is the file of a recording sink.
	Path   string
	Status SinkStatus
	Reason string // why the last status change happened, if known
	Muted  bool
	// Sound names the sound mixed into the sink's audio
	// (Manager.SetSinkSound); empty when none.
	Sound string
	// Primary is true for the sinks created from CallParams (RTMP leg,
	// recording), false for those added with AddSink.
	Primary bool
}

// Filter selects calls in Manager.Find. Empty fields match every call; set
// fields must all match exactly.
type Filter struct {
	CallID     string
	Callee     string
	ToStream   string
	RTMPURL    string
	RTMPStream string
	Status     Status
}

func (f Filter) match(ci *CallInfo) bool {
	return (f.CallID == "" || f.CallID == ci.CallID) &&
		(f.Callee == "" || f.Callee == ci.Callee) &&
		(f.ToStream == "" || f.ToStream == ci.ToStream) &&
		(f.RTMPURL == "" || f.RTMPURL == ci.RTMPURL) &&
		(f.RTMPStream == "" || f.RTMPStream == ci.RTMPStream) &&
		(f.Status == "" || f.Status == ci.Status)
}

// SinkFilter selects sinks in Manager.FindSinks. Empty fields match every
// sink.
type SinkFilter struct {
	ID       string
	CallID   string
	ToStream string
	RTMPURL  string
	Kind     SinkKind
}

func (f SinkFilter) match(si *SinkInfo) bool {
	return (f.ID == "" || f.ID == si.ID) &&
		(f.CallID == "" || f.CallID == si.CallID) &&
		(f.ToStream == "" || f.ToStream == si.ToStream) &&
		(f.RTMPURL == "" || f.RTMPURL == si.RTMPURL) &&
		(f.Kind == "" || f.Kind == si.Kind)
}
