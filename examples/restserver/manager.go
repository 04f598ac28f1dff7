package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
)

// pushPrefix is what the product puts in front of a call's stream name when
// /push/startup republishes it without rtmpTransponderFullUrl: a push of
// stream "call1" to rtmp://host/live publishes "rtmp_call1".
const pushPrefix = "rtmp_"

// managerService adapts callmgr.Manager to the HTTP layer: REST parameters
// to CallParams, CallInfo to the product's call objects, callmgr's sentinel
// errors to HTTP statuses, callmgr events to webhook and page events.
type managerService struct {
	m *callmgr.Manager
	// recording says whether the server was started with -record-dir.
	recording bool
	// notify receives every event; set before the first call.
	notify atomic.Pointer[func(statusEvent, callObject)]
	// webrtc, when set, gives every call a WHEP sink named by its toStream.
	webrtc *webrtcStreams
	// hls, when set, serves every call as HLS.
	hls *hlsStreams
	log *slog.Logger
	// Counters of what the events told (registered by main).
	callsEnded *prometheus.CounterVec // by final status
	rtmpLost   prometheus.Counter     // RTMP legs and pushes that lost their connection
	// recordQuota counts recordings stopped by -record-quota.
	recordQuota prometheus.Counter
	media       *mediaMetrics // media counters of the calls; set with m
	// maxPushes limits the pushes per call (-max-pushes); 0: no limit.
	maxPushes int
}

// newManagerService returns the adapter without its Manager (set m before
// serving).
func newManagerService(recording bool, log *slog.Logger) *managerService {
	return &managerService{
		recording: recording,
		log:       log,
		callsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sipstream", Name: "calls_ended_total",
			Help: "Calls that ended, by final status (FINISH, FAILED, BUSY).",
		}, []string{"status"}),
		rtmpLost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sipstream", Name: "rtmp_connection_lost_total",
			Help: "Times an RTMP leg or push lost its connection (each is retried with backoff).",
		}),
		recordQuota: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sipstream", Name: "recordings_quota_reached_total",
			Help: "Recordings stopped because they reached -record-quota (their calls went on).",
		}),
	}
}

// collectors are the service's metrics.
func (s *managerService) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{s.callsEnded, s.rtmpLost, s.recordQuota}
	if s.media != nil {
		cs = append(cs, s.media)
	}
	if s.webrtc != nil {
		cs = append(cs, s.webrtc)
	}
	if s.hls != nil {
		cs = append(cs, s.hls)
	}
	return cs
}

var _ callService = (*managerService)(nil)

// mapErr wraps callmgr's errors in the HTTP layer's sentinels, keeping the
// message (callmgr's errors never carry secrets).
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, callmgr.ErrInvalidParams):
		var pe *callmgr.ParamError
		if errors.As(err, &pe) {
			return &fieldError{Field: pe.Field, Reason: pe.Reason}
		}
		return fmt.Errorf("%w: %v", errInvalid, err)
	case errors.Is(err, callmgr.ErrCallNotFound), errors.Is(err, callmgr.ErrSinkNotFound):
		return fmt.Errorf("%w: %v", errNotFound, err)
	case errors.Is(err, callmgr.ErrDuplicateCallID), errors.Is(err, callmgr.ErrDuplicateStream),
		errors.Is(err, callmgr.ErrDuplicateSinkID), errors.Is(err, callmgr.ErrNotEstablished),
		errors.Is(err, callmgr.ErrCallEnded):
		return fmt.Errorf("%w: %v", errConflict, err)
	case errors.Is(err, callmgr.ErrTooManyCalls):
		return errStatus(http.StatusServiceUnavailable, "too many calls: the server's limit of live calls (-max-calls) or its RTP port range (-rtp-ports) is reached; retry when a call ends")
	case errors.Is(err, callmgr.ErrOverloaded):
		var oe *callmgr.OverloadError
		reason := "no headroom left"
		if errors.As(err, &oe) {
			reason = oe.Reason
		}
		return errStatus(http.StatusServiceUnavailable, "server overloaded: "+reason+"; the calls already up keep their quality: retry later or on another server (-max-cpu sets the limit)")
	case errors.Is(err, callmgr.ErrClosed):
		return fmt.Errorf("%w: %v", errShutdown, err)
	case errors.Is(err, callmgr.ErrNotConfigured):
		return fmt.Errorf("%w: %v", errInvalid, err)
	}
	return err
}

