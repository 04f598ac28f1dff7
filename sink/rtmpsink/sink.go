package rtmpsink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/h264gen"
	"github.com/sipstream/sipstream/media/transcode"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/rtmp/flv"
	"github.com/sipstream/sipstream/sink"
)

var (
	_ sink.Sink        = (*Sink)(nil)
	_ sink.BatchWriter = (*Sink)(nil)
)

// Errors returned by WriteFrame.
var (
	// ErrFailed is returned (wrapped, with the reason) by WriteFrame once the
	// sink gave up reconnecting (StatusFailed), so that a sink.Fanout
	// detaches it.
	ErrFailed = errors.New("rtmpsink: connection failed")
	// ErrClosed is returned by WriteFrame after Close.
	ErrClosed = errors.New("rtmpsink: closed")
)

// AudioConverter turns a call's audio frames into AAC frames on the same
// timeline. media/transcode's ToAAC implements it.
type AudioConverter interface {
	// AudioSpecificConfig returns the AAC configuration of the output.
	AudioSpecificConfig() []byte
	// Write converts f and calls emit for every AAC frame that is ready.
	Write(f *media.Frame, emit func(*media.Frame)) error
	// Silence emits silent AAC frames up to the timeline position until.
	Silence(until time.Duration, emit func(*media.Frame))
	// Flush emits what is held and ends the stream: the next Write starts
	// a new one at its own timestamp (used when a connection resumes).
	Flush(emit func(*media.Frame))
}

// publisher is what the sink needs of an RTMP connection: rtmp.Client.
type publisher interface {
	WriteMetadata(md flv.Metadata) error
	WriteH264(pts, dts time.Duration, avcc []byte, keyframe bool) error
	WriteAACConfig(asc []byte) error
	WriteAAC(pts time.Duration, au []byte) error
	WriteG711(pts time.Duration, alaw bool, payload []byte) error
	Close() error
}

// shutdowner is what rtmp.Client offers beyond publisher: Close bounded by
// a context.
type shutdowner interface {
	Shutdown(ctx context.Context) error
}

// holder is what rtmp.Client offers beyond publisher: writes held in
// memory until Flush, so that a batch of frames goes out in one write.
type holder interface {
	Hold()
	Flush() error
}

// dialFunc connects and publishes; the real one is rtmp.Dial.
type dialFunc func(ctx context.Context, c *cfgOK) (publisher, error)

// Stats are an RTMP sink's counters.
type Stats struct {
	// Status is the current status.
	Status Status
	// FramesSent counts frames handed to the RTMP connection (after AAC
	// conversion, audio frames are counted as they come in).
	FramesSent uint64
	// FramesDropped counts frames not published: while disconnected,
	// while waiting for a keyframe, or of a codec the sink cannot publish.
	FramesDropped uint64
	// Connects counts successful publish starts (1 + reconnects).
	Connects uint64
}

// Sink publishes a call to an RTMP or RTMPS server as one live broadcast,
// reconnecting when the connection drops. It implements sink.Sink; put it
// behind a sink.Fanout, which gives it a goroutine and a queue: WriteFrame
// writes to the network (bounded by WriteTimeout) but never waits for a
// connection, a backoff or a keyframe, it drops frames instead.
//
// The sink owns one goroutine of its own, which connects, reconnects with
// exponential backoff and reports statuses in order through
// Config.OnStatus. Publishing starts (and, after a reconnect, resumes) on a
// video keyframe, with metadata and sequence headers sent first. Timestamps
// are the call's timeline relative to the first published frame and never
// restart: after a reconnect they go on from where the call is, so the
// platform sees one broadcast with a gap rather than a new one.
type Sink struct {
	cfg  cfgOK
	dial dialFunc
	clk  clock

	cancel context.CancelFunc
	lost   chan error // writer → manager: the connection failed
	done   chan struct{}

	mu       sync.Mutex // guards conn, gen, status, failErr, counters
	conn     publisher
	gen      uint64
	status   Status
	failErr  error
	sent     uint64
	dropped  uint64
	connects uint64

	writeMu sync.Mutex // serialises WriteFrame and Close
	closed  bool
	w       writer
	// batching: WriteFrames holds the connection's writes; batchSent
	// counts the frames counted as sent meanwhile. Under writeMu.
	batching  bool
	batchSent uint64

	// The sound played into the audio (sound.go): SetSound sets mix's
	// source, the writer mixes it through mixConv (the AAC converter, if
	// it can mix) or into G.711. sawAAC: AAC input was seen.
	mix     soundMixer
	mixConv mixable
	sawAAC  atomic.Bool
}

