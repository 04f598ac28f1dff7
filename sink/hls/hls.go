package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/media/transcode"
	"github.com/sipstream/sipstream/sink"
)

var _ sink.Sink = (*Sink)(nil)
var _ http.Handler = (*Sink)(nil)

// Errors returned by the sink.
var (
	// ErrClosed is returned by WriteFrame after Close.
	ErrClosed = errors.New("hls: sink closed")
	// ErrNoTracks is returned by New when Config asks for neither audio
	// nor video.
	ErrNoTracks = errors.New("hls: no tracks configured")
	// ErrConfig wraps the other errors New returns for an invalid Config.
	ErrConfig = errors.New("hls: invalid config")
	// ErrMuxer is returned (wrapped) by WriteFrame when the muxer failed
	// for good; the sink is then unusable and should be detached.
	ErrMuxer = errors.New("hls: muxer failed")
)

// Config configures a Sink. Audio or Video must be set.
type Config struct {
	// Video says the stream has an H.264 video track. The stream starts at
	// the first keyframe that carries an SPS and a PPS.
	Video bool
	// Audio says the stream has an AAC audio track (see AudioSpecificConfig
	// and AAC). Without Video, the stream starts at the first audio frame.
	Audio bool

	// AudioSpecificConfig is the AAC AudioSpecificConfig (ISO/IEC 14496-3
	// §1.6.2.1) of the call's audio when it arrives as AAC: such frames
	// then pass through and others are ignored. Nil means the call's audio
	// (G.711 or Opus) is transcoded with AAC, and AAC frames are ignored.
	AudioSpecificConfig []byte
	// AAC configures the transcoder used when AudioSpecificConfig is nil.
	// The zero value means AAC-LC, 48 kHz, mono, 64 kbit/s (see
	// transcode.AACConfig).
	AAC transcode.AACConfig

	// SegmentDuration is the target segment length; a segment ends at the
	// first keyframe after 95 % of it. Zero means one second.
	SegmentDuration time.Duration
	// PartDuration is the shortest Low-Latency HLS part. Zero means 200 ms.
	PartDuration time.Duration
	// SegmentCount is how many segments are kept in memory and listed in
	// the playlists. Zero means 7, the least Low-Latency HLS allows; less
	// than 7 is an error.
	SegmentCount int

	// Now is the wall clock, read once at the stream's start to date the
	// segments (EXT-X-PROGRAM-DATE-TIME). Nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if !c.Audio && !c.Video {
		return c, ErrNoTracks
	}
	if c.SegmentDuration < 0 || c.PartDuration < 0 || c.SegmentCount < 0 {
		return c, fmt.Errorf("%w: negative duration or count", ErrConfig)
	}
	if c.SegmentDuration == 0 {
		c.SegmentDuration = time.Second
	}
	if c.PartDuration == 0 {
		c.PartDuration = 200 * time.Millisecond
	}
	if c.PartDuration > c.SegmentDuration {
		return c, fmt.Errorf("%w: PartDuration longer than SegmentDuration", ErrConfig)
	}
	if c.SegmentCount == 0 {
		c.SegmentCount = 7
	}
	if c.SegmentCount < 7 {
		return c, fmt.Errorf("%w: Low-Latency HLS needs SegmentCount >= 7", ErrConfig)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AudioSpecificConfig != nil {
		var asc mpeg4audio.AudioSpecificConfig
		if err := asc.Unmarshal(c.AudioSpecificConfig); err != nil {
			return c, fmt.Errorf("%w: AudioSpecificConfig: %w", ErrConfig, err)
		}
		c.AudioSpecificConfig = append([]byte(nil), c.AudioSpecificConfig...)
	}
	return c, nil
}

// Stats are a sink's counters.
type Stats struct {
	// FramesWritten counts frames handed to the muxer: video access units
	// and AAC frames (after transcoding, so one G.711 frame may yield none
	// or two).
	FramesWritten uint64
	// FramesIgnored counts frames not published: before the stream's
	// start, of a kind or codec the stream does not carry, malformed, or
	// rejected by the muxer.
	FramesIgnored uint64
	// Started is when (wall clock) the stream started: the first keyframe
	// written; zero before.
	Started time.Time
}

