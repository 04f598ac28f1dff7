// Package filler keeps a call's published stream alive while the SIP peer
// sends no media: on hold (a re-INVITE with a=sendonly or a=inactive, from
// either side), or, optionally, whenever a kind of media stops for a while.
//
// A Filler sits between a call's frames and its fan-out. It passes real
// frames through and remembers what it needs to stand in for them: the last
// video keyframe (one copy of its payload, H.264 with its SPS and PPS, or
// VP8), the audio codec, clock rate, channels and packet duration, and
// where the call's timeline is on the monotonic wall clock (the latest real
// frame's DTS was "now" when it arrived). While it fills it emits, on the
// wall clock, silence in the call's audio codec every packet duration
// (contiguous with the last real audio, so the audio track has no hole) and
// the last keyframe again as a new keyframe every Config.StillInterval (a
// still picture whose keyframe interval suits RTMP platforms, which drop a
// stream whose media stops or whose keyframes are more than 2 s apart, and
// which players show instead of stalling). Filler timestamps continue the
// call's timeline from the wall clock.
//
// When real media comes back, each kind stops being filled at its first
// real frame whose DTS is after the last filler frame of that kind (earlier
// ones are dropped, so DTS never repeats or goes back); video waits for a
// real keyframe, with stills going on meanwhile, and asks for one through
// Config.OnNeedKeyframe. The real frames keep their own timestamps: the
// call's timeline places media after a pause by its arrival time, which is
// where the filler left off.
//
// The still picture is the last keyframe, not the last picture shown: with
// phones that send a keyframe every few seconds the picture may step back
// that far when the hold starts. Audio in Speex or AAC has no silent frame
// here and is not filled (G.711 A-law and µ-law, and Opus, are).
package filler

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/h264gen"
)

// ErrConfig is wrapped by the errors New returns for an invalid Config.
var ErrConfig = errors.New("filler: invalid config")

// DefaultStillInterval is the time between still frames when
// Config.StillInterval is zero.
//
// Half a second rather than one: the keyframe interval then stays well
// inside the 2 s RTMP platforms ask for even when the timer runs late on a
// loaded machine, a viewer who joins during the hold (WebRTC, HLS, a
// player reconnecting to the RTMP server) gets a picture within half a
// second, and the video track keeps a frame rate (2 fps) that ingest health
// checks do not flag as stalled. The cost is two keyframes a second: a
// 640×360 phone's IDR is about 12 KB (200 kbit/s), a 720p one's 30 to 60 KB,
// about what the call's video used before the hold.
const DefaultStillInterval = 500 * time.Millisecond

// MaxStillInterval bounds Config.StillInterval: YouTube, Facebook and
// Twitch want a keyframe at least every 2 s.
const MaxStillInterval = 2 * time.Second

// MinGap bounds Config.Gap from below: a shorter gap would fill between
// the packets of ordinary network jitter.
const MinGap = 100 * time.Millisecond

// maxCatchUp is how much audio behind the wall clock the filler makes up
// for with a burst of silence; beyond that it leaves a hole in the audio
// and continues from the wall clock (after the machine stalled, say).
const maxCatchUp = time.Second

