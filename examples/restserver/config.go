package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
)

// config is the server's command line (see parseConfig's flag help: each
// field is the flag of the same name). Every flag can also be set with an
// environment variable SIPSTREAM_<NAME> (upper case, '-' as '_'); a flag on
// the command line wins over the environment.
type config struct {
	HTTP, HTTPS, TLSCert, TLSKey                              string
	Auth, AuthFile                                            string
	NoAuth, Demo, WebRTC, HLS, WebhookSecrets, SIPTLSInsecure bool
	WHIP                                                      bool
	SIP, SIPTLS, SIPTLSCert, SIPTLSKey, SIPTLSCA              string
	PublicIP, RTPPorts, Webhook                               string
	RecordDir, RecordFormat, RecordQuota                      string
	SoundDir                                                  string
	LogLevel, LossPolicy, SRTP, RTMPAudio                     string
	AllowedHosts, CORSOrigins, AllowCallees, AllowRTMPHosts   string
	MaxCalls, MaxViewers, MaxSSE, MaxPushes                   int
	MaxCPU                                                    float64
	// AppWebhooks is -app-webhook, repeatable: appKey -> base URL.
	AppWebhooks appWebhooks
	// Inbound are the dial-in flags (inbound.go).
	Inbound inboundFlags
	// Cluster are the clustering flags (cluster.go).
	Cluster clusterFlags

	// set holds the flags given on the command line or in the
	// environment (the others have their defaults).
	set map[string]bool
	// Checked and parsed values.
	rtpLo, rtpHi       int
	authUser, authPass string
	// authOnArgv: -auth was given on the command line (not the
	// environment), where ps shows it.
	authOnArgv                   bool
	publicIP                     netip.Addr
	srtp                         callmgr.SRTPMode
	recordQuota                  int64
	allowCallees, allowRTMPHosts []string
	sipTLS                       *tls.Config // from the -sip-tls* flags
}

