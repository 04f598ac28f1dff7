package sink

import "strconv"

// State is where a sink stands, whatever its kind (an RTMP leg, a
// recording, a viewer endpoint): one set of states that every sink reports
// and callmgr passes on. Servers name them as their APIs want (package
// callmgr/wcsapi maps them to the WCS REST API's RTMP_STREAM_ACTIVE and so
// on). The zero value, StateNone, means there is no sink to speak of (a call
// without an RTMP leg).
type State uint8

// Sink states, in the order a sink goes through them: Wait until it starts
// writing (for a connection, for the first keyframe), Active while writing,
// Lost when its connection dropped (reconnecting; Active again once back),
// Failed when it gave up or could not start (final: the sink is detached).
const (
	StateNone State = iota
	StateWait
	StateActive
	StateLost
	StateFailed
)

// String is the state's name: "none", "wait", "active", "lost" or "failed".
func (s State) String() string {
	switch s {
	case StateNone:
		return "none"
	case StateWait:
		return "wait"
	case StateActive:
		return "active"
	case StateLost:
		return "lost"
	case StateFailed:
		return "failed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Final reports whether s is a state a sink does not leave (Failed).
func (s State) Final() bool { return s == StateFailed }
