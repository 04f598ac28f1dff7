package wcsapi

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/media/whip"
)

// WebRTC publications into calls. The product's /call/inject_stream/startup
// {callId, streamName} sends the audio of a stream published to the server
// (a browser's microphone, over WebRTC) into a SIP call. Here streamName is
// first a live call's toStream (callmgr's call-to-call injection); when no
// call publishes it and Config.WHIP has a publication of that name, the
// publication's audio is decoded into a sound.Live and played into the call
// with InjectSound, named "stream:NAME". It stops with
// /call/inject_stream/terminate, when the publication ends (its Live ends,
// and the call goes back to silence), when another sound replaces it, and
// when the call ends.

// whipSoundPrefix starts the InjectSound name of a WHIP-fed injection.
const whipSoundPrefix = "stream:"

// whipInjections are the calls that hear a WHIP publication.
type whipInjections struct {
	srv *whip.Server
	m   *callmgr.Manager

	mu     sync.Mutex
	byCall map[string]*whipInjection
}

// whipInjection is one call listening to one publication.
type whipInjection struct {
	name   string // InjectSound's name: whipSoundPrefix + the stream
	live   *sound.Live
	cancel func() // the subscription
	// starting: InjectSound has not returned yet; events are not looked
	// at meanwhile (start checks the call once it has). Guarded by
	// whipInjections.mu.
	starting bool
}

func newWHIPInjections(srv *whip.Server, m *callmgr.Manager) *whipInjections {
	return &whipInjections{srv: srv, m: m, byCall: map[string]*whipInjection{}}
}

// stop ends the subscription and the Live (the call, if it still plays
// it, reads what is buffered, then goes back to silence).
func (inj *whipInjection) stop() {
	inj.cancel()
	_ = inj.live.Close()
}

// start plays the publication stream into callID, replacing what the call
// heard from a publication before. It returns an error wrapping
// errNotFound when nothing is published as stream.
func (w *whipInjections) start(ctx context.Context, callID, stream string) error {
	live, err := sound.NewLive(8000)
	if err != nil {
		return err
	}
	inj := &whipInjection{name: whipSoundPrefix + stream, live: live}
	cancel, err := w.srv.Subscribe(stream, func(f *media.Frame) {
		// A frame that does not decode is skipped; the Live stays usable.
		_ = live.WriteFrame(f)
	}, func() {
		// The publication ended: the call plays what is buffered, then
		// silence (InjectSound's source ended).
		_ = live.Close()
		w.forget(callID, inj)
	})
	if errors.Is(err, whip.ErrNotFound) || errors.Is(err, whip.ErrClosed) {
		return fmt.Errorf("%w: no live call or WebRTC publication streams %q", errNotFound, stream)
	}
	if err != nil {
		return err
	}
	inj.cancel, inj.starting = cancel, true
	w.mu.Lock()
	old := w.byCall[callID]
	w.byCall[callID] = inj
	w.mu.Unlock()
	err = w.m.InjectSound(ctx, callID, live, inj.name)
	w.mu.Lock()
	inj.starting = false
	w.mu.Unlock()
	if old != nil {
		old.stop() // after: the call does not end its sound on old's end first
	}
	if err != nil {
		w.forget(callID, inj)
		inj.stop()
		return mapErr(err)
	}
	// Replaced (or ended) before the events were looked at again?
	w.check(callID, inj)
	return nil
}

// check ends inj unless callID still plays it. The call's current state is
// asked, not an event's snapshot: events arrive later than the changes
// they report, an old one may still name an earlier sound.
func (w *whipInjections) check(callID string, inj *whipInjection) {
	if c, ok := w.m.Call(callID); ok {
		if ci := c.Info(); ci.InjectedSound == inj.name && !ci.Status.Final() {
			return
		}
	}
	w.mu.Lock()
	mine := w.byCall[callID] == inj && !inj.starting
	if mine {
		delete(w.byCall, callID)
	}
	w.mu.Unlock()
	if mine {
		inj.stop()
	}
}

// stopCall ends callID's injection, if any, and silences the call at once
// when it still plays it.
func (w *whipInjections) stopCall(ctx context.Context, callID string) error {
	w.mu.Lock()
	inj := w.byCall[callID]
	delete(w.byCall, callID)
	w.mu.Unlock()
	if inj == nil {
		return nil
	}
	inj.stop()
	if c, ok := w.m.Call(callID); ok && c.Info().InjectedSound == inj.name {
		return mapErr(w.m.InjectSound(ctx, callID, nil, ""))
	}
	return nil
}

// forget removes inj if it is still callID's.
func (w *whipInjections) forget(callID string, inj *whipInjection) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byCall[callID] == inj {
		delete(w.byCall, callID)
	}
}

// onEvent ends an injection whose call ended, or whose sound another one
// replaced (inject_sound, inject_sound/terminate). It never blocks.
func (w *whipInjections) onEvent(ev callmgr.Event) {
	if ev.Type != callmgr.EventAudio && !(ev.Type == callmgr.EventCallStatus && ev.Status.Final()) {
		return
	}
	w.mu.Lock()
	inj := w.byCall[ev.CallID]
	w.mu.Unlock()
	if inj != nil {
		w.check(ev.CallID, inj)
	}
}

// whipService is the managerService whose InjectStream also takes WebRTC
// publications (Config.WHIP).
type whipService struct {
	*managerService
	whip *whipInjections
}

// InjectStream sends the audio of streamName to the call: a live call's
// toStream, else a WHIP publication; "" stops either.
func (s *whipService) InjectStream(ctx context.Context, callID, streamName string) error {
	if streamName == "" {
		if err := s.whip.stopCall(ctx, callID); err != nil {
			return err
		}
		return s.managerService.InjectStream(ctx, callID, "")
	}
	err := s.managerService.InjectStream(ctx, callID, streamName)
	if err == nil {
		// A call's stream replaces what a publication played.
		return s.whip.stopCall(ctx, callID)
	}
	if !errors.Is(err, errNotFound) || !s.whip.srv.Published(streamName) {
		return err
	}
	if _, ok := s.m.Call(callID); !ok {
		return err // the call is what was not found
	}
	// One injected stream at a time: the publication replaces a call's.
	if err := s.managerService.InjectStream(ctx, callID, ""); err != nil {
		return err
	}
	return s.whip.start(ctx, callID, streamName)
}

var (
	whipPublishersDesc  = prometheus.NewDesc("sipstream_whip_publishers", "WebRTC (WHIP) publications live now.", nil, nil)
	whipSubscribersDesc = prometheus.NewDesc("sipstream_whip_injections", "Calls hearing a WebRTC (WHIP) publication now.", nil, nil)
	whipFramesDesc      = prometheus.NewDesc("sipstream_whip_audio_frames_total", "Audio frames received from WebRTC (WHIP) publishers.", nil, nil)
)

// whipCollector exports the WHIP server's publications and injections.
type whipCollector struct{ srv *whip.Server }

// Describe implements prometheus.Collector.
func (c whipCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- whipPublishersDesc
	ch <- whipSubscribersDesc
	ch <- whipFramesDesc
}

// Collect implements prometheus.Collector.
func (c whipCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	ch <- prometheus.MustNewConstMetric(whipPublishersDesc, prometheus.GaugeValue, float64(st.Publishers))
	ch <- prometheus.MustNewConstMetric(whipSubscribersDesc, prometheus.GaugeValue, float64(st.Subscribers))
	ch <- prometheus.MustNewConstMetric(whipFramesDesc, prometheus.CounterValue, float64(st.Frames))
}
