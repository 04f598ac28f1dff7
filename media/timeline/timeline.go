// Package timeline puts the RTP timestamps of all streams of a call on one
// common timeline, so that audio and video frames can be compared directly
// for lip sync.
//
// Each stream's RTP timestamps are extended across the 32-bit wrap and
// mapped to the receiver's clock in one of two ways:
//
//   - Arrival mode, until the peer sends an RTCP Sender Report for the
//     stream: the RTP time plus the smallest arrival offset seen lately (the
//     least-delayed packet defines where the stream sits on the timeline).
//   - Sender Report mode: the SR says which sender wall-clock (NTP) time an
//     RTP timestamp belongs to (RFC 3550 §6.4.1). All streams of the call
//     share one sender clock, so mapping every stream through it and adding
//     one common offset (the smallest arrival delay over all SR-mapped
//     streams) gives correct lip sync whatever each stream's network delay.
//
// Whenever a stream's mapping changes (its first SR, a newer SR, a lower
// minimum delay) the output does not jump: the difference becomes a
// correction that is slewed away gradually (by default 5 % of the media time
// that passes), so timestamps stay strictly increasing and smooth. A new SSRC, a codec
// (clock rate) change or a timestamp discontinuity starts a new segment
// placed by arrival time: gaps (hold) show as gaps, and the output of a
// stream never goes backwards.
//
// Specification: RFC 3550 §6.4.1 (SR NTP/RTP timestamps), §A.1 (extended
// sequence numbers, applied here to timestamps).
package timeline

import (
	"errors"
	"time"
)

// Config configures a Timeline. The zero value is usable.
type Config struct {
	// Slew is the fraction of elapsed media time by which a mapping
	// correction is reduced (0 < Slew < 1). Zero means 0.05: a 120 ms
	// correction takes 2.4 s to vanish, and 20 ms of audio never lasts
	// less than 19 ms on the timeline.
	Slew float64
	// Resync is how far a packet's arrival may disagree with the current
	// mapping (ahead or behind) before its stream starts a new segment
	// (a sender that paused or jumped its timestamps). Zero means 1 s.
	Resync time.Duration
	// Window is the length of the windows over which minimum delays are
	// tracked; the estimate forgets a minimum after one to two windows, so
	// clock drift and lasting route changes are followed. Zero means 5 s.
	Window time.Duration
}

// Timeline is the common timeline of one call. Its origin is the arrival
// time of the first packet observed on any stream. It is not safe for
// concurrent use: one goroutine (the media session's owner loop) drives all
// its streams.
type Timeline struct {
	cfg Config

	origin     time.Time
	haveOrigin bool

	// sender clock: NTP time of the first SR is its epoch
	epoch     uint64
	haveEpoch bool
	common    windowMin // arrival - sender time over SR-mapped streams
}

// New validates cfg and returns a Timeline.
func New(cfg Config) (*Timeline, error) {
	if cfg.Slew < 0 || cfg.Slew >= 1 {
		return nil, errors.New("timeline: Slew outside [0, 1)")
	}
	if cfg.Resync < 0 || cfg.Window < 0 {
		return nil, errors.New("timeline: negative duration")
	}
	if cfg.Slew == 0 {
		cfg.Slew = 0.05
	}
	if cfg.Resync == 0 {
		cfg.Resync = time.Second
	}
	if cfg.Window == 0 {
		cfg.Window = 5 * time.Second
	}
	return &Timeline{cfg: cfg, common: windowMin{window: cfg.Window}}, nil
}

// Origin returns the wall-clock time of the timeline's zero and whether it
// is set yet (it is set by the first Observe).
func (t *Timeline) Origin() (time.Time, bool) { return t.origin, t.haveOrigin }

// NewStream returns a stream of the timeline (one per m= line: audio,
// video).
func (t *Timeline) NewStream() *Stream {
	return &Stream{t: t, arr: windowMin{window: t.cfg.Window}}
}

func (t *Timeline) since(at time.Time) time.Duration {
	if !t.haveOrigin {
		t.origin = at
		t.haveOrigin = true
	}
	return at.Sub(t.origin)
}

// senderTime converts an NTP timestamp to time since the sender epoch.
func (t *Timeline) senderTime(ntp uint64) time.Duration {
	if !t.haveEpoch {
		t.epoch = ntp
		t.haveEpoch = true
	}
	return NTPDiff(ntp, t.epoch)
}

// NTPDiff returns a-b for two 64-bit NTP timestamps (RFC 5905: 32-bit
// seconds, 32-bit fraction), valid within ±68 years.
func NTPDiff(a, b uint64) time.Duration {
	d := int64(a - b) // 32.32 fixed point
	sec := d >> 32
	frac := uint64(d) & 0xffffffff
	return time.Duration(sec)*time.Second + time.Duration(frac*uint64(time.Second)>>32)
}