// Config configures a Filler. The zero value is usable: fill on Hold only,
// stills every 500 ms, no black picture, the system clock.
type Config struct {
	// StillInterval is the time between still frames (the last keyframe
	// repeated) while video is filled, at most MaxStillInterval. Zero means
	// DefaultStillInterval (500 ms; its doc says why).
	StillInterval time.Duration

	// Gap, when positive (at least MinGap), fills a kind of media whose real
	// frames stopped for Gap without Hold: a peer that put the call on
	// hold with a=inactive without the call's owner noticing, a phone that
	// stopped its camera, a network stall. Each kind is filled on its own
	// (audio may flow while video is filled). Real frames that arrive late
	// after a stall (their DTS inside the filled time) are dropped, and
	// video waits for a keyframe, so a stall somewhat longer than Gap
	// costs a keyframe request and up to one keyframe interval of still
	// picture: choose Gap well above the call's worst jitter (1 s or
	// more; 2 s keeps the keyframe interval within what platforms accept
	// when it is the only defence). Zero means off: only Hold fills.
	Gap time.Duration

	// OnNeedKeyframe is called when real video resumes after a fill with a
	// frame that is not a keyframe (the frames are dropped until one
	// comes), then at most once per StillInterval while that lasts; the
	// owner asks the peer for a keyframe (a media session's
	// RequestKeyframe, which is rate limited, fits). It is called from the
	// goroutine calling WriteFrame, without the Filler's lock held; it may
	// call the Filler. Nil means no request.
	OnNeedKeyframe func()

	// BlackWidth and BlackHeight, when set, give the size of a black H.264
	// picture (made with media/h264gen, even sizes 16..4096) used as the
	// still while no real video keyframe has been seen: a video call put on
	// hold before its video started. On Hold it is used even when no video
	// frame at all was seen, so set it only for calls that have video (an
	// audio-only call's generated video should go through the Filler
	// instead, which then repeats its keyframe); Gap never fills a kind it
	// has not seen. Its SPS differs from what the phone sends
	// later: the RTMP client and the FLV recorder send a new AVC sequence
	// header when the SPS changes; MP4 and Matroska recordings keep the
	// first in their header and carry later ones in-band (ffmpeg follows,
	// some players may not: those recordings then start with the black
	// picture's parameters). Zero means no black
	// picture: without a keyframe, video is not filled. Never used once
	// video in another codec than H.264 (VP8) was seen.
	BlackWidth, BlackHeight int

	// Clock is the source of time. Nil means the system clock.
	Clock Clock
}

// Stats are a Filler's counters.
type Stats struct {
	// Holding says Hold(true) is in force.
	Holding bool
	// Holds counts Hold(true) calls that started a hold.
	Holds uint64
	// HoldTime is the total time spent on hold, the current hold
	// included.
	HoldTime time.Duration
	// GapFills counts the times Config.Gap started filling a kind.
	GapFills uint64
	// AudioFrames counts the silence frames emitted.
	AudioFrames uint64
	// VideoFrames counts the still frames emitted.
	VideoFrames uint64
	// DroppedHeld counts real frames dropped because they arrived during
	// Hold(true).
	DroppedHeld uint64
	// DroppedLate counts real frames dropped because their DTS was not
	// after the last filler frame of their kind.
	DroppedLate uint64
	// DroppedNoKeyframe counts real video frames dropped while video
	// waited for a real keyframe after a fill.
	DroppedNoKeyframe uint64
}

// Filler passes a call's real frames to its output and stands in for them
// with silence and a still picture while they are missing. Its methods are
// safe for concurrent use.
type Filler struct {
	cfg   Config
	clock Clock
	out   func(*media.Frame)

	mu       sync.Mutex
	closed   bool
	holding  bool
	holdFrom time.Time
	origin   time.Time // wall time of the timeline's zero
	haveOrig bool
	audio    audioTrack
	video    videoTrack
	black    []byte // black H.264 keyframe, nil without Config.Black*
	stats    Stats

	// The one pending timer, if any; gen tells a stale callback (one
	// that fired while being replaced) from the current one.
	timer   Timer
	timerAt time.Time
	gen     uint64
	wg      sync.WaitGroup // scheduled or running timer callbacks
}

// track is what both kinds keep.
type track struct {
	seen     bool          // a real frame of this kind arrived
	lastIn   time.Time     // wall time of the last real frame
	lastDTS  time.Duration // DTS of the last frame emitted (real or filler)
	emitted  bool          // lastDTS is valid
	filling  bool          // filler frames are being emitted
	fillDTS  time.Duration // DTS of the last filler frame
	anyFill  bool          // fillDTS is valid
	frame    media.Frame   // reused for filler frames
	nextFill time.Duration // timeline time of the next filler frame
}

type audioTrack struct {
	track
	codec    media.Codec
	rate     uint32
	channels uint8
	dur      time.Duration // packet duration of the filler frames
	end      time.Duration // where the last audio emitted ends (DTS + duration)
	silence  []byte        // shared, never modified; nil: codec not fillable
}

