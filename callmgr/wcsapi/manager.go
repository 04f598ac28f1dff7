package wcsapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sink/hls"
	"github.com/sipstream/sipstream/sip"
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
	// recording says whether "record": true is allowed.
	recording bool
	// notify receives every event; set before the first call.
	notify atomic.Pointer[func(StatusEvent, Call)]
	// notifyReg receives the registrations' changes.
	notifyReg atomic.Pointer[func(callmgr.RegistrationInfo, string)]
	// incomingWebRTC holds the incoming calls given a WHEP sink (by
	// callId), so that each gets one.
	incomingWebRTC sync.Map
	// webrtc, when set, gives every call a WHEP sink named by its toStream.
	webrtc *webrtcStreams
	// hls, when set, serves every call as HLS.
	hls *hls.Mux
	log *slog.Logger
	now func() time.Time
	// maxPushes limits the pushes per call; 0: no limit.
	maxPushes int
	// nodeID is the call objects' and events' nodeId (Config.NodeID).
	nodeID string
	// soundDir is Config.SoundDir; sounds caches its decoded files.
	soundDir string
	sounds   clipCache
	// webhookSecrets keeps rtmpStream in webhook events
	// (Config.WebhookSecrets); false redacts it.
	webhookSecrets bool
	// cluster, when set, is this node's part of a cluster: every call's
	// changes are written to the shared registry.
	cluster *clusterNode
}

var _ callService = (*managerService)(nil)

// restFields are the REST API's names of CallParams' fields (the
// callmgr.Field constants), where they differ from the Go name's first
// letter lower-cased.
var restFields = map[string]string{
	callmgr.FieldCallID:      "callId",
	callmgr.FieldRTMPURL:     "rtmpUrl",
	callmgr.FieldSIPAuthName: "sipAuthenticationName",
	callmgr.FieldHeaders:     "sipHeaders",
	callmgr.FieldSIPLogin:    "sipLogin",
	callmgr.FieldSIPPassword: "sipPassword",
	callmgr.FieldSIPDomain:   "sipDomain",
	callmgr.FieldSIPPort:     "sipPort",
	callmgr.FieldSRTP:        "srtp",
	callmgr.FieldRTMPStream:  "rtmpStream",
	callmgr.FieldAppKey:      "appKey",

	callmgr.FieldSIPOutboundProxy:    "sipOutboundProxy",
	callmgr.FieldSIPTransport:        "sipTransport",
	callmgr.FieldSIPRegisterRequired: "sipRegisterRequired",
}

// restField is the REST API's name of a callmgr.ParamError's Field.
func restField(goName string) string {
	if n, ok := restFields[goName]; ok {
		return n
	}
	if goName == "" {
		return goName
	}
	return strings.ToLower(goName[:1]) + goName[1:] // Callee, ToStream, VisibleName, Record, RingTimeout
}

// mapErr wraps callmgr's errors in the HTTP layer's sentinels, keeping the
// message (callmgr's errors never carry secrets).
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, callmgr.ErrInvalidParams):
		var pe *callmgr.ParamError
		if errors.As(err, &pe) {
			return &fieldError{Field: restField(pe.Field), Reason: pe.Reason}
		}
		return fmt.Errorf("%w: %v", errInvalid, err)
	case errors.Is(err, callmgr.ErrCallNotFound), errors.Is(err, callmgr.ErrSinkNotFound):
		return fmt.Errorf("%w: %v", errNotFound, err)
	case errors.Is(err, callmgr.ErrDuplicateCallID), errors.Is(err, callmgr.ErrDuplicateStream),
		errors.Is(err, callmgr.ErrDuplicateSinkID), errors.Is(err, callmgr.ErrNotEstablished),
		errors.Is(err, callmgr.ErrCallEnded), errors.Is(err, callmgr.ErrBusy),
		errors.Is(err, callmgr.ErrTransferNotSupported), errors.Is(err, callmgr.ErrNoAudio),
		errors.Is(err, callmgr.ErrAudioCodec):
		return fmt.Errorf("%w: %v", errConflict, err)
	case errors.Is(err, callmgr.ErrStreamNotFound):
		return fmt.Errorf("%w: %v", errNotFound, err)
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
		cp.Headers = append(cp.Headers, sip.Header{Name: h[0], Value: h[1]})
	}
	if s.webrtc == nil {
		_, err := s.m.StartCall(ctx, cp)
		return mapErr(err)
	}
	name := cp.ToStream
	if name == "" {
		name = cp.CallID // callmgr's default toStream
	}
	if err := s.webrtc.reserve(name, cp.CallID); err != nil {
		return err
	}
	call, err := s.m.StartCall(ctx, cp)
	if err != nil {
		s.webrtc.mux.Release(name, cp.CallID)
		return mapErr(err)
	}
	s.addWebRTC(ctx, name, cp.CallID, cp.HasVideo, call.RequestKeyframe)
	return nil
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

