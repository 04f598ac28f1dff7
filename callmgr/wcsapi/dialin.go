package wcsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sip"
)

// Inbound is the Handler's answer to calls offered to the gateway: its
// OnIncoming is what callmgr.Config.OnIncoming takes. The Manager is made
// before the Handler, so an Inbound, like a callmgr.Relay, is made first
// and given to both:
//
//	relay, inbound := new(callmgr.Relay), new(wcsapi.Inbound)
//	m, err := callmgr.New(callmgr.Config{OnEvent: relay.OnEvent, OnIncoming: inbound.OnIncoming,
//		Inbound: callmgr.InboundConfig{AllowFrom: trunks}})
//	api, err := wcsapi.New(m, wcsapi.Config{Events: relay, Inbound: inbound,
//		Dialin: wcsapi.DialinConfig{RTMPURL: "rtmp://live.example/app", Hook: true}, Webhook: hook})
//
// The zero value is ready; until a Handler is made with it (Config.Inbound),
// every call is refused with 480. It is safe for concurrent use.
type Inbound struct {
	d atomic.Pointer[dialin]
}

// OnIncoming decides an incoming call the way DialinConfig says (the WCS
// way: the application's hook first, then the defaults, else 480). It is
// callmgr.Config.OnIncoming's signature; ctx bounds the hook's request.
func (in *Inbound) OnIncoming(ctx context.Context, call callmgr.IncomingCall) (callmgr.Decision, error) {
	d := in.d.Load()
	if d == nil {
		return callmgr.RejectWith(480, "Temporarily Unavailable"), nil
	}
	return d.decide(ctx, call)
}

// DialinConfig says how the Handler answers incoming calls (Config.Inbound):
// who may call at all is callmgr.InboundConfig's business, this is what
// happens to a call that was let in.
//
// With Hook, the call is first POSTed to the default application's hook
// (Config.Webhook) as base URL + "/OnCallEvent", the product's hook of
// incoming calls: the call object of a StatusEvent (incoming true, status
// RING, callId, caller, callee, hasAudio and hasVideo as offered,
// visibleName the caller's display name) followed by what the INVITE said
// (requestUri, callerUri, calleeUri, source, transport, account, authUser,
// srtp, sipHeaders). The hook's 2xx JSON answer decides, its members read
// with strict JSON types (unknown members, an echo of the call object
// included, are ignored):
//
//   - {"reject": true, "sipStatus": 486, "reason": "Busy Here"} refuses the
//     call (sipStatus 400-699; absent or out of range: 603 Decline);
//   - {"redirect": "sip:desk@pbx.example"} answers 302 with that Contact;
//   - any of rtmpUrl, rtmpStream, toStream or record: true answers the call
//     with that target, checked as /call/startup checks it (an rtmp:// or
//     rtmps:// URL, Config.AllowRTMPHosts, record only with Config.Record);
//     rtmpUrl defaults to Dialin.RTMPURL when only rtmpStream is given
//     (without either the call goes to browsers only: WHEP, HLS),
//     rtmpStream defaults to the callee (the Request-URI user), toStream
//     to the callee too, hasAudio and hasVideo (what the gateway sends back)
//     to true, record to Record; appKey names the application whose hook
//     (Config.AppWebhooks) gets the call's later events; an answer the
//     checks refuse rejects the call (500) and is logged;
//   - an empty body, {} (or an answer with none of these), a malformed
//     answer, a non-2xx status, a redirect or no answer within 5 s (or the
//     Manager's DecisionTimeout) count as no answer (logged) and the
//     defaults apply.
//
// The defaults answer with RTMPURL, publishing to RTMPURL/{callee}; without
// RTMPURL the call is refused with 480 Temporarily Unavailable. Every
// answer rings for Ring first, with early media when EarlyMedia or Prompt.
// The answered call then has the usual CallStatusEvents (incoming true),
// and is found, terminated and driven like a call placed with /call/startup.
type DialinConfig struct {
	// RTMPURL is where calls are published when the hook does not decide:
	// an rtmp:// or rtmps:// application URL, the stream name being the
	// callee (the Request-URI user: a call to sip:studio1@gw publishes
	// RTMPURL/studio1). Empty means no default: such calls get 480.
	RTMPURL string
	// Record records every answered call (Config.Record must be set);
	// the hook's "record" overrides it. False records only when the hook
	// says so.
	Record bool
	// Ring is how long a call rings (180 Ringing) before it is answered.
	// Zero answers at once.
	Ring time.Duration
	// EarlyMedia answers 183 Session Progress while ringing and plays
	// silence, or Prompt, to the caller. False rings without media.
	EarlyMedia bool
	// Prompt is a sound file inside Config.SoundDir played in a loop to
	// the caller while ringing (implies EarlyMedia). Empty means silence.
	Prompt string
	// Hook asks the default application's hook (Config.Webhook) first.
	// False (or no Webhook) decides by the defaults alone.
	Hook bool
}

