package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sip/siptest"
)

// demoStream is the RTMP stream name (and toStream) the demo form starts with.
const demoStream = "demo"

// demoEnv is what -demo starts next to the server: a SIP callee on loopback
// that answers every call and streams the H.264 test clip and a 1 kHz tone,
// and an RTMP server on loopback that calls publish to and ffplay reads from.
type demoEnv struct {
	peer    *siptest.Peer
	rtmp    *rtmp.Server
	rtmpURL string // rtmp://127.0.0.1:PORT/live
	sipAddr string // the server's SIP address, for the banner (set once it listens)
	wg      sync.WaitGroup
}

// startDemo starts the demo callee and RTMP server. The RTMP server listens
// on 127.0.0.1:1935 when that is free, on a port chosen by the system
// otherwise.
func startDemo(log *slog.Logger) (*demoEnv, error) {
	peer, err := siptest.NewPeer(siptest.Config{
		Addr: "127.0.0.1:0",
		User: "demo",
		Script: siptest.Script{
			Audio:  true,
			Video:  true,
			SendSR: true,
		},
	})
	if err != nil {
		return nil, err
	}
	d := &demoEnv{peer: peer}
	l, err := net.Listen("tcp", "127.0.0.1:1935")
	if err != nil {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		_ = peer.Close()
		return nil, fmt.Errorf("rtmp server: %w", err)
	}
	d.rtmp, err = rtmp.NewServer(rtmp.ServerConfig{Logger: log.With("component", "demo-rtmp")})
	if err != nil {
		_ = l.Close()
		_ = peer.Close()
		return nil, fmt.Errorf("rtmp server: %w", err)
	}
	d.rtmpURL = "rtmp://" + l.Addr().String() + "/live"
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.rtmp.Serve(l); err != nil && !errors.Is(err, rtmp.ErrServerClosed) {
			log.Warn("demo RTMP server stopped", "err", err)
		}
	}()
	log.Info("demo SIP callee", "uri", peer.URI())
	log.Info("demo RTMP server", "url", d.rtmpURL)
	return d, nil
}

// defaults are the values the page's form starts with in demo mode: one
// click on Call places a call to the demo callee that publishes to the demo
// RTMP server and plays in the page; dialin shows the page's Dial in
// button.
func (d *demoEnv) defaults() map[string]any {
	return map[string]any{
		"callee":     d.peer.URI(),
		"rtmpUrl":    d.rtmpURL,
		"rtmpStream": demoStream,
		"toStream":   demoStream,
		"hasAudio":   true,
		"hasVideo":   true,
		"dialin":     demoDialin,
	}
}

// demoDialin is the Request-URI user the demo phone calls the server as
// (its stream name, at the demo RTMP server and in the page).
const demoDialin = "demo-dialin"

// inbound makes the demo take calls from this machine, published to the
// demo RTMP server, unless the flags say otherwise.
func (d *demoEnv) inbound(c *config) {
	if !c.set["inbound-rtmp-url"] {
		c.Inbound.RTMPURL = d.rtmpURL
	}
	if !c.set["inbound-allow"] {
		c.Inbound.allow = append(c.Inbound.allow, netip.MustParsePrefix("127.0.0.0/8"))
	}
}

// dialinHandler is POST /demo/dialin: the demo callee, as a phone, calls
// the server's SIP address (sipAddr) as sip:demo-dialin@..., which -demo
// answers (-inbound-rtmp-url is the demo RTMP server, loopback may call),
// streaming its test pattern and tone. 202 at once; the call shows in the
// page as an incoming one.
func (d *demoEnv) dialinHandler(sipAddr func() string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := "sip:" + demoDialin + "@" + sipAddr()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := d.peer.Call(ctx, target, siptest.CallOptions{User: "demo-phone", DisplayName: "Demo phone",
				Script: siptest.Script{Audio: true, Video: true, SendSR: true}})
			if err != nil {
				log.Warn("demo dial-in failed", "target", target, "err", err)
			}
		}()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "{}\n")
	})
}

// printBanner tells a newcomer where to click and how to watch, once the
// HTTP listeners are up. pageURLs are the page's URLs (http and https).
func (d *demoEnv) printBanner(w io.Writer, pageURLs []string, l login) {
	var b strings.Builder
	b.WriteString("\n  sipstream demo is running\n\n")
	for i, u := range pageURLs {
		if i == 0 {
			fmt.Fprintf(&b, "  open the page:      %s  (click Call, then Play)\n", u)
		} else {
			fmt.Fprintf(&b, "                      %s\n", u)
		}
	}
	switch {
	case l.off:
		b.WriteString("  log in:             no login (the demo serves this machine only)\n")
	case l.generated:
		fmt.Fprintf(&b, "  log in:             user %s, password %s (made for this run)\n", l.user, l.pass)
	default:
		fmt.Fprintf(&b, "  log in:             user %s and your password\n", l.user)
	}
	fmt.Fprintf(&b, "  demo SIP callee:    %s\n", d.peer.URI())
	if d.sipAddr != "" {
		fmt.Fprintf(&b, "  dial in:            sip:%s@%s (from this machine; or click Dial in)\n", demoDialin, d.sipAddr)
	}
	fmt.Fprintf(&b, "  watch the stream:   ffplay %s/%s\n", d.rtmpURL, demoStream)
	b.WriteString("  stop:               Ctrl-C (every call gets its BYE)\n\n")
	_, _ = io.WriteString(w, b.String())
}

func (d *demoEnv) close() {
	_ = d.rtmp.Close()
	_ = d.peer.Close() // ends a dial-in waiting for its answer
	d.wg.Wait()
}

// dialAddr is where this machine reaches a SIP listener bound to
// listenAddr on port: its host, or 127.0.0.1 when unspecified.
func dialAddr(listenAddr string, port int) string {
	host, _, _ := net.SplitHostPort(listenAddr)
	if ip, err := netip.ParseAddr(host); err != nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// pageURL is the URL a browser on this machine opens for a listener bound
// to addr ("0.0.0.0:8081", "[::]:8081", "127.0.0.1:8081").
func pageURL(scheme, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}