// writer is the state of the publishing side, owned by WriteFrame.
type writer struct {
	gen        uint64 // connection generation the state below is about
	setupDone  bool   // metadata and sequence headers sent on this connection
	videoReady bool   // a keyframe was published on this connection
	waitSince  time.Time
	lastKeyReq time.Time
	haveBase   bool
	base       time.Duration
	lastKey    time.Duration // PTS of the last published keyframe
	conv       AudioConverter
	primeConv  bool // video-only: start the silent stream at the next video frame
	vgen       *h264gen.Generator
	vgenSkip   bool   // audio-only: move the generated track to the next audio frame
	asc        []byte // AudioSpecificConfig of AAC input
	md         flv.Metadata
	mixOn      bool    // mix is the converter's mixer
	pcm        []int16 // G.711 decoded to mix a sound into
}

// New validates cfg and starts connecting in the background (status WAIT).
func New(cfg Config) (*Sink, error) {
	return newSink(cfg, dialRTMP, realClock{})
}

// clock is the sink's time source: backoff, give-up deadline and keyframe
// waits. Tests drive a fake one.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func newSink(cfg Config, dial dialFunc, clk clock) (*Sink, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Sink{
		cfg:    c,
		dial:   dial,
		clk:    clk,
		lost:   make(chan error, 1),
		done:   make(chan struct{}),
		status: StatusWait,
	}
	if c.AudioMode == AudioAAC {
		newAAC := c.NewAAC
		if newAAC == nil {
			newAAC = func() (AudioConverter, error) { return transcode.NewToAAC(c.AAC) }
		}
		conv, err := newAAC()
		if err != nil {
			return nil, fmt.Errorf("%w: AAC converter: %w", ErrConfig, err)
		}
		s.w.conv = conv
		s.mixConv, _ = conv.(mixable)
	}
	if !c.Video && !c.NoGeneratedVideo {
		g, err := h264gen.New(c.GeneratedVideo)
		if err != nil {
			return nil, fmt.Errorf("%w: generated video: %w", ErrConfig, err)
		}
		s.w.vgen = g
	}
	if len(c.AudioSpecificConfig) > 0 {
		s.w.asc = append([]byte(nil), c.AudioSpecificConfig...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	return s, nil
}

// String describes the sink without its stream key.
func (s *Sink) String() string { return "rtmpsink.Sink{" + s.cfg.Config.String() + "}" }

// Status returns the current status.
func (s *Sink) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Status: s.status, FramesSent: s.sent, FramesDropped: s.dropped, Connects: s.connects}
}

func (s *Sink) redact(err error) string {
	if err == nil {
		return ""
	}
	return s.cfg.redactor.Replace(err.Error())
}

func (s *Sink) setStatus(st Status, reason string) {
	s.mu.Lock()
	s.status = st
	s.mu.Unlock()
	if s.cfg.OnStatus != nil {
		s.cfg.OnStatus(st, reason)
	}
}

// run is the sink's goroutine: it connects, waits for the connection to
// fail, reconnects with backoff and gives up after GiveUpAfter.
func (s *Sink) run(ctx context.Context) {
	defer close(s.done)
	s.setStatus(StatusWait, "")
	deadline := s.clk.Now().Add(s.cfg.GiveUpAfter)
	backoff := s.cfg.BackoffMin
	everConnected := false
	for {
		dctx, dcancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
		p, err := s.dial(dctx, &s.cfg)
		dcancel()
		if ctx.Err() != nil {
			if p != nil {
				_ = p.Close()
			}
			return
		}
		if err == nil {
			s.mu.Lock()
			s.conn = p
			s.gen++
			s.connects++
			s.mu.Unlock()
			everConnected = true
			if s.cfg.RequestKeyframe != nil && s.cfg.Video {
				s.cfg.RequestKeyframe() // publishing starts on the next one
			}
			s.setStatus(StatusActive, "")
			select {
			case <-ctx.Done():
				return
			case err = <-s.lost:
			}
			s.setStatus(StatusLost, s.redact(err))
			deadline = s.clk.Now().Add(s.cfg.GiveUpAfter)
			backoff = s.cfg.BackoffMin
			continue // first retry at once
		}
		wait := jitter(backoff)
		if s.clk.Now().Add(wait).After(deadline) {
			what := "could not connect"
			if everConnected {
				what = "could not reconnect"
			}
			reason := fmt.Sprintf("%s within %v: %s", what, s.cfg.GiveUpAfter, s.redact(err))
			s.mu.Lock()
			s.failErr = fmt.Errorf("%w: %s", ErrFailed, reason)
			s.mu.Unlock()
			s.setStatus(StatusFailed, reason)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.clk.After(wait):
		}
		backoff = min(backoff*2, s.cfg.BackoffMax)
	}
}

