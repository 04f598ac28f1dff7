package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// KamailioConfig says how StartKamailio's registrar and proxy behave. The
// zero value is a registrar without authentication and a record-routing
// proxy on UDP.
type KamailioConfig struct {
	// Users maps digest authentication names to passwords (kept in the
	// config: no database). Nil means no authentication at all; otherwise
	// every REGISTER must authenticate (401, realm: the To domain).
	Users map[string]string
	// ChallengeRequests also challenges initial requests other than
	// REGISTER (INVITE, MESSAGE, ...) with 407 (realm: the From domain).
	// It needs Users.
	ChallengeRequests bool
	// TCP listens on TCP too, on the same port number as UDP.
	TCP bool
	// HangUpAfter has kamailio end every call it relays this long after
	// the answer with a BYE of its own to both sides (its dialog module),
	// routed as the callee's BYE would be: by the caller's Contact and the
	// route set. Zero means never (whole seconds, at least one).
	HangUpAfter time.Duration
	// TLS listens for SIP over TLS too (kamailio's tls module, Debian
	// package kamailio-tls-modules), on a free port of its own
	// (Kamailio.TLSAddr). Nil means no TLS.
	TLS *KamailioTLS
	// Script is the path of a kamailio configuration file to run instead
	// of the rendered registrar and proxy: a file users copy, tested as it
	// is. kamailio gets it with -f, the modules' directory with -L and the
	// preprocessor define LISTEN=udp:127.0.0.1:PORT (a free port; the file
	// says listen=LISTEN) plus Defines, each as -A. The fields above must
	// be zero with it. Empty means the rendered script.
	Script string
	// Defines are more preprocessor defines for Script, name to value (-A
	// NAME=VALUE, as #!define NAME VALUE in the file); a string keeps its
	// quotes: "\"/tmp/gw.list\"". An empty value defines the name alone
	// (for #!ifdef). Nil means none.
	Defines map[string]string
}

// KamailioTLS is the TLS side of StartKamailio.
type KamailioTLS struct {
	// Cert is kamailio's certificate, for its listener and as its client
	// certificate when it relays over TLS. Zero means a new SelfSigned
	// one (Kamailio.TLSCert says which).
	Cert Cert
	// ClientCA is a PEM file of the certificates that sign the client
	// certificates kamailio accepts. Empty means kamailio asks for none.
	ClientCA string
	// RequireClientCert refuses a TLS client that presents no certificate
	// signed by ClientCA (mutual TLS). It needs ClientCA.
	RequireClientCert bool
}

// Kamailio is a real kamailio on loopback: an in-memory registrar (usrloc
// db_mode 0) and a record-routing proxy that relays initial requests to
// the registered contacts and in-dialog requests along the route set.
// Unknown callees get 404. With KamailioConfig.Script it is whatever that
// file says.
type Kamailio struct {
	// Addr is "127.0.0.1:port", where it listens (UDP, and TCP if asked).
	Addr string
	// Port is Addr's port.
	Port int
	// TLSAddr is "127.0.0.1:port" of the TLS listener (KamailioConfig.TLS),
	// else empty; TLSPort is its port.
	TLSAddr string
	TLSPort int
	// TLSCert is the certificate kamailio serves over TLS (for a client's
	// RootCAs or a CA file: Cert.Pool, Cert.CertFile).
	TLSCert Cert
	log     string
}

// Host returns "127.0.0.1".
func (k *Kamailio) Host() string { return "127.0.0.1" }

// Log returns what kamailio logged so far (the last 16 KB).
func (k *Kamailio) Log() string {
	b, _ := os.ReadFile(k.log)
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	return string(b)
}