// dialin decides incoming calls for a Handler (Inbound's state once the
// Handler is made).
type dialin struct {
	cfg DialinConfig
	srv *server
	// sounds loads Prompt (managerService.openSound); nil without one.
	sounds func(field, name string, loop bool) (sound.Source, error)
	// recording: record is allowed (Config.Record).
	recording bool
	nodeID    string
	log       *slog.Logger
	now       func() time.Time
	// hookAsks counts the hook's answers by result: decided (a target, a
	// refusal or a redirect), none (no target: the defaults decide),
	// failed (no usable answer: the defaults decide).
	hookAsks *prometheus.CounterVec
}

// newDialin checks cfg against the Handler's AllowRTMPHosts and sound
// folder; the caller sets srv.
func newDialin(cfg DialinConfig, rtmpHosts allowList, svc *managerService) (*dialin, error) {
	cfg.RTMPURL = trimRTMPURL(cfg.RTMPURL)
	if err := checkRTMPURL(cfg.RTMPURL); err != nil {
		return nil, fmt.Errorf("wcsapi: Dialin.RTMPURL %w", err)
	}
	if cfg.RTMPURL != "" {
		if err := (&server{allowRTMP: rtmpHosts}).checkRTMP(cfg.RTMPURL); err != nil {
			return nil, errors.New("wcsapi: Dialin.RTMPURL: its host is not in AllowRTMPHosts")
		}
	}
	if cfg.Record && !svc.recording {
		return nil, errors.New("wcsapi: Dialin.Record needs Config.Record (and the Manager's RecordDir)")
	}
	if cfg.Ring < 0 {
		return nil, errors.New("wcsapi: Dialin.Ring must not be negative")
	}
	hookAsks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipstream", Name: "dialin_hook_answers_total",
		Help: "Incoming calls put to the application's hook (OnCallEvent), by result: decided (target, reject or redirect), none (empty answer: the defaults decided), failed (error, timeout, redirect or malformed answer: the defaults decided).",
	}, []string{"result"})
	for _, r := range []string{"decided", "none", "failed"} {
		hookAsks.WithLabelValues(r)
	}
	d := &dialin{hookAsks: hookAsks, cfg: cfg, recording: svc.recording, nodeID: svc.nodeID, log: svc.log, now: svc.now}
	if cfg.Prompt != "" {
		if _, err := svc.openSound("prompt", cfg.Prompt, true); err != nil {
			return nil, fmt.Errorf("wcsapi: Dialin.Prompt: %w", err)
		}
		d.sounds = svc.openSound
	}
	return d, nil
}

// maxHookAnswer bounds the hook's answer.
const maxHookAnswer = 64 << 10

// hookAnswer is the hook's answer to OnCallEvent, strictly typed (null is
// as absent).
type hookAnswer struct {
	RTMPURL    string `json:"rtmpUrl"`
	RTMPStream string `json:"rtmpStream"`
	ToStream   string `json:"toStream"`
	Record     *bool  `json:"record"`
	HasAudio   *bool  `json:"hasAudio"`
	HasVideo   *bool  `json:"hasVideo"`
	Reject     bool   `json:"reject"`
	SIPStatus  int    `json:"sipStatus"`
	Reason     string `json:"reason"`
	Redirect   string `json:"redirect"`
	AppKey     string `json:"appKey"`
}

// target reports whether a names a target to answer with.
func (a *hookAnswer) target() bool {
	return strings.TrimSpace(a.RTMPURL) != "" || strings.TrimSpace(a.RTMPStream) != "" ||
		strings.TrimSpace(a.ToStream) != "" || (a.Record != nil && *a.Record)
}

