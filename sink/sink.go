// Package sink defines where a call's media goes: the Sink interface, the
// fan-out that feeds many sinks from one call without letting any of them slow
// the others down, and the RTMP, recording and WebRTC implementations.
package sink

import "github.com/sipstream/sipstream/media"

// Sink consumes a call's frames.
//
// The fan-out calls WriteFrame from one goroutine per sink, in timeline order
// per stream, so an implementation needs no locking for its own state.
// WriteFrame may block (on the network, on disk); the fan-out then drops frames
// for this sink only and counts them. An error from WriteFrame detaches the
// sink and is reported to the call's owner.
//
// Frames are shared with other sinks: WriteFrame must not modify f.Payload.
//
// Close flushes what was written (a recording gets its index, an RTMP session
// its FCUnpublish) and releases everything the sink holds. It is safe to call
// more than once.
type Sink interface {
	WriteFrame(f *media.Frame) error
	Close() error
}
