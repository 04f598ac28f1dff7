// Package wcsapi serves the REST API of Flashphoner Web Call Server's "SIP
// as RTMP" / "SIP as Stream" feature over a callmgr.Manager, so that
// clients of that API work unchanged: POST /rest-api/call/startup places a
// SIP call and republishes it to an RTMP URL, /call/find, /call/find_all,
// /call/terminate and /call/send_dtmf follow and drive it, /push/... adds
// more RTMP targets to a live call, and /rest-api/viewer/token issues viewer
// tokens for WebRTC (WHEP) and HLS playback.
//
// # Mounting
//
// A Handler is an http.Handler for /rest-api/... and the event stream GET
// /events; a service mounts it on its own mux next to its other routes:
//
//	relay := new(callmgr.Relay)
//	m, err := callmgr.New(callmgr.Config{ListenAddr: "0.0.0.0:5060", OnEvent: relay.OnEvent})
//	api, err := wcsapi.New(m, wcsapi.Config{Events: relay, User: "admin", Password: pass})
//	defer api.Close()
//	mux := http.NewServeMux()
//	mux.Handle("/rest-api/", api)
//	mux.Handle("GET /events", api)
//
// The Handler learns of calls' changes through the Relay the Manager's
// OnEvent feeds (Config.Events). With Config.WebRTC set, every call also gets
// a WHEP sink, served by the whep.Mux WHEP returns (mount it at /whep/); with
// Config.HLS, HLS returns the hls.Mux serving every call as Low-Latency HLS
// (mount it at "GET /hls/"). Both ask the Handler who may watch. With
// Config.WHIP, /call/inject_stream/startup also plays a browser's WebRTC
// publication (package media/whip, which the service mounts at /whip/
// behind Admin) into a call.
//
// # Dial-in
//
// Calls to the gateway (issue 17) are answered the way Config.Dialin says
// through an Inbound, the Manager's callmgr.Config.OnIncoming, made before
// the Manager as the Relay is: the WCS way first (the default
// application's hook gets OnCallEvent and may answer with the target, a
// refusal or a redirect; see DialinConfig), then the defaults. An answered
// call is an ordinary call: incoming true in call objects and events, and
// /call/terminate, /call/send_dtmf, /call/hold, /push/... work on it.
// /rest-api/registration/find_all, find, startup and terminate list, add
// and remove the Manager's SIP accounts (and list the bindings of its
// registrar); their changes are RegistrationStatusEvents.
//
// # Requests and answers
//
// Every endpoint is a POST with a JSON body (Content-Type: application/json,
// as the product's clients send it). Booleans and numbers may be JSON
// values or strings ("true", "5060"); unknown fields are ignored; errors are
// JSON objects with error, message, path, status and timestamp, in the
// product's shape, with the status mapped from callmgr's errors (404 unknown
// call, 409 conflicts, 400 bad fields, 503 limits and shutdown). Call
// objects carry the product's field names and statuses (TRYING ...
// ESTABLISHED, FINISH, FAILED, BUSY; RTMP_STREAM_WAIT, RTMP_STREAM_ACTIVE,
// RTMP_CONNECTION_LOST, RTMP_CONNECTION_FAILED): this package owns the
// mapping from callmgr's statuses to the REST API's.
//
// # Security
//
// Every request passes a guard first: the Host header must name this server
// (Config.AllowedHosts; DNS rebinding gets 421), cross-origin browser
// requests need Config.CORSOrigins (403), bodies are bounded. Wrap the rest
// of a service's routes with Guard to give them the same; a request already
// guarded is not guarded twice. The REST API and /events need the admin's
// HTTP Basic login (Config.User and Config.Password), unless Config.NoAuth;
// the zero Config refuses them all (401). Failed logins are throttled per
// address (429). Admin wraps other routes with the same login. Viewers of a
// call's WHEP or HLS stream show the admin's login or a viewer token from
// /rest-api/viewer/token (HMAC-signed, per stream and call, expiring).
//
// Stream keys, URL credentials and SIP passwords are scrubbed from events,
// webhooks (unless Config.WebhookSecrets), errors and, through
// NewRedactingHandler, logs; the admin's /call/find and /push/find return
// them.
//
// # Webhooks and events
//
// Every call status change and every change of a call's own RTMP leg is a
// CallStatusEvent with the product's body (nodeId, appKey, sessionId,
// callId, incoming, status, sipStatus, rtmpUrl, rtmpStream,
// rtmpStreamStatus, caller, callee, hasAudio, hasVideo, visibleName,
// mediaProvider, isMsrp; wcs-docs "Stream capturing from a SIP call");
// sipstream adds RtmpStatusEvent (a push or recording changed) and DtmfEvent
// (a digit received). Each is POSTed to its application's hook, as the
// product calls REST hooks: Config.AppWebhooks[appKey], else Config.Webhook,
// with "/" + the event's name appended (base "https://app/hook" gets POST
// https://app/hook/CallStatusEvent). Each hook gets its events in order,
// from its own goroutine, with retries; a bounded queue per hook drops (and
// counts) when the receiver is too slow, so no call ever waits
// for it. GET /events is a Server-Sent Events stream: a "snapshot" of every
// call, then one "call" event per change; a subscriber that cannot keep up
// is disconnected (it reconnects and gets a fresh snapshot).
//
// # The operator's endpoints
//
// sipstream's own, for the operator's page (callmgr/wcsapi/opstats.go,
// calllog.go, recordings.go, sounds.go): every second each live call of
// this node is a "stats" event on /events (CallStats: kbps, fps and loss
// over the last second, jitter, RTT, freezes, keyframe interval, A/V offset,
// each RTMP push's and recording's rate, queue, drops and reconnects), also
// answered by /call/stats {callId}; each call keeps a log of what explains
// its stream (SIP exchanges, keyframe requests and keyframes, freezes,
// outputs' states, DTMF, injected sounds), read with /call/log {callId}
// and followed as "log" events; /call/record/startup and
// /call/record/terminate {callId} record a live call on demand,
// /recording/find_all and /recording/delete {name} manage the Manager's
// RecordDir and Recordings serves its files (mount it at "GET
// /recordings/"); /sound/find_all lists Config.SoundDir.
package wcsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/media/whip"
	"github.com/sipstream/sipstream/sink/hls"
	"github.com/sipstream/sipstream/sink/whep"
)

