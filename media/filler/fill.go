package filler

import (
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtpaudio"
)

// silence returns the shared silent payload of one packet, or nil when the
// codec has none (Speex, AAC).
func silence(c media.Codec, rate uint32, ch uint8, d time.Duration) []byte {
	b, err := rtpaudio.Silence(rtpaudio.Format{Codec: c, ClockRate: rate, Channels: ch}, d)
	if err != nil {
		return nil
	}
	return b
}

// audioFillable says audio can be filled: its format is known and has a
// silent frame.
func (f *Filler) audioFillable() bool {
	return f.haveOrig && f.audio.seen && f.audio.silence != nil
}

// videoFillable says video can be filled: a real keyframe was seen, or a
// black picture is configured and no video other than H.264 was seen.
func (f *Filler) videoFillable() bool {
	v := &f.video
	return f.haveOrig && (v.key != nil || (f.black != nil && (!v.seen || v.codec == media.CodecH264)))
}

// startAudioLocked starts filling audio, continuing from the last audio
// packet emitted, and reports whether it did.
func (f *Filler) startAudioLocked(now time.Time) bool {
	a := &f.audio
	if a.filling || !f.audioFillable() {
		return false
	}
	a.filling = true
	if a.emitted {
		a.nextFill = max(a.end, a.lastDTS+time.Millisecond)
	} else {
		a.nextFill = now.Sub(f.origin) - a.dur
	}
	return true
}

// startVideoLocked starts filling video with a still due at once, and
// reports whether it did.
func (f *Filler) startVideoLocked(now time.Time) bool {
	v := &f.video
	if v.filling || !f.videoFillable() {
		return false
	}
	v.filling = true
	v.nextFill = now.Sub(f.origin)
	if v.emitted && v.nextFill <= v.lastDTS {
		v.nextFill = v.lastDTS + time.Millisecond
	}
	return true
}

// tickLocked starts what Config.Gap says must be filled, emits the filler
// frames due by now and schedules the next wake-up.
func (f *Filler) tickLocked(now time.Time) {
	if f.closed || !f.haveOrig {
		return
	}
	gap := f.cfg.Gap
	if gap > 0 && !f.holding {
		if !f.audio.filling && now.Sub(f.audio.lastIn) >= gap && f.startAudioLocked(now) {
			f.stats.GapFills++
		}
		if !f.video.filling && f.video.seen && now.Sub(f.video.lastIn) >= gap && f.startVideoLocked(now) {
			f.stats.GapFills++
		}
	}
	tl := now.Sub(f.origin)
	f.fillAudioLocked(tl)
	f.fillVideoLocked(tl)

	var next time.Time
	set := false
	consider := func(t time.Time) {
		if !set || t.Before(next) {
			next, set = t, true
		}
	}
	if f.audio.filling {
		consider(f.origin.Add(f.audio.nextFill + f.audio.dur))
	}
	if f.video.filling {
		consider(f.origin.Add(f.video.nextFill))
	}
	if gap > 0 && !f.holding {
		if !f.audio.filling && f.audioFillable() {
			consider(f.audio.lastIn.Add(gap))
		}
		if !f.video.filling && f.video.seen && f.videoFillable() {
			consider(f.video.lastIn.Add(gap))
		}
	}
	if set {
		f.scheduleLocked(now, next)
	}
}

// fillAudioLocked emits the silence packets that have ended by tl (the
// timeline's now), contiguous with the audio before them.
func (f *Filler) fillAudioLocked(tl time.Duration) {
	a := &f.audio
	if !a.filling {
		return
	}
	if a.silence == nil {
		// The peer switched to a codec without a silent frame (it was
		// learned from a frame that arrived during the hold).
		a.filling = false
		return
	}
	if tl-(a.nextFill+a.dur) > maxCatchUp {
		// Far behind (the machine stalled, or a Gap long after the
		// audio stopped): leave a hole rather than a long burst.
		a.nextFill = tl - a.dur
	}
	for a.nextFill+a.dur <= tl {
		a.frame = media.Frame{Codec: a.codec, PTS: a.nextFill, DTS: a.nextFill, Keyframe: true,
			Payload: a.silence, ClockRate: a.rate, Channels: a.channels, Duration: a.dur}
		f.out(&a.frame)
		a.lastDTS, a.emitted, a.fillDTS, a.anyFill = a.nextFill, true, a.nextFill, true
		a.nextFill += a.dur
		a.end = a.nextFill
		f.stats.AudioFrames++
	}
}

// fillVideoLocked emits the still frame if one is due by tl.
func (f *Filler) fillVideoLocked(tl time.Duration) {
	v := &f.video
	if !v.filling {
		return
	}
	key, codec := v.key, v.keyCodec
	if key == nil {
		key, codec = f.black, media.CodecH264
		if v.seen && v.codec != media.CodecH264 {
			key = nil // a VP8 call that sent no keyframe yet
		}
	}
	if key == nil {
		v.filling = false
		return
	}
	if tl-v.nextFill > f.cfg.StillInterval {
		v.nextFill = tl // late wake-up: one still now, not a burst
	}
	for v.nextFill <= tl {
		v.frame = media.Frame{Codec: codec, PTS: v.nextFill, DTS: v.nextFill, Keyframe: true,
			Payload: key, ClockRate: 90000}
		f.out(&v.frame)
		v.lastDTS, v.emitted, v.fillDTS, v.anyFill = v.nextFill, true, v.nextFill, true
		v.nextFill += f.cfg.StillInterval
		f.stats.VideoFrames++
	}
}

// scheduleLocked makes the timer fire at at, unless it is due earlier.
func (f *Filler) scheduleLocked(now, at time.Time) {
	if f.closed {
		return
	}
	if f.timer != nil {
		if !f.timerAt.After(at) {
			return
		}
		f.stopTimerLocked()
	}
	d := max(at.Sub(now), time.Millisecond)
	f.gen++
	gen := f.gen
	f.wg.Add(1)
	f.timerAt = now.Add(d)
	f.timer = f.clock.AfterFunc(d, func() { f.fire(gen) })
}

// stopTimerLocked cancels the pending timer; a callback already on its
// way finds its generation stale and returns.
func (f *Filler) stopTimerLocked() {
	if f.timer == nil {
		return
	}
	if f.timer.Stop() {
		f.wg.Done()
	}
	f.timer = nil
	f.gen++
}

// fire is the timer's callback.
func (f *Filler) fire(gen uint64) {
	defer f.wg.Done()
	now := f.clock.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen || f.closed {
		return
	}
	f.timer = nil
	f.tickLocked(now)
}
