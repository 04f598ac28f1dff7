package main

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sipstream/sipstream/sink/whep"
)

//go:embed web
var webFS embed.FS

// maxBody is the largest request body accepted (the product's bodies are a
// few hundred bytes).
const maxBody = 64 << 10

// server is the HTTP side: REST API, web page, events and metrics.
type server struct {
	calls    callService
	log      *slog.Logger
	now      func() time.Time
	authUser string
	authPass string
	webhook  *webhook // nil without -webhook
	hub      *hub
	reg      *prometheus.Registry
	defaults map[string]any // prefilled form values for the page (demo mode)
	// extra handlers mounted by main: WHEP playback.
	whep http.Handler

	requests *prometheus.CounterVec
	events   prometheus.Counter
}

type serverOptions struct {
	Log      *slog.Logger
	Now      func() time.Time
	AuthUser string
	AuthPass string
	Webhook  string
	Defaults map[string]any
	WHEP     http.Handler
}

func newServer(calls callService, o serverOptions) *server {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &server{
		calls:    calls,
		log:      o.Log,
		now:      o.Now,
		authUser: o.AuthUser,
		authPass: o.AuthPass,
		hub:      newHub(),
		reg:      prometheus.NewRegistry(),
		defaults: o.Defaults,
		whep:     o.WHEP,
	}
	if o.Webhook != "" {
		s.webhook = newWebhook(o.Webhook, o.Log)
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipstream", Subsystem: "rest", Name: "requests_total",
		Help: "REST API requests by endpoint and HTTP status.",
	}, []string{"endpoint", "code"})
	s.events = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "sipstream", Name: "status_events_total",
		Help: "Call and RTMP status changes published to the webhook and the page.",
	})
	s.reg.MustRegister(s.requests, s.events, &callCollector{s: s},
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return s
}

// close stops the webhook (after delivering what is queued) and disconnects
// the event streams.
func (s *server) close() {
	s.hub.close()
	if s.webhook != nil {
		s.webhook.close()
	}
}

// handler returns the whole HTTP API.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	api := map[string]func(http.ResponseWriter, *http.Request) error{
		"/call/startup":   s.callStartup,
		"/call/find":      s.callFind,
		"/call/find_all":  s.callFindAll,
		"/call/terminate": s.callTerminate,
		"/call/send_dtmf": s.callSendDTMF,
		"/push/startup":   s.pushStartup,
		"/push/find":      s.pushFind,
		"/push/find_all":  s.pushFindAll,
		"/push/terminate": s.pushTerminate,
		"/push/mute":      func(w http.ResponseWriter, r *http.Request) error { return s.pushMute(w, r, true) },
		"/push/unmute":    func(w http.ResponseWriter, r *http.Request) error { return s.pushMute(w, r, false) },
	}
	for path, h := range api {
		mux.Handle("/rest-api"+path, s.endpoint(path, h))
	}
	mux.Handle("/rest-api/", s.endpoint("unknown", func(w http.ResponseWriter, r *http.Request) error {
		return errStatus(http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	}))
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /defaults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.defaults)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	if s.whep != nil {
		mux.Handle("/whep/", s.whep)
	}
	// The WHEP player script (and its stand-alone page: /player/?whep=URL).
	mux.Handle("GET /player/", http.StripPrefix("/player", whep.PlayerHandler()))
	web, _ := fs.Sub(webFS, "web")
	mux.Handle("/", http.FileServerFS(web))
	return s.withAuth(mux)
}

