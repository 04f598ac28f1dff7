// Command restserver is a ready server that reproduces the REST API of
// Flashphoner Web Call Server's "SIP as RTMP" feature on top of sipstream, so
// that clients of that API work unchanged: POST /rest-api/call/startup places
// a SIP call and republishes its audio and video to an RTMP URL, /call/find,
// /call/find_all, /call/terminate and /call/send_dtmf follow and drive it,
// and /push/... adds more RTMP targets to a live call.
//
// It also serves a web page at / to start calls and watch them, Server-Sent
// Events at /events, Prometheus metrics at /metrics, and with -webhook POSTs
// every status change as JSON.
//
//	go run ./examples/restserver -demo
//
// starts it with an embedded SIP callee (a test pattern and a tone) so that
// the page can place a call with nothing else running. Every flag can also be
// set with an environment variable SIPSTREAM_<FLAG> (SIPSTREAM_RTP_PORTS for
// -rtp-ports); run with -h for the list.
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
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sipstream/sipstream/callmgr"
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	svc := &managerService{recording: cfg.RecordDir != "", log: log}
	var whepHandler http.Handler
	if cfg.WebRTC {
		wcfg := whep.Config{}
		if cfg.publicIP.IsValid() {
			wcfg.PublicIPs = []netip.Addr{cfg.publicIP}
		}
		svc.webrtc = newWebRTCStreams(wcfg, log)
		whepHandler = svc.webrtc
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
	m, err := callmgr.New(callmgr.Config{
		ListenAddr: sipAddr,
		PublicIP:   cfg.publicIP,
		RTPPortMin: cfg.rtpLo,
		RTPPortMax: cfg.rtpHi,
		RecordDir:  cfg.RecordDir,
		UserAgent:  "sipstream-restserver",
		OnEvent:    svc.onEvent,
		Logger:     log,
	})
	if err != nil {
		return fmt.Errorf("call manager: %w", err)
	}
	svc.m = m
	srv := newServer(svc, serverOptions{
		Log:      log,
		AuthUser: cfg.authUser,
		AuthPass: cfg.authPass,
		Webhook:  cfg.Webhook,
		Defaults: defaults,
		WHEP:     whepHandler,
	})
	notify := srv.notify
	svc.notify.Store(&notify)

	handler := srv.handler()
	var servers []*http.Server
	var pageURLs []string
	errc := make(chan error, 2)
	listen := func(addr string, tlsCfg *tls.Config) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg}
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
		startErr = listen(cfg.HTTP, nil)
	}
	if startErr == nil && cfg.HTTPS != "" {
		tlsCfg, err := tlsConfig(cfg.TLSCert, cfg.TLSKey, time.Now())
		if err != nil {
			startErr = fmt.Errorf("tls: %w", err)
		} else {
			startErr = listen(cfg.HTTPS, tlsCfg)
		}
	}
	if startErr == nil {
		if host, _, err := net.SplitHostPort(sipAddr); err == nil && m.ListenPort("udp") != 0 {
			sipAddr = net.JoinHostPort(host, fmt.Sprint(m.ListenPort("udp")))
		}
		log.Info("ready", "sip", sipAddr, "rtp-ports", cfg.RTPPorts, "demo", cfg.Demo, "page", pageURLs[0])
		if demo != nil {
			demo.printBanner(stderr, pageURLs)
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
	for _, hs := range servers {
		_ = hs.Shutdown(sctx)
	}
	if err := m.Close(sctx); err != nil {
		log.Warn("closing calls", "err", err)
	}
	srv.close()
	return startErr
}