// parseConfig reads args (without the program name) and the environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	c := config{set: map[string]bool{}}
	fs := flag.NewFlagSet("restserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.HTTP, "http", ":8081", "HTTP listen address for the REST API and the web page (empty: off)")
	fs.StringVar(&c.HTTPS, "https", ":8444", "HTTPS listen address (empty: off); a self-signed certificate is made when -tls-cert/-tls-key are not given")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate file for -https")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file for -https")
	fs.StringVar(&c.Auth, "auth", "", "USER:PASS of the admin (HTTP Basic); visible in ps: prefer -auth-file or SIPSTREAM_AUTH")
	fs.StringVar(&c.AuthFile, "auth-file", "", "file holding USER:PASS of the admin (HTTP Basic)")
	fs.BoolVar(&c.NoAuth, "no-auth", false, "serve the REST API, events, page, metrics and WebRTC without any login (anyone who reaches the server can place calls)")
	fs.StringVar(&c.AllowedHosts, "allowed-hosts", "", "comma list of host names the HTTP side answers to, besides localhost, loopback, the listen and -public-ip addresses ('*.example.com' works; '*' = any)")
	fs.StringVar(&c.CORSOrigins, "cors-origins", "", "comma list of browser origins (https://app.example.com) allowed to send requests, besides the page's own ('*' = any)")
	fs.StringVar(&c.AllowCallees, "allow-callees", "", "comma list of glob patterns of callees allowed: host (pbx.example.com, *.example.com) or user@host (1???@pbx.example.com); also checked against sipDomain and sipOutboundProxy (default: any)")
	fs.StringVar(&c.AllowRTMPHosts, "allow-rtmp-hosts", "", "comma list of glob patterns of RTMP hosts calls and pushes may publish to (default: any)")
	fs.BoolVar(&c.WebhookSecrets, "webhook-secrets", false, "send rtmpUrl and rtmpStream to the webhooks unredacted (with credentials, query and stream key)")
	fs.IntVar(&c.MaxCalls, "max-calls", 100, "live calls at most (0: no limit)")
	fs.IntVar(&c.MaxViewers, "max-viewers", 50, "WebRTC viewers per stream at most (0: no limit)")
	fs.IntVar(&c.MaxSSE, "max-sse", 50, "event stream (/events) subscribers at most (0: no limit)")
	fs.IntVar(&c.MaxPushes, "max-pushes", 10, "pushes (/push/startup) per call at most (0: no limit)")
	fs.Float64Var(&c.MaxCPU, "max-cpu", 0.8, "admission control: refuse new calls (503) when the process uses this share of the CPUs (0-1), counting the calls being set up, or when sockets drop packets or sink queues back up, so the calls already up keep their quality (0: off)")
	fs.StringVar(&c.RTMPAudio, "rtmp-audio", "aac", "audio published over RTMP: aac (G.711 and Opus transcoded to AAC-LC, what YouTube, Facebook and Twitch accept) or passthrough (G.711 as it comes, FLV sound formats 7/8: nginx-rtmp, Wowza and ffmpeg accept it; far cheaper)")
	fs.StringVar(&c.SRTP, "srtp", "off", "SRTP (SDES keys) of calls whose srtp field is absent: off, optional (offer SRTP, fall back to plain RTP when the phone refuses) or required; incoming calls answer an SRTP offer with SRTP unless this flag is given")
	fs.StringVar(&c.RecordQuota, "record-quota", "1G", "most bytes one recording may hold (K, M, G suffixes; 0: no limit); a recording that reaches it stops, finalized and playable, and its call goes on")
	fs.StringVar(&c.SIP, "sip", ":5060", "local SIP address, UDP and TCP (-demo: 127.0.0.1:5060)")
	c.sipTLSFlags(fs)
	fs.StringVar(&c.PublicIP, "public-ip", "", "IP address written into Contact, Via and SDP (default: the SIP address's)")
	fs.StringVar(&c.RTPPorts, "rtp-ports", "30000-31999", "RTP/RTCP UDP port range LO-HI")
	fs.StringVar(&c.Webhook, "webhook", "", "base URL of the default application's hook: every call and RTMP status change of a call whose appKey no -app-webhook names is POSTed as JSON to URL/CallStatusEvent (the product's REST hook; pushes: URL/RtmpStatusEvent, DTMF received: URL/DtmfEvent)")
	c.AppWebhooks = appWebhooks{}
	fs.Var(c.AppWebhooks, "app-webhook", "appKey=URL: the hook of the calls started with that appKey, used as -webhook is (repeatable)")
	fs.StringVar(&c.RecordDir, "record-dir", "", "directory for call recordings (empty: recording off)")
	fs.StringVar(&c.SoundDir, "sound-dir", "", "directory of the sound files /call/inject_sound and /push/sound_on play (WAV, MP3, Ogg Opus; empty: off)")
	fs.StringVar(&c.RecordFormat, "record-format", "mp4", "format of call recordings: mp4 (fragmented MP4, H.264 + AAC), mkv (Matroska) or flv")
	fs.BoolVar(&c.Demo, "demo", false, "start an embedded SIP callee (test pattern and tone) and RTMP server, so the page can demo a call with nothing else running")
	fs.BoolVar(&c.WebRTC, "webrtc", true, "serve every call to browsers over WebRTC (WHEP) at /whep/{toStream}")
	fs.BoolVar(&c.WHIP, "whip", true, "take browsers' WebRTC audio publications (WHIP) at /whip/{name}, with the admin's login; /call/inject_stream/startup {callId, streamName: name} plays one into a call")
	fs.BoolVar(&c.HLS, "hls", true, "serve every call as Low-Latency HLS at /hls/{toStream}/index.m3u8 (muxed on the first request, released 30 s after the last)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	c.inboundFlags(fs)
	c.clusterFlags(fs)
	fs.StringVar(&c.LossPolicy, "loss-policy", "freeze", "video after a packet loss that retransmission did not repair: freeze (hold the last good picture until the keyframe asked for arrives) or conceal (keep frames flowing, viewers' decoders conceal the damage)")

	// The environment first, so that flags given on the command line win.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "SIPSTREAM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %v", name, err)
			}
			c.set[f.Name] = true
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	fs.Visit(func(f *flag.Flag) {
		c.set[f.Name] = true
		switch f.Name {
		case "auth":
			c.authOnArgv = true
		case "inbound-user":
			c.Inbound.usersOnArgv = true
		case "account":
			c.Inbound.accountsArgv = true
		}
	})
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	// The demo serves loopback only unless told otherwise (so it needs no
	// login); its callee is local: nothing else needs to reach SIP.
	for _, d := range []struct {
		flag, addr string
		v          *string
	}{{"http", "127.0.0.1:8081", &c.HTTP}, {"https", "127.0.0.1:8444", &c.HTTPS}, {"sip", "127.0.0.1:5060", &c.SIP}} {
		if c.Demo && !c.set[d.flag] {
			*d.v = d.addr
		}
	}
	return c, c.check()
}