// jitter spreads d by ±20 % so that many sinks dropped together do not
// reconnect in lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// WriteFrame publishes f if the sink is connected and ready for it, and
// drops it (counted) otherwise. It returns an error wrapping ErrFailed once
// the sink gave up, and ErrClosed after Close. A failed network write is not
// an error for the caller: the sink reports LOST and reconnects.
func (s *Sink) WriteFrame(f *media.Frame) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.writeFrame(f)
	s.soundEnds()
	return err
}

// WriteFrames writes fs as WriteFrame would, one after the other, but
// sends them to the server in one network write: a sink.Fanout hands it
// what the sink's queue holds. It returns how many frames it took before an
// error (ErrClosed, or one wrapping ErrFailed).
func (s *Sink) WriteFrames(fs []*media.Frame) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	conn := s.conn
	s.mu.Unlock()
	h, batch := conn.(holder)
	batch = batch && len(fs) > 1
	if batch {
		h.Hold()
		s.batchSent = 0
		s.batching = true
	}
	n := 0
	var err error
	for _, f := range fs {
		if err = s.writeFrame(f); err != nil {
			break
		}
		n++
	}
	if batch {
		s.batching = false
		if ferr := h.Flush(); ferr != nil {
			// The frames counted as sent were lost with the connection.
			s.mu.Lock()
			s.sent -= s.batchSent
			s.dropped += s.batchSent
			s.mu.Unlock()
			s.connLost(conn, ferr)
		}
	}
	s.soundEnds()
	return n, err
}

// writeFrame is WriteFrame; writeMu must be held.
func (s *Sink) writeFrame(f *media.Frame) error {
	if s.closed {
		return ErrClosed
	}
	s.mu.Lock()
	conn, gen, failErr := s.conn, s.gen, s.failErr
	s.mu.Unlock()
	if failErr != nil {
		return failErr
	}
	if conn == nil {
		s.count(0, 1)
		return nil
	}
	w := &s.w
	s.syncMixer()
	if gen != w.gen {
		s.mix.resync()
		w.gen = gen
		w.setupDone = false
		w.videoReady = false
		w.waitSince = s.clk.Now()
		w.lastKeyReq = w.waitSince // the manager just asked for one
		if w.conv != nil {
			// The AAC stream restarts at the next frame's time instead of
			// filling the outage with a burst of old audio.
			w.conv.Flush(func(*media.Frame) {})
			w.primeConv = !s.cfg.Audio
		}
		w.vgenSkip = true
	}
	video := f.Kind() == media.KindVideo
	if video && (f.Codec != media.CodecH264 || !s.cfg.Video) {
		s.count(0, 1) // VP8 cannot go to RTMP platforms; video not announced
		return nil
	}
	if !w.videoReady && s.cfg.Video {
		switch {
		case video && f.Keyframe:
			w.videoReady = true
		case video || s.clk.Now().Sub(w.waitSince) < s.cfg.KeyframeTimeout:
			s.count(0, 1)
			s.maybeRequestKeyframe()
			return nil
		default:
			s.maybeRequestKeyframe() // audio goes on alone meanwhile
		}
	}
	if err := s.publish(conn, f, video); err != nil {
		s.count(0, 1)
		s.connLost(conn, err)
	}
	return nil
}

func (s *Sink) maybeRequestKeyframe() {
	now := s.clk.Now()
	if s.cfg.RequestKeyframe == nil || now.Sub(s.w.lastKeyReq) < time.Second {
		return
	}
	s.w.lastKeyReq = now
	s.cfg.RequestKeyframe()
}