func (s *managerService) Calls() []Call {
	infos := s.m.FindAll()
	out := make([]Call, 0, len(infos))
	for _, ci := range infos {
		c := callObjectOf(ci, s.nodeID, s.now)
		if call, ok := s.m.Call(ci.CallID); ok {
			st := call.Stats()
			c.MediaStats = &MediaStats{Audio: streamStatsOf(st.Audio), Video: streamStatsOf(st.Video)}
		}
		out = append(out, c)
	}
	return out
}

// callStatus is the WCS REST API's name of a call's status. callmgr's
// statuses carry the same names, as SIP call states are commonly named;
// this is where the REST API's names are decided.
func callStatus(st callmgr.Status) string {
	switch st {
	case callmgr.StatusTrying:
		return "TRYING"
	case callmgr.StatusRing:
		return "RING"
	case callmgr.StatusRingMedia:
		return "RING_MEDIA"
	case callmgr.StatusSessionProgress:
		return "SESSION_PROGRESS"
	case callmgr.StatusEstablished:
		return "ESTABLISHED"
	case callmgr.StatusHold:
		return "HOLD"
	case callmgr.StatusBusy:
		return "BUSY"
	case callmgr.StatusFailed:
		return "FAILED"
	case callmgr.StatusFinish:
		return "FINISH"
	}
	return string(st)
}

// rtmpStatus is the WCS REST API's name of a sink's state, for RTMP legs,
// pushes and recordings alike (the product reports a recording as an
// RTMP stream); "" for no sink.
func rtmpStatus(st callmgr.SinkStatus) string {
	switch st {
	case callmgr.SinkWait:
		return "RTMP_STREAM_WAIT"
	case callmgr.SinkActive:
		return "RTMP_STREAM_ACTIVE"
	case callmgr.SinkLost:
		return "RTMP_CONNECTION_LOST"
	case callmgr.SinkFailed:
		return "RTMP_CONNECTION_FAILED"
	}
	return ""
}

