package callmgr

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
)

// opCounters are what a call measures for its operator besides the media
// session's counters: the fan-out input's timeline (A/V offset, keyframe
// interval), the pending keyframe request, the sinks' byte and reconnect
// counters. The frame path only stores atomics.
type opCounters struct {
	audioPTS, videoPTS atomic.Int64 // last frame's PTS at the fan-out input (ns)
	hasAudio, hasVideo atomic.Bool
	keyPTS             atomic.Int64 // last keyframe's PTS (ns); valid when keys > 0
	keys               atomic.Uint64
	keyInterval        atomic.Int64 // ns between the last two keyframes
	// kfAsked is when a keyframe was asked for by callmgr and none came
	// since (unix ns; 0: none pending).
	kfAsked atomic.Int64

	mu     sync.Mutex
	guards map[string]*guardSink // attached sinks, by ID

	// Owned by the run loop's media watch (watchMedia).
	lastFreezes, lastRequests uint64
	lastAsked                 uint64
	lastFrozen                time.Duration
	asked                     atomic.Uint64 // keyframe requests callmgr made
}

func (o *opCounters) addGuard(id string, g *guardSink) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.guards == nil {
		o.guards = make(map[string]*guardSink)
	}
	o.guards[id] = g
}

func (o *opCounters) dropGuard(id string, g *guardSink) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.guards[id] == g {
		delete(o.guards, id)
	}
}

func (o *opCounters) guard(id string) *guardSink {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.guards[id]
}

// writeFan is what the hold filler feeds: the fan-out's input. It notes
// the frame's timeline (no allocation) and logs the keyframe a request
// asked for.
func (c *Call) writeFan(f *media.Frame) {
	switch f.Kind() {
	case media.KindAudio:
		c.op.audioPTS.Store(int64(f.PTS))
		c.op.hasAudio.Store(true)
	case media.KindVideo:
		c.op.videoPTS.Store(int64(f.PTS))
		c.op.hasVideo.Store(true)
		if f.Keyframe {
			c.onKeyframe(f.PTS)
		}
	}
	c.fan.WriteFrame(f)
}

func (c *Call) onKeyframe(pts time.Duration) {
	if c.op.keys.Add(1) > 1 {
		if d := int64(pts) - c.op.keyPTS.Load(); d > 0 {
			c.op.keyInterval.Store(d)
		}
	}
	c.op.keyPTS.Store(int64(pts))
	if asked := c.op.kfAsked.Swap(0); asked != 0 {
		c.logf(LogMedia, LogInfo, "← keyframe, %d ms after the request", time.Since(time.Unix(0, asked)).Milliseconds())
	}
}

// askKeyframe asks the peer for a keyframe (see RequestKeyframe) and logs
// why, once per request outstanding.
func (c *Call) askKeyframe(why string) {
	c.op.asked.Add(1)
	if c.op.kfAsked.CompareAndSwap(0, time.Now().UnixNano()) {
		c.logf(LogMedia, LogInfo, "→ keyframe request (%s)", why)
	}
	c.requestKeyframe()
}

// avOffset is the last video frame's PTS minus the last audio frame's at
// the fan-out input; zero without both.
func (o *opCounters) avOffset() time.Duration {
	if !o.hasAudio.Load() || !o.hasVideo.Load() {
		return 0
	}
	return time.Duration(o.videoPTS.Load() - o.audioPTS.Load())
}

// mediaWatch is how often the run loop looks at the video counters for
// the log (freezes, keyframe requests the session made on loss).
const mediaWatch = time.Second

// watchMedia logs what the video counters say changed since last time
// (a freeze starts when Freezes grows, ends when FrozenTime does; the
// session's own keyframe requests are those beyond callmgr's); run loop
// only.
func (c *Call) watchMedia() {
	if c.sess == nil || c.dlg == nil || c.ending {
		return
	}
	_, v := c.sess.stats()
	o := &c.op
	if v.Freezes > o.lastFreezes {
		c.logf(LogMedia, LogWarn, "video frozen (frames lost; freeze %d)", v.Freezes)
	}
	if v.FrozenTime > o.lastFrozen {
		c.logf(LogMedia, LogInfo, "video resumed after %d ms frozen", (v.FrozenTime - o.lastFrozen).Milliseconds())
	}
	asked := o.asked.Load()
	if n, mine := v.KeyframeRequests-o.lastRequests, asked-o.lastAsked; v.KeyframeRequests > o.lastRequests && n > mine {
		c.logf(LogMedia, LogInfo, "→ keyframe request ×%d (the session: loss, or a repeat)", n-mine)
	}
	o.lastFreezes, o.lastFrozen, o.lastRequests, o.lastAsked = v.Freezes, v.FrozenTime, v.KeyframeRequests, asked
}