func (s *Sink) count(sent, dropped uint64) {
	if s.batching {
		s.batchSent += sent
	}
	s.mu.Lock()
	s.sent += sent
	s.dropped += dropped
	s.mu.Unlock()
}

// connLost retires a connection after a write error and wakes the manager.
//
// Only the loss of the current connection wakes the manager: a batch's
// Flush can fail on a connection already retired by one of its frames, and
// a stale signal would make the manager drop the connection it has just
// made (unclosed, still holding the stream name, so the servers refuse the
// next one: nginx-rtmp answers NetStream.Publish.BadName).
func (s *Sink) connLost(p publisher, err error) {
	s.mu.Lock()
	current := s.conn == p
	if current {
		s.conn = nil
	}
	s.mu.Unlock()
	_ = p.Close()
	if !current {
		return
	}
	select {
	case s.lost <- err:
	default:
	}
}

// publish writes one frame (and, first on a connection, the metadata and
// sequence headers).
func (s *Sink) publish(p publisher, f *media.Frame, video bool) error {
	w := &s.w
	if !w.haveBase {
		w.haveBase = true
		w.base = f.PTS
		if f.DTS < w.base {
			w.base = f.DTS
		}
	}
	if !w.setupDone {
		if err := s.setup(p); err != nil {
			return err
		}
		w.setupDone = true
	}
	pts, dts := rel(f.PTS, w.base), rel(f.DTS, w.base)
	if video {
		if f.DTS < w.base {
			s.count(0, 1) // older than the broadcast's start
			return nil
		}
		if err := p.WriteH264(pts, dts, f.Payload, f.Keyframe); err != nil {
			if errors.Is(err, rtmp.ErrBadFrame) {
				// A malformed picture from the phone: the connection is
				// fine, reconnecting would not help. Drop it, and ask
				// for a keyframe if it was one.
				s.count(0, 1)
				if f.Keyframe {
					s.maybeRequestKeyframe()
				}
				return nil
			}
			return err
		}
		s.count(1, 0)
		if f.Keyframe {
			w.lastKey = f.PTS
		} else if s.cfg.MaxKeyframeInterval > 0 && f.PTS-w.lastKey >= s.cfg.MaxKeyframeInterval {
			s.maybeRequestKeyframe()
		}
		if !s.cfg.Audio && w.conv != nil {
			return s.silence(p, f.PTS)
		}
		return nil
	}
	if w.vgen != nil {
		if err := s.generateVideo(p, f.PTS); err != nil {
			return err
		}
	}
	if f.PTS < w.base && (f.Codec == media.CodecAAC || s.cfg.AudioMode == AudioPassthrough) {
		s.count(0, 1) // older than the broadcast's start
		return nil
	}
	switch {
	case f.Codec == media.CodecAAC:
		s.sawAAC.Store(true)
		if w.asc == nil {
			s.count(0, 1) // no AudioSpecificConfig known for this AAC
			return nil
		}
		err := p.WriteAAC(pts, f.Payload)
		if err == nil {
			s.count(1, 0)
		}
		return err
	case s.cfg.AudioMode == AudioPassthrough && (f.Codec == media.CodecPCMA || f.Codec == media.CodecPCMU):
		payload := f.Payload
		if s.mix.active.Load() {
			payload = s.mixG711(f)
		}
		err := p.WriteG711(pts, f.Codec == media.CodecPCMA, payload)
		if err == nil {
			s.count(1, 0)
		}
		return err
	case s.cfg.AudioMode == AudioAAC && w.conv != nil:
		var werr error
		if err := w.conv.Write(f, s.aacEmitter(p, &werr)); err != nil {
			s.count(0, 1)
			return werr
		}
		if werr == nil {
			s.count(1, 0)
		}
		return werr
	default:
		s.count(0, 1)
		return nil
	}
}

// aacEmitter returns the callback that publishes the converter's AAC
// frames, the first error kept in *werr. A frame older than the broadcast's
// start (the priming frame of the converter's first stream) is left out
// rather than stamped zero on top of the next one.
func (s *Sink) aacEmitter(p publisher, werr *error) func(*media.Frame) {
	w := &s.w
	return func(out *media.Frame) {
		if *werr == nil && out.PTS >= w.base {
			*werr = p.WriteAAC(rel(out.PTS, w.base), out.Payload)
		}
	}
}

