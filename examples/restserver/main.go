// Command restserver is a ready server that reproduces the REST API of
// Flashphoner Web Call Server's "SIP as RTMP" feature on top of sipstream
// (clients of that API work unchanged) and plays every call in a browser
// over WebRTC (WHEP) and Low-Latency HLS; a browser's microphone published
// over WHIP can be spoken into a call. "go run ./examples/restserver
// -demo" starts it on loopback (no login needed) with an embedded SIP
// callee and RTMP server and prints what to do.
//
// It is thin: the REST API, its event stream, webhooks, viewer tokens and
// guards are package callmgr/wcsapi (whose documentation describes the
// endpoints and the security model), WebRTC and HLS routing are whep.Mux and
// hls.Mux, the metrics are package callmgr/metrics. This command reads the
// flags (-h lists them; each can also be set as SIPSTREAM_<FLAG>), wires
// those packages, serves them with the web page, /defaults, /metrics and
// /player/, and shuts down gracefully on SIGINT or SIGTERM (every live call
// gets its BYE, recordings are closed, the webhook gets the final statuses).
// The README's "The REST server" section has the details.
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/metrics"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/media/session"
	"github.com/sipstream/sipstream/media/whip"
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

// run starts everything, serves until ctx is done, then shuts down: HTTP
// first (no new requests), then every call (BYE sent, recordings closed),
// then the webhook and the demo peers.
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
	sec := wcsapi.NewSecrets()
	log := slog.New(wcsapi.NewRedactingHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}), sec))
	login := decideAuth(cfg, log)

	var defaults map[string]any
	var demo *demoEnv
	if cfg.Demo {
		demo, err = startDemo(log)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer demo.close()
		defaults = demo.defaults()
		demo.inbound(&cfg)
	}
	sipAddr := cfg.SIP
	if strings.HasPrefix(sipAddr, ":") {
		sipAddr = "0.0.0.0" + sipAddr
	}
	sec.Add(cfg.Inbound.secrets()...)
	logInbound(log, cfg)
	relay, inbound := new(callmgr.Relay), new(wcsapi.Inbound)
	mcfg := callmgr.Config{
		ListenAddr: sipAddr, PublicIP: cfg.publicIP, RTPPortMin: cfg.rtpLo, RTPPortMax: cfg.rtpHi,
		RecordDir: cfg.RecordDir, RecordQuota: cfg.recordQuota, RecordFormat: cfg.RecordFormat,
		SRTP: cfg.srtp, LossPolicy: map[string]session.LossPolicy{"conceal": session.LossConceal}[cfg.LossPolicy] /* else freeze */, MaxCalls: cfg.MaxCalls,
		Admission: callmgr.AdmissionConfig{MaxCPU: cfg.MaxCPU}, UserAgent: "sipstream-restserver",
		RTMPAudioPassthrough: cfg.RTMPAudio == "passthrough",
		OnEvent:              relay.OnEvent,
		Logger:               log,
		SIPTLSConfig:         cfg.sipTLS, SIPTLSListenAddr: cfg.SIPTLS,
	}
	cfg.managerConfig(&mcfg, inbound)
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
	logSIPTLS(log, cfg, m.ListenPort("tls"))
	mc := metrics.New(m)
	relay.Subscribe(mc.OnEvent)
	acfg := wcsapi.Config{
		Events: relay, Logger: log, User: login.user, Password: login.pass, NoAuth: login.off,
		Webhook: cfg.Webhook, AppWebhooks: cfg.AppWebhooks, WebhookSecrets: cfg.WebhookSecrets,
		AllowedHosts: strings.Split(cfg.AllowedHosts, ","), ListenAddrs: []string{cfg.HTTP, cfg.HTTPS}, PublicIP: cfg.publicIP,
		CORSOrigins: strings.Split(cfg.CORSOrigins, ","), AllowCallees: cfg.allowCallees, AllowRTMPHosts: cfg.allowRTMPHosts,
		MaxPushes: cfg.MaxPushes, MaxSSE: cfg.MaxSSE, Record: cfg.RecordDir != "", Secrets: sec, HLS: cfg.HLS,
		SoundDir: cfg.SoundDir,
	}
	cfg.dialinConfig(&acfg, inbound)
	if cfg.Cluster.NodeID != "" || cfg.Cluster.NATS != "" {
		acfg.NodeID = cfg.nodeID()
	}
	var selfURL nodeURL
	if _, port, _ := net.SplitHostPort(cfg.HTTP); port != "" && port != "0" {
		selfURL.Store(cfg.clusterURL("http", cfg.HTTP)) // else known once listening
	} else if _, port, _ := net.SplitHostPort(cfg.HTTPS); cfg.HTTP == "" && port != "" && port != "0" {
		selfURL.Store(cfg.clusterURL("https", cfg.HTTPS))
	}
	if cfg.Cluster.NATS != "" {
		sec.Add(natsSecrets(cfg.Cluster.NATS)...)
		cc, closeCluster, err := natsCluster(ctx, cfg, &selfURL, log)
		if err != nil {
			_ = m.Close(ctx)
			return err
		}
		defer closeCluster() // after api.Shutdown (deferred calls run last)
		acfg.Cluster = cc
	}
	iceIPs, publicIPs := whep.ICEAddrs(cfg.SIP, cfg.publicIP, nil)
	if cfg.WebRTC {
		acfg.WebRTC = &whep.Config{MaxViewers: cfg.MaxViewers, ICEIPs: iceIPs, PublicIPs: publicIPs, PublicIPsOnly: len(publicIPs) > 0}
	}
	if cfg.WHIP {
		acfg.WHIP = &whip.Config{ICEIPs: iceIPs, PublicIPs: publicIPs, PublicIPsOnly: len(publicIPs) > 0}
	}
	api, err := wcsapi.New(m, acfg)
	if err != nil {
		_ = m.Close(ctx)
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(api, mc, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	var dialin http.Handler
	if demo != nil {
		dialin = demo.dialinHandler(func() string { return dialAddr(mcfg.ListenAddr, m.ListenPort("udp")) }, log)
	}
	handler := newHandler(api, reg, defaults, dialin)

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
		hs := wcsapi.NewServer(handler, tlsCfg)
		servers = append(servers, hs)
		scheme := "http"
		if tlsCfg != nil {
			scheme = "https"
			l = tls.NewListener(l, tlsCfg)
		}
		log.Info("listening", "scheme", scheme, "addr", l.Addr().String())
		pageURLs = append(pageURLs, pageURL(scheme, l.Addr().String()))
		if selfURL.Load() == "" {
			selfURL.Store(cfg.clusterURL(scheme, l.Addr().String()))
		}
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
			demo.sipAddr = sipAddr
			demo.printBanner(stderr, pageURLs, login)
		}
		select {
		case <-ctx.Done():
			log.Info("shutting down")
		case startErr = <-errc:
		}
	}

	// Shutdown: stop taking requests, end every call, stop notifying.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	// Event streams and HLS requests never end by themselves: end them
	// first, or Shutdown would wait for them until sctx expires.
	api.EndStreams()
	for _, hs := range servers {
		_ = hs.Shutdown(sctx)
	}
	if err := m.Close(sctx); err != nil {
		log.Warn("closing calls", "err", err)
	}
	_ = api.Shutdown(sctx) // after the calls: their final statuses reach the webhook
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