// Sink muxes a call's frames into Low-Latency HLS and serves the result.
// WriteFrame is called from one goroutine (a sink.Fanout's); ServeHTTP from
// any number of them, concurrently with WriteFrame.
type Sink struct {
	cfg Config

	mu      sync.Mutex
	closed  bool
	failed  error
	muxer   *gohlslib.Muxer
	vtrack  *gohlslib.Track
	atrack  *gohlslib.Track
	conv    *transcode.ToAAC // nil for AAC passthrough
	base    time.Duration    // timeline position of the stream's start
	startAt time.Time        // wall clock of the start
	vguard  media.DTSGuard
	aguard  media.DTSGuard
	written uint64
	ignored uint64
	// errs counts non-fatal muxer errors since the last WriteFrame (the
	// muxer reports some through a callback).
	errs    int
	emitErr error

	started  chan struct{} // closed at the stream's start
	done     chan struct{} // closed by Close
	requests sync.WaitGroup

	// progress is closed and replaced after each frame muxed: requests
	// waiting for a part (see waitPart) look again then. Guarded by mu.
	progress chan struct{}
	// listed is set once gohlslib answered a playlist: the stream has
	// a segment, so its playlists answer at once. Guarded by mu.
	listed bool
	// parts caches lastPart's answers for the current progress, shared
	// by the requests waiting for a part.
	partsMu sync.Mutex
	parts   partsCache
}

// partsCache is lastPart's answer for a stream, valid until progress is
// closed.
type partsCache struct {
	progress chan struct{}
	last     map[string]partsAnswer
}

type partsAnswer struct {
	n  uint64
	ok bool
}

// New returns an idle Sink: nothing is allocated for the stream before
// its first frame.
func New(cfg Config) (*Sink, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg, started: make(chan struct{}), done: make(chan struct{}), progress: make(chan struct{})}, nil
}

// WriteFrame adds f to the stream. It does not retain f. Malformed frames
// and frames the stream cannot carry are counted as ignored; an error is
// returned only after Close (ErrClosed) or when the muxer failed for good
// (ErrMuxer).
func (s *Sink) WriteFrame(f *media.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return s.failed
	}
	var err error
	switch {
	case f.Codec == media.CodecH264 && s.cfg.Video:
		err = s.writeVideo(f)
	case f.Kind() == media.KindAudio && f.Codec != media.CodecTelephoneEvent && s.cfg.Audio:
		err = s.writeAudio(f)
	default:
		s.ignored++
	}
	if err != nil {
		s.failed = fmt.Errorf("%w: %w", ErrMuxer, err)
		return s.failed
	}
	return nil
}

func (s *Sink) writeVideo(f *media.Frame) error {
	// Not h264.AVCC.Unmarshal: it refuses more than 50 NAL units
	// (h264.MaxNALUsPerAccessUnit), and a phone in packetization-mode 0
	// sends one slice per packet, 30 to 60 for a 720p IDR.
	au, err := rtph264.SplitAVC(f.Payload)
	if err != nil || len(au) == 0 {
		s.ignored++
		return nil
	}
	if s.muxer == nil {
		if !f.Keyframe {
			s.ignored++
			return nil
		}
		sps, pps := paramSets(au)
		if sps == nil || pps == nil {
			s.ignored++
			return nil
		}
		if err := s.start(f.PTS, sps, pps); err != nil {
			return err
		}
	}
	if f.PTS < s.base {
		s.ignored++ // older than the stream's start
		return nil
	}
	pts, _ := s.vguard.Stamp(f.PTS-s.base, f.DTS-s.base)
	return s.mux(func() error {
		return s.muxer.WriteH264(s.vtrack, s.ntp(pts, 90000), pts, au)
	})
}

// paramSets returns the first SPS and PPS of an access unit; nil if absent
// or if the SPS cannot be parsed (the playlists need its picture size).
func paramSets(au [][]byte) (sps, pps []byte) {
	var ps rtph264.ParamSets
	for _, n := range au {
		ps.Add(n)
	}
	sps, pps = ps.SPS, ps.PPS
	if sps != nil {
		var p h264.SPS
		if err := p.Unmarshal(sps); err != nil || p.Width() <= 0 || p.Height() <= 0 {
			return nil, nil
		}
	}
	return sps, pps
}

func (s *Sink) writeAudio(f *media.Frame) error {
	if s.muxer == nil {
		if s.cfg.Video {
			s.ignored++ // the stream starts at the first keyframe
			return nil
		}
		if err := s.start(f.PTS, nil, nil); err != nil {
			return err
		}
	}
	if s.atrack == nil {
		s.ignored++
		return nil
	}
	if s.conv == nil {
		if f.Codec != media.CodecAAC {
			s.ignored++
			return nil
		}
		return s.writeAAC(f.PTS, f.Payload)
	}
	if f.Codec == media.CodecAAC {
		s.ignored++
		return nil
	}
	s.emitErr = nil
	if err := s.conv.Write(f, func(out *media.Frame) {
		if s.emitErr == nil {
			s.emitErr = s.writeAAC(out.PTS, out.Payload)
		}
	}); err != nil {
		s.ignored++ // undecodable or unsupported (Speex): the transcoder goes on
	}
	return s.emitErr
}