// Config configures a Handler. Only Events is required; the zero value of
// every other field is documented with it.
type Config struct {
	// Events is the Relay the Manager's Config.OnEvent feeds; the Handler
	// subscribes to it (webhooks, the event stream and the WHEP and HLS
	// streams follow the calls through it). Required.
	Events *callmgr.Relay
	// Logger receives the Handler's log lines. Nil means none.
	Logger *slog.Logger
	// Now is the clock (tokens, throttling, timestamps). Nil means
	// time.Now.
	Now func() time.Time

	// User and Password are the admin's HTTP Basic login. Empty User
	// means no login is accepted: every request that needs one gets 401
	// unless NoAuth.
	User, Password string
	// NoAuth serves without any login. False means the login is required.
	NoAuth bool

	// NodeID is the nodeId of call objects and CallStatusEvents (the
	// product sends its node's id there). Empty means the machine's host
	// name (os.Hostname); when that fails too, nodeId is null.
	NodeID string

	// Webhook is the default application's hook: the base URL the status
	// events of calls whose appKey AppWebhooks does not name are POSTed
	// to, at base URL + "/" + the event's name, as the product calls its
	// REST hooks ("https://app/hook" gets POST
	// https://app/hook/CallStatusEvent; a query stays at the end). Empty
	// means none.
	Webhook string
	// AppWebhooks are the applications' hooks: appKey -> base URL, used
	// as Webhook is for the calls started with that appKey. Nil means
	// none (every call's events go to Webhook).
	AppWebhooks map[string]string
	// WebhookSecrets sends rtmpUrl and rtmpStream (the stream key)
	// unredacted to the webhooks. False redacts them (rtmpStream is
	// "***").
	WebhookSecrets bool
	// WebhookQueue bounds the events waiting for the webhook. Zero means
	// 1024.
	WebhookQueue int

	// AllowedHosts are the host names (and IPs, "*.domain" patterns, "*"
	// for any) requests may name in Host besides localhost, loopback
	// addresses, ListenAddrs and PublicIP. Nil means no others.
	AllowedHosts []string
	// ListenAddrs are the addresses the service listens on ("host:port");
	// an unspecified host allows every address in LocalAddrs. Nil means
	// none.
	ListenAddrs []string
	// PublicIP is the server's public address, allowed in Host. Zero
	// means none.
	PublicIP netip.Addr
	// LocalAddrs are the machine's addresses. Nil means the interfaces'
	// addresses.
	LocalAddrs []netip.Addr
	// CORSOrigins are the browser origins, besides the page's own, that
	// may send requests; they get CORS headers (their origin echoed, with
	// Access-Control-Allow-Credentials) and their preflights are
	// answered. "*" lets any origin in and answers
	// "Access-Control-Allow-Origin: *" on every response, as the product
	// does, without credentials (a cached Basic login is not sent). Nil
	// means none: no CORS header, cross-origin browser requests get 403
	// (CSRF defence).
	CORSOrigins []string

	// AllowCallees restricts callees, the SIP domain and the outbound
	// proxy to these globs (path.Match syntax: "host", "*.domain",
	// "user@host"). Nil means anything.
	AllowCallees []string
	// AllowRTMPHosts restricts the RTMP hosts calls and pushes publish
	// to (globs). Nil means anything.
	AllowRTMPHosts []string
	// MaxPushes limits the pushes per call. Zero means no limit.
	MaxPushes int
	// MaxSSE limits the event stream's subscribers (503 beyond). Zero
	// means no limit.
	MaxSSE int
	// Record allows "record": true in /call/startup (the Manager's
	// RecordDir must be set). False refuses it with 400.
	Record bool
	// Secrets collects the secrets to scrub (share it with the logger's
	// NewRedactingHandler). Nil means a new set.
	Secrets *Secrets

	// WebRTC, when set, gives every call a WHEP sink made with this
	// template (RequestKeyframe and Probe are set per call when zero),
	// served by the Mux WHEP returns. Nil means no WebRTC playback.
	WebRTC *whep.Config
	// HLS serves every call as Low-Latency HLS through the Mux HLS returns.
	// False means no HLS.
	HLS bool
	// HLSIdle is how long a call's HLS muxer lives after its last request.
	// Zero means 30 s.
	HLSIdle time.Duration
	// WHIP, when set, makes a whip.Server with this configuration, which
	// WHIP returns for the service to mount at /whip/ (behind Admin:
	// publishing into calls is the admin's). /call/inject_stream/startup
	// then looks a streamName that no live call publishes up there and
	// plays the publication's audio into the call (G.711) until it ends,
	// /call/inject_stream/terminate, another sound, or the call's end.
	// Shutdown closes the server. Nil means only calls' streams can be
	// injected.
	WHIP *whip.Config
	// SoundDir is the folder the sound files of /call/inject_sound and
	// /push/sound_on are taken from (WAV, MP3, Ogg Opus; fileName and
	// soundFile are paths inside it, never outside). Empty means those
	// requests are refused (400).
	SoundDir string

	// Inbound, when set, is the Inbound whose OnIncoming the Manager's
	// callmgr.Config.OnIncoming is: the Handler decides incoming calls
	// through it, as Dialin says. An Inbound serves one Handler. Nil
	// means the Handler decides none (the Manager's OnIncoming is
	// someone else's, or nil).
	Inbound *Inbound
	// Dialin says how incoming calls are answered (see DialinConfig).
	// Ignored without Inbound.
	Dialin DialinConfig

	// Cluster, when set, makes this Handler one node of a cluster of
	// gateways with one API (see ClusterConfig); NodeID is then the
	// node's id and must be set. Nil means a single node: calls live in
	// the Manager only, as without clustering.
	Cluster *ClusterConfig
}

