package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sink/hls"
)

// hlsIdle is how long a call's HLS muxer lives after the last request for
// its stream ended. Players poll the playlist every part (about 200 ms), so a
// watched stream is never idle this long.
const hlsIdle = 30 * time.Second

// hlsAttachTimeout bounds attaching a muxer to a call (the call's run loop
// answers at once unless it is stuck).
const hlsAttachTimeout = 5 * time.Second

// hlsStreams serves every live call as Low-Latency HLS at
// /hls/{toStream}/index.m3u8 (and the playlists, init files, segments and
// parts under /hls/{toStream}/). A call's muxer, an hls.Sink attached to
// it with callmgr's AddSink, is made on the first request for its stream;
// it is removed and closed once no request was in flight for idle, and
// forgotten when the call ends (callmgr closes it then).
type hlsStreams struct {
	m    *callmgr.Manager
	log  *slog.Logger
	idle time.Duration
	now  func() time.Time

	mu      sync.Mutex
	closed  bool
	streams map[string]*hlsStream // by stream name
	wg      sync.WaitGroup        // idle checks running
}

// hlsStream is one call's muxer.
type hlsStream struct {
	name, callID string
	// ready is closed once the muxer is attached (sink set) or attaching
	// failed (err set).
	ready  chan struct{}
	sink   *hls.Sink
	sinkID string
	err    error
	last   time.Time   // last request's end; guarded by hlsStreams.mu
	active int         // requests in flight; guarded by hlsStreams.mu
	timer  *time.Timer // idle check; guarded by hlsStreams.mu
}

// newHLSStreams serves the calls of m; idle zero means hlsIdle.
func newHLSStreams(m *callmgr.Manager, idle time.Duration, log *slog.Logger) *hlsStreams {
	if idle <= 0 {
		idle = hlsIdle
	}
	return &hlsStreams{m: m, log: log, idle: idle, now: time.Now, streams: make(map[string]*hlsStream)}
}

// callOf returns the live call whose stream is name (viewer tokens are
// checked against it).
func (h *hlsStreams) callOf(name string) (string, bool) {
	ci, ok := h.liveCall(name)
	return ci.CallID, ok
}

func (h *hlsStreams) liveCall(name string) (callmgr.CallInfo, bool) {
	if name == "" {
		return callmgr.CallInfo{}, false
	}
	for _, ci := range h.m.Find(callmgr.Filter{ToStream: name}) {
		if !ci.Status.Final() {
			return ci, true
		}
	}
	return callmgr.CallInfo{}, false
}