func (c *config) check() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, a := range []struct{ name, v string }{{"-http", c.HTTP}, {"-https", c.HTTPS}, {"-sip", c.SIP}} {
		if a.v == "" && a.name == "-sip" {
			add("-sip is required")
		} else if _, _, err := net.SplitHostPort(a.v); a.v != "" && err != nil {
			add("%s %q: %v", a.name, a.v, err)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("-tls-cert and -tls-key go together")
	}
	if c.Auth != "" && c.AuthFile != "" {
		add("-auth and -auth-file: give one")
	}
	if c.Auth != "" {
		u, p, err := parseCredentials(c.Auth, "-auth")
		if err != nil {
			errs = append(errs, err)
		}
		c.authUser, c.authPass = u, p
	}
	if c.AuthFile != "" {
		b, err := os.ReadFile(c.AuthFile)
		if err != nil {
			add("-auth-file: %v", err)
		} else if u, p, err := parseCredentials(string(b), "-auth-file's content"); err != nil {
			errs = append(errs, err)
		} else {
			c.authUser, c.authPass = u, p
		}
	}
	if c.NoAuth && c.authUser != "" {
		add("-no-auth and credentials (-auth, -auth-file, SIPSTREAM_AUTH): give one")
	}
	var err error
	if c.allowCallees, err = wcsapi.ParseAllowList(c.AllowCallees); err != nil {
		add("-allow-callees: %v", err)
	}
	if c.allowRTMPHosts, err = wcsapi.ParseAllowList(c.AllowRTMPHosts); err != nil {
		add("-allow-rtmp-hosts: %v", err)
	}
	if c.MaxCalls < 0 || c.MaxViewers < 0 || c.MaxSSE < 0 || c.MaxPushes < 0 {
		add("-max-calls, -max-viewers, -max-sse and -max-pushes must not be negative")
	}
	if c.MaxCPU < 0 || c.MaxCPU > 1 {
		add("-max-cpu %g: want a share of the CPUs within 0-1 (0: off)", c.MaxCPU)
	}
	if !slices.Contains([]string{"aac", "passthrough"}, c.RTMPAudio) {
		add("-rtmp-audio %q: want aac or passthrough", c.RTMPAudio)
	}
	if mode, err := callmgr.ParseSRTPMode(c.SRTP); err != nil || mode == callmgr.SRTPDefault {
		add("-srtp %q: want off, optional or required", c.SRTP)
	} else if c.set["srtp"] {
		// Left unset, calls placed over REST are plain RTP (callmgr's
		// default) and incoming calls answer in kind.
		c.srtp = mode
	}
	if c.recordQuota, err = parseBytes(c.RecordQuota); err != nil {
		add("-record-quota %q: %v", c.RecordQuota, err)
	}
	c.checkSIPTLS(add)
	if c.PublicIP != "" {
		if c.publicIP, err = netip.ParseAddr(c.PublicIP); err != nil {
			add("-public-ip: %v", err)
		}
	}
	lo, hi, ok := strings.Cut(c.RTPPorts, "-")
	l, err1 := strconv.Atoi(strings.TrimSpace(lo))
	h, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || l < 1024 || h > 65535 || h-l < 3 {
		add("-rtp-ports %q: want LO-HI within 1024-65535 with room for two port pairs", c.RTPPorts)
	}
	c.rtpLo, c.rtpHi = l, h
	if u, err := url.Parse(c.Webhook); c.Webhook != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		add("-webhook must be an http:// or https:// URL")
	}
	for app, u := range c.AppWebhooks {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			add("-app-webhook %s=...: want an http:// or https:// URL", app)
		}
	}
	if st, err := os.Stat(c.SoundDir); c.SoundDir != "" && (err != nil || !st.IsDir()) {
		add("-sound-dir %q is not a directory", c.SoundDir)
	}
	if st, err := os.Stat(c.RecordDir); c.RecordDir != "" && (err != nil || !st.IsDir()) {
		add("-record-dir %q is not a directory", c.RecordDir)
	}
	if !slices.Contains([]string{"mp4", "mkv", "flv"}, c.RecordFormat) {
		add("-record-format %q: want mp4, mkv or flv", c.RecordFormat)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		add("-log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if !slices.Contains([]string{"freeze", "conceal"}, c.LossPolicy) {
		add("-loss-policy %q: want freeze or conceal", c.LossPolicy)
	}
	if c.HTTP == "" && c.HTTPS == "" {
		add("one of -http and -https is needed")
	}
	c.checkInbound(add)
	c.checkCluster(add)
	return errors.Join(errs...)
}

// loopbackOnly reports whether every HTTP listener is on a loopback address
// (or localhost): nobody else can reach the server.
func (c *config) loopbackOnly() bool {
	for _, a := range []string{c.HTTP, c.HTTPS} {
		host, _, err := net.SplitHostPort(a)
		ip, ipErr := netip.ParseAddr(host)
		if a != "" && (err != nil || !strings.EqualFold(host, "localhost") && (ipErr != nil || !ip.IsLoopback())) {
			return false
		}
	}
	return true
}

// parseBytes reads a byte count: digits with an optional K, M, G or T
// suffix (powers of 1024, "B" and "iB" accepted after it).
func parseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult, t = 1<<(10*(i+1)), t[:n-1]
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, errors.New("want a byte count such as 500M or 2G")
	}
	return v * mult, nil
}

// appWebhooks is -app-webhook appKey=URL, repeatable.
type appWebhooks map[string]string

// String shows the application keys only: the URLs may carry credentials.
func (a appWebhooks) String() string {
	return strings.Join(slices.Sorted(maps.Keys(a)), ",")
}

func (a appWebhooks) Set(v string) error {
	app, u, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(app) == "" || strings.TrimSpace(u) == "" {
		return errors.New("want appKey=URL")
	}
	a[strings.TrimSpace(app)] = strings.TrimSpace(u)
	return nil
}