// kamailioModules finds the directory of kamailio's modules (it depends on
// the architecture).
func kamailioModules(t testing.TB) string {
	t.Helper()
	if out, err := exec.Command("dpkg", "-L", "kamailio").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasSuffix(l, "/modules/tm.so") {
				return filepath.Dir(l)
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/*/kamailio/modules")
	for _, d := range append(dirs, "/usr/lib/kamailio/modules", "/usr/lib64/kamailio/modules") {
		if _, err := os.Stat(filepath.Join(d, "tm.so")); err == nil {
			return d
		}
	}
	t.Fatal("kamailio modules (tm.so) not found")
	return ""
}

// kamailioScript renders the routing script for cfg.
// tlsPort is the TLS listener's port (ignored without cfg.TLS) and
// tlsConf the tls module's configuration file.
func kamailioScript(cfg KamailioConfig, port int, modules string, tlsPort int, tlsConf string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:%[1]d
alias="127.0.0.1:%[1]d"
mpath="%[2]s/"
`, port, modules)
	if cfg.TCP || cfg.TLS != nil {
		b.WriteString("tcp_children=2\n")
	}
	if cfg.TCP {
		fmt.Fprintf(&b, "listen=tcp:127.0.0.1:%d\n", port)
	} else if cfg.TLS == nil {
		b.WriteString("disable_tcp=yes\n")
	}
	mods := []string{"kex", "corex", "tm", "tmx", "sl", "rr", "pv", "maxfwd", "usrloc", "registrar", "textops", "siputils", "xlog", "auth"}
	if cfg.HangUpAfter > 0 {
		mods = append(mods, "dialog")
	}
	if cfg.TLS != nil {
		fmt.Fprintf(&b, "enable_tls=yes\nlisten=tls:127.0.0.1:%[1]d\nalias=\"127.0.0.1:%[1]d\"\n", tlsPort)
		mods = append(mods, "tls")
	}
	for _, m := range mods {
		fmt.Fprintf(&b, "loadmodule \"%s.so\"\n", m)
	}
	if cfg.TLS != nil {
		fmt.Fprintf(&b, "modparam(\"tls\", \"config\", %q)\n", tlsConf)
	}
	if cfg.HangUpAfter > 0 {
		fmt.Fprintf(&b, "modparam(\"dialog\", \"default_timeout\", %d)\nmodparam(\"dialog\", \"send_bye\", 1)\n",
			max(1, int(cfg.HangUpAfter.Round(time.Second)/time.Second)))
	}
	// Double record-routing keeps the route set right when a request
	// changes transport (UDP in, TCP out).
	b.WriteString(`modparam("usrloc", "db_mode", 0)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "enable_double_rr", 1)

request_route {
	xlog("L_INFO", "req $rm $ru from $si:$sp/$pr\n");
	if (is_method("INVITE|BYE")) { xlog("L_INFO", "hdr $rm from $pr: Contact $ct Via $hdr(Via)\n"); }
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (has_totag()) {
		if (loose_route()) { route(RELAY); }
		if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { route(RELAY); } exit; }
	t_check_trans();
	route(AUTH);
	if (is_method("REGISTER")) {
		if (!save("location")) { sl_reply_error(); }
		exit;
	}
	remove_hf("Route");
	if (is_method("INVITE")) {
`)
	if cfg.HangUpAfter > 0 {
		b.WriteString("\t\tdlg_manage();\n")
	}
	b.WriteString(`		record_route();
	}
	if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
	route(RELAY);
}

route[RELAY] {
	if (!t_relay()) { sl_reply_error(); }
	exit;
}

route[AUTH] {
`)
	if cfg.Users != nil {
		// An unknown name gets a password no one sends.
		b.WriteString("\t$var(pw) = \"-no-such-password-\";\n")
		names := make([]string, 0, len(cfg.Users))
		for n := range cfg.Users {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "\tif ($au == %q) { $var(pw) = %q; }\n", n, cfg.Users[n])
		}
		b.WriteString(`	if (is_method("REGISTER")) {
		if (!pv_www_authenticate("$td", "$var(pw)", "0")) { www_challenge("$td", "0"); exit; }
		consume_credentials();
		return;
	}
`)
		if cfg.ChallengeRequests {
			b.WriteString(`	if (!pv_proxy_authenticate("$fd", "$var(pw)", "0")) { proxy_challenge("$fd", "0"); exit; }
	consume_credentials();
`)
		}
	}
	b.WriteString("\treturn;\n}\n")
	return b.String()
}

// StartKamailio starts kamailio configured by cfg on a free loopback port,
// waits until it listens, and kills its process group when the test ends
// (showing its log if the test failed, or always when KAMAILIO_LOG is set).
// It fails under CI (and skips elsewhere) when kamailio is missing.
func StartKamailio(t testing.TB, cfg KamailioConfig) *Kamailio {
	t.Helper()
	if cfg.ChallengeRequests && cfg.Users == nil {
		t.Fatal("testenv: KamailioConfig.ChallengeRequests needs Users")
	}
	if cfg.TLS != nil && cfg.TLS.RequireClientCert && cfg.TLS.ClientCA == "" {
		t.Fatal("testenv: KamailioTLS.RequireClientCert needs ClientCA")
	}
	if cfg.Script != "" && (cfg.Users != nil || cfg.ChallengeRequests || cfg.TCP || cfg.HangUpAfter != 0 || cfg.TLS != nil) {
		t.Fatal("testenv: KamailioConfig.Script runs the file as it is: Users, ChallengeRequests, TCP, HangUpAfter and TLS must be zero")
	}
	if cfg.Script == "" && cfg.Defines != nil {
		t.Fatal("testenv: KamailioConfig.Defines needs Script")
	}
	bin := LookPath(t, "kamailio")
	dir := t.TempDir()
	port := FreePort(t, "udp")
	if cfg.TCP {
		port = freeBothPort(t)
	}
	modules := kamailioModules(t)
	k := &Kamailio{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, log: filepath.Join(dir, "kamailio.log")}
	tlsConf := filepath.Join(dir, "tls.cfg")
	if cfg.TLS != nil {
		if _, err := os.Stat(filepath.Join(modules, "tls.so")); err != nil {
			t.Fatalf("kamailio's tls module is missing (Debian package kamailio-tls-modules): %v", err)
		}
		k.TLSCert = cfg.TLS.Cert
		if k.TLSCert.CertFile == "" {
			k.TLSCert = SelfSigned(t)
		}
		k.TLSPort = FreePort(t, "tcp")
		k.TLSAddr = "127.0.0.1:" + strconv.Itoa(k.TLSPort)
		if err := os.WriteFile(tlsConf, []byte(kamailioTLSConfig(*cfg.TLS, k.TLSCert)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "kamailio.cfg")
	var scriptArgs []string
	if cfg.Script != "" {
		conf = cfg.Script
		if _, err := os.Stat(conf); err != nil {
			t.Fatalf("testenv: KamailioConfig.Script: %v", err)
		}
		scriptArgs = kamailioScriptArgs(port, modules, cfg.Defines)
	} else if err := os.WriteFile(conf, []byte(kamailioScript(cfg, port, modules, k.TLSPort, tlsConf)), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"-DD", "-E", "-f", conf, "-P", filepath.Join(dir, "kamailio.pid"),
		"-Y", dir, "-w", dir, "-m", "32", "-M", "8"}, scriptArgs...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Registered before the process's cleanup: runs after it is killed.
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() || os.Getenv("KAMAILIO_LOG") != "" {
			t.Logf("kamailio log:\n%s", k.Log())
		}
	})
	// kamailio forks its workers: StartProcess kills the group.
	p := StartProcess(t, cmd)
	networks := []string{"udp"}
	if cfg.TCP {
		networks = append(networks, "tcp")
	}
	for _, nw := range networks {
		if !waitBound(nw, port, 15*time.Second, p.Done()) {
			t.Fatalf("kamailio did not listen on %s/%d:\n%s", nw, port, k.Log())
		}
	}
	if cfg.TLS != nil && !waitBound("tcp", k.TLSPort, 15*time.Second, p.Done()) {
		t.Fatalf("kamailio did not listen on tls/%d:\n%s", k.TLSPort, k.Log())
	}
	return k
}

// kamailioScriptArgs returns kamailio's arguments for a
// KamailioConfig.Script: the modules' directory, LISTEN on port, and the
// Defines more in name order.
func kamailioScriptArgs(port int, modules string, more map[string]string) []string {
	args := []string{"-L", modules, "-A", "LISTEN=udp:127.0.0.1:" + strconv.Itoa(port)}
	names := make([]string, 0, len(more))
	for n := range more {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if more[n] == "" {
			args = append(args, "-A", n)
			continue
		}
		args = append(args, "-A", n+"="+more[n])
	}
	return args
}

// kamailioTLSConfig renders the tls module's configuration: cert as
// server and client certificate, TLS 1.2 or later, client certificates
// asked for and verified against ClientCA when set. Kamailio does not
// verify the servers it relays to (its test peers have no certificates).
func kamailioTLSConfig(cfg KamailioTLS, cert Cert) string {
	var b strings.Builder
	yes := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(&b, "[server:default]\nmethod = TLSv1.2+\ncertificate = %s\nprivate_key = %s\n", cert.CertFile, cert.KeyFile)
	fmt.Fprintf(&b, "verify_certificate = %s\nrequire_certificate = %s\n", yes[cfg.ClientCA != ""], yes[cfg.RequireClientCert])
	if cfg.ClientCA != "" {
		fmt.Fprintf(&b, "ca_list = %s\n", cfg.ClientCA)
	}
	fmt.Fprintf(&b, "\n[client:default]\nmethod = TLSv1.2+\ncertificate = %s\nprivate_key = %s\nverify_certificate = no\nrequire_certificate = no\n", cert.CertFile, cert.KeyFile)
	return b.String()
}

// freeBothPort returns a port that was free on UDP and TCP a moment ago.
func freeBothPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		p := FreePort(t, "udp")
		if l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no port free on both UDP and TCP")
	return 0
}

// waitBound waits until something holds port on 127.0.0.1 (binding it
// fails), or the program exits, or d passes.
func waitBound(network string, port int, d time.Duration, exited <-chan struct{}) bool {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if network == "tcp" {
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				return true
			}
			l.Close()
			continue
		}
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return true
		}
		c.Close()
	}
	return false
}