// withAuth requires HTTP Basic auth on everything when -auth is set.
func (s *server) withAuth(next http.Handler) http.Handler {
	if s.authUser == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		okUser := subtle.ConstantTimeCompare([]byte(u), []byte(s.authUser)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(p), []byte(s.authPass)) == 1
		if !ok || !okUser || !okPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="sipstream", charset="UTF-8"`)
			writeError(w, r, errStatus(http.StatusUnauthorized, "authentication required"), s.now())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// endpoint wraps a REST handler: POST only, errors as JSON, counted.
func (s *server) endpoint(name string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.requests.WithLabelValues(name, fmt.Sprint(rec.status)).Inc() }()
		if r.Method != http.MethodPost {
			rec.Header().Set("Allow", http.MethodPost)
			writeError(rec, r, errStatus(http.StatusMethodNotAllowed, "use POST"), s.now())
			return
		}
		if err := h(rec, r); err != nil {
			status, _ := statusOf(err)
			if status >= 500 {
				s.log.Error("request failed", "path", r.URL.Path, "err", err)
			}
			writeError(rec, r, err, s.now())
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// decode reads a JSON object body into v. An empty body is an empty object;
// unknown fields are ignored; anything else malformed is a 400 that says
// where.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errStatus(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
		}
		return errStatus(http.StatusBadRequest, "reading the request body failed")
	}
	return decodeJSON(body, v)
}

// decodeJSON is decode without the HTTP: the fuzz target's entry point.
func decodeJSON(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(v); err != nil {
		return errStatus(http.StatusBadRequest, "malformed JSON body: "+jsonProblem(err))
	}
	if dec.More() {
		return errStatus(http.StatusBadRequest, "malformed JSON body: data after the object")
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the whole input.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must not be a JSON %s", te.Field, te.Value)
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	// Errors from the flex types' UnmarshalJSON: json wraps them without the
	// field name, so say what they say (they quote at most 40 bytes).
	return truncate(err.Error(), 200)
}

func (s *server) callStartup(w http.ResponseWriter, r *http.Request) error {
	var req startupRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	p, err := req.validate()
	if err != nil {
		return err
	}
	if err := s.calls.Start(r.Context(), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

type callFilter struct {
	CallID  flexString `json:"callId"`
	Callee  flexString `json:"callee"`
	RTMPURL flexString `json:"rtmpUrl"`
	Status  flexString `json:"status"`
}

func (f callFilter) match(c callObject) bool {
	return (f.CallID == "" || string(f.CallID) == c.CallID) &&
		(f.Callee == "" || string(f.Callee) == c.Callee) &&
		(f.RTMPURL == "" || string(f.RTMPURL) == c.RTMPURL) &&
		(f.Status == "" || strings.EqualFold(string(f.Status), c.Status))
}

func (s *server) callFind(w http.ResponseWriter, r *http.Request) error {
	var f callFilter
	if err := s.decode(w, r, &f); err != nil {
		return err
	}
	var out []callObject
	for _, c := range s.calls.Calls() {
		if f.match(c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return errStatus(http.StatusNotFound, "no call matches")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) callFindAll(w http.ResponseWriter, r *http.Request) error {
	if err := s.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	out := s.calls.Calls()
	if len(out) == 0 {
		return errStatus(http.StatusNotFound, "no calls")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) callTerminate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		CallID flexString `json:"callId"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if req.CallID == "" {
		return badField("callId", "is required")
	}
	if err := s.calls.Terminate(r.Context(), string(req.CallID)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// DTMF types of /call/send_dtmf, as the product names them.
const (
	dtmfRFC2833   = "RFC2833"
	dtmfInfo      = "INFO"
	dtmfInfoRelay = "INFO_RELAY"
)

func (s *server) callSendDTMF(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		CallID flexString `json:"callId"`
		DTMF   flexString `json:"dtmf"`
		Type   flexString `json:"type"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var errs []error
	if req.CallID == "" {
		errs = append(errs, badField("callId", "is required"))
	}
	digits := strings.ToUpper(strings.TrimSpace(string(req.DTMF)))
	if digits == "" {
		errs = append(errs, badField("dtmf", "is required"))
	} else if len(digits) > 64 || strings.Trim(digits, "0123456789*#ABCD") != "" {
		errs = append(errs, badField("dtmf", "must be 1 to 64 of 0-9, *, #, A-D"))
	}
	typ := strings.ToUpper(strings.TrimSpace(string(req.Type)))
	switch typ {
	case "":
		typ = dtmfRFC2833
	case dtmfRFC2833, dtmfInfo, dtmfInfoRelay:
	default:
		errs = append(errs, badField("type", "must be RFC2833, INFO or INFO_RELAY"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := s.calls.SendDTMF(r.Context(), string(req.CallID), digits, typ); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) pushStartup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		StreamName flexString `json:"streamName"`
		RTMPURL    flexString `json:"rtmpUrl"`
		FullURL    flexBool   `json:"rtmpTransponderFullUrl"`
		Options    struct {
			Action flexString `json:"action"`
		} `json:"options"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	p := pushParams{
		StreamName: strings.TrimSpace(string(req.StreamName)),
		RTMPURL:    strings.TrimSpace(string(req.RTMPURL)),
		FullURL:    req.FullURL.or(false),
		Muted:      strings.EqualFold(string(req.Options.Action), "mute"),
	}
	var errs []error
	if p.StreamName == "" {
		errs = append(errs, badField("streamName", "is required"))
	}
	if p.RTMPURL == "" {
		errs = append(errs, badField("rtmpUrl", "is required"))
	} else if !strings.HasPrefix(p.RTMPURL, "rtmp://") && !strings.HasPrefix(p.RTMPURL, "rtmps://") {
		errs = append(errs, badField("rtmpUrl", "must be an rtmp:// or rtmps:// URL"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	obj, err := s.calls.PushStart(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, obj)
	return nil
}

type pushFilter struct {
	MediaSessionID flexString `json:"mediaSessionId"`
	StreamName     flexString `json:"streamName"`
	RTMPURL        flexString `json:"rtmpUrl"`
}

func (s *server) pushFind(w http.ResponseWriter, r *http.Request) error {
	var f pushFilter
	if err := s.decode(w, r, &f); err != nil {
		return err
	}
	var out []pushObject
	for _, p := range s.calls.Pushes() {
		if (f.MediaSessionID == "" || string(f.MediaSessionID) == p.MediaSessionID) &&
			(f.StreamName == "" || string(f.StreamName) == p.StreamName) &&
			(f.RTMPURL == "" || string(f.RTMPURL) == p.RTMPURL) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return errStatus(http.StatusNotFound, "no push matches")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) pushFindAll(w http.ResponseWriter, r *http.Request) error {
	if err := s.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	out := s.calls.Pushes()
	if len(out) == 0 {
		return errStatus(http.StatusNotFound, "no pushes")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) mediaSessionID(w http.ResponseWriter, r *http.Request) (string, error) {
	var req struct {
		MediaSessionID flexString `json:"mediaSessionId"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return "", err
	}
	if req.MediaSessionID == "" {
		return "", badField("mediaSessionId", "is required")
	}
	return string(req.MediaSessionID), nil
}

func (s *server) pushTerminate(w http.ResponseWriter, r *http.Request) error {
	id, err := s.mediaSessionID(w, r)
	if err != nil {
		return err
	}
	if err := s.calls.PushTerminate(r.Context(), id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) pushMute(w http.ResponseWriter, r *http.Request, mute bool) error {
	id, err := s.mediaSessionID(w, r)
	if err != nil {
		return err
	}
	if err := s.calls.PushMute(r.Context(), id, mute); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// notify publishes a status change: to the webhook and to the page. It never
// blocks (both are bounded queues). The service calls it from its event
// goroutine.
func (s *server) notify(ev statusEvent, call callObject) {
	if ev.Timestamp == 0 {
		ev.Timestamp = s.now().UnixMilli()
	}
	s.events.Inc()
	if s.webhook != nil {
		s.webhook.post(ev)
	}
	b, err := json.Marshal(call)
	if err != nil {
		return
	}
	s.hub.publish(sseMessage("call", b))
}

func sseMessage(event string, data []byte) []byte {
	msg := make([]byte, 0, len(event)+len(data)+16)
	msg = append(msg, "event: "...)
	msg = append(msg, event...)
	msg = append(msg, "\ndata: "...)
	msg = append(msg, data...)
	return append(msg, "\n\n"...)
}

// serveEvents is the Server-Sent Events stream for the page: a snapshot of
// every call, then one "call" event per change.
func (s *server) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, r, errStatus(http.StatusInternalServerError, "streaming unsupported"), s.now())
		return
	}
	ch, unsubscribe := s.hub.subscribe()
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	snap := s.calls.Calls()
	if snap == nil {
		snap = []callObject{}
	}
	b, _ := json.Marshal(snap)
	if _, err := w.Write(sseMessage("snapshot", b)); err != nil {
		return
	}
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if _, err := w.Write(msg); err != nil {
				return
			}
			flusher.Flush()
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// callCollector exports per-status call counts, read from the service at
// scrape time.
type callCollector struct{ s *server }

var callsDesc = prometheus.NewDesc("sipstream_calls", "Calls the server knows, by status.", []string{"status"}, nil)
var rtmpDesc = prometheus.NewDesc("sipstream_rtmp_legs", "RTMP legs of calls, by status.", []string{"status"}, nil)

func (c *callCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- callsDesc
	ch <- rtmpDesc
}

func (c *callCollector) Collect(ch chan<- prometheus.Metric) {
	calls := map[string]int{}
	rtmp := map[string]int{}
	for _, call := range c.s.calls.Calls() {
		calls[call.Status]++
		if call.RTMPStreamStatus != "" {
			rtmp[call.RTMPStreamStatus]++
		}
	}
	for st, n := range calls {
		ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.GaugeValue, float64(n), st)
	}
	for st, n := range rtmp {
		ch <- prometheus.MustNewConstMetric(rtmpDesc, prometheus.GaugeValue, float64(n), st)
	}
}

// shutdownCtx gives cleanup its own deadline, whatever the caller's context.
func shutdownCtx(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
