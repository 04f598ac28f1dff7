package wcsapi

import "encoding/json"

// mediaProvider is what the product puts in a call object's and a
// CallStatusEvent's mediaProvider for calls placed over REST: "Flash" in
// every example of wcs-docs "Stream capturing from a SIP call" (the
// parameter table says "NOT USED").
const mediaProvider = "Flash"

// Call is a call as /call/find and /call/find_all return it, with the
// product's field names, order and nulls (wcs-docs "Stream capturing from a
// SIP call", the /call/find example): a product field we have no value for
// is JSON null, never left out, because clients test x === null. It never
// carries the SIP password.
//
// The string fields marked "null when empty" are sent as null when empty;
// sipstream's own additions (after Duration) are left out when empty.
type Call struct {
	// Custom is the product's free-form custom object; always {} here.
	Custom map[string]any `json:"custom"`
	// NodeID is the server's node id (Config.NodeID); null when empty.
	NodeID string `json:"nodeId"`
	// AppKey is the call's application; null when empty.
	AppKey string `json:"appKey"`
	// SessionID is the product's client session; sipstream's REST calls
	// have none: null when empty.
	SessionID string `json:"sessionId"`
	CallID    string `json:"callId"`
	// ParentCallID is the product's transfer parent; null when empty.
	ParentCallID string `json:"parentCallId"`
	Incoming     bool   `json:"incoming"`
	Status       string `json:"status"`
	SIPStatus    int    `json:"sipStatus"`
	// RTMPURL, RTMPStream, StreamName and RTMPStreamStatus: null when
	// empty (no RTMP leg; no toStream given).
	RTMPURL          string `json:"rtmpUrl"`
	RTMPStream       string `json:"rtmpStream"`
	StreamName       string `json:"streamName"`
	RTMPStreamStatus string `json:"rtmpStreamStatus"`
	Caller           string `json:"caller"`
	Callee           string `json:"callee"`
	HasAudio         bool   `json:"hasAudio"`
	HasVideo         bool   `json:"hasVideo"`
	// SDP is the product's SDP text; null when empty (sipstream does not
	// report it).
	SDP string `json:"sdp"`
	// VisibleName: null when empty.
	VisibleName string `json:"visibleName"`
	// InviteParameters are the product's INVITE parameters; null when nil.
	InviteParameters map[string]string `json:"inviteParameters"`
	// MediaProvider is "Flash" for every call (null when empty).
	MediaProvider string `json:"mediaProvider"`
	// SIPMessageRaw is the product's raw SIP message; null when empty.
	SIPMessageRaw   string `json:"sipMessageRaw"`
	IsMsrp          bool   `json:"isMsrp"`
	Target          string `json:"target"` // null when empty
	HoldForTransfer bool   `json:"holdForTransfer"`

	// sipstream's additions to the product's object, left out when empty.
	SIPMessage     string `json:"sipMessage,omitempty"`
	RTMPStatusInfo string `json:"rtmpStreamStatusInfo,omitempty"`
	SIPLogin       string `json:"sipLogin,omitempty"`
	SIPDomain      string `json:"sipDomain,omitempty"`
	// RecordPath is the call's recording file on the server (record: true
	// and -record-dir); empty when the call is not recorded.
	RecordPath string `json:"recordPath,omitempty"`
	// Recording is true while a recording of the call runs (record: true,
	// or /call/record/startup); left out when false.
	Recording bool   `json:"recording,omitempty"`
	Info      string `json:"info,omitempty"`
	StartTime int64  `json:"startTime,omitempty"` // Unix milliseconds
	Duration  int64  `json:"duration,omitempty"`  // milliseconds since answer
	// MediaStats is sipstream's own addition to the product's call
	// object (in /call/find and /call/find_all, not in events): what the
	// call received and how loss was repaired.
	MediaStats *MediaStats `json:"mediaStats,omitempty"`
	// SRTP, Secure and SRTPFallback are sipstream's additions: the call's
	// SRTP mode, whether its media is encrypted, and why an "optional"
	// call runs on plain RTP.
	SRTP         string `json:"srtp,omitempty"`
	Secure       bool   `json:"secure,omitempty"`
	SRTPFallback string `json:"srtpFallback,omitempty"`
	// Call control (/call/hold, /call/transfer, /call/inject_*): held by
	// /call/hold, what the peer hears besides silence, the last transfer.
	Held           bool           `json:"held,omitempty"`
	InjectedSound  string         `json:"injectedSound,omitempty"`
	InjectedStream string         `json:"injectedStream,omitempty"`
	Transfer       *TransferState `json:"transfer,omitempty"`
}