// parseHookAnswer reads the hook's answer body: empty (or only blanks) is
// no answer (nil, nil); anything but one JSON object of hookAnswer's types
// is an error.
func parseHookAnswer(body []byte) (*hookAnswer, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, nil
	}
	var a hookAnswer
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&a); err != nil {
		return nil, errors.New(jsonProblem(err))
	}
	if dec.More() {
		return nil, errors.New("data after the object")
	}
	return &a, nil
}

// decide is OnIncoming once the Handler is made.
func (d *dialin) decide(ctx context.Context, in callmgr.IncomingCall) (callmgr.Decision, error) {
	var a *hookAnswer
	if d.cfg.Hook && d.srv.webhook != nil && d.srv.webhook.target("") != nil {
		var err error
		a, err = d.ask(ctx, in)
		switch {
		case err != nil:
			d.hookAsks.WithLabelValues("failed").Inc()
			d.log.Warn("dial-in hook: no usable answer, the defaults decide", "callId", in.CallID, "err", err)
			a = nil
		case a == nil || (!a.Reject && strings.TrimSpace(a.Redirect) == "" && !a.target()):
			d.hookAsks.WithLabelValues("none").Inc()
		default:
			d.hookAsks.WithLabelValues("decided").Inc()
		}
	}
	return d.fromAnswer(in, a)
}

// fromAnswer is the Decision for in given the hook's answer a (nil: none).
func (d *dialin) fromAnswer(in callmgr.IncomingCall, a *hookAnswer) (callmgr.Decision, error) {
	switch {
	case a != nil && a.Reject:
		code := a.SIPStatus
		if code != 0 && (code < 400 || code > 699) {
			d.log.Warn("dial-in hook: sipStatus out of 400-699, refusing with 603", "callId", in.CallID, "sipStatus", code)
			code = 0
		}
		reason := strings.TrimSpace(a.Reason)
		if len(reason) > 128 || sip.ValidateHeaderValue(reason) != nil {
			reason = "" // the code's usual phrase
		}
		return callmgr.RejectWith(code, reason), nil
	case a != nil && strings.TrimSpace(a.Redirect) != "":
		target := strings.TrimSpace(a.Redirect)
		lower := strings.ToLower(target)
		if !strings.HasPrefix(lower, "sip:") && !strings.HasPrefix(lower, "sips:") || sip.ValidateCallee(target, "") != nil {
			return callmgr.Decision{}, errors.New("dial-in hook: redirect must be a sip: or sips: URI")
		}
		return callmgr.RedirectTo(target), nil
	case a != nil && a.target():
		return d.answer(in, a)
	case d.cfg.RTMPURL != "":
		return d.answer(in, &hookAnswer{RTMPURL: d.cfg.RTMPURL})
	}
	return callmgr.RejectWith(480, "Temporarily Unavailable"), nil
}

// answer is the Decision answering in with a's target, checked as
// /call/startup checks its own, with the defaults filling what a leaves
// out.
func (d *dialin) answer(in callmgr.IncomingCall, a *hookAnswer) (callmgr.Decision, error) {
	or := func(v, def string) string {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
		return def
	}
	p := callmgr.CallParams{
		RTMPURL:  trimRTMPURL(a.RTMPURL),
		ToStream: or(a.ToStream, in.Callee),
		Record:   d.cfg.Record,
		HasAudio: true,
		HasVideo: true,
	}
	if p.RTMPURL == "" && strings.TrimSpace(a.RTMPStream) != "" {
		p.RTMPURL = d.cfg.RTMPURL // a stream name for the default URL
	}
	if p.RTMPURL != "" {
		p.RTMPStream = or(a.RTMPStream, in.Callee)
	}
	if p.ToStream == "" || (p.RTMPURL != "" && p.RTMPStream == "") {
		return callmgr.RejectWith(404, "Not Found"), nil // no user to name the stream after
	}
	p.AppKey = strings.TrimSpace(a.AppKey)
	if a.Record != nil {
		p.Record = *a.Record
	}
	if a.HasAudio != nil {
		p.HasAudio = *a.HasAudio
	}
	if a.HasVideo != nil {
		p.HasVideo = *a.HasVideo
	}
	if err := checkRTMPURL(p.RTMPURL); err != nil {
		return callmgr.Decision{}, fmt.Errorf("dial-in hook: %w", err)
	}
	if p.RTMPURL != "" {
		if p.RTMPStream != in.Callee {
			d.srv.secrets.Add(p.RTMPStream) // the hook's stream key; the callee's name is no secret
		}
		d.srv.secrets.Add(urlSecrets(p.RTMPURL)...)
		if err := d.srv.checkRTMP(p.RTMPURL); err != nil {
			return callmgr.Decision{}, fmt.Errorf("dial-in hook: %w", err)
		}
	}
	if p.Record && !d.recording {
		return callmgr.Decision{}, errors.New("dial-in hook: record: recording is off on this server (start it with -record-dir)")
	}
	dec := callmgr.AnswerWith(p)
	dec.Ring = d.cfg.Ring
	dec.EarlyMedia = d.cfg.EarlyMedia || d.cfg.Prompt != ""
	if d.sounds != nil {
		src, err := d.sounds("prompt", d.cfg.Prompt, true)
		if err != nil {
			d.log.Warn("dial-in prompt cannot be played: silence instead", "err", err)
		} else {
			dec.EarlySound = src
		}
	}
	return dec, nil
}