func (s *managerService) Start(ctx context.Context, p startParams) error {
	if p.Record && !s.recording {
		return badField("record", "recording is off on this server (start it with -record-dir)")
	}
	cp := callmgr.CallParams{
		CallID:              p.CallID,
		Callee:              p.Callee,
		ToStream:            p.ToStream,
		RTMPURL:             p.RTMPURL,
		RTMPStream:          p.RTMPStream,
		HasAudio:            p.HasAudio,
		HasVideo:            p.HasVideo,
		SIPLogin:            p.SIPLogin,
		SIPAuthName:         p.SIPAuthName,
		SIPPassword:         p.SIPPassword,
		SIPDomain:           p.SIPDomain,
		SIPOutboundProxy:    p.SIPOutboundProxy,
		SIPPort:             p.SIPPort,
		SIPTransport:        p.SIPTransport,
		SIPRegisterRequired: p.SIPRegisterRequired,
		VisibleName:         p.VisibleName,
		AppKey:              p.AppKey,
		Record:              p.Record,
		SRTP:                p.SRTP,
	}
	for _, h := range p.Headers {
		cp.Headers = append(cp.Headers, callmgr.Header{Name: h[0], Value: h[1]})
	}
	if s.webrtc == nil {
		_, err := s.m.StartCall(ctx, cp)
		return mapErr(err)
	}
	name := cp.ToStream
	if name == "" {
		name = cp.CallID // callmgr's default toStream
	}
	st, err := s.webrtc.reserve(name, cp.CallID)
	if err != nil {
		return err
	}
	call, err := s.m.StartCall(ctx, cp)
	if err != nil {
		s.webrtc.release(st)
		return mapErr(err)
	}
	s.addWebRTC(ctx, st, cp.HasVideo, call.RequestKeyframe)
	return nil
}

// addWebRTC attaches a WHEP sink to the call of st; its viewers' keyframe
// needs (joining, PLI, FIR) go to the SIP peer through requestKeyframe. The
// call goes on without a sink when that fails (it is logged).
func (s *managerService) addWebRTC(ctx context.Context, st *webrtcStream, hasVideo bool, requestKeyframe func()) {
	ws, err := s.webrtc.newSink(hasVideo, requestKeyframe)
	if err == nil {
		var si callmgr.SinkInfo
		si, err = s.m.AddSink(ctx, st.callID, callmgr.SinkSpec{Sink: ws})
		if err == nil {
			s.webrtc.attach(st, ws, si.ID)
			return
		}
		_ = ws.Close()
	}
	s.webrtc.release(st)
	if s.log != nil {
		s.log.Warn("no WebRTC playback for this call", "callId", st.callID, "err", err)
	}
}

func (s *managerService) Terminate(ctx context.Context, callID string) error {
	return mapErr(s.m.Terminate(ctx, callID))
}

func (s *managerService) SendDTMF(ctx context.Context, callID, digits, typ string) error {
	t, err := callmgr.ParseDTMFType(typ)
	if err != nil {
		return mapErr(err)
	}
	return mapErr(s.m.SendDTMF(ctx, callID, digits, t))
}

func (s *managerService) Calls() []callObject {
	infos := s.m.FindAll()
	out := make([]callObject, 0, len(infos))
	for _, ci := range infos {
		c := callObjectOf(ci)
		if call, ok := s.m.Call(ci.CallID); ok {
			st := call.Stats()
			c.MediaStats = &mediaStatsObject{Audio: streamStatsOf(st.Audio), Video: streamStatsOf(st.Video)}
		}
		out = append(out, c)
	}
	return out
}