// TransferState is a call object's last transfer (/call/transfer).
type TransferState struct {
	Target string `json:"target"`
	// SIPStatus and Reason are the last progress the peer reported (its
	// NOTIFY's sipfrag), 0 before any.
	SIPStatus int    `json:"sipStatus"`
	Reason    string `json:"reason,omitempty"`
	// Done: the outcome is known; Succeeded: the target answered.
	Done      bool `json:"done"`
	Succeeded bool `json:"succeeded"`
}

// nullable is s as JSON: null when empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MarshalJSON writes c in the product's field order with its nulls.
func (c Call) MarshalJSON() ([]byte, error) {
	custom := c.Custom
	if custom == nil {
		custom = map[string]any{}
	}
	return json.Marshal(struct {
		Custom           map[string]any    `json:"custom"`
		NodeID           *string           `json:"nodeId"`
		AppKey           *string           `json:"appKey"`
		SessionID        *string           `json:"sessionId"`
		CallID           string            `json:"callId"`
		ParentCallID     *string           `json:"parentCallId"`
		Incoming         bool              `json:"incoming"`
		Status           string            `json:"status"`
		SIPStatus        int               `json:"sipStatus"`
		RTMPURL          *string           `json:"rtmpUrl"`
		RTMPStream       *string           `json:"rtmpStream"`
		StreamName       *string           `json:"streamName"`
		RTMPStreamStatus *string           `json:"rtmpStreamStatus"`
		Caller           string            `json:"caller"`
		Callee           string            `json:"callee"`
		HasAudio         bool              `json:"hasAudio"`
		HasVideo         bool              `json:"hasVideo"`
		SDP              *string           `json:"sdp"`
		VisibleName      *string           `json:"visibleName"`
		InviteParameters map[string]string `json:"inviteParameters"`
		MediaProvider    *string           `json:"mediaProvider"`
		SIPMessageRaw    *string           `json:"sipMessageRaw"`
		IsMsrp           bool              `json:"isMsrp"`
		Target           *string           `json:"target"`
		HoldForTransfer  bool              `json:"holdForTransfer"`

		SIPMessage     string      `json:"sipMessage,omitempty"`
		RTMPStatusInfo string      `json:"rtmpStreamStatusInfo,omitempty"`
		SIPLogin       string      `json:"sipLogin,omitempty"`
		SIPDomain      string      `json:"sipDomain,omitempty"`
		RecordPath     string      `json:"recordPath,omitempty"`
		Recording      bool        `json:"recording,omitempty"`
		Info           string      `json:"info,omitempty"`
		StartTime      int64       `json:"startTime,omitempty"`
		Duration       int64       `json:"duration,omitempty"`
		MediaStats     *MediaStats `json:"mediaStats,omitempty"`
		SRTP           string      `json:"srtp,omitempty"`
		Secure         bool        `json:"secure,omitempty"`
		SRTPFallback   string      `json:"srtpFallback,omitempty"`

		Held           bool           `json:"held,omitempty"`
		InjectedSound  string         `json:"injectedSound,omitempty"`
		InjectedStream string         `json:"injectedStream,omitempty"`
		Transfer       *TransferState `json:"transfer,omitempty"`
	}{
		Custom: custom, NodeID: nullable(c.NodeID), AppKey: nullable(c.AppKey),
		SessionID: nullable(c.SessionID), CallID: c.CallID, ParentCallID: nullable(c.ParentCallID),
		Incoming: c.Incoming, Status: c.Status, SIPStatus: c.SIPStatus,
		RTMPURL: nullable(c.RTMPURL), RTMPStream: nullable(c.RTMPStream),
		StreamName: nullable(c.StreamName), RTMPStreamStatus: nullable(c.RTMPStreamStatus),
		Caller: c.Caller, Callee: c.Callee, HasAudio: c.HasAudio, HasVideo: c.HasVideo,
		SDP: nullable(c.SDP), VisibleName: nullable(c.VisibleName), InviteParameters: c.InviteParameters,
		MediaProvider: nullable(c.MediaProvider), SIPMessageRaw: nullable(c.SIPMessageRaw),
		IsMsrp: c.IsMsrp, Target: nullable(c.Target), HoldForTransfer: c.HoldForTransfer,

		SIPMessage: c.SIPMessage, RTMPStatusInfo: c.RTMPStatusInfo, SIPLogin: c.SIPLogin,
		SIPDomain: c.SIPDomain, RecordPath: c.RecordPath, Recording: c.Recording, Info: c.Info, StartTime: c.StartTime,
		Duration: c.Duration, MediaStats: c.MediaStats, SRTP: c.SRTP, Secure: c.Secure,
		SRTPFallback: c.SRTPFallback,
		Held:         c.Held, InjectedSound: c.InjectedSound, InjectedStream: c.InjectedStream, Transfer: c.Transfer,
	})
}
