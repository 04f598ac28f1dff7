// Command restserver is a ready server that reproduces the REST API of
// Flashphoner Web Call Server's "SIP as RTMP" feature on top of sipstream, so
// that clients of that API work unchanged: POST /rest-api/call/startup places
// a SIP call and republishes its audio and video to an RTMP URL, /call/find,
// /call/find_all, /call/terminate and /call/send_dtmf follow and drive it,
// and /push/... adds more RTMP targets to a live call. Every call can also be
// watched in a browser over WebRTC (WHEP).
//
// # Try it
//
//	go run ./examples/restserver -demo
//
// starts the server on 127.0.0.1 (loopback only: no login needed) with an
// embedded SIP callee (an H.264 test pattern and a 1 kHz tone) and an
// embedded RTMP server on 127.0.0.1:1935 (or a free port when 1935 is
// taken), and prints what to do:
//
//	open the page:      http://127.0.0.1:8081/  (click Call, then Play)
//	log in:             no login (the demo serves this machine only)
//	demo SIP callee:    sip:demo@127.0.0.1:PORT
//	watch the stream:   ffplay rtmp://127.0.0.1:1935/live/demo
//
// When a default port (8081, 8444, 5060) is taken, the demo moves that
// listener to a free port and the banner shows where. The page's form is
// filled in for the demo: one click on Call places the call,
// its row turns ESTABLISHED and RTMP_STREAM_ACTIVE, and the page's player
// starts playing it over WebRTC.
//
// # REST API
//
// Every endpoint is a POST with a JSON body (Content-Type: application/json,
// as the product's clients send it) under /rest-api, as in the product.
// Booleans and numbers may be JSON values or strings ("true", "5060");
// unknown fields are ignored; errors are JSON objects with error, message,
// path, status and timestamp.
//
//	export SIPSTREAM_AUTH=admin:a-long-password   # the server's and curl's login
//	A="-u $SIPSTREAM_AUTH -H Content-Type:application/json"
//	curl -s $A localhost:8081/rest-api/call/startup -d '{
//	  "callId": "call1", "callee": "sip:1000@pbx.example.com",
//	  "sipLogin": "restserver", "sipPassword": "secret", "sipDomain": "pbx.example.com",
//	  "rtmpUrl": "rtmp://a.rtmp.youtube.com/live2", "rtmpStream": "STREAM-KEY",
//	  "toStream": "call1", "hasAudio": "true", "hasVideo": "true"}'
//	curl -s $A localhost:8081/rest-api/call/find -d '{"callId": "call1"}'
//	curl -s $A localhost:8081/rest-api/call/send_dtmf -d '{"callId": "call1", "dtmf": "1234#", "type": "RFC2833"}'
//	curl -s $A localhost:8081/rest-api/call/terminate -d '{"callId": "call1"}'
//
// The endpoints:
//
//   - /call/startup: callId and callee are required; also toStream, rtmpUrl,
//     rtmpStream, hasAudio, hasVideo, sipLogin, sipAuthenticationName,
//     sipPassword, sipDomain, sipOutboundProxy, sipPort, sipTransport (UDP,
//     TCP, TLS), sipRegisterRequired, visibleName, appKey, sipHeaders (an
//     object of custom SIP headers), record (with -record-dir); the older
//     shape with the SIP fields nested in a "connection" object is accepted.
//     200 {} once the call is accepted (it goes on in the background); 409 for
//     a callId, an rtmpUrl+rtmpStream or (with WebRTC on) a toStream already
//     used by a live call; 400 naming the bad field.
//   - /call/find (filter by callId, callee, rtmpUrl, status) and
//     /call/find_all: the product's call objects (callId, status, sipStatus,
//     rtmpUrl, rtmpStream, streamName, rtmpStreamStatus, caller, callee, ...),
//     404 when none match. Never the password.
//   - /call/terminate (callId), /call/send_dtmf (callId, dtmf, type RFC2833,
//     INFO or INFO_RELAY): 200, or 404 for an unknown call.
//   - /push/startup (streamName = a call's toStream, rtmpUrl,
//     rtmpTransponderFullUrl), /push/find, /push/find_all, /push/terminate,
//     /push/mute, /push/unmute (mediaSessionId): more RTMP targets per call.
//     Without rtmpTransponderFullUrl the push publishes as "rtmp_"+streamName.
//   - /viewer/token (streamName or callId, ttl seconds): a viewer token for
//     the call's WebRTC stream (see Security).
//
// Call statuses: TRYING, RING, RING_MEDIA, SESSION_PROGRESS, ESTABLISHED,
// HOLD, then FINISH, FAILED or BUSY. RTMP statuses: RTMP_STREAM_WAIT,
// RTMP_STREAM_ACTIVE, RTMP_CONNECTION_LOST (reconnecting),
// RTMP_CONNECTION_FAILED.
//
// # Other endpoints
//
//   - / — the web page: a form to start a call, the live list of calls with
//     DTMF and Terminate buttons, and a WebRTC player.
//   - /whep/{toStream} — WHEP endpoint of each live call (a call without
//     toStream uses its callId): POST an SDP offer, get the answer (201,
//     Location = the viewer's resource, DELETE it to stop). H.264/VP8 and
//     Opus/PCMA/PCMU pass through untouched; an audio-only call plays
//     audio-only. /player/?whep=/whep/NAME is a stand-alone player page and
//     /player/player.js the script (whepPlay) for pages of your own.
//   - /hls/{toStream}/index.m3u8 — the same call as Low-Latency HLS (fMP4,
//     H.264 as received, AAC): muxed from the first request (the call is
//     asked for a keyframe), released 30 s after the last one and when the
//     call ends. Same login as WHEP (admin or viewer token; ?token= is
//     carried into the playlists' URLs).
//   - /events — Server-Sent Events: a "snapshot" of every call, then one
//     "call" event per change.
//   - /metrics — Prometheus: calls and RTMP legs by status, calls ended by
//     status, RTP packets, bytes and losses received (audio, video), jitter
//     per live call, video frames dropped, sink queue drops, RTMP connections
//     lost, WebRTC streams and viewers, REST requests.
//   - -webhook URL — every call status change (CallStatusEvent) and RTMP leg
//     change (RtmpStatusEvent) is POSTed there as JSON, in order, with
//     retries; a slow receiver never blocks a call.
//
// # Security
//
// Closed by default: the REST API, /events, the page, /defaults and /metrics
// need the admin's HTTP Basic login, from -auth-file FILE or SIPSTREAM_AUTH
// (-auth on the command line works but is warned about: ps shows it).
// Without credentials every such request gets 401 and the log says how to
// set them; -no-auth opens everything (warned); -demo on loopback needs no
// login. 5 failed logins from an address within 10 min block it (429) for
// 1 s, doubling up to 5 min. WHEP needs the admin's login or a viewer token
// (HMAC-signed, per stream and call, expiring; never holds a key). Stream
// keys, URL credentials and queries and SIP passwords are redacted in
// events, webhooks (unless -webhook-secrets), metrics, errors and logs; the
// admin's /call/find and /push/find return them. Bodies must be
// application/json; cross-origin browser requests need -cors-origins; the
// Host header must name this server (-allowed-hosts). -allow-callees and
// -allow-rtmp-hosts restrict where calls go; -max-calls, -max-viewers,
// -max-sse and -max-pushes cap the rest.
//
// # Flags
//
// Each flag can also be set with an environment variable SIPSTREAM_<FLAG>
// (upper case, '-' as '_': SIPSTREAM_RTP_PORTS for -rtp-ports); the command
// line wins. Run with -h for the list.
//
//	-http ADDR         REST API and page over HTTP (default :8081; "" = off)
//	-https ADDR        the same over HTTPS (default :8444; "" = off) with
//	                   -tls-cert FILE -tls-key FILE, or a self-signed certificate
//	-auth-file FILE    the admin's USER:PASS (or SIPSTREAM_AUTH=USER:PASS)
//	-auth USER:PASS    the same on the command line (warned: visible in ps)
//	-no-auth           no login at all (warned)
//	-allowed-hosts L   host names served besides localhost, loopback, the
//	                   listen and public IPs ("*" = any)
//	-cors-origins L    browser origins allowed besides the page's own
//	-allow-callees L   callee globs (host, *.domain, user@host); default any
//	-allow-rtmp-hosts L RTMP host globs; default any
//	-max-calls N       live calls (default 100; 0 = no limit)
//	-max-viewers N     WebRTC viewers per stream (default 50)
//	-max-sse N         /events subscribers (default 50)
//	-max-pushes N      pushes per call (default 10)
//	-webhook-secrets   rtmpUrl unredacted in webhook events
//	-sip ADDR          local SIP address, UDP and TCP (default :5060)
//	-public-ip IP      address written into Contact, Via, SDP and WebRTC
//	                   candidates, for a server behind NAT
//	-rtp-ports LO-HI   RTP/RTCP port range (default 30000-31999)
//	-webhook URL       status events receiver
//	-record-dir DIR    allow "record": true (files in DIR; their paths are
//	                   the call objects' recordPath)
//	-record-format F   mp4 (default: fragmented MP4, H.264 + AAC), mkv or flv
//	-webrtc=false      no WHEP playback
//	-hls=false         no HLS playback
//	-demo              embedded SIP callee and RTMP server (see above); HTTP
//	                   on 127.0.0.1 unless -http/-https are given
//	-log-level LEVEL   debug, info, warn, error
//	-loss-policy P     video after an unrepaired loss: freeze (default) or conceal
//
// The bound addresses are logged at start-up (msg=listening ... addr=), so
// ":0" ports work. SIGINT or SIGTERM shuts down gracefully: the HTTP servers
// stop, every live call gets its BYE (or CANCEL), recordings are closed, the
// webhook gets the final statuses, then the process exits 0.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/media/session"
	"github.com/sipstream/sipstream/sink/whep"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "restserver:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

