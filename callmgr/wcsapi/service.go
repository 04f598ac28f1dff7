package wcsapi

import (
	"context"
	"errors"
	"net/http"
)

// callService is what the HTTP layer needs from the call manager. The
// adapter in manager.go implements it on callmgr.Manager; tests use a fake.
// Its errors wrap the sentinels below, which is the one place where call
// outcomes become HTTP status codes.
type callService interface {
	// Start places a call; it returns once the call is accepted (the SIP
	// dialog goes on in the background and reports through events).
	Start(ctx context.Context, p startParams) error
	Terminate(ctx context.Context, callID string) error
	SendDTMF(ctx context.Context, callID, digits, dtmfType string) error
	// Calls returns a snapshot of every call the manager knows, ended ones
	// included until they are forgotten.
	Calls() []Call

	PushStart(ctx context.Context, p pushParams) (Push, error)
	PushTerminate(ctx context.Context, mediaSessionID string) error
	PushMute(ctx context.Context, mediaSessionID string, mute bool) error
	Pushes() []Push

	// Call control (callcontrol.go).
	Hold(ctx context.Context, callID string, on bool) error
	Transfer(ctx context.Context, callID, target, replacesCallID string) error
	// InjectSound plays fileName (inside Config.SoundDir) into the call;
	// "" stops the sound.
	InjectSound(ctx context.Context, callID, fileName string, loop bool) error
	// InjectStream sends the audio of streamName to the call; "" stops.
	InjectStream(ctx context.Context, callID, streamName string) error
	// PushSound mixes soundFile into a push's audio; "" stops.
	PushSound(ctx context.Context, mediaSessionID, soundFile string, loop bool) error
}

// Sentinels the service's errors wrap.
var (
	errNotFound = errors.New("not found")
	errConflict = errors.New("conflict")
	errInvalid  = errors.New("invalid request")
	errShutdown = errors.New("server is shutting down")
)

// serviceStatus maps a service error to an HTTP status.
func serviceStatus(err error) (int, bool) {
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, true
	case errors.Is(err, errConflict):
		return http.StatusConflict, true
	case errors.Is(err, errInvalid):
		return http.StatusBadRequest, true
	case errors.Is(err, errShutdown):
		return http.StatusServiceUnavailable, true
	}
	return 0, false
}

// MediaStats is a call's received-media counters per stream.
type MediaStats struct {
	Audio StreamStats `json:"audio"`
	Video StreamStats `json:"video"`
}

// StreamStats is one stream's counters; durations in milliseconds.
type StreamStats struct {
	PacketsReceived    uint64 `json:"packetsReceived"`
	PacketsLost        uint64 `json:"packetsLost"`
	Frames             uint64 `json:"frames"`
	FramesDropped      uint64 `json:"framesDropped"`
	NACKsSent          uint64 `json:"nacksSent"`
	PacketsRecovered   uint64 `json:"packetsRecovered"`
	KeyframeRequests   uint64 `json:"keyframeRequests"`
	KeyframesReceived  uint64 `json:"keyframesReceived"`
	Freezes            uint64 `json:"freezes"`
	FrozenMs           int64  `json:"frozenMs"`
	LongestFreezeMs    int64  `json:"longestFreezeMs"`
	KeyframeResponseMs int64  `json:"keyframeResponseMs"`
	JitterMs           int64  `json:"jitterMs"`
	RTTMs              int64  `json:"rttMs"`
	// SocketDrops: datagrams the kernel dropped (socket buffer full).
	SocketDrops uint64 `json:"socketDrops"`
}

// pushParams is a validated /push/startup request.
type pushParams struct {
	StreamName string // the call's toStream (or its callId)
	RTMPURL    string // target application URL, or the full URL with the stream name
	// FullURL is true when RTMPURL already ends with the stream name
	// (rtmpTransponderFullUrl).
	FullURL bool
	Muted   bool
	// Options is the request's options object (echoed in the answer).
	Options map[string]any
}

// Push is one extra RTMP target of a call (/push/find).
type Push struct {
	MediaSessionID string `json:"mediaSessionId"`
	StreamName     string `json:"streamName"`
	RTMPURL        string `json:"rtmpUrl"`
	Muted          bool   `json:"muted"`
	SoundEnabled   bool   `json:"soundEnabled"`
	// Options are the options /push/startup was given ({} when none), as
	// the product echoes them.
	Options map[string]any `json:"options"`
	// sipstream's additions.
	Status string `json:"status"`
	Info   string `json:"info,omitempty"`
	CallID string `json:"callId,omitempty"`
}
