package hls

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Stream is a live stream a Source publishes under a name.
type Stream struct {
	// Owner identifies what publishes the stream (a call ID); a name that
	// comes back with another owner is another stream.
	Owner string
	// Audio and Video say which media the stream has.
	Audio, Video bool
}

// Source is what a Mux serves: live streams by name, and a way to feed a
// Sink from one. callmgr's calls are one (wcsapi adapts them).
type Source interface {
	// Lookup returns the live stream published as name.
	Lookup(name string) (Stream, bool)
	// Attach starts feeding s from st's owner and returns an ID for
	// Detach. The Source owns s from then on: it closes s when the owner
	// ends.
	Attach(ctx context.Context, st Stream, s *Sink) (id string, err error)
	// Detach stops feeding the sink attached as id (and closes it). It is
	// called after the owner ended too; it must then do nothing.
	Detach(ctx context.Context, id string)
	// RequestKeyframe asks owner for a keyframe (a new muxer starts at one).
	RequestKeyframe(owner string)
}

// MuxConfig configures a Mux. The zero value serves under /hls/, lets every
// viewer in and releases a muxer 30 s after its last request.
type MuxConfig struct {
	// Prefix is the path the Mux is mounted at, ending with '/': requests
	// are for Prefix+NAME/FILE. Zero means "/hls/".
	Prefix string
	// Idle is how long a stream's muxer lives after the last request for
	// it ended. Players poll the playlist every part (about 200 ms), so a
	// watched stream is never idle this long. Zero means 30 s.
	Idle time.Duration
	// Authorize, when set, is asked before every request: it returns true
	// to let the request in, or writes the refusal itself and returns
	// false. name is the stream the request is for ("" when the path has
	// none). Nil lets everyone in.
	Authorize func(w http.ResponseWriter, r *http.Request, name string) bool
	// Logger receives a warning when a muxer cannot be attached. Nil
	// means none.
	Logger *slog.Logger
	// Sink is the template of every muxer's Config; Audio and Video are
	// set from the stream.
	Sink Config
}

// Defaults of MuxConfig.
const (
	defaultIdle   = 30 * time.Second
	attachTimeout = 5 * time.Second
)

// Mux serves every live stream of a Source as Low-Latency HLS at
// Prefix+NAME/index.m3u8 (and the playlists, init files, segments and
// parts under Prefix+NAME/). A stream's muxer, a Sink attached with
// Source.Attach, is made on the first request for the stream; it is
// detached once no request was in flight for Idle, and forgotten when the
// owner ends (OwnerEnded) or the Source drops it (Detached).
type Mux struct {
	src    Source
	cfg    MuxConfig
	now    func() time.Time
	prefix string

	mu      sync.Mutex
	closed  bool
	streams map[string]*muxStream // by stream name
	wg      sync.WaitGroup        // idle releases running
}

// muxStream is one stream's muxer.
type muxStream struct {
	name, owner string
	// ready is closed once the muxer is attached (sink set) or attaching
	// failed (err set).
	ready  chan struct{}
	sink   *Sink
	id     string
	err    error
	last   time.Time   // last request's end; guarded by Mux.mu
	active int         // requests in flight; guarded by Mux.mu
	timer  *time.Timer // idle check; guarded by Mux.mu
}

// NewMux serves the streams of src.
func NewMux(src Source, cfg MuxConfig) *Mux {
	if cfg.Prefix == "" {
		cfg.Prefix = "/hls/"
	}
	if cfg.Idle <= 0 {
		cfg.Idle = defaultIdle
	}
	return &Mux{src: src, cfg: cfg, now: time.Now, prefix: cfg.Prefix, streams: make(map[string]*muxStream)}
}

// streamName is the unescaped NAME of prefix+NAME[/...].
func streamName(r *http.Request, prefix string) string {
	rest, _ := strings.CutPrefix(r.URL.EscapedPath(), prefix)
	seg, _, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(seg)
	if err != nil {
		return ""
	}
	return name
}

// Owner returns the owner of the live stream name (the Source's Lookup).
func (h *Mux) Owner(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	st, ok := h.src.Lookup(name)
	return st.Owner, ok
}