// Handler serves the REST API over a Manager. It is safe for concurrent
// use.
type Handler struct {
	srv *server
	svc *managerService
	api http.Handler // the REST API and events, unguarded
	// guarded is api behind the guard.
	guarded http.Handler
	webrtc  *webrtcStreams
	hls     *hls.Mux
	cancel  func()
	// whip serves the WebRTC publications (nil without Config.WHIP); the
	// Manager's InjectStream takes them as a StreamSource.
	whip *whip.Server
	// dialin decides incoming calls (nil without Config.Inbound).
	dialin *dialin
	once   sync.Once
}

// New returns a Handler over m. It checks cfg (the allow lists' patterns,
// the webhook's URL), works on a copy of it, and starts the webhook's
// goroutine when there is a webhook; Shutdown or Close stops it.
func New(m *callmgr.Manager, cfg Config) (*Handler, error) {
	if m == nil {
		return nil, errors.New("wcsapi: no Manager")
	}
	if cfg.Events == nil {
		return nil, errors.New("wcsapi: Config.Events is required (the Relay the Manager's OnEvent feeds)")
	}
	callees, err := newAllowList(cfg.AllowCallees)
	if err != nil {
		return nil, fmt.Errorf("wcsapi: AllowCallees: %w", err)
	}
	rtmpHosts, err := newAllowList(cfg.AllowRTMPHosts)
	if err != nil {
		return nil, fmt.Errorf("wcsapi: AllowRTMPHosts: %w", err)
	}
	if cfg.Webhook != "" {
		if _, err := hookURL(cfg.Webhook, "CallStatusEvent"); err != nil {
			return nil, errors.New("wcsapi: Webhook must be an http:// or https:// URL")
		}
	}
	for app, base := range cfg.AppWebhooks {
		if app == "" {
			return nil, errors.New("wcsapi: AppWebhooks: empty appKey")
		}
		if _, err := hookURL(base, "CallStatusEvent"); err != nil {
			return nil, fmt.Errorf("wcsapi: AppWebhooks[%q] must be an http:// or https:// URL", app)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	local := cfg.LocalAddrs
	if local == nil {
		local = localAddrs()
	}
	hosts := newHostPolicy(cfg.AllowedHosts, cfg.ListenAddrs, cfg.PublicIP, local)
	nodeID := cfg.NodeID
	if nodeID == "" {
		nodeID, _ = os.Hostname()
	}
	svc := &managerService{m: m, recording: cfg.Record, log: log, now: now, maxPushes: cfg.MaxPushes,
		nodeID: nodeID, webhookSecrets: cfg.WebhookSecrets, soundDir: cfg.SoundDir}
	h := &Handler{svc: svc}
	var dial *dialin
	if cfg.Inbound != nil {
		if cfg.Inbound.d.Load() != nil {
			return nil, errors.New("wcsapi: Config.Inbound serves another Handler already")
		}
		if dial, err = newDialin(cfg.Dialin, rtmpHosts, svc); err != nil {
			return nil, err
		}
	}
	o := serverOptions{
		Log:            log,
		Now:            now,
		AuthUser:       cfg.User,
		AuthPass:       cfg.Password,
		NoAuth:         cfg.NoAuth,
		WebhookSecrets: cfg.WebhookSecrets,
		WebhookQueue:   cfg.WebhookQueue,
		Hosts:          &hosts,
		CORSOrigins:    cfg.CORSOrigins,
		AllowCallees:   callees,
		AllowRTMPHosts: rtmpHosts,
		MaxSSE:         cfg.MaxSSE,
		Secrets:        cfg.Secrets,
	}
	// The muxes' authorization hook is the server's, made below.
	if cfg.WebRTC != nil {
		h.webrtc = newWebRTCStreams(*cfg.WebRTC)
		svc.webrtc = h.webrtc
		o.StreamCall = h.webrtc.mux.Owner
	}
	if cfg.HLS {
		h.hls = hls.NewMux(hlsSource{m: m}, hls.MuxConfig{
			Idle:   cfg.HLSIdle,
			Logger: log,
			Authorize: func(w http.ResponseWriter, r *http.Request, name string) bool {
				return h.srv.authorizeViewer(h.hls.Owner)(w, r, name)
			},
		})
		svc.hls = h.hls
		o.HLSCall = h.hls.Owner
	}
	if cfg.WHIP != nil {
		if h.whip, err = whip.New(*cfg.WHIP); err != nil {
			return nil, fmt.Errorf("wcsapi: %w", err)
		}
		m.AddStreamSource(h.whip)
	}
	var calls callService = svc
	if cfg.Cluster != nil {
		if cfg.NodeID == "" {
			return nil, errors.New("wcsapi: Config.Cluster needs Config.NodeID (each node its own)")
		}
		calls = &clusterService{managerService: svc}
	}
	h.srv = newServer(calls, o)
	if cfg.Webhook != "" || len(cfg.AppWebhooks) > 0 {
		h.srv.webhook = newWebhooks(cfg.Webhook, maps.Clone(cfg.AppWebhooks), log, cfg.WebhookQueue)
	}
	if h.webrtc != nil {
		h.webrtc.authorize = h.srv.authorizeViewer(h.webrtc.mux.Owner)
	}
	h.srv.regs = m
	if dial != nil {
		dial.srv = h.srv
		h.dialin = dial
		cfg.Inbound.d.Store(dial)
	}
	h.api = h.srv.handler()
	h.guarded = h.srv.guard(h.api)
	notify := h.srv.notify
	svc.notify.Store(&notify)
	notifyReg := h.srv.notifyRegistration
	svc.notifyReg.Store(&notifyReg)
	if cfg.Cluster != nil {
		if err := h.joinCluster(*cfg.Cluster, nodeID); err != nil {
			return nil, err
		}
	}
	startOpStats(h.srv, svc)
	h.cancel = cfg.Events.Subscribe(svc.onEvent)
	// Accounts given to the Manager may have registered before the Handler
	// followed its events (a registrar on the LAN answers before the HTTP
	// side is up, and that event reached nobody): the hook and /events hear
	// of each account's state now. A change racing this may be told twice.
	for _, ri := range m.Registrations() {
		if !ri.Inbound {
			notifyReg(ri, svc.nodeID)
		}
	}
	return h, nil
}

// guardedKey marks a request Guard let through.
type guardedKey struct{}

// ServeHTTP serves the REST API (/rest-api/...) and the event stream (GET
// /events), behind the guard (unless Guard already ran) and the admin's
// login. Other paths get 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Context().Value(guardedKey{}) != nil {
		h.api.ServeHTTP(w, r)
		return
	}
	h.guarded.ServeHTTP(w, r)
}