// writeAAC writes one AAC access unit at pts on the call's timeline.
func (s *Sink) writeAAC(pts time.Duration, au []byte) error {
	// gohlslib starts the fMP4 timeline 10 s before zero; audio further
	// back than that, or empty, cannot be written.
	if pts < s.base-5*time.Second || len(au) == 0 {
		s.ignored++
		return nil
	}
	rate := int64(s.atrack.ClockRate)
	_, u := s.aguard.Stamp(pts-s.base, pts-s.base)
	return s.mux(func() error {
		return s.muxer.WriteMPEG4Audio(s.atrack, s.ntp(u, rate), u, [][]byte{au})
	})
}

// ntp dates a timestamp (in units of rate) on the wall clock.
func (s *Sink) ntp(u, rate int64) time.Time {
	return s.startAt.Add(time.Duration(u) * time.Second / time.Duration(rate))
}

// mux calls the muxer, counts the frame, and turns a panic inside the
// third-party muxer (on input it did not expect) into a fatal error rather
// than taking the call down. A plain error from the muxer (a frame it
// rejected: a DTS it could not derive, say) only drops the frame.
func (s *Sink) mux(write func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in gohlslib: %v", r)
		}
	}()
	s.errs = 0
	if werr := write(); werr != nil || s.errs > 0 {
		s.ignored++
		return nil
	}
	s.written++
	close(s.progress)
	s.progress = make(chan struct{})
	return nil
}

// start creates the muxer at the stream's first frame (pts on the call's
// timeline); sps and pps are the first keyframe's, nil without video.
func (s *Sink) start(pts time.Duration, sps, pps []byte) error {
	var tracks []*gohlslib.Track
	if s.cfg.Video {
		s.vtrack = &gohlslib.Track{Codec: &codecs.H264{SPS: append([]byte(nil), sps...), PPS: append([]byte(nil), pps...)},
			ClockRate: 90000}
		tracks = append(tracks, s.vtrack)
	}
	if s.cfg.Audio {
		asc := s.cfg.AudioSpecificConfig
		if asc == nil {
			conv, err := transcode.NewToAAC(s.cfg.AAC)
			if err != nil {
				return err
			}
			s.conv = conv
			asc = conv.AudioSpecificConfig()
		}
		var cfg mpeg4audio.AudioSpecificConfig
		if err := cfg.Unmarshal(asc); err != nil {
			return fmt.Errorf("AudioSpecificConfig: %w", err)
		}
		s.atrack = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: cfg}, ClockRate: cfg.SampleRate}
		s.aguard.Rate = int64(cfg.SampleRate)
		tracks = append(tracks, s.atrack)
	}
	s.vguard.Rate = 90000
	m := &gohlslib.Muxer{
		Tracks:       tracks,
		Variant:      gohlslib.MuxerVariantLowLatency,
		SegmentCount: s.cfg.SegmentCount,
		// 5 % less: a keyframe the phone sends every second lands a
		// fraction of a millisecond before the second on our timeline
		// (0.99963 s seen), and at exactly SegmentDuration it would wait
		// for the next keyframe, doubling the first segment.
		SegmentMinDuration: s.cfg.SegmentDuration - s.cfg.SegmentDuration/20,
		PartMinDuration:    s.cfg.PartDuration,
		OnEncodeError:      func(error) { s.errs++ },
	}
	if err := m.Start(); err != nil {
		return err
	}
	s.muxer = m
	s.base = pts
	s.startAt = s.cfg.Now()
	close(s.started)
	return nil
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{FramesWritten: s.written, FramesIgnored: s.ignored, Started: s.startAt}
}

// ServeHTTP serves the stream's files, named by the last element of the
// request path: index.m3u8 (the multivariant playlist), the media
// playlists, init files, segments and parts it lists. Anything else is 404.
//
// Requests for index.m3u8 before the stream started wait for its start
// (or for the request's context, or Close); playlist requests then wait,
// inside gohlslib, for the first segment, Low-Latency blocking playlist
// reloads (_HLS_msn, _HLS_part) for the part they ask for, and requests for
// the part a playlist hints at (EXT-X-PRELOAD-HINT) for that part. Every
// wait ends when the request's context does (the viewer went away): see
// serveMuxer. Otherwise it ends at the latest when the sink is closed,
// which answers it with an error status.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "stream ended", http.StatusNotFound)
		return
	}
	s.requests.Add(1)
	m := s.muxer
	s.mu.Unlock()
	if m == nil {
		if !s.waitStart(w, r) {
			s.requests.Done()
			return
		}
		s.mu.Lock()
		m = s.muxer
		s.mu.Unlock()
		if m == nil { // closed meanwhile
			s.requests.Done()
			http.Error(w, "stream ended", http.StatusNotFound)
			return
		}
	}
	s.serveMuxer(m, w, r) // calls s.requests.Done
}

