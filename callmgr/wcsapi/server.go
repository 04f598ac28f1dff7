package wcsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxBody is the largest request body accepted (the product's bodies are a
// few hundred bytes).
const maxBody = 64 << 10

// server is the HTTP side: REST API, events, viewer authorization.
type server struct {
	calls   callService
	log     *slog.Logger
	now     func() time.Time
	admins  *admins
	tokens  *viewerTokens
	secrets *Secrets
	hosts   hostPolicy
	origins originPolicy
	webhook *webhook // nil without a webhook URL
	hub     *hub
	// streamCall (WHEP) and hlsCall (HLS), when set, say which live call
	// streams a name; nil means that playback is off.
	streamCall func(name string) (string, bool)
	hlsCall    func(name string) (string, bool)

	webhookSecrets bool
	allowCallees   allowList
	allowRTMP      allowList

	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
	events   prometheus.Counter

	// pushMu makes /push/startup's duplicate check and start one step.
	pushMu sync.Mutex
	// dtmf sends /call/send_dtmf's digits in the background, in order per
	// call.
	dtmf *dtmfQueue
	// regs serves /registration; nil answers 404.
	regs registrationService
	// cluster, when set, routes requests to the node owning their call
	// (cluster.go).
	cluster *clusterNode
	// ops samples the calls' stats and serves the operator's endpoints
	// (opstats.go); nil answers them 404.
	ops *opStats
}

// serverOptions configures newServer. The zero value is a server that
// refuses every request needing a login (no credentials, NoAuth false).
type serverOptions struct {
	Log *slog.Logger
	Now func() time.Time
	// AuthUser and AuthPass are the admin's HTTP Basic credentials.
	AuthUser string
	AuthPass string
	// NoAuth serves without login (-no-auth, or the demo on loopback).
	// Without it and without credentials, every request that needs a
	// login gets 401.
	NoAuth bool
	// Webhook is the URL status events are POSTed to ("" = none).
	Webhook string
	// WebhookSecrets sends rtmpUrl unredacted to the webhook.
	WebhookSecrets bool
	// WebhookQueue bounds the webhook's queue. Zero means 1024.
	WebhookQueue int
	// StreamCall returns the live call streaming name over WHEP; viewer
	// tokens are issued and checked against it. Nil: no WHEP.
	StreamCall func(name string) (callID string, ok bool)
	// HLSCall is StreamCall for HLS. Nil: no HLS.
	HLSCall func(name string) (callID string, ok bool)
	// Hosts is the Host header check; nil means the defaults (localhost
	// and loopback addresses).
	Hosts *hostPolicy
	// CORSOrigins are the browser origins, besides the page's own, that may
	// send requests ("*": any).
	CORSOrigins []string
	// AllowCallees and AllowRTMPHosts are -allow-callees and
	// -allow-rtmp-hosts (empty: anything).
	AllowCallees   allowList
	AllowRTMPHosts allowList
	// MaxSSE limits the event stream subscribers. Zero means no limit.
	MaxSSE int
	// Secrets collects the secrets to scrub; nil makes a new set.
	Secrets *Secrets
}

func newServer(calls callService, o serverOptions) *server {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Secrets == nil {
		o.Secrets = NewSecrets()
	}
	if o.Hosts == nil {
		h := newHostPolicy(nil, nil, netip.Addr{}, nil)
		o.Hosts = &h
	}
	a := &admins{mode: authLocked, throttle: newThrottle(o.Now)}
	switch {
	case o.AuthUser != "":
		a.mode, a.user, a.pass = authBasic, []byte(o.AuthUser), []byte(o.AuthPass)
	case o.NoAuth:
		a.mode = authOff
	}
	s := &server{
		calls:          calls,
		log:            o.Log,
		now:            o.Now,
		admins:         a,
		tokens:         newViewerTokens(o.Now),
		secrets:        o.Secrets,
		hosts:          *o.Hosts,
		origins:        newOriginPolicy(o.CORSOrigins),
		hub:            newHub(o.MaxSSE),
		streamCall:     o.StreamCall,
		hlsCall:        o.HLSCall,
		webhookSecrets: o.WebhookSecrets,
		allowCallees:   o.AllowCallees,
		allowRTMP:      o.AllowRTMPHosts,
	}
	if o.Webhook != "" {
		s.webhook = newWebhook(o.Webhook, o.Log, o.WebhookQueue)
	}
	s.dtmf = newDTMFQueue(calls, o.Log)
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipstream", Subsystem: "rest", Name: "requests_total",
		Help: "REST API requests by endpoint and HTTP status.",
	}, []string{"endpoint", "code"})
	s.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "sipstream", Subsystem: "http", Name: "rejected_total",
		Help: "HTTP requests refused before any handler, by reason: host (Host not served, 421), origin (cross-origin browser request, 403), auth (no or wrong login, 401), throttled (too many failed logins, 429), token (WHEP without a valid viewer token, 401).",
	}, []string{"reason"})
	s.events = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "sipstream", Name: "status_events_total",
		Help: "Call and RTMP status changes published to the webhook and the page.",
	})
	return s
}