// ServeHTTP serves Prefix+NAME/FILE from the muxer of the live stream
// NAME, making it on the first request. Only GET and HEAD are served.
func (h *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := streamName(r, h.prefix)
	if h.cfg.Authorize != nil && !h.cfg.Authorize(w, r, name) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var (
		src Stream
		ok  bool
	)
	if name != "" {
		src, ok = h.src.Lookup(name)
	}
	if !ok {
		http.Error(w, "no live call streams as "+truncate(name, 64), http.StatusNotFound)
		return
	}
	st, created := h.get(name, src.Owner)
	if st == nil {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.done(st)
	if created {
		h.attach(r.Context(), st, src)
	}
	select {
	case <-st.ready:
	case <-r.Context().Done():
		return
	}
	if st.err != nil {
		http.Error(w, "no HLS for this call: "+st.err.Error(), http.StatusServiceUnavailable)
		return
	}
	st.sink.ServeHTTP(w, r)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// get returns the stream of name for owner, making an empty one (created)
// when there is none, and counts a request in flight on it (done ends
// it); nil once closed.
func (h *Mux) get(name, owner string) (st *muxStream, created bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	if old, ok := h.streams[name]; ok {
		if old.owner == owner {
			old.active++
			return old, false
		}
		// An owner that ended, whose end was not told yet: its muxer is
		// the Source's to close.
		h.forgetLocked(old)
	}
	st = &muxStream{name: name, owner: owner, ready: make(chan struct{}), last: h.now(), active: 1}
	h.streams[name] = st
	return st, true
}

// done ends a request on st.
func (h *Mux) done(st *muxStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st.active--
	st.last = h.now()
}

// attach makes st's muxer, attaches it and asks the owner for a keyframe
// (the stream starts at one). It closes st.ready.
func (h *Mux) attach(ctx context.Context, st *muxStream, src Stream) {
	defer close(st.ready)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attachTimeout)
	defer cancel()
	cfg := h.cfg.Sink
	cfg.Audio, cfg.Video = src.Audio, src.Video
	s, err := New(cfg)
	var id string
	if err == nil {
		id, err = h.src.Attach(ctx, src, s)
		if err != nil {
			_ = s.Close(ctx)
		}
	}
	h.mu.Lock()
	if err != nil {
		st.err = err
		h.forgetLocked(st)
		h.mu.Unlock()
		if h.cfg.Logger != nil {
			h.cfg.Logger.Warn("no HLS for this call", "callId", st.owner, "err", err)
		}
		return
	}
	if h.streams[st.name] != st {
		// The owner ended or the Mux is closing while attaching.
		st.err = errors.New("the call ended")
		h.mu.Unlock()
		h.release(id, s)
		return
	}
	st.sink, st.id = s, id
	st.timer = time.AfterFunc(h.cfg.Idle, func() { h.checkIdle(st) })
	h.mu.Unlock()
	h.src.RequestKeyframe(st.owner)
}

// checkIdle releases st when no request was in flight for Idle, else
// checks again when it may be.
func (h *Mux) checkIdle(st *muxStream) {
	h.mu.Lock()
	if h.closed || h.streams[st.name] != st {
		h.mu.Unlock()
		return
	}
	if st.active > 0 {
		st.timer.Reset(h.cfg.Idle)
		h.mu.Unlock()
		return
	}
	if left := h.cfg.Idle - h.now().Sub(st.last); left > 0 {
		st.timer.Reset(left)
		h.mu.Unlock()
		return
	}
	h.forgetLocked(st)
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	h.release(st.id, st.sink)
	if h.cfg.Logger != nil {
		h.cfg.Logger.Debug("HLS muxer released: no request for a while", "callId", st.owner, "stream", st.name)
	}
}

// release detaches a muxer and closes it.
func (h *Mux) release(id string, s *Sink) {
	ctx, cancel := context.WithTimeout(context.Background(), attachTimeout)
	defer cancel()
	h.src.Detach(ctx, id)
	_ = s.Close(ctx) // Detach closes it too; Close is idempotent
}

// forgetLocked drops st from the table and stops its idle check.
func (h *Mux) forgetLocked(st *muxStream) {
	if h.streams[st.name] == st {
		delete(h.streams, st.name)
	}
	if st.timer != nil {
		st.timer.Stop()
	}
}

// OwnerEnded forgets the muxers of owner (the Source closes them as the
// owner ends).
func (h *Mux) OwnerEnded(owner string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range h.streams {
		if st.owner == owner {
			h.forgetLocked(st)
		}
	}
}

// Detached forgets the muxer the Source detached by itself (it failed);
// id is what Attach returned.
func (h *Mux) Detached(id string) {
	if id == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range h.streams {
		if st.id == id {
			h.forgetLocked(st)
		}
	}
}

// Streams is how many streams have a muxer now.
func (h *Mux) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, st := range h.streams {
		if st.sink != nil {
			n++
		}
	}
	return n
}

// Close closes every muxer (ending the requests in flight, which an HTTP
// server's Shutdown would otherwise wait for), stops the idle checks and
// waits for the releases in flight. Later requests get 503. Close is
// idempotent.
func (h *Mux) Close() {
	h.mu.Lock()
	h.closed = true
	var sinks []*Sink
	for _, st := range h.streams {
		h.forgetLocked(st)
		if st.sink != nil {
			sinks = append(sinks, st.sink)
		}
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), attachTimeout)
	defer cancel()
	for _, s := range sinks {
		_ = s.Close(ctx) // the Source closes it again with its owner: a no-op
	}
	h.wg.Wait()
}