// windowMin tracks the minimum of a value over the last one to two windows.
type windowMin struct {
	window          time.Duration
	cur, prev       time.Duration
	haveCur, havePr bool
	start           time.Duration
}

func (w *windowMin) add(v, at time.Duration) {
	if w.haveCur && at-w.start >= w.window {
		w.prev, w.havePr = w.cur, true
		w.haveCur = false
	}
	if !w.haveCur {
		w.cur, w.haveCur, w.start = v, true, at
		return
	}
	if v < w.cur {
		w.cur = v
	}
}

func (w *windowMin) get() (time.Duration, bool) {
	switch {
	case w.haveCur && w.havePr:
		return min(w.cur, w.prev), true
	case w.haveCur:
		return w.cur, true
	case w.havePr:
		return w.prev, true
	}
	return 0, false
}

func (w *windowMin) reset() { w.haveCur, w.havePr = false, false }

// Stream maps one stream's RTP timestamps to the timeline. It is not safe
// for concurrent use.
type Stream struct {
	t *Timeline

	// current segment
	active  bool
	ssrc    uint32
	rate    uint32
	baseTS  uint32 // extended timestamps are relative to this
	lastTS  uint32 // highest timestamp seen
	lastExt int64
	arr     windowMin // arrival (since origin) - media time (since baseTS)
	over    int       // consecutive packets beyond Resync

	// sender report mapping
	haveSR bool
	srExt  int64
	srTime time.Duration // sender time of srExt

	// output
	haveOut   bool
	mapped    bool  // lastTgt/lastMapExt valid within this segment
	lastMapEx int64 // extended timestamp of the last mapped frame
	lastTgt   time.Duration
	corr      time.Duration
	lastOut   time.Duration

	stats StreamStats
}

// StreamStats counts a stream's mapping events.
type StreamStats struct {
	Segments      uint64 // segments started (first packet, SSRC or clock change, resync)
	Resyncs       uint64 // segments started because arrival disagreed with the mapping
	SenderReports uint64 // SRs applied
	Rejected      uint64 // SRs ignored because their clock disagrees with the call's
	Clamped       uint64 // outputs raised to keep the stream strictly increasing
}

// Stats returns the stream's counters.
func (s *Stream) Stats() StreamStats { return s.stats }

// SenderReportMode reports whether the stream is mapped through an SR.
func (s *Stream) SenderReportMode() bool { return s.haveSR }

// Correction returns the stream's current correction (the part of a
// mapping change not yet slewed away).
func (s *Stream) Correction() time.Duration { return s.corr }

func (s *Stream) begin(ssrc, rate, ts uint32) {
	s.stats.Segments++
	s.active = true
	s.ssrc, s.rate = ssrc, rate
	s.baseTS, s.lastTS, s.lastExt = ts, ts, 0
	s.arr.reset()
	s.over = 0
	s.haveSR = false
	s.mapped = false
	s.corr = 0
}

// ext extends ts within the segment (RFC 3550 §A.1 style), advancing the
// highest timestamp when ts is newer.
func (s *Stream) ext(ts uint32) int64 {
	e := s.lastExt + int64(int32(ts-s.lastTS))
	if e > s.lastExt {
		s.lastExt, s.lastTS = e, ts
	}
	return e
}

// media converts an extended timestamp to media time. Whole seconds and
// the remainder are scaled apart: ext*1e9 would overflow an int64 once ext
// passes 9.2e9 (after 28.5 hours at 90 kHz).
func (s *Stream) media(ext int64) time.Duration {
	r := int64(s.rate)
	return time.Duration(ext/r)*time.Second + time.Duration(ext%r*int64(time.Second)/r)
}

// Observe records the arrival of an RTP packet of the stream (every media
// packet, in arrival order, before any jitter buffer). A new SSRC or clock
// rate starts a new segment.
func (s *Stream) Observe(ssrc uint32, ts uint32, clockRate uint32, arrival time.Time) {
	if clockRate == 0 {
		return
	}
	at := s.t.since(arrival)
	if !s.active || ssrc != s.ssrc || clockRate != s.rate {
		s.begin(ssrc, clockRate, ts)
	}
	e := s.ext(ts)
	off := at - s.media(e)
	if s.haveSR {
		sOff := at - (s.srTime + s.media(e-s.srExt))
		if c, ok := s.t.common.get(); ok && (sOff > c+s.t.cfg.Resync || sOff < c-s.t.cfg.Resync) {
			if s.resync(ts, at) {
				return
			}
		} else {
			s.over = 0
		}
		s.t.common.add(sOff, at)
	} else if m, ok := s.arr.get(); ok && (off > m+s.t.cfg.Resync || off < m-s.t.cfg.Resync) {
		if s.resync(ts, at) {
			return
		}
	} else {
		s.over = 0
	}
	s.arr.add(off, at)
}