type videoTrack struct {
	track
	key      []byte // copy of the last real keyframe's payload
	keyCodec media.Codec
	codec    media.Codec // of the last real video frame
	waitKey  bool        // real video resumed without a keyframe: dropping
	askedAt  time.Time   // last OnNeedKeyframe call
}

// New returns a Filler that hands frames to out: real frames as WriteFrame
// got them, filler frames it makes. out is called with the Filler's lock
// held, from the goroutine calling WriteFrame or from the Filler's timer
// goroutine, never concurrently and in timeline order per kind; it must not
// call the Filler and must not block for long (a sink.Fanout's
// WriteFrame, which queues, fits). The frame passed to out is borrowed: it
// and its payload are valid until out returns (the fan-out copies them).
// A Filler starts no goroutine until it has something to fill.
func New(cfg Config, out func(*media.Frame)) (*Filler, error) {
	if out == nil {
		return nil, fmt.Errorf("%w: nil output", ErrConfig)
	}
	switch {
	case cfg.StillInterval < 0 || cfg.StillInterval > MaxStillInterval:
		return nil, fmt.Errorf("%w: still interval %v (0 to %v)", ErrConfig, cfg.StillInterval, MaxStillInterval)
	case cfg.Gap < 0 || (cfg.Gap > 0 && cfg.Gap < MinGap):
		return nil, fmt.Errorf("%w: gap %v (0, or at least %v)", ErrConfig, cfg.Gap, MinGap)
	case (cfg.BlackWidth == 0) != (cfg.BlackHeight == 0):
		return nil, fmt.Errorf("%w: black picture %dx%d: set both sizes or neither", ErrConfig, cfg.BlackWidth, cfg.BlackHeight)
	}
	if cfg.StillInterval == 0 {
		cfg.StillInterval = DefaultStillInterval
	}
	f := &Filler{cfg: cfg, clock: cfg.Clock, out: out}
	if f.clock == nil {
		f.clock = systemClock{}
	}
	if cfg.BlackWidth != 0 {
		key, err := blackKeyframe(cfg.BlackWidth, cfg.BlackHeight)
		if err != nil {
			return nil, fmt.Errorf("%w: black picture: %w", ErrConfig, err)
		}
		f.black = key
	}
	return f, nil
}

// blackKeyframe makes one black H.264 IDR access unit (SPS, PPS, slice).
func blackKeyframe(w, h int) ([]byte, error) {
	g, err := h264gen.New(h264gen.Config{Width: w, Height: h})
	if err != nil {
		return nil, err
	}
	var key []byte
	g.Next(func(fr *media.Frame) { key = fr.Payload }) // a new slice, ours
	return key, nil
}

// WriteFrame passes a real frame on to the output, or drops it: during
// Hold(true), when its DTS is not after the last filler frame of its
// kind, and for video after a fill until a real keyframe. It learns from
// every frame, dropped or not. A nil frame is ignored. f is borrowed: only the keyframe payload is
// copied, into a buffer the Filler reuses. Frames of unknown kind pass
// untouched.
func (f *Filler) WriteFrame(fr *media.Frame) {
	if fr == nil {
		return
	}
	kind := fr.Kind()
	if kind == media.KindUnknown {
		f.mu.Lock()
		f.out(fr)
		f.mu.Unlock()
		return
	}
	now := f.clock.Now()
	askKey := false

	f.mu.Lock()
	f.origin, f.haveOrig = now.Add(-fr.DTS), true
	var tr *track
	if kind == media.KindAudio {
		f.audio.learn(fr)
		tr = &f.audio.track
	} else {
		f.video.learn(fr)
		tr = &f.video.track
	}
	tr.seen, tr.lastIn = true, now
	pass := false
	switch {
	case f.holding:
		f.stats.DroppedHeld++
	case tr.anyFill && fr.DTS <= tr.fillDTS:
		f.stats.DroppedLate++
	case kind == media.KindVideo && tr.filling && !fr.Keyframe:
		// Real video is back but cannot start before a keyframe: keep
		// the still going and ask for one.
		f.stats.DroppedNoKeyframe++
		if !f.video.waitKey || now.Sub(f.video.askedAt) >= f.cfg.StillInterval {
			f.video.waitKey, f.video.askedAt, askKey = true, now, true
		}
	default:
		pass = true
	}
	if pass {
		if kind == media.KindAudio && f.audio.filling && !f.closed {
			// Close the hole between the silence and the real audio
			// (the real packet came before the timer for the last
			// silent one).
			f.fillAudioLocked(fr.DTS)
		}
		tr.filling = false
		if kind == media.KindVideo {
			f.video.waitKey = false
		}
		tr.lastDTS, tr.emitted = fr.DTS, true
		if kind == media.KindAudio {
			d := fr.Duration
			if d <= 0 {
				d = f.audio.dur
			}
			f.audio.end = fr.DTS + d
		}
		f.out(fr)
	}
	if f.cfg.Gap > 0 && f.timer == nil && !f.closed {
		f.scheduleLocked(now, now.Add(f.cfg.Gap))
	}
	f.mu.Unlock()

	if askKey && f.cfg.OnNeedKeyframe != nil {
		f.cfg.OnNeedKeyframe()
	}
}