// silence publishes silent AAC up to until (a video-only call).
func (s *Sink) silence(p publisher, until time.Duration) error {
	w := &s.w
	var werr error
	emit := s.aacEmitter(p, &werr)
	if w.primeConv {
		// Start the stream here, not at zero: one frame of G.711 silence.
		w.primeConv = false
		prime := media.Frame{Codec: media.CodecPCMA, PTS: until, DTS: until, Keyframe: true, ClockRate: 8000,
			Channels: 1, Duration: 20 * time.Millisecond, Payload: alawSilence[:]}
		_ = w.conv.Write(&prime, emit)
	}
	w.conv.Silence(until, emit)
	return werr
}

// alawSilence is 20 ms of G.711 A-law silence.
var alawSilence = func() (b [160]byte) {
	for i := range b {
		b[i] = 0xd5
	}
	return b
}()

// generateVideo publishes the generated H.264 track up to until (an
// audio-only call), starting with an IDR on every connection.
func (s *Sink) generateVideo(p publisher, until time.Duration) error {
	w := &s.w
	if w.vgenSkip {
		w.vgenSkip = false
		w.vgen.Skip(until)
	}
	var werr error
	w.vgen.Until(until, func(out *media.Frame) {
		if werr == nil && out.DTS >= w.base {
			werr = p.WriteH264(rel(out.PTS, w.base), rel(out.DTS, w.base), out.Payload, out.Keyframe)
		}
	})
	return werr
}

// rel is d on the published timeline, never negative. Frames older than
// the timeline's start are not published (publish drops them): clamping
// them to zero would stack several on one timestamp.
func rel(d, base time.Duration) time.Duration {
	if d < base {
		return 0
	}
	return d - base
}

// setup sends onMetaData and the AAC sequence header on a new connection.
// (rtmp.Client sends the AVC sequence header itself from the keyframe.)
func (s *Sink) setup(p publisher) error {
	md := flv.Metadata{Encoder: "sipstream"}
	if s.cfg.Video || s.w.vgen != nil {
		md.VideoCodecID = flv.CodecAVC
	}
	if s.w.vgen != nil {
		md.Width, md.Height = s.cfg.GeneratedVideo.Width, s.cfg.GeneratedVideo.Height
		if md.Width == 0 {
			md.Width, md.Height = 640, 360 // h264gen's default
		}
	}
	asc := s.w.asc
	if asc == nil && s.w.conv != nil {
		asc = s.w.conv.AudioSpecificConfig()
	}
	if asc != nil {
		md.AudioCodecID = flv.SoundAAC
		if rate, ch, ok := ascRate(asc); ok {
			md.AudioSampleRate, md.AudioSampleSize, md.Stereo = rate, 16, ch > 1
		}
	}
	if err := p.WriteMetadata(md); err != nil {
		return err
	}
	if asc != nil {
		if err := p.WriteAACConfig(asc); err != nil {
			return err
		}
	}
	return nil
}

// Close stops reconnecting, closes the connection (the server sees the
// publisher leave) and waits for the sink's goroutine. Saying goodbye to
// the server (FCUnpublish, at most one second) stops when ctx is done: the
// connection is closed at once and Close returns ctx's error. Later calls
// return nil.
func (s *Sink) Close(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	<-s.done
	s.mu.Lock()
	p := s.conn
	s.conn = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	if sd, ok := p.(shutdowner); ok {
		if err := sd.Shutdown(ctx); err != nil {
			return fmt.Errorf("rtmpsink: close: %w", err)
		}
		return nil
	}
	if err := p.Close(); err != nil {
		return fmt.Errorf("rtmpsink: close: %s", s.redact(err))
	}
	return nil
}

// ascRate reads the sample rate and channel count of an AudioSpecificConfig
// (ISO/IEC 14496-3 §1.6.2.1) with a 5-bit object type and an indexed rate.
func ascRate(asc []byte) (rate, channels int, ok bool) {
	if len(asc) < 2 || asc[0]>>3 == 31 {
		return 0, 0, false
	}
	idx := int(asc[0]&7)<<1 | int(asc[1]>>7)
	rates := [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	if idx >= len(rates) {
		return 0, 0, false
	}
	return rates[idx], int(asc[1]>>3) & 0xf, true
}
