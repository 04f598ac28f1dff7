package media

import "time"

// DTSGuard turns one track's decoding timestamps into a strictly increasing
// sequence at a writer's own resolution (milliseconds for RTMP, FLV and
// Matroska, clock ticks for RTP). It is the last line of defence of a
// writer: whatever the input does (equal timestamps, backward steps after
// loss or reordering, two frames within one unit of the output's clock), the
// writer never emits a DTS that is equal to or lower than the previous one of
// the same track, a condition players and servers reject ("non monotonically
// increasing dts" in FFmpeg, dropped frames or a torn-down stream on
// platforms).
//
// A timestamp that would collide is nudged forward to one unit after the
// previous one; later frames keep their own timestamps as soon as those are
// ahead again, so a short disorder costs a few units of timing error and
// never accumulates. A large backward jump is not rebased: frames then come
// out one unit apart until the input has caught up, which keeps the track
// locked to the call's timeline (and lip sync with the other tracks) rather
// than shifting it for good.
//
// The zero value counts in milliseconds. One guard per track per output; it
// is not safe for concurrent use and does not allocate.
type DTSGuard struct {
	// Rate is the output resolution in units per second: 1000 for
	// milliseconds, 90000 for video RTP, the sampling rate for audio RTP.
	// Zero means 1000.
	Rate int64

	last    int64
	started bool
	nudged  uint64
}

// Units converts d to whole units of the guard's resolution, rounding down,
// without overflow for any duration.
func (g *DTSGuard) Units(d time.Duration) int64 {
	r := g.Rate
	if r <= 0 {
		r = 1000
	}
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	u := sec*r + rem*r/int64(time.Second)
	if rem < 0 && rem*r%int64(time.Second) != 0 {
		u-- // floor, not truncation towards zero
	}
	return u
}

// Next returns dts in units, moved forward if needed so that it is greater
// than the value Next returned before (since the last Reset).
func (g *DTSGuard) Next(dts time.Duration) int64 {
	return g.next(g.Units(dts))
}

func (g *DTSGuard) next(u int64) int64 {
	if g.started && u <= g.last {
		u = g.last + 1
		g.nudged++
	}
	g.started, g.last = true, u
	return u
}

// Stamp guards a frame with a composition offset: it returns the DTS as Next
// does and the PTS in units, never below that DTS (a composition time
// PTS−DTS ≥ 0, what FLV's CompositionTime and RTP need). The offset the
// input had is kept when the DTS is not nudged.
func (g *DTSGuard) Stamp(pts, dts time.Duration) (ptsUnits, dtsUnits int64) {
	p, d := g.Units(pts), g.Units(dts)
	nd := g.next(d)
	p += nd - d
	if p < nd {
		p = nd
	}
	return p, nd
}

// Last returns the last value Next or Stamp returned, and false before the
// first call (or after Reset).
func (g *DTSGuard) Last() (int64, bool) { return g.last, g.started }

// Nudged counts the timestamps moved forward so far.
func (g *DTSGuard) Nudged() uint64 { return g.nudged }

// Reset forgets the previous timestamp: the next one is taken as it is (a
// new connection, a new file).
func (g *DTSGuard) Reset() { g.started, g.last = false, 0 }