func callObjectOf(ci callmgr.CallInfo) callObject {
	c := callObject{
		CallID:           ci.CallID,
		Incoming:         ci.Incoming,
		Status:           string(ci.Status),
		SIPStatus:        ci.SIPStatus,
		SIPMessage:       ci.SIPReason,
		RTMPURL:          ci.RTMPURL,
		RTMPStream:       ci.RTMPStream,
		StreamName:       ci.ToStream,
		RTMPStreamStatus: string(ci.RTMPStatus),
		RTMPStatusInfo:   ci.RTMPReason,
		Caller:           ci.Caller,
		Callee:           ci.Callee,
		HasAudio:         ci.HasAudio,
		HasVideo:         ci.HasVideo,
		VisibleName:      ci.VisibleName,
		SRTP:             string(ci.SRTP),
		Secure:           ci.Secure,
		SRTPFallback:     ci.SRTPFallback,
		AppKey:           ci.AppKey,
		SIPLogin:         ci.SIPLogin,
		SIPDomain:        ci.SIPDomain,
		RecordPath:       ci.RecordPath,
	}
	if !ci.Started.IsZero() {
		c.StartTime = ci.Started.UnixMilli()
	}
	if !ci.Established.IsZero() {
		end := ci.Ended
		if end.IsZero() {
			end = timeNow()
		}
		c.Duration = end.Sub(ci.Established).Milliseconds()
	}
	return c
}

// callFor finds the live call whose stream (toStream) or call ID is name.
func (s *managerService) callFor(name string) (callmgr.CallInfo, bool) {
	if cs := s.m.Find(callmgr.Filter{ToStream: name}); len(cs) > 0 {
		return cs[0], true
	}
	if cs := s.m.Find(callmgr.Filter{CallID: name}); len(cs) > 0 {
		return cs[0], true
	}
	return callmgr.CallInfo{}, false
}

func (s *managerService) PushStart(ctx context.Context, p pushParams) (pushObject, error) {
	ci, ok := s.callFor(p.StreamName)
	if !ok {
		return pushObject{}, fmt.Errorf("%w: no live call has stream %q", errNotFound, p.StreamName)
	}
	if s.maxPushes > 0 {
		n := 0
		for _, si := range s.m.FindSinks(callmgr.SinkFilter{CallID: ci.CallID, Kind: callmgr.SinkKindRTMP}) {
			if !si.Primary {
				n++
			}
		}
		if n >= s.maxPushes {
			return pushObject{}, fmt.Errorf("%w: call %q has %d pushes, the most this server allows (-max-pushes)", errConflict, ci.CallID, n)
		}
	}
	spec := callmgr.SinkSpec{RTMPURL: p.RTMPURL, Muted: p.Muted}
	if !p.FullURL {
		spec.RTMPStream = pushPrefix + p.StreamName
	}
	si, err := s.m.AddSink(ctx, ci.CallID, spec)
	if err != nil {
		return pushObject{}, mapErr(err)
	}
	return pushObjectOf(si), nil
}

func pushObjectOf(si callmgr.SinkInfo) pushObject {
	url := si.RTMPURL
	if si.RTMPStream != "" {
		url = strings.TrimSuffix(url, "/") + "/" + si.RTMPStream
	}
	return pushObject{
		MediaSessionID: si.ID,
		StreamName:     si.ToStream,
		RTMPURL:        url,
		Status:         string(si.Status),
		Info:           si.Reason,
		Muted:          si.Muted,
		CallID:         si.CallID,
	}
}

func (s *managerService) PushTerminate(ctx context.Context, id string) error {
	if err := s.checkPush(id); err != nil {
		return err
	}
	return mapErr(s.m.RemoveSink(ctx, id))
}

func (s *managerService) PushMute(ctx context.Context, id string, mute bool) error {
	if err := s.checkPush(id); err != nil {
		return err
	}
	return mapErr(s.m.MuteSink(ctx, id, mute))
}

// checkPush refuses /push calls on a call's own sinks (its RTMP leg and
// recording), which /call/terminate ends.
func (s *managerService) checkPush(id string) error {
	for _, si := range s.m.FindSinks(callmgr.SinkFilter{ID: id}) {
		if !si.Primary && si.Kind == callmgr.SinkKindRTMP {
			return nil
		}
	}
	return fmt.Errorf("%w: no push with mediaSessionId %q", errNotFound, id)
}

