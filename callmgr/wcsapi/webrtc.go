package wcsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sink/whep"
)

// webrtcStreams gives every call a WHEP sink, named by the call's toStream
// (its callId when toStream is empty), registered in a whep.Mux that routes
// /whep/{toStream} and its viewer resources /whep/{toStream}/{viewer} to it.
//
// A name belongs to one live call at a time: starting a second call with
// the toStream of a live one is a conflict (409), as in the product, whose
// stream names are unique.
type webrtcStreams struct {
	cfg whep.Config // template for every sink
	mux *whep.Mux
	// authorize is the mux's Authorize hook (the server's viewer check);
	// set before serving. Nil lets everyone in.
	authorize func(w http.ResponseWriter, r *http.Request, name string) bool
}

func newWebRTCStreams(cfg whep.Config) *webrtcStreams {
	w := &webrtcStreams{cfg: cfg}
	w.mux = whep.NewMux(whep.MuxConfig{Prefix: "/whep/", Authorize: func(rw http.ResponseWriter, r *http.Request, name string) bool {
		return w.authorize == nil || w.authorize(rw, r, name)
	}})
	return w
}

// reserve claims name for callID before the call is started; release
// undoes it (when starting fails).
func (w *webrtcStreams) reserve(name, callID string) error {
	err := w.mux.Reserve(name, callID)
	var ue *whep.NameInUseError
	if errors.As(err, &ue) {
		return fmt.Errorf("%w: stream %q is already used by live call %q", errConflict, name, ue.Owner)
	}
	return err
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

// add attaches a WHEP sink to the call callID, whose stream name was
// reserved; its viewers' keyframe needs (joining, PLI, FIR) go to the SIP
// peer through requestKeyframe. The call goes on without a sink when that
// fails (it is logged).
func (s *managerService) addWebRTC(ctx context.Context, name, callID string, hasVideo bool, requestKeyframe func()) {
	w := s.webrtc
	ws, err := w.newSink(hasVideo, requestKeyframe)
	if err == nil {
		var si callmgr.SinkInfo
		si, err = s.m.AddSink(ctx, callID, callmgr.SinkSpec{Sink: ws})
		if err == nil {
			w.mux.Attach(name, callID, ws, si.ID)
			return
		}
		_ = ws.Close(ctx)
	}
	w.mux.Release(name, callID)
	if s.log != nil {
		s.log.Warn("no WebRTC playback for this call", "callId", callID, "err", err)
	}
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
	st := w.mux.Stats()
	ch <- prometheus.MustNewConstMetric(webrtcStreamsDesc, prometheus.GaugeValue, float64(st.Streams))
	ch <- prometheus.MustNewConstMetric(webrtcViewersDesc, prometheus.GaugeValue, float64(st.Viewers))
}

// incomingWebRTCSink gives an incoming call a WHEP sink named by its
// toStream on its first event (a call placed over REST gets one in Start,
// but callmgr starts an incoming call itself). It runs on the call's event
// goroutine, so the sink is added on a goroutine of its own; it forgets the
// call at its end.
func (s *managerService) incomingWebRTCSink(ev callmgr.Event) {
	id := ev.CallID
	if ev.Type == callmgr.EventCallStatus && ev.Status.Final() {
		s.incomingWebRTC.Delete(id)
		return
	}
	if ev.Info.Status.Final() {
		return
	}
	if _, seen := s.incomingWebRTC.LoadOrStore(id, true); seen {
		return
	}
	name := ev.Info.ToStream
	if err := s.webrtc.reserve(name, id); err != nil {
		if s.log != nil {
			s.log.Warn("no WebRTC playback for this incoming call", "callId", id, "err", err)
		}
		return
	}
	call, ok := s.m.Call(id)
	if !ok {
		s.webrtc.mux.Release(name, id)
		return
	}
	go s.addWebRTC(context.Background(), name, id, ev.Info.HasVideo, call.RequestKeyframe)
}