// collectors are the server's metrics.
func (s *server) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{s.requests, s.rejected, s.events, s.hub}
	if s.webhook != nil {
		cs = append(cs, s.webhook)
	}
	return cs
}

// close stops the webhook (after delivering what is queued) and disconnects
// the event streams.
func (s *server) close() {
	s.dtmf.close()
	s.hub.close()
	if s.webhook != nil {
		s.webhook.close()
	}
}

// routes are the REST endpoints (paths below /rest-api).
func (s *server) routes() map[string]func(http.ResponseWriter, *http.Request) error {
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
		"/viewer/token":   s.viewerToken,
	}
	for path, h := range s.callControlRoutes() {
		api[path] = h
	}
	for path, h := range s.registrationRoutes() {
		api[path] = h
	}
	for path, h := range s.operatorRoutes() {
		api[path] = h
	}
	api["/cluster/nodes"] = s.clusterNodes
	return api
}

// handler returns the REST API and the event stream, both behind the
// admin's login, without the guard (Handler adds it). In a cluster, a
// request for another node's call is carried there (route).
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	for path, h := range s.routes() {
		mux.Handle("/rest-api"+path, s.admin(s.endpoint(path, s.route(path, h))))
	}
	mux.Handle("/rest-api/", s.admin(s.endpoint("unknown", func(w http.ResponseWriter, r *http.Request) error {
		return errStatus(http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})))
	mux.Handle("GET /events", s.admin(http.HandlerFunc(s.serveEvents)))
	return mux
}