// resync starts a new segment at ts once two consecutive packets disagree
// with the mapping (one very late packet is not enough).
func (s *Stream) resync(ts uint32, at time.Duration) bool {
	s.over++
	if s.over < 2 {
		return true
	}
	s.stats.Resyncs++
	s.begin(s.ssrc, s.rate, ts)
	s.arr.add(at, at)
	return true
}

// SenderReport applies an RTCP SR of the stream: ntp is its 64-bit NTP
// timestamp, ts the RTP timestamp of the same instant, arrival when it
// arrived. An SR for another SSRC than the current one is ignored.
func (s *Stream) SenderReport(ssrc uint32, ntp uint64, ts uint32, arrival time.Time) {
	if !s.active || ssrc != s.ssrc {
		return
	}
	at := s.t.since(arrival)
	e := s.lastExt + int64(int32(ts-s.lastTS))
	st := s.t.senderTime(ntp)
	if c, ok := s.t.common.get(); ok && (at-st > c+s.t.cfg.Resync || at-st < c-s.t.cfg.Resync) {
		// The SR's sender clock disagrees with the other streams' (a
		// peer whose audio and video clocks differ, or a clock step):
		// keep this stream on arrival time rather than mislead it.
		s.stats.Rejected++
		return
	}
	s.haveSR = true
	s.srExt, s.srTime = e, st
	s.stats.SenderReports++
	// The SR left the sender at st: its arrival bounds the delay too.
	s.t.common.add(at-st, at)
}

// unmapped places a frame that has no mapping (another SSRC than the
// segment's): just after the stream's last output.
func (s *Stream) unmapped() time.Duration {
	out, _ := s.floor()
	s.haveOut, s.lastOut = true, out
	return out
}

// MinStep is the least distance between two outputs of a stream: Map's
// results strictly increase, by at least this, so that no output (RTMP and
// recordings count in milliseconds) ever sees two frames of a track at one
// instant.
const MinStep = time.Millisecond

// floor is the least output Map may return next: MinStep after the last
// one (zero and false before any).
func (s *Stream) floor() (time.Duration, bool) {
	if !s.haveOut {
		return 0, false
	}
	return s.lastOut + MinStep, true
}

// target maps an extended timestamp with the current mapping.
func (s *Stream) target(e int64) (time.Duration, bool) {
	if s.haveSR {
		if c, ok := s.t.common.get(); ok {
			return s.srTime + s.media(e-s.srExt) + c, true
		}
	}
	m, ok := s.arr.get()
	if !ok {
		return 0, false
	}
	return s.media(e) + m, true
}

// Map returns the timeline position of the frame with RTP timestamp ts
// (frames in decoding order, after Observe saw its packets). The result
// is never negative and strictly increases within the stream, by at least
// MinStep: a frame that would land on or before the previous one is placed
// MinStep after it (counted in Stats().Clamped). Frames of an SSRC or
// clock rate other than the current segment's are placed MinStep after
// the stream's last output.
func (s *Stream) Map(ssrc uint32, ts uint32) time.Duration {
	if !s.active || ssrc != s.ssrc {
		return s.unmapped()
	}
	e := s.lastExt + int64(int32(ts-s.lastTS))
	tgt, ok := s.target(e)
	if !ok {
		return s.unmapped()
	}
	if s.mapped && e < s.lastMapEx {
		// An older frame (reordered past the jitter buffer, or a video
		// frame presented before the last decoded one): placed with the
		// current mapping, without touching the mapping's state.
		out := max(tgt+s.corr, 0)
		if floor, ok := s.floor(); ok && out < floor {
			s.stats.Clamped++
			out = floor
		}
		// What was returned is the floor from now on (the current mapping
		// may place an older timestamp later than the last output).
		s.haveOut, s.lastOut = true, out
		return out
	}
	if s.mapped {
		step := s.media(e - s.lastMapEx)
		if jump := tgt - (s.lastTgt + step); jump > time.Microsecond || jump < -time.Microsecond {
			s.corr -= jump // absorb a mapping change: no jump in the output
		}
		adj := time.Duration(float64(step) * s.t.cfg.Slew)
		switch {
		case s.corr > adj:
			s.corr -= adj
		case s.corr < -adj:
			s.corr += adj
		default:
			s.corr = 0
		}
	}
	first := !s.mapped
	s.mapped = true
	s.lastMapEx, s.lastTgt = e, tgt
	out := tgt + s.corr
	floor, _ := s.floor()
	if out < floor {
		s.stats.Clamped++
		if first {
			// A new segment that would start before the stream's last
			// output: shift it (the shift is slewed away) rather than
			// pile frames onto one instant.
			s.corr += floor - out
		}
		out = floor
	}
	s.haveOut = true
	s.lastOut = out
	return out
}