// Guard returns next behind the Handler's guard: the Host check (421), the
// Origin check (403), CORS preflights (204) and a bound on request bodies
// (1 MiB). Requests it lets through are not guarded again by ServeHTTP.
func (h *Handler) Guard(next http.Handler) http.Handler {
	mark := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), guardedKey{}, true)))
	})
	return h.srv.guard(mark)
}

// Admin returns next behind the admin's login (Config.User and
// Config.Password, or nothing with Config.NoAuth): 401 without it, 429 for
// an address that failed too often.
func (h *Handler) Admin(next http.Handler) http.Handler { return h.srv.admin(next) }

// WHEP returns the WHEP routes of the calls (POST /whep/{toStream}, and the
// viewers' resources below it), which a service mounts at /whep/; nil
// without Config.WebRTC. Viewers need the admin's login or a viewer token.
func (h *Handler) WHEP() *whep.Mux {
	if h.webrtc == nil {
		return nil
	}
	return h.webrtc.mux
}

// WHIP returns the WHIP endpoint of the WebRTC publications (POST
// /whip/{name}, and the publications' resources below it), which a service
// mounts at /whip/ behind Admin; nil without Config.WHIP.
func (h *Handler) WHIP() *whip.Server { return h.whip }

// HLS returns the HLS routes of the calls (/hls/{toStream}/index.m3u8 and
// the files it lists), which a service mounts at "GET /hls/"; nil without
// Config.HLS. Viewers need the admin's login or a viewer token.
func (h *Handler) HLS() *hls.Mux { return h.hls }