// waitStart waits for the stream's start for a request of index.m3u8 and
// reports whether it started; otherwise the request has been answered (or
// went away).
func (s *Sink) waitStart(w http.ResponseWriter, r *http.Request) bool {
	if base(r.URL.Path) != "index.m3u8" {
		http.NotFound(w, r)
		return false
	}
	select {
	case <-s.started:
		return true
	case <-s.done:
		http.Error(w, "stream ended", http.StatusNotFound)
		return false
	case <-r.Context().Done():
		return false
	}
}

// serveMuxer has gohlslib answer r and returns when it did or when r's
// context ends, whichever comes first; it calls s.requests.Done when
// gohlslib returns.
//
// gohlslib (v2.2.3) waits for playlists and hinted parts on a sync.Cond
// that only the muxer's progress (a new part or segment) and its Close
// wake: it never looks at the request's context, so a viewer that went
// away would keep its handler, its connection's goroutine and, in
// callers that count requests in flight (the REST server releases an idle
// muxer), the stream busy until the stream moves on, or for as long as it
// stalls (a call without video). The wait cannot be interrupted from
// outside gohlslib, so it runs in a goroutine of its own that writes
// through a detachable writer: when the context ends first, the writer is
// detached (whatever gohlslib writes later is dropped) and ServeHTTP
// returns at once. The abandoned goroutine ends with the wait: at the
// stream's next part or segment (a blocking reload may ask for at most
// two segments ahead, gohlslib answers further ones 400), or at Close,
// which waits for it.
func (s *Sink) serveMuxer(m *gohlslib.Muxer, w http.ResponseWriter, r *http.Request) {
	if stream, n, ok := partName(base(r.URL.Path)); ok {
		if code := s.waitPart(r.Context(), m, stream, n); code != 0 {
			s.requests.Done()
			if code > 0 {
				http.Error(w, http.StatusText(code), code)
			}
			return
		}
	}
	dw := &detachableWriter{w: w, header: make(http.Header)}
	// gohlslib may read the request after ServeHTTP returned: its own
	// copy.
	r2 := r.Clone(context.WithoutCancel(r.Context()))
	done := make(chan struct{})
	go func() {
		defer s.requests.Done()
		defer close(done)
		m.Handle(dw, r2)
	}()
	select {
	case <-done:
	case <-r.Context().Done():
		if dw.detach() {
			return // gohlslib is still at it; nothing was written
		}
		<-done // it is writing its answer: let it finish
	}
	if !dw.written() {
		http.NotFound(w, r) // gohlslib leaves unknown names unanswered
		return
	}
	if strings.HasSuffix(r.URL.Path, ".m3u8") && dw.status() == http.StatusOK {
		s.mu.Lock()
		s.listed = true
		s.mu.Unlock()
	}
}

// partRE matches gohlslib's part names: {prefix}_{stream}_part{n}.mp4.
var partRE = regexp.MustCompile(`^[0-9a-f]+_([a-z]+[0-9]+)_part([0-9]+)\.mp4$`)

// partName parses a part's file name.
func partName(name string) (stream string, n uint64, ok bool) {
	sm := partRE.FindStringSubmatch(name)
	if sm == nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(sm[2], 10, 64)
	return sm[1], n, err == nil
}

// waitPart waits until part n of stream is complete, before gohlslib is
// asked for it, and returns 0; otherwise the status to answer, or -1 when
// the request's context ended first (no answer).
//
// gohlslib (v2.2.3) answers a request for the part a playlist hints at
// (EXT-X-PRELOAD-HINT) by waiting for it, and when the muxer closes
// meanwhile it returns without unlocking the muxer's mutex: every other
// request then waiting in gohlslib (a blocking playlist reload, which a
// Low-Latency player sends alongside) stays blocked for good, and so does
// Close, which waits for them. So the hinted part is waited for here, on
// the playlist gohlslib lists the complete parts in, and gohlslib only
// ever sees requests for complete parts (or for names it does not know,
// which it does not answer: 404).
func (s *Sink) waitPart(ctx context.Context, m *gohlslib.Muxer, stream string, n uint64) int {
	for {
		s.mu.Lock()
		listed, progress := s.listed, s.progress
		s.mu.Unlock()
		if !listed {
			// No playlist answered yet, so no part name was published:
			// nothing to wait for.
			return http.StatusNotFound
		}
		if last, ok := s.lastPart(m, stream, progress); ok && n <= last {
			return 0
		} else if ok && n > last+1 {
			// Further than the hinted part: gohlslib would not know it.
			return http.StatusNotFound
		}
		select {
		case <-progress:
		case <-s.done:
			return http.StatusNotFound
		case <-ctx.Done():
			return -1
		}
	}
}