var timeNow = time.Now

// run starts everything, serves until ctx is done, then shuts down: HTTP
// first (no new requests), then every call (BYE sent, recordings closed),
// then the demo peers.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	// Every log line, whoever writes it, goes through the secrets filter.
	sec := newSecrets()
	log := newRedactingLogger(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}), sec)

	login := decideAuth(cfg, log)

	svc := newManagerService(cfg.RecordDir != "", log)
	svc.maxPushes = cfg.MaxPushes
	var whepHandler http.Handler
	var streamCall func(string) (string, bool)
	if cfg.WebRTC {
		wcfg := whep.Config{MaxViewers: cfg.MaxViewers}
		wcfg.ICEIPs, wcfg.PublicIPs = iceAddrs(cfg, localAddrs())
		wcfg.PublicIPsOnly = len(wcfg.PublicIPs) > 0
		svc.webrtc = newWebRTCStreams(wcfg, log)
		whepHandler = svc.webrtc
		streamCall = svc.webrtc.callOf
	}
	var defaults map[string]any
	var demo *demoEnv
	if cfg.Demo {
		demo, err = startDemo(log)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer demo.close()
		defaults = demo.defaults()
	}

	sipAddr := cfg.SIP
	if strings.HasPrefix(sipAddr, ":") {
		sipAddr = "0.0.0.0" + sipAddr
	}
	mcfg := callmgr.Config{
		ListenAddr:   sipAddr,
		PublicIP:     cfg.publicIP,
		RTPPortMin:   cfg.rtpLo,
		RTPPortMax:   cfg.rtpHi,
		RecordDir:    cfg.RecordDir,
		RecordQuota:  cfg.recordQuota,
		RecordFormat: cfg.RecordFormat,
		SRTP:         cfg.srtp,
		LossPolicy:   lossPolicy(cfg.LossPolicy),
		MaxCalls:     cfg.MaxCalls,
		Admission:    callmgr.AdmissionConfig{MaxCPU: cfg.MaxCPU},
		UserAgent:    "sipstream-restserver",

		RTMPAudioPassthrough: cfg.RTMPAudio == "passthrough",
		OnEvent:              svc.onEvent,
		Logger:               log,
	}
	m, err := callmgr.New(mcfg)
	if err != nil && demoFallback(cfg, "sip") {
		// The demo must start on a machine whose 5060 is taken (a
		// softphone): any free port does for calls to the demo callee.
		log.Warn("SIP address in use; the demo takes a free port", "addr", sipAddr, "err", err)
		mcfg.ListenAddr = anyPort(sipAddr)
		m, err = callmgr.New(mcfg)
	}
	if err != nil {
		return fmt.Errorf("call manager: %w", err)
	}
	svc.m = m
	svc.media = newMediaMetrics(m)
	var hlsHandler http.Handler
	var hlsCall func(string) (string, bool)
	if cfg.HLS {
		svc.hls = newHLSStreams(m, 0, log)
		hlsHandler, hlsCall = svc.hls, svc.hls.callOf
	}
	hosts := newHostPolicy(splitList(cfg.AllowedHosts), []string{cfg.HTTP, cfg.HTTPS}, cfg.publicIP, localAddrs())
	srv := newServer(svc, serverOptions{
		Log:            log,
		AuthUser:       login.user,
		AuthPass:       login.pass,
		NoAuth:         login.off,
		Webhook:        cfg.Webhook,
		WebhookSecrets: cfg.WebhookSecrets,
		Defaults:       defaults,
		WHEP:           whepHandler,
		StreamCall:     streamCall,
		HLS:            hlsHandler,
		HLSCall:        hlsCall,
		Hosts:          &hosts,
		CORSOrigins:    splitList(cfg.CORSOrigins),
		AllowCallees:   cfg.allowCallees,
		AllowRTMPHosts: cfg.allowRTMPHosts,
		MaxSSE:         cfg.MaxSSE,
		Secrets:        sec,
	})
	for _, c := range svc.collectors() {
		srv.reg.MustRegister(c)
	}
	notify := srv.notify
	svc.notify.Store(&notify)

	handler := srv.handler()
	var servers []*http.Server
	var pageURLs []string
	errc := make(chan error, 2)
	listen := func(flagName, addr string, tlsCfg *tls.Config) error {
		l, err := net.Listen("tcp", addr)
		if err != nil && demoFallback(cfg, flagName) {
			log.Warn("address in use; the demo takes a free port", "flag", "-"+flagName, "addr", addr, "err", err)
			l, err = net.Listen("tcp", anyPort(addr))
		}
		if err != nil {
			return err
		}
		hs := newHTTPServer(handler, defaultHTTPTimeouts, tlsCfg)
		servers = append(servers, hs)
		scheme := "http"
		if tlsCfg != nil {
			scheme = "https"
			l = tls.NewListener(l, tlsCfg)
		}
		log.Info("listening", "scheme", scheme, "addr", l.Addr().String())
		pageURLs = append(pageURLs, pageURL(scheme, l.Addr().String()))
		go func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		return nil
	}
	var startErr error
	if cfg.HTTP != "" {
		startErr = listen("http", cfg.HTTP, nil)
	}
	if startErr == nil && cfg.HTTPS != "" {
		tlsCfg, err := tlsConfig(cfg.TLSCert, cfg.TLSKey, time.Now())
		if err != nil {
			startErr = fmt.Errorf("tls: %w", err)
		} else {
			startErr = listen("https", cfg.HTTPS, tlsCfg)
		}
	}
	if startErr == nil {
		if host, _, err := net.SplitHostPort(sipAddr); err == nil && m.ListenPort("udp") != 0 {
			sipAddr = net.JoinHostPort(host, fmt.Sprint(m.ListenPort("udp")))
		}
		log.Info("ready", "sip", sipAddr, "rtp-ports", cfg.RTPPorts, "demo", cfg.Demo, "page", pageURLs[0])
		if demo != nil {
			demo.printBanner(stderr, pageURLs, login)
		}
		select {
		case <-ctx.Done():
			log.Info("shutting down")
		case startErr = <-errc:
		}
	}

	// Shutdown: stop taking requests, end every call, stop notifying.
	sctx, cancel := shutdownCtx(ctx, 15*time.Second)
	defer cancel()
	// Event streams never end by themselves: end them first, or Shutdown
	// would wait for them until sctx expires.
	srv.hub.close()
	if svc.hls != nil {
		svc.hls.close() // ends the HLS requests waiting for media
	}
	for _, hs := range servers {
		_ = hs.Shutdown(sctx)
	}
	if err := m.Close(sctx); err != nil {
		log.Warn("closing calls", "err", err)
	}
	srv.close()
	return startErr
}

