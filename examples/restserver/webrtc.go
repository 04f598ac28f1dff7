package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/sink/whep"
)

// webrtcStreams gives every call a WHEP sink, named by the call's toStream
// (its callId when toStream is empty), and routes the WHEP endpoint
// /whep/{toStream} and its viewer resources /whep/{toStream}/{viewer} to it.
//
// A name belongs to one live call at a time: starting a second call with
// the toStream of a live one is a conflict (409), as in the product, whose
// stream names are unique.
type webrtcStreams struct {
	cfg whep.Config // template for every sink
	log *slog.Logger

	mu      sync.Mutex
	streams map[string]*webrtcStream
}

// webrtcStream is one call's WHEP sink.
type webrtcStream struct {
	name   string
	callID string
	sink   *whep.Sink // nil while the call is being started
	sinkID string     // the sink's ID in callmgr, once attached
}

func newWebRTCStreams(cfg whep.Config, log *slog.Logger) *webrtcStreams {
	return &webrtcStreams{cfg: cfg, log: log, streams: make(map[string]*webrtcStream)}
}

// reserve claims name for callID before the call is started. The returned
// release undoes it (when starting fails).
func (w *webrtcStreams) reserve(name, callID string) (*webrtcStream, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.streams[name]; ok {
		return nil, fmt.Errorf("%w: stream %q is already used by live call %q", errConflict, name, old.callID)
	}
	st := &webrtcStream{name: name, callID: callID}
	w.streams[name] = st
	return st, nil
}

// Probe times of the WHEP sinks: how long a viewer that joins when one kind
// of media is known waits for the other before it is answered with one kind
// only (for good: it never gets the other). Frames reach the sinks from the
// first keyframe on, which can come well after the first audio; a call that
// asked for video waits for it longer.
const (
	probeVideoCall = 8 * time.Second
	probeAudioCall = 2 * time.Second
)

// newSink makes a WHEP sink for a call that does (hasVideo) or does not ask
// for video; requestKeyframe (the call's) is asked when a viewer needs a
// keyframe, unless the template sets its own.
func (w *webrtcStreams) newSink(hasVideo bool, requestKeyframe func()) (*whep.Sink, error) {
	cfg := w.cfg
	if cfg.RequestKeyframe == nil {
		cfg.RequestKeyframe = requestKeyframe
	}
	if cfg.Probe == 0 {
		cfg.Probe = probeAudioCall
		if hasVideo {
			cfg.Probe = probeVideoCall
		}
	}
	return whep.New(cfg)
}

// attach records st's sink once callmgr owns it.
func (w *webrtcStreams) attach(st *webrtcStream, s *whep.Sink, sinkID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.streams[st.name] == st {
		st.sink, st.sinkID = s, sinkID
	}
}

// release forgets st (callmgr closes the sink itself when the call ends).
func (w *webrtcStreams) release(st *webrtcStream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.streams[st.name] == st {
		delete(w.streams, st.name)
	}
}

// callEnded forgets the stream of callID, whatever its name.
func (w *webrtcStreams) callEnded(callID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, st := range w.streams {
		if st.callID == callID {
			delete(w.streams, name)
		}
	}
}

// sinkRemoved forgets the stream whose sink callmgr detached (it failed).
func (w *webrtcStreams) sinkRemoved(sinkID string) {
	if sinkID == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, st := range w.streams {
		if st.sinkID == sinkID {
			delete(w.streams, name)
		}
	}
}

// callOf returns the call whose WHEP sink streams as name.
func (w *webrtcStreams) callOf(name string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, ok := w.streams[name]; ok && st.sink != nil {
		return st.callID, true
	}
	return "", false
}

func (w *webrtcStreams) lookup(name string) *whep.Sink {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, ok := w.streams[name]; ok {
		return st.sink
	}
	return nil
}

// ServeHTTP routes /whep/{name} (POST an offer) and /whep/{name}/{viewer}
// (DELETE, PATCH) to the sink of the live call whose stream is name.
func (w *webrtcStreams) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/whep/")
	if !ok {
		http.NotFound(rw, r)
		return
	}
	seg, _, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(seg)
	if err != nil || name == "" {
		http.Error(rw, "no stream name in the WHEP URL", http.StatusNotFound)
		return
	}
	s := w.lookup(name)
	if s == nil {
		http.Error(rw, "no live call streams as "+truncate(name, 64), http.StatusNotFound)
		return
	}
	s.ServeHTTP(rw, r)
}

var (
	webrtcStreamsDesc = prometheus.NewDesc("sipstream_webrtc_streams", "Calls playable over WebRTC (WHEP) now.", nil, nil)
	webrtcViewersDesc = prometheus.NewDesc("sipstream_webrtc_viewers", "WebRTC viewers connected now, over every call.", nil, nil)
)

// Describe implements prometheus.Collector.
func (w *webrtcStreams) Describe(ch chan<- *prometheus.Desc) {
	ch <- webrtcStreamsDesc
	ch <- webrtcViewersDesc
}

// Collect implements prometheus.Collector: the live streams and their
// viewers, read at scrape time.
func (w *webrtcStreams) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	var sinks []*whep.Sink
	for _, st := range w.streams {
		if st.sink != nil {
			sinks = append(sinks, st.sink)
		}
	}
	w.mu.Unlock()
	viewers := 0
	for _, s := range sinks {
		viewers += s.Stats().Viewers
	}
	ch <- prometheus.MustNewConstMetric(webrtcStreamsDesc, prometheus.GaugeValue, float64(len(sinks)))
	ch <- prometheus.MustNewConstMetric(webrtcViewersDesc, prometheus.GaugeValue, float64(viewers))
}

// iceAddrs are the addresses WHEP answers may list, so that an answer never
// shows every address of the machine (docker bridges, VPNs): -public-ip
// when it is one of the machine's addresses (local); when it is not (a 1:1
// NAT), -public-ip in place of the local address ICE gathers on (public
// set: the caller advertises only it); without -public-ip, the host of -sip
// when it is concrete, else the machine's first non-loopback IPv4 address
// (the one calls write in their SDP) and loopback (viewers on this machine).
func iceAddrs(cfg config, local []netip.Addr) (ice, public []netip.Addr) {
	var sipHost netip.Addr
	if h, _, err := net.SplitHostPort(cfg.SIP); err == nil {
		if a, err := netip.ParseAddr(h); err == nil && !a.IsUnspecified() {
			sipHost = a.Unmap()
		}
	}
	if p := cfg.publicIP; p.IsValid() {
		for _, a := range local {
			if a.Unmap() == p.Unmap() {
				return []netip.Addr{p.Unmap()}, nil
			}
		}
		if sipHost.IsValid() {
			ice = []netip.Addr{sipHost}
		}
		return ice, []netip.Addr{p.Unmap()}
	}
	if sipHost.IsValid() {
		return []netip.Addr{sipHost}, nil
	}
	for _, a := range local {
		if a = a.Unmap(); a.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			return []netip.Addr{a, netip.MustParseAddr("127.0.0.1")}, nil
		}
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}