// ask POSTs the OnCallEvent of in to the default application's hook and
// reads its answer: nil for no answer (empty body), an error for a failed
// request, a non-2xx status, a redirect or a malformed answer.
func (d *dialin) ask(ctx context.Context, in callmgr.IncomingCall) (*hookAnswer, error) {
	wh := d.srv.webhook
	ctx, cancel := context.WithTimeout(ctx, wh.client.Timeout)
	defer cancel()
	ev := offerEvent{StatusEvent: StatusEvent{
		Type: "OnCallEvent", NodeID: d.nodeID, CallID: in.CallID, Incoming: true, Status: "RING",
		Caller: in.Caller, Callee: in.Callee, HasAudio: in.Audio, HasVideo: in.Video,
		VisibleName: in.CallerName, Timestamp: d.now().UnixMilli(),
	}, in: in}
	resp, err := wh.do(ctx, wh.target(""), hookMessage{name: ev.Type, body: ev, id: in.CallID, status: ev.Status})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHookAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(body) > maxHookAnswer {
		return nil, fmt.Errorf("answer larger than %d bytes", maxHookAnswer)
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	a, err := parseHookAnswer(body)
	if err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	return a, nil
}

// offerEvent is the body of OnCallEvent: a StatusEvent's members, then
// what the INVITE said.
type offerEvent struct {
	StatusEvent
	in callmgr.IncomingCall
}

// MarshalJSON writes the StatusEvent's members in their order, then
// requestUri, callerUri, calleeUri, source, transport, account, authUser,
// srtp and sipHeaders (name → value; repeated headers joined with ", ").
func (e offerEvent) MarshalJSON() ([]byte, error) {
	head, err := e.StatusEvent.MarshalJSON()
	if err != nil {
		return nil, err
	}
	hdrs := map[string]string{}
	for _, h := range e.in.Headers {
		if v, ok := hdrs[h.Name]; ok {
			hdrs[h.Name] = v + ", " + h.Value
		} else {
			hdrs[h.Name] = h.Value
		}
	}
	source := ""
	if e.in.Source.IsValid() {
		source = e.in.Source.String()
	}
	tail, err := json.Marshal(struct {
		RequestURI string            `json:"requestUri"`
		CallerURI  string            `json:"callerUri"`
		CalleeURI  string            `json:"calleeUri"`
		Source     string            `json:"source"`
		Transport  string            `json:"transport"`
		Account    string            `json:"account"`
		AuthUser   string            `json:"authUser"`
		SRTP       bool              `json:"srtp"`
		SIPHeaders map[string]string `json:"sipHeaders"`
	}{e.in.RequestURI, e.in.CallerURI, e.in.CalleeURI, source, e.in.Transport, e.in.Account, e.in.AuthUser, e.in.SRTP, hdrs})
	if err != nil {
		return nil, err
	}
	// {head...} + {tail...} -> {head..., tail...}
	out := append(head[:len(head)-1:len(head)-1], ',')
	return append(out, tail[1:]...), nil
}