// Describe implements prometheus.Collector.
func (h *Handler) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range h.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector: REST requests by endpoint and
// status, requests refused before any handler, status events, event stream
// subscribers, webhook deliveries, WebRTC streams and viewers, HLS muxers,
// WHIP publications and the calls hearing them, the dial-in hook's answers.
func (h *Handler) Collect(ch chan<- prometheus.Metric) {
	for _, c := range h.collectors() {
		c.Collect(ch)
	}
}

func (h *Handler) collectors() []prometheus.Collector {
	cs := h.srv.collectors()
	if h.webrtc != nil {
		cs = append(cs, h.webrtc)
	}
	if h.hls != nil {
		cs = append(cs, hlsCollector{mux: h.hls})
	}
	if h.whip != nil {
		cs = append(cs, whipCollector{srv: h.whip})
	}
	if h.dialin != nil {
		cs = append(cs, h.dialin.hookAsks)
	}
	if n := h.srv.cluster; n != nil {
		cs = append(cs, n.member, n.forwarded)
	}
	return cs
}

// EndStreams ends the event streams and the HLS requests waiting for media,
// which never end by themselves: call it before an http.Server's Shutdown
// (or register it with RegisterOnShutdown), else Shutdown waits for them.
// Later event stream requests get an empty stream, HLS requests 503.
func (h *Handler) EndStreams() {
	h.srv.hub.close()
	if h.hls != nil {
		h.hls.Close()
	}
}

// Shutdown ends the streams (EndStreams), stops following the Manager's
// events, ends the WebRTC publications (Config.WHIP) and stops the webhook
// after delivering what is queued (once, without retries, each POST bounded
// by 5 s), waiting for all that until ctx is done (then it returns ctx's
// error and the rest goes on in the background). Close the Manager first so
// that the calls' final statuses reach the webhook. Later calls wait again.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.once.Do(func() {
		h.EndStreams()
		h.srv.ops.close()
		h.cancel()
		if h.srv.webhook != nil {
			h.srv.webhook.once.Do(func() { close(h.srv.webhook.stop) })
		}
	})
	if h.whip != nil {
		if err := h.whip.Close(ctx); err != nil {
			return err
		}
	}
	if n := h.srv.cluster; n != nil {
		// After the Manager's Close: the calls' final states are written,
		// then the node's entries freed and its heartbeat removed.
		if err := n.member.Close(ctx); err != nil {
			h.srv.log.Warn("leaving the cluster", "err", err)
		}
	}
	if wh := h.srv.webhook; wh != nil {
		select {
		case <-wh.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close is Shutdown without a deadline. It is idempotent.
func (h *Handler) Close() error { return h.Shutdown(context.Background()) }