// internalHandler serves the requests another node of the cluster carried
// here: the REST endpoints without the login (the node the client asked
// checked it) and never carried further.
func (s *server) internalHandler() http.Handler {
	mux := http.NewServeMux()
	for path, h := range s.routes() {
		mux.Handle("/rest-api"+path, s.endpoint(path, h))
	}
	mux.Handle("/rest-api/", s.endpoint("unknown", func(w http.ResponseWriter, r *http.Request) error {
		return errStatus(http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	}))
	return mux
}

// maxRequestBody bounds every request body (WHEP offers included); the
// REST endpoints allow maxBody of it.
const maxRequestBody = 1 << 20

// guard refuses what is not meant for this server before any handler runs:
// a Host this server does not serve (421: DNS rebinding), a cross-origin
// browser request from an origin not in -cors-origins (403: CSRF), and
// answers CORS preflights.
//
// CORS follows the product, which answers its REST API with
// "Access-Control-Allow-Origin: *" (wcs-docs "Stream capturing from a SIP
// call", Known issues 3), but only as far as Config.CORSOrigins allows, since
// this API takes a Basic login a browser may have cached: by default (no
// CORSOrigins) only the page's own origin may call, and no CORS header is
// sent. A listed origin gets its own origin echoed, "Vary: Origin" and
// "Access-Control-Allow-Credentials: true". "*" is opt-in and answers "*"
// literally, as the product does, on every response; browsers then send no
// cached credentials (a script must set Authorization itself), so "*" opens
// the API to scripts that know the login, not to CSRF. Preflights (OPTIONS)
// need no login (browsers never send one) and get 204 with
// Allow-Methods, Allow-Headers and Max-Age; an OPTIONS to /rest-api without
// Access-Control-Request-Method gets the same 204 (with Allow), never 405.
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allowed(r.Host) {
			s.reject(w, r, "host", errStatus(http.StatusMisdirectedRequest,
				"this server does not serve that host name (add it to -allowed-hosts)"))
			return
		}
		origin, cross, ok := s.origins.check(r)
		if !ok {
			s.reject(w, r, "origin", errStatus(http.StatusForbidden,
				"cross-origin request refused (allow the origin with -cors-origins)"))
			return
		}
		corsHeaders(w.Header(), s.origins, origin, cross)
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight || (r.Method == http.MethodOptions && strings.HasPrefix(r.URL.Path, "/rest-api/")) {
			// Never authenticated by browsers: answered here, before any login.
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			h.Set("Allow", corsMethods)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		}
		next.ServeHTTP(w, r)
	})
}

// The methods and request headers a CORS preflight allows: the REST API's
// POST, WHEP's PATCH and DELETE, GET for events, metrics and HLS.
const (
	corsMethods      = "GET, POST, PATCH, DELETE, OPTIONS"
	corsAllowHeaders = "Authorization, Content-Type, If-Match"
)

// corsHeaders sets the CORS response headers for a request that origins
// let through: "*" (CORSOrigins has "*": on every response, as the product
// sends it), or the listed origin echoed with credentials allowed. A
// same-origin request or one without Origin gets none unless "*".
func corsHeaders(h http.Header, origins originPolicy, origin string, cross bool) {
	switch {
	case origins.any:
		h.Set("Access-Control-Allow-Origin", "*")
	case cross:
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Credentials", "true")
	default:
		return
	}
	h.Set("Access-Control-Expose-Headers", "Location, Accept-Patch, Accept-Post, ETag")
}

// reject writes err and counts the refusal by reason.
func (s *server) reject(w http.ResponseWriter, r *http.Request, reason string, err error) {
	s.rejected.WithLabelValues(reason).Inc()
	writeError(w, r, err, s.now())
}