// ServeHTTP serves /hls/{name}/{file} from the muxer of the live call
// whose stream is name, making it on the first request.
func (h *hlsStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := streamName(r, "/hls/")
	ci, ok := h.liveCall(name)
	if !ok {
		http.Error(w, "no live call streams as "+truncate(name, 64), http.StatusNotFound)
		return
	}
	st, created := h.get(name, ci.CallID)
	if st == nil {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.done(st)
	if created {
		h.attach(r.Context(), st, ci)
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

// get returns the stream of name for callID, making an empty one (created)
// when there is none, and counts a request in flight on it (done ends
// it); nil once closed.
func (h *hlsStreams) get(name, callID string) (st *hlsStream, created bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	if old, ok := h.streams[name]; ok {
		if old.callID == callID {
			old.active++
			return old, false
		}
		// A call that ended, whose event has not come yet: its muxer is
		// callmgr's to close.
		h.forgetLocked(old)
	}
	st = &hlsStream{name: name, callID: callID, ready: make(chan struct{}), last: h.now(), active: 1}
	h.streams[name] = st
	return st, true
}

// done ends a request on st.
func (h *hlsStreams) done(st *hlsStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st.active--
	st.last = h.now()
}

// attach makes st's muxer, attaches it to the call and asks the call for a
// keyframe (the stream starts at one). It closes st.ready.
func (h *hlsStreams) attach(ctx context.Context, st *hlsStream, ci callmgr.CallInfo) {
	defer close(st.ready)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hlsAttachTimeout)
	defer cancel()
	s, err := hls.New(hls.Config{Audio: ci.HasAudio, Video: ci.HasVideo})
	var si callmgr.SinkInfo
	if err == nil {
		si, err = h.m.AddSink(ctx, st.callID, callmgr.SinkSpec{Sink: s})
		if err != nil {
			_ = s.Close()
		}
	}
	h.mu.Lock()
	if err != nil {
		st.err = err
		h.forgetLocked(st)
		h.mu.Unlock()
		if h.log != nil {
			h.log.Warn("no HLS for this call", "callId", st.callID, "err", err)
		}
		return
	}
	if h.streams[st.name] != st {
		// The call ended or the server is closing while attaching.
		st.err = errors.New("the call ended")
		h.mu.Unlock()
		h.release(si.ID, s)
		return
	}
	st.sink, st.sinkID = s, si.ID
	st.timer = time.AfterFunc(h.idle, func() { h.checkIdle(st) })
	h.mu.Unlock()
	if c, ok := h.m.Call(st.callID); ok {
		c.RequestKeyframe()
	}
}

// checkIdle releases st when no request was in flight for idle, else
// checks again when it may be.
func (h *hlsStreams) checkIdle(st *hlsStream) {
	h.mu.Lock()
	if h.closed || h.streams[st.name] != st {
		h.mu.Unlock()
		return
	}
	if st.active > 0 {
		st.timer.Reset(h.idle)
		h.mu.Unlock()
		return
	}
	if left := h.idle - h.now().Sub(st.last); left > 0 {
		st.timer.Reset(left)
		h.mu.Unlock()
		return
	}
	h.forgetLocked(st)
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	h.release(st.sinkID, st.sink)
	if h.log != nil {
		h.log.Debug("HLS muxer released: no request for a while", "callId", st.callID, "stream", st.name)
	}
}

// release detaches a muxer from its call and closes it.
func (h *hlsStreams) release(sinkID string, s *hls.Sink) {
	ctx, cancel := context.WithTimeout(context.Background(), hlsAttachTimeout)
	defer cancel()
	_ = h.m.RemoveSink(ctx, sinkID) // fails when the call ended: callmgr closed it
	_ = s.Close()                   // RemoveSink closes it too; Close is idempotent
}

// forgetLocked drops st from the table and stops its idle check.
func (h *hlsStreams) forgetLocked(st *hlsStream) {
	if h.streams[st.name] == st {
		delete(h.streams, st.name)
	}
	if st.timer != nil {
		st.timer.Stop()
	}
}

// callEnded forgets the muxer of callID (callmgr closes it with the call).
func (h *hlsStreams) callEnded(callID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range h.streams {
		if st.callID == callID {
			h.forgetLocked(st)
		}
	}
}

// sinkRemoved forgets the muxer callmgr detached (it failed).
func (h *hlsStreams) sinkRemoved(sinkID string) {
	if sinkID == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, st := range h.streams {
		if st.sinkID == sinkID {
			h.forgetLocked(st)
		}
	}
}

// close closes every muxer (ending the requests in flight, which an HTTP
// server's Shutdown would otherwise wait for), stops the idle checks and
// waits for the releases in flight. Later requests get 503.
func (h *hlsStreams) close() {
	h.mu.Lock()
	h.closed = true
	var sinks []*hls.Sink
	for _, st := range h.streams {
		h.forgetLocked(st)
		if st.sink != nil {
			sinks = append(sinks, st.sink)
		}
	}
	h.mu.Unlock()
	for _, s := range sinks {
		_ = s.Close() // callmgr's Close of the call closes it again: a no-op
	}
	h.wg.Wait()
}

var hlsStreamsDesc = prometheus.NewDesc("sipstream_hls_streams", "Calls with an HLS muxer now (made on the first request, released after 30 s without one).", nil, nil)

// Describe implements prometheus.Collector.
func (h *hlsStreams) Describe(ch chan<- *prometheus.Desc) { ch <- hlsStreamsDesc }

// Collect implements prometheus.Collector.
func (h *hlsStreams) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	n := 0
	for _, st := range h.streams {
		if st.sink != nil {
			n++
		}
	}
	h.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(hlsStreamsDesc, prometheus.GaugeValue, float64(n))
}
