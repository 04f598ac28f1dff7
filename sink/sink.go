// Package sink defines where a call's media goes: the Sink interface, the
// fan-out that feeds many sinks from one call without letting any of them slow
// the others down, and the RTMP, recording and WebRTC implementations.
package sink

import (
	"context"

	"github.com/sipstream/sipstream/media"
)

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
// more than once. ctx bounds the waiting (a call's teardown passes one with
// callmgr's Config.TeardownTimeout): when ctx is done before the flush is,
// Close gives up on it, releases what it holds and returns ctx's error; the
// sink's goroutines still end, soon after if not before Close returns.
type Sink interface {
	WriteFrame(f *media.Frame) error
	Close(ctx context.Context) error
}

// Inline is implemented by a sink whose WriteFrame is cheap and never
// blocks: it does no I/O and waits for nothing but short critical
// sections (a WebRTC sink that queues packets for its viewers' own
// goroutines). When Inline reports true at Add, a Fanout calls WriteFrame
// directly, from the goroutine calling Fanout.WriteFrame and with the
// fanout's lock held, instead of through a queue and a goroutine of the
// sink's own: no goroutine wake-up per frame. Such a WriteFrame must not call
// the Fanout. Close is still called from elsewhere, never concurrently with
// WriteFrame.
type Inline interface {
	Inline() bool
}

// BatchWriter is implemented by a sink that writes several frames cheaper
// together than one by one (one network write for all of them). A Fanout
// hands such a sink, on each wake-up of its goroutine, every frame waiting in
// its queue (up to MaxBatch), in order; never a frame that has not arrived
// yet, so no frame waits for others. WriteFrames returns how many frames it
// accepted before an error; an error detaches the sink as WriteFrame's
// does. The slice is reused after WriteFrames returns; the frames are not.
type BatchWriter interface {
	WriteFrames(fs []*media.Frame) (n int, err error)
}

// MaxBatch is the most frames a Fanout hands to a BatchWriter at once.
const MaxBatch = 16