// admin requires the admin's login (HTTP Basic), unless auth is off.
func (s *server) admin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authorize(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// authorize checks the admin's login and writes the refusal (401 or 429)
// when it fails.
func (s *server) authorize(w http.ResponseWriter, r *http.Request) bool {
	ok, retry := s.admins.check(r)
	if ok {
		return true
	}
	if retry > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(retry))
		s.reject(w, r, "throttled", errStatus(http.StatusTooManyRequests,
			"too many failed logins from this address; retry after "+retryAfterSeconds(retry)+" s"))
		return false
	}
	msg := "authentication required"
	if s.admins.mode == authLocked {
		msg = "authentication required: the server has no credentials configured (set SIPSTREAM_AUTH=user:pass or -auth-file, or -no-auth)"
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="sipstream", charset="UTF-8"`)
	s.reject(w, r, "auth", errStatus(http.StatusUnauthorized, msg))
	return false
}

// authorizeViewer lets viewers of a stream in with a viewer token
// (Authorization: Bearer TOKEN, as WHEP clients send it, or ?token=TOKEN
// for links and HLS players) or the admin's login; a token must name the
// stream and the live call that streamCall (when set) says streams it. It
// is the Authorize hook of the WHEP and HLS muxes (whep.Mux lets a
// viewer's own resource, DELETE and PATCH on /whep/NAME/ID, through
// without asking: its URL, with a random ID, is handed to that viewer only).
func (s *server) authorizeViewer(streamCall func(string) (string, bool)) func(http.ResponseWriter, *http.Request, string) bool {
	return func(w http.ResponseWriter, r *http.Request, name string) bool {
		tok := r.URL.Query().Get("token")
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
			tok = strings.TrimSpace(a[7:])
		}
		if tok == "" {
			return s.authorize(w, r)
		}
		if s.admins.mode == authOff {
			return true
		}
		callID, err := s.tokens.verify(tok, name)
		if err == nil && streamCall != nil {
			if live, ok := streamCall(name); !ok || live != callID {
				err = errTokenStream
			}
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sipstream"`)
			s.reject(w, r, "token", errStatus(http.StatusUnauthorized, err.Error()))
			return false
		}
		return true
	}
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
			// Error texts may quote what a connection said: no secrets,
			// no connection details (see publicReason).
			status, msg := statusOf(err)
			writeError(rec, r, errStatus(status, publicReason(msg, s.secrets)), s.now())
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
	// CSRF: a browser sends JSON only after a CORS preflight, while forms
	// (text/plain, urlencoded, multipart) go out without one. An empty body
	// (curl -X POST) is an empty object whatever its type.
	if len(bytes.TrimSpace(body)) > 0 && !jsonBody(r) {
		return errStatus(http.StatusUnsupportedMediaType, "the body must be JSON sent with Content-Type: application/json")
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
	s.secrets.Add(p.SIPPassword, p.RTMPStream)
	s.secrets.Add(urlSecrets(p.RTMPURL)...)
	if err := s.checkStart(p); err != nil {
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

func (f callFilter) match(c Call) bool {
	return (f.CallID == "" || string(f.CallID) == c.CallID) &&
		(f.Callee == "" || string(f.Callee) == c.Callee) &&
		(f.RTMPURL == "" || trimRTMPURL(string(f.RTMPURL)) == trimRTMPURL(c.RTMPURL)) &&
		(f.Status == "" || strings.EqualFold(string(f.Status), c.Status))
}

func (s *server) callFind(w http.ResponseWriter, r *http.Request) error {
	var f callFilter
	if err := s.decode(w, r, &f); err != nil {
		return err
	}
	var out []Call
	for _, c := range s.calls.Calls() {
		if f.match(c) {
			out = append(out, s.reasons(c))
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
	for i := range out {
		out[i] = s.reasons(out[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) callTerminate(w http.ResponseWriter, r *http.Request) error {
	id, err := s.callIDOnly(w, r)
	if err != nil {
		return err
	}
	if err := s.calls.Terminate(r.Context(), id); err != nil {
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
	// The product answers 200 ("DTMF is sent") or 404 ("call is not
	// found"), nothing else (wcs-docs "Stream capturing from a SIP call",
	// REST table): a known call gets 200 at once and the digits go out in
	// the background, in order; a failure is logged, not answered.
	id := string(req.CallID)
	if !liveCall(s.calls.Calls(), id) {
		return fmt.Errorf("call %q: %w", id, errNotFound)
	}
	if !s.dtmf.enqueue(id, digits, typ) {
		return errStatus(http.StatusServiceUnavailable, "too many DTMF requests queued for this call; retry when they are sent")
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// liveCall reports whether calls has id and it has not ended.
func liveCall(calls []Call, id string) bool {
	for _, c := range calls {
		if c.CallID == id {
			switch c.Status {
			case "FINISH", "FAILED", "BUSY":
				return false
			}
			return true
		}
	}
	return false
}

func (s *server) pushStartup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		StreamName flexString      `json:"streamName"`
		RTMPURL    flexString      `json:"rtmpUrl"`
		FullURL    flexBool        `json:"rtmpTransponderFullUrl"`
		Options    json.RawMessage `json:"options"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	// The product's demo sends {"action":"mute"} or {"action":"sound_on",
	// "soundFile":"sample.wav"} (WCS-API.md 4.2): the push starts muted, or
	// with the sound mixed in.
	var opts struct {
		Action    flexString `json:"action"`
		SoundFile flexString `json:"soundFile"`
		Loop      flexBool   `json:"loop"`
	}
	echo := map[string]any{}
	var errs []error
	if len(req.Options) > 0 && string(req.Options) != "null" {
		if json.Unmarshal(req.Options, &opts) != nil || json.Unmarshal(req.Options, &echo) != nil {
			errs = append(errs, badField("options", "must be an object such as {\"action\":\"mute\"} or {\"action\":\"sound_on\",\"soundFile\":\"sample.wav\"}"))
		}
	}
	action := strings.ToLower(strings.TrimSpace(string(opts.Action)))
	if action != "" && action != "mute" && action != "sound_on" {
		errs = append(errs, badField("options", "action must be mute or sound_on"))
	}
	if action == "sound_on" && opts.SoundFile == "" {
		errs = append(errs, badField("options", "sound_on needs soundFile"))
	}
	p := pushParams{
		StreamName: strings.TrimSpace(string(req.StreamName)),
		RTMPURL:    trimRTMPURL(string(req.RTMPURL)),
		FullURL:    req.FullURL.or(false),
		Muted:      action == "mute",
		Options:    echo,
	}
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
	s.secrets.Add(urlSecrets(p.RTMPURL)...)
	if err := s.checkRTMP(p.RTMPURL); err != nil {
		return err
	}
	// 409 "when a transponder already exists for this stream + URL"
	// (WCS-API.md 4.2): the same stream pushed to the same place again.
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	for _, o := range s.calls.Pushes() {
		if (o.StreamName == p.StreamName || o.CallID == p.StreamName) && trimRTMPURL(o.RTMPURL) == pushTarget(p) {
			return fmt.Errorf("%w: stream %q is already pushed to this rtmpUrl (mediaSessionId %s)", errConflict, p.StreamName, o.MediaSessionID)
		}
	}
	obj, err := s.calls.PushStart(r.Context(), p)
	if err != nil {
		return err
	}
	if action == "sound_on" {
		if err := s.calls.PushSound(r.Context(), obj.MediaSessionID, string(opts.SoundFile), opts.Loop.Value); err != nil {
			_ = s.calls.PushTerminate(context.WithoutCancel(r.Context()), obj.MediaSessionID)
			return err
		}
		obj.SoundEnabled = true
	}
	obj.Info = publicReason(obj.Info, s.secrets)
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
	var out []Push
	for _, p := range s.calls.Pushes() {
		if (f.MediaSessionID == "" || string(f.MediaSessionID) == p.MediaSessionID) &&
			(f.StreamName == "" || string(f.StreamName) == p.StreamName) &&
			(f.RTMPURL == "" || pushHasURL(p, string(f.RTMPURL))) {
			p.Info = publicReason(p.Info, s.secrets)
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return errStatus(http.StatusNotFound, "no push matches")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// A push is reported with the stream name it publishes appended to its
// rtmpUrl ("rtmp://host/live/rtmp_call1"); clients find it by the rtmpUrl
// they sent ("rtmp://host/live", or the full URL with
// rtmpTransponderFullUrl), as the product's /push/find does.

// pushTarget is where a /push/startup request publishes, in the form a
// push reports it: the URL as given with rtmpTransponderFullUrl, else the
// URL and "/rtmp_<streamName>".
func pushTarget(p pushParams) string {
	u := trimRTMPURL(p.RTMPURL)
	if p.FullURL {
		return u
	}
	return u + "/" + pushPrefix + p.StreamName
}

// pushHasURL reports whether push o is found by the rtmpUrl sent: the URL
// o reports, or that URL without the "/rtmp_<name>" the server appended
// (name: o's stream or its call).
func pushHasURL(o Push, sent string) bool {
	sent = trimRTMPURL(sent)
	u := trimRTMPURL(o.RTMPURL)
	if sent == u {
		return true
	}
	for _, n := range []string{o.StreamName, o.CallID} {
		if base, ok := strings.CutSuffix(u, "/"+pushPrefix+n); ok && n != "" && trimRTMPURL(base) == sent {
			return true
		}
	}
	return false
}

func (s *server) pushFindAll(w http.ResponseWriter, r *http.Request) error {
	if err := s.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	out := s.calls.Pushes()
	if len(out) == 0 {
		return errStatus(http.StatusNotFound, "no pushes")
	}
	for i := range out {
		out[i].Info = publicReason(out[i].Info, s.secrets)
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
// goroutine. Both get redacted copies: no stream key, no URL credentials
// or query (the webhook gets rtmpUrl whole with -webhook-secrets).
func (s *server) notify(ev StatusEvent, call Call) {
	if ev.Timestamp == 0 {
		ev.Timestamp = s.now().UnixMilli()
	}
	s.events.Inc()
	ev.Info = publicReason(ev.Info, s.secrets)
	ev.SIPMessage = publicReason(ev.SIPMessage, s.secrets)
	if s.webhook != nil {
		wev := ev
		if !s.webhookSecrets {
			wev.RTMPURL = redactURL(wev.RTMPURL)
		}
		s.webhook.post(wev)
	}
	b, err := json.Marshal(s.publicCall(call))
	if err != nil {
		return
	}
	s.hub.publish(sseMessage("call", b))
}

// publicCall is c without its secrets, for events: no rtmpStream, rtmpUrl
// redacted, connection errors generic.
func (s *server) publicCall(c Call) Call {
	c.RTMPStream = ""
	c.RTMPURL = redactURL(c.RTMPURL)
	return s.reasons(c)
}

// reasons makes c's free-text fields safe for any API caller: connection
// errors generic (no port scanning through calls), secrets scrubbed.
func (s *server) reasons(c Call) Call {
	c.SIPMessage = publicReason(c.SIPMessage, s.secrets)
	c.RTMPStatusInfo = publicReason(c.RTMPStatusInfo, s.secrets)
	c.Info = publicReason(c.Info, s.secrets)
	return c
}

func sseMessage(event string, data []byte) []byte {
	msg := make([]byte, 0, len(event)+len(data)+16)
	msg = append(msg, "event: "...)
	msg = append(msg, event...)
	msg = append(msg, "\ndata: "...)
	msg = append(msg, data...)
	return append(msg, "\n\n"...)
}

// sseWriteTimeout bounds each write of an event stream (the server's
// WriteTimeout does not apply to streams, which last as long as the page).
const sseWriteTimeout = 30 * time.Second

// serveEvents is the Server-Sent Events stream for the page: a snapshot of
// every call, then one "call" event per change. Stream keys and URL
// credentials are redacted (the page does not need them).
func (s *server) serveEvents(w http.ResponseWriter, r *http.Request) {
	// Read any body to its end first: until then net/http does not watch
	// the connection, and a client gone away would hold the stream (and its
	// goroutine and socket) until the next keepalive.
	if n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, maxBody+1)); n > maxBody {
		writeError(w, r, errStatus(http.StatusRequestEntityTooLarge, "an event stream request has no body"), s.now())
		return
	}
	ch, unsubscribe, err := s.hub.subscribe()
	if err != nil {
		writeError(w, r, errStatus(http.StatusServiceUnavailable, err.Error()+" (-max-sse)"), s.now())
		return
	}
	defer unsubscribe()
	rc := http.NewResponseController(w)
	// A stream outlives the server's read and write timeouts: no read
	// deadline (the client sends nothing more), a deadline per write.
	_ = rc.SetReadDeadline(time.Time{})
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	snap := s.calls.Calls()
	for i := range snap {
		snap[i] = s.publicCall(snap[i])
	}
	if snap == nil {
		snap = []Call{}
	}
	b, _ := json.Marshal(snap)
	if err := write(sseMessage("snapshot", b)); err != nil {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if err := write(msg); err != nil {
				return
			}
		case <-keepalive.C:
			if err := write([]byte(": keepalive\n\n")); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