func (s *managerService) Pushes() []pushObject {
	var out []pushObject
	for _, si := range s.m.FindSinks(callmgr.SinkFilter{Kind: callmgr.SinkKindRTMP}) {
		if !si.Primary {
			out = append(out, pushObjectOf(si))
		}
	}
	return out
}

// onEvent is callmgr's Config.OnEvent: it runs on the call's event
// goroutine and must not block, which notify guarantees.
func (s *managerService) onEvent(ev callmgr.Event) {
	switch {
	case ev.Type == callmgr.EventCallStatus && ev.Status.Final() && s.callsEnded != nil:
		s.callsEnded.WithLabelValues(string(ev.Status)).Inc()
		if s.media != nil {
			s.media.callEnded(ev.CallID)
		}
	case ev.Type == callmgr.EventSinkStatus && ev.Sink.Status == callmgr.SinkLost && !ev.Removed && s.rtmpLost != nil:
		s.rtmpLost.Inc()
	case ev.Type == callmgr.EventSinkStatus && ev.Sink.Kind == callmgr.SinkKindRecord && !ev.Removed &&
		ev.Sink.Status == callmgr.SinkFailed && ev.Sink.Reason == callmgr.ReasonRecordQuota && s.recordQuota != nil:
		s.recordQuota.Inc()
	}
	if s.webrtc != nil {
		switch {
		case ev.Type == callmgr.EventCallStatus && ev.Status.Final():
			s.webrtc.callEnded(ev.CallID)
		case ev.Type == callmgr.EventSinkStatus && ev.Removed:
			s.webrtc.sinkRemoved(ev.Sink.ID)
		}
	}
	if s.hls != nil {
		switch {
		case ev.Type == callmgr.EventCallStatus && ev.Status.Final():
			s.hls.callEnded(ev.CallID)
		case ev.Type == callmgr.EventSinkStatus && ev.Removed:
			s.hls.sinkRemoved(ev.Sink.ID)
		}
	}
	if ev.Type == callmgr.EventSinkStatus && ev.Sink.Kind == callmgr.SinkKindCustom {
		return // the WHEP and HLS sinks: not RTMP legs, nothing the product reports
	}
	fn := s.notify.Load()
	if fn == nil {
		return
	}
	se := statusEvent{
		CallID:     ev.CallID,
		Status:     string(ev.Status),
		SIPStatus:  ev.SIPStatus,
		SIPMessage: ev.SIPReason,
		Caller:     ev.Info.Caller,
		Callee:     ev.Info.Callee,
		AppKey:     ev.Info.AppKey,
		Timestamp:  ev.Time.UnixMilli(),
	}
	switch ev.Type {
	case callmgr.EventCallStatus:
		se.Type = "CallStatusEvent"
		se.RTMPStreamStatus = string(ev.Info.RTMPStatus)
	case callmgr.EventSinkStatus:
		se.Type = "RtmpStatusEvent"
		se.RTMPStreamStatus = string(ev.Sink.Status)
		se.MediaSessionID = ev.Sink.ID
		se.RTMPURL = ev.Sink.RTMPURL
		se.Info = ev.Sink.Reason
		if ev.Removed {
			se.Info = "removed"
		}
	case callmgr.EventDTMF:
		se.Type = "DtmfEvent"
		se.Info = string(ev.Digit)
	default:
		return
	}
	(*fn)(se, callObjectOf(ev.Info))
}

// streamStatsOf is the REST form of one stream's counters.
func streamStatsOf(m callmgr.MediaStats) streamStatsObject {
	return streamStatsObject{
		PacketsReceived: m.PacketsReceived, PacketsLost: m.PacketsLost, Frames: m.Frames, FramesDropped: m.FramesDropped,
		NACKsSent: m.NACKsSent, PacketsRecovered: m.PacketsRecovered, KeyframeRequests: m.KeyframeRequests,
		KeyframesReceived: m.KeyframesReceived, Freezes: m.Freezes, FrozenMs: m.FrozenTime.Milliseconds(),
		LongestFreezeMs: m.LongestFreeze.Milliseconds(), KeyframeResponseMs: m.KeyframeResponse.Milliseconds(),
		JitterMs: m.Jitter.Milliseconds(), RTTMs: m.RTT.Milliseconds(), SocketDrops: m.SocketDrops,
	}
}