// login is how the HTTP side authenticates the admin.
type login struct {
	user, pass string
	off        bool // no login at all
	generated  bool // pass was made up for this run (printed in the demo banner)
}

// decideAuth picks the login from the configuration and says in the log
// what it means: credentials (from -auth-file, SIPSTREAM_AUTH or -auth);
// -no-auth (warned); the demo on loopback (no login: only this machine
// reaches it); the demo on other addresses (a random password, printed in
// the banner); else closed: every request is refused until credentials are
// set.
func decideAuth(cfg config, log *slog.Logger) login {
	if cfg.authOnArgv {
		log.Warn("-auth on the command line is visible to every user of this machine (ps); use -auth-file FILE or SIPSTREAM_AUTH=user:pass")
	}
	switch {
	case cfg.authUser != "":
		log.Info("admin login required (HTTP Basic)", "user", cfg.authUser)
		return login{user: cfg.authUser, pass: cfg.authPass}
	case cfg.NoAuth:
		log.Warn("-no-auth: the REST API, events, page, metrics and WebRTC are open to anyone who reaches this server, who can place calls and read stream keys")
		return login{off: true}
	case cfg.Demo && cfg.loopbackOnly():
		log.Info("demo on loopback only: no login needed")
		return login{off: true}
	case cfg.Demo:
		log.Warn("demo reachable from other machines: admin login required; the password is printed in the banner")
		return login{user: "admin", pass: randomPassword(), generated: true}
	}
	log.Warn("no credentials configured: every REST, page, events and metrics request is refused (401). Set SIPSTREAM_AUTH=user:pass or -auth-file FILE (a file holding user:pass), or -no-auth to serve without login")
	return login{}
}

// demoFallback reports whether a listener that failed may move to a free
// port: in -demo mode, for an address left at its default (the banner
// prints where everything is).
func demoFallback(cfg config, flagName string) bool {
	return cfg.Demo && !cfg.set[flagName]
}

// anyPort is addr with port 0.
func anyPort(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, "0")
}

// lossPolicy maps -loss-policy (checked by parseConfig) to the session's.
func lossPolicy(name string) session.LossPolicy {
	if name == "conceal" {
		return session.LossConceal
	}
	return session.LossFreeze
}