// lastPart is lastPart(m, stream), cached until progress is closed.
func (s *Sink) lastPart(m *gohlslib.Muxer, stream string, progress chan struct{}) (uint64, bool) {
	s.partsMu.Lock()
	defer s.partsMu.Unlock()
	if s.parts.progress != progress {
		s.parts = partsCache{progress: progress, last: make(map[string]partsAnswer)}
	}
	a, cached := s.parts.last[stream]
	if !cached {
		a.n, a.ok = lastPart(m, stream)
		s.parts.last[stream] = a
	}
	return a.n, a.ok
}

// partURIRE finds the parts a media playlist lists as complete.
var partURIRE = regexp.MustCompile(`#EXT-X-PART:[^\n]*URI="[0-9a-f]+_[a-z]+[0-9]+_part([0-9]+)\.mp4`)

// lastPart returns the number of the newest complete part of stream, read
// from its media playlist (gohlslib answers it at once once it listed a
// segment: see Sink.listed); ok is false when the playlist lists none.
func lastPart(m *gohlslib.Muxer, stream string) (n uint64, ok bool) {
	pw := &playlistWriter{header: make(http.Header)}
	m.Handle(pw, &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/" + stream + "_stream.m3u8"}, Header: http.Header{}})
	if pw.code != http.StatusOK {
		return 0, false
	}
	for _, sm := range partURIRE.FindAllSubmatch(pw.body.Bytes(), -1) {
		if v, err := strconv.ParseUint(string(sm[1]), 10, 64); err == nil && (!ok || v > n) {
			n, ok = v, true
		}
	}
	return n, ok
}

// playlistWriter keeps an answer of gohlslib in memory.
type playlistWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (p *playlistWriter) Header() http.Header { return p.header }

func (p *playlistWriter) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}

func (p *playlistWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.body.Write(b)
}

// base is the last element of a URL path.
func base(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

// errDetached is what a detached writer's Write returns.
var errDetached = errors.New("hls: the request went away")

// detachableWriter is the http.ResponseWriter gohlslib answers through
// (see serveMuxer): it passes the answer on to w until detached, then
// drops it. It keeps its own header map, copied to w's when the answer
// starts, so that gohlslib never touches w's after ServeHTTP returned.
type detachableWriter struct {
	w      http.ResponseWriter
	header http.Header // gohlslib's goroutine only

	mu       sync.Mutex
	detached bool
	started  bool // the status line went to w
	code     int  // its status
}

func (d *detachableWriter) Header() http.Header { return d.header }

// startLocked sends the header with code to w, once.
func (d *detachableWriter) startLocked(code int) {
	if d.started {
		return
	}
	d.started = true
	d.code = code
	h := d.w.Header()
	for k, v := range d.header {
		h[k] = v
	}
	d.w.WriteHeader(code)
}

func (d *detachableWriter) WriteHeader(code int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.detached {
		d.startLocked(code)
	}
}

func (d *detachableWriter) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.detached {
		return 0, errDetached
	}
	d.startLocked(http.StatusOK)
	return d.w.Write(b)
}

// detach drops what is written from now on; it reports false, leaving the
// writer attached, if the answer already started (gohlslib is past its
// waits and finishing it).
func (d *detachableWriter) detach() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return false
	}
	d.detached = true
	return true
}

// status returns the answer's status (0 before it started).
func (d *detachableWriter) status() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.code
}

// written reports whether the answer started.
func (d *detachableWriter) written() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started
}

// Close ends the stream: requests in flight are answered (with an error
// status where they were waiting) and waited for, and the muxer's memory
// is released. When ctx is done before the requests in flight returned (a
// viewer reading slowly), Close returns ctx's error; they end on their own.
// Later calls return nil.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	m := s.muxer
	s.muxer, s.conv = nil, nil
	s.mu.Unlock()
	if m != nil {
		m.Close()
	}
	done := make(chan struct{})
	go func() {
		s.requests.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("hls: close: %w", ctx.Err())
	}
}