// callObjectOf is the product's call object of ci (wcs-docs "Stream
// capturing from a SIP call"). streamName is null when no toStream was
// given (callmgr then names the stream after the callId).
func callObjectOf(ci callmgr.CallInfo, nodeID string, now func() time.Time) Call {
	stream := ci.ToStream
	if ci.ToStreamDefaulted {
		stream = ""
	}
	c := Call{
		Custom:           map[string]any{},
		NodeID:           nodeID,
		CallID:           ci.CallID,
		Incoming:         ci.Incoming,
		Status:           callStatus(ci.Status),
		SIPStatus:        ci.SIPStatus,
		SIPMessage:       ci.SIPReason,
		RTMPURL:          ci.RTMPURL,
		RTMPStream:       ci.RTMPStream,
		StreamName:       stream,
		RTMPStreamStatus: rtmpStatus(ci.RTMPStatus),
		RTMPStatusInfo:   ci.RTMPReason,
		Caller:           ci.Caller,
		Callee:           ci.Callee,
		HasAudio:         ci.HasAudio,
		HasVideo:         ci.HasVideo,
		VisibleName:      ci.VisibleName,
		MediaProvider:    mediaProvider,
		SRTP:             string(ci.SRTP),
		Secure:           ci.Secure,
		SRTPFallback:     ci.SRTPFallback,
		AppKey:           ci.AppKey,
		SIPLogin:         ci.SIPLogin,
		SIPDomain:        ci.SIPDomain,
		RecordPath:       ci.RecordPath,
		Recording:        ci.Recording(),
		Held:             ci.Held,
		InjectedSound:    ci.InjectedSound,
		InjectedStream:   ci.InjectedStream,
	}
	if t := ci.Transfer; t != nil {
		c.Transfer = &TransferState{Target: t.Target, SIPStatus: t.Code, Reason: t.Reason, Done: t.Done, Succeeded: t.Succeeded()}
	}
	if !ci.Started.IsZero() {
		c.StartTime = ci.Started.UnixMilli()
	}
	if !ci.Established.IsZero() {
		end := ci.Ended
		if end.IsZero() {
			end = now()
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

func (s *managerService) PushStart(ctx context.Context, p pushParams) (Push, error) {
	ci, ok := s.callFor(p.StreamName)
	if !ok {
		return Push{}, fmt.Errorf("%w: no live call has stream %q", errNotFound, p.StreamName)
	}
	if s.maxPushes > 0 {
		n := 0
		for _, si := range s.m.FindSinks(callmgr.SinkFilter{CallID: ci.CallID, Kind: callmgr.SinkKindRTMP}) {
			if !si.Primary {
				n++
			}
		}
		if n >= s.maxPushes {
			return Push{}, fmt.Errorf("%w: call %q has %d pushes, the most this server allows (-max-pushes)", errConflict, ci.CallID, n)
		}
	}
	spec := callmgr.SinkSpec{RTMPURL: p.RTMPURL, Muted: p.Muted}
	if !p.FullURL {
		spec.RTMPStream = pushPrefix + p.StreamName
	}
	si, err := s.m.AddSink(ctx, ci.CallID, spec)
	if err != nil {
		return Push{}, mapErr(err)
	}
	obj := pushObjectOf(si)
	if len(p.Options) > 0 {
		obj.Options = p.Options // as the request gave them (find answers {})
	}
	return obj, nil
}

func pushObjectOf(si callmgr.SinkInfo) Push {
	url := si.RTMPURL
	if si.RTMPStream != "" {
		url = strings.TrimSuffix(url, "/") + "/" + si.RTMPStream
	}
	return Push{
		MediaSessionID: si.ID,
		StreamName:     si.ToStream,
		RTMPURL:        url,
		Status:         rtmpStatus(si.Status),
		Info:           si.Reason,
		Muted:          si.Muted,
		SoundEnabled:   si.Sound != "",
		Options:        map[string]any{},
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

func (s *managerService) Pushes() []Push {
	var out []Push
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
	if ev.Type == callmgr.EventRegistration {
		if fn := s.notifyReg.Load(); fn != nil {
			(*fn)(ev.Registration, s.nodeID)
		}
		return
	}
	if s.cluster != nil && (ev.Type == callmgr.EventCallStatus || ev.Type == callmgr.EventSinkStatus && ev.Sink.Kind == callmgr.SinkKindRTMP) {
		s.cluster.write(ev.Info)
	}
	if s.webrtc != nil && ev.Info.Incoming {
		s.incomingWebRTCSink(ev)
	}
	if s.webrtc != nil {
		switch {
		case ev.Type == callmgr.EventCallStatus && ev.Status.Final():
			s.webrtc.mux.ReleaseOwner(ev.CallID)
		case ev.Type == callmgr.EventSinkStatus && ev.Removed:
			s.webrtc.mux.ReleaseID(ev.Sink.ID)
		}
	}
	if s.hls != nil {
		switch {
		case ev.Type == callmgr.EventCallStatus && ev.Status.Final():
			s.hls.OwnerEnded(ev.CallID)
		case ev.Type == callmgr.EventSinkStatus && ev.Removed:
			s.hls.Detached(ev.Sink.ID)
		}
	}
	if ev.Type == callmgr.EventSinkStatus && (ev.Sink.Kind == callmgr.SinkKindCustom || ev.Sink.Kind == callmgr.SinkKindTap) {
		return // the WHEP and HLS sinks, inject_stream taps: not RTMP legs, nothing the product reports
	}
	fn := s.notify.Load()
	if fn == nil {
		return
	}
	st, sipStatus := ev.Status, ev.SIPStatus
	if st == "" {
		st = ev.Info.Status
	}
	if sipStatus == 0 {
		sipStatus = ev.Info.SIPStatus
	}
	se := StatusEvent{
		Type:             "CallStatusEvent",
		NodeID:           s.nodeID,
		AppKey:           ev.Info.AppKey,
		CallID:           ev.CallID,
		Incoming:         ev.Info.Incoming,
		Status:           callStatus(st),
		SIPStatus:        sipStatus,
		RTMPURL:          ev.Info.RTMPURL,
		RTMPStream:       ev.Info.RTMPStream,
		RTMPStreamStatus: rtmpStatus(ev.Info.RTMPStatus),
		Caller:           ev.Info.Caller,
		Callee:           ev.Info.Callee,
		HasAudio:         ev.Info.HasAudio,
		HasVideo:         ev.Info.HasVideo,
		VisibleName:      ev.Info.VisibleName,
		MediaProvider:    mediaProvider,
		SIPMessage:       ev.SIPReason,
		Timestamp:        ev.Time.UnixMilli(),
	}
	switch {
	case ev.Type == callmgr.EventCallStatus:
	case ev.Type == callmgr.EventSinkStatus && ev.Sink.Primary && ev.Sink.Kind == callmgr.SinkKindRTMP:
		// The call's own RTMP leg: the product reports its changes as
		// CallStatusEvents (wcs-docs 001: "ESTABLISHED, RTMP_CONNECTION_LOST").
		if ev.Removed {
			return // the call ended; its final CallStatusEvent says so
		}
		se.RTMPStreamStatus = rtmpStatus(ev.Sink.Status)
		se.Info = ev.Sink.Reason
	case ev.Type == callmgr.EventSinkStatus:
		// A push or a recording: sipstream's own event.
		se.Type = "RtmpStatusEvent"
		se.RTMPStreamStatus = rtmpStatus(ev.Sink.Status)
		se.MediaSessionID = ev.Sink.ID
		se.RTMPURL = ev.Sink.RTMPURL
		se.RTMPStream = ev.Sink.RTMPStream
		se.Info = ev.Sink.Reason
		if ev.Removed {
			se.Info = "removed"
		}
	case ev.Type == callmgr.EventDTMF:
		se.Type = "DtmfEvent"
		se.Info = string(ev.Digit)
	case ev.Type == callmgr.EventTransfer && ev.Info.Transfer != nil:
		transferEvent(&se, *ev.Info.Transfer)
	case ev.Type == callmgr.EventAudio:
		se.Type = "InjectStatusEvent"
		se.Info = injectInfo(ev.Info)
	default:
		return
	}
	// The server redacts rtmpUrl for the webhook; the stream name (the
	// stream key) goes here, unless Config.WebhookSecrets.
	if se.RTMPStream != "" && !s.webhookSecrets {
		se.RTMPStream = redacted
	}
	(*fn)(se, callObjectOf(ev.Info, s.nodeID, s.now))
}

// streamStatsOf is the REST form of one stream's counters.
func streamStatsOf(m callmgr.MediaStats) StreamStats {
	return StreamStats{
		PacketsReceived: m.PacketsReceived, PacketsLost: m.PacketsLost, Frames: m.Frames, FramesDropped: m.FramesDropped,
		NACKsSent: m.NACKsSent, PacketsRecovered: m.PacketsRecovered, KeyframeRequests: m.KeyframeRequests,
		KeyframesReceived: m.KeyframesReceived, Freezes: m.Freezes, FrozenMs: m.FrozenTime.Milliseconds(),
		LongestFreezeMs: m.LongestFreeze.Milliseconds(), KeyframeResponseMs: m.KeyframeResponse.Milliseconds(),
		JitterMs: m.Jitter.Milliseconds(), RTTMs: m.RTT.Milliseconds(), SocketDrops: m.SocketDrops,
	}
}
