package filler

import (
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a Clock whose time moves only when the test advances it;
// due callbacks run on the advancing goroutine, in time order.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.pending = append(c.pending, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	return true
}

// Pending counts the timers neither fired nor stopped.
func (c *fakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.pending {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// AdvanceTo moves the time to target, firing due timers in order.
func (c *fakeClock) AdvanceTo(target time.Time) {
	for {
		c.mu.Lock()
		live := c.pending[:0]
		for _, t := range c.pending {
			if !t.stopped && !t.fired {
				live = append(live, t)
			}
		}
		c.pending = live
		sort.SliceStable(c.pending, func(i, j int) bool { return c.pending[i].at.Before(c.pending[j].at) })
		if len(c.pending) == 0 || c.pending[0].at.After(target) {
			if target.After(c.now) {
				c.now = target
			}
			c.mu.Unlock()
			return
		}
		t := c.pending[0]
		t.fired = true
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// Advance moves the time d forward.
func (c *fakeClock) Advance(d time.Duration) { c.AdvanceTo(c.Now().Add(d)) }

// outFrame is a copy of what the Filler handed to its output.
type outFrame struct {
	media.Frame
	filler bool // the payload is not one the test wrote
}

// recorder collects a Filler's output, copying each frame as a sink
// behind a fan-out would get it.
// Filler frames are told from real ones by their address: the Filler
// emits its own two reused frames.
type recorder struct {
	mu     sync.Mutex
	frames []outFrame
	f      *Filler
}

func newRecorder() *recorder { return &recorder{} }

// newFiller makes a Filler writing to r.
func (r *recorder) newFiller(t *testing.T, cfg Config) *Filler {
	t.Helper()
	f, err := New(cfg, r.out)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.f = f
	r.mu.Unlock()
	t.Cleanup(f.Close)
	return f
}

func (r *recorder) out(f *media.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *f
	cp.Payload = append([]byte(nil), f.Payload...)
	filler := r.f != nil && (f == &r.f.audio.frame || f == &r.f.video.frame)
	r.frames = append(r.frames, outFrame{Frame: cp, filler: filler})
}

func (r *recorder) snapshot() []outFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outFrame(nil), r.frames...)
}

// checkMonotonic fails the test when the DTS of a kind does not strictly
// increase.
func checkMonotonic(t *testing.T, fs []outFrame) {
	t.Helper()
	last := map[media.Kind]time.Duration{}
	seen := map[media.Kind]bool{}
	for i, f := range fs {
		k := f.Kind()
		if seen[k] && f.DTS <= last[k] {
			t.Fatalf("frame %d (%v, filler=%v): DTS %v not after %v", i, k, f.filler, f.DTS, last[k])
		}
		seen[k], last[k] = true, f.DTS
	}
}

// source makes real frames: PCMA 20 ms packets and H.264-like access
// units (payloads distinct per frame) at 25
// fps with a keyframe every keyEvery frames.
type source struct {
	n        int
	keyEvery int
}

func (s *source) audio(dts time.Duration) *media.Frame {
	s.n++
	p := make([]byte, 160)
	for i := range p {
		p[i] = byte(s.n) ^ byte(i) ^ 0x55
	}
	p[0], p[1] = byte(s.n>>8), byte(s.n)
	return &media.Frame{Codec: media.CodecPCMA, PTS: dts, DTS: dts, Keyframe: true, Payload: p,
		ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond}
}

func (s *source) video(dts time.Duration, key bool) *media.Frame {
	s.n++
	p := []byte{0, 0, 0, 3, 0x41, byte(s.n >> 8), byte(s.n)}
	if key {
		p = []byte{0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3, 0, 0, 0, 3, 0x65, byte(s.n >> 8), byte(s.n)}
	}
	return &media.Frame{Codec: media.CodecH264, PTS: dts, DTS: dts, Keyframe: key, Payload: p, ClockRate: 90000}
}

// play feeds real frames with DTS in [from, to) to f, setting the fake
// clock to each frame's arrival: origin + DTS (no network delay).
// Audio every 20 ms, video every 40 ms; a video frame is a keyframe when
// its index is a multiple of keyEvery, or when forceKey says so (and
// then clears it).
func (s *source) play(f *Filler, c *fakeClock, origin time.Time, from, to time.Duration, forceKey *bool) {
	for t := from; t < to; t += 20 * time.Millisecond {
		c.AdvanceTo(origin.Add(t))
		f.WriteFrame(s.audio(t))
		if t%(40*time.Millisecond) == 0 {
			idx := int(t / (40 * time.Millisecond))
			key := idx%s.keyEvery == 0
			if forceKey != nil && *forceKey {
				key, *forceKey = true, false
			}
			f.WriteFrame(s.video(t, key))
		}
	}
}

func count(fs []outFrame, kind media.Kind, filler bool, from, to time.Duration) int {
	n := 0
	for _, f := range fs {
		if f.Kind() == kind && f.filler == filler && f.DTS >= from && f.DTS < to {
			n++
		}
	}
	return n
}

// setup makes a Filler on a fake clock writing to a recorder, and a
// source with a keyframe every keyEvery video frames.
func setup(t *testing.T, cfg Config, keyEvery int) (*fakeClock, time.Time, *recorder, *source, *Filler) {
	t.Helper()
	c := newFakeClock()
	cfg.Clock = c
	r := newRecorder()
	return c, c.Now(), r, &source{keyEvery: keyEvery}, r.newFiller(t, cfg)
}

// lastOf returns the last frame of kind in fs.
func lastOf(t *testing.T, fs []outFrame, kind media.Kind) outFrame {
	t.Helper()
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Kind() == kind {
			return fs[i]
		}
	}
	t.Fatalf("no %v frame", kind)
	return outFrame{}
}