// learn remembers the audio format and packet duration of a real frame.
func (a *audioTrack) learn(fr *media.Frame) {
	ch := max(fr.Channels, 1)
	dur := fr.Duration
	switch fr.Codec {
	case media.CodecOpus:
		dur = 20 * time.Millisecond // the only silent Opus frame we have
	case media.CodecPCMA, media.CodecPCMU:
		if dur <= 0 && fr.ClockRate > 0 {
			dur = time.Duration(len(fr.Payload)/int(ch)) * time.Second / time.Duration(fr.ClockRate)
		}
	}
	if dur < 5*time.Millisecond || dur > 120*time.Millisecond {
		dur = 20 * time.Millisecond
	}
	rate := fr.ClockRate
	if rate == 0 {
		rate = 8000
		if fr.Codec == media.CodecOpus {
			rate = 48000
		}
	}
	if a.codec == fr.Codec && a.rate == rate && a.channels == ch && a.dur == dur {
		return
	}
	a.codec, a.rate, a.channels, a.dur = fr.Codec, rate, ch, dur
	a.silence = silence(fr.Codec, rate, ch, dur)
}

// learn keeps a copy of a real keyframe's payload, in a buffer reused from
// one keyframe to the next.
func (v *videoTrack) learn(fr *media.Frame) {
	v.codec = fr.Codec
	if !fr.Keyframe || len(fr.Payload) == 0 {
		return
	}
	v.key = append(v.key[:0], fr.Payload...)
	v.keyCodec = fr.Codec
}

// Hold starts (on) or ends a hold. While on, real frames are dropped and
// every kind of media seen so far is filled: silence at once, continuing
// the audio from its last packet, and a still frame at once then every
// StillInterval. Hold(false) lets real frames through again; each kind is
// filled until its first real frame (video: its first real keyframe), so
// the stream has no hole while the peer starts sending again. Calling Hold
// with the state already in force does nothing.
func (f *Filler) Hold(on bool) {
	now := f.clock.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.holding == on {
		return
	}
	f.holding = on
	if !on {
		f.stats.HoldTime += now.Sub(f.holdFrom)
		return
	}
	f.holdFrom = now
	f.stats.Holds++
	started := f.startAudioLocked(now)
	started = f.startVideoLocked(now) || started
	if started {
		f.tickLocked(now)
	}
}

// Stats returns the counters.
func (f *Filler) Stats() Stats {
	now := f.clock.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.Holding = f.holding
	if f.holding {
		s.HoldTime += now.Sub(f.holdFrom)
	}
	return s
}

// Close stops filling for good and waits for the Filler's timer goroutine,
// if one runs, to finish. Real frames still pass through WriteFrame after
// Close (with the same dropping rules) but nothing is filled. Close is
// idempotent.
func (f *Filler) Close() {
	now := f.clock.Now()
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		if f.holding {
			f.stats.HoldTime += now.Sub(f.holdFrom)
			f.holding = false
		}
		f.audio.filling, f.video.filling = false, false
		f.stopTimerLocked()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
