//go:build interop

package sip

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgox "github.com/emiago/sipgo/sip"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kamailioCfg is a registrar + record-routing proxy with digest auth on
// REGISTER (401) and INVITE (407), no database: passwords live in the
// config (pv_www_authenticate/pv_proxy_authenticate), usrloc in memory.
const kamailioCfg = `#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:@PORT@
listen=tcp:127.0.0.1:@PORT@
alias="127.0.0.1:@PORT@"
mpath="@MODDIR@"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "enable_double_rr", 1)

request_route {
	xlog("L_INFO", "req $rm $ru from $si:$sp/$pr\n");
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
	if (is_method("INVITE")) { record_route(); }
	if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
	route(RELAY);
}

route[RELAY] {
	if (!t_relay()) { sl_reply_error(); }
	exit;
}

route[AUTH] {
	$var(pw) = "";
	if ($au == "auth1000") { $var(pw) = "pw1000"; }
	if ($au == "bob") { $var(pw) = "pwbob"; }
	if (is_method("REGISTER")) {
		if (!pv_www_authenticate("$td", "$var(pw)", "0")) { www_challenge("$td", "0"); exit; }
		consume_credentials();
		return;
	}
	if (!pv_proxy_authenticate("$fd", "$var(pw)", "0")) { proxy_challenge("$fd", "0"); exit; }
	consume_credentials();
}
`

func kamailioModDir(t *testing.T) string {
	out, err := exec.Command("dpkg", "-L", "kamailio").Output()
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasSuffix(l, "/tm.so") {
				return filepath.Dir(l)
			}
		}
	}
	for _, d := range []string{"/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules"} {
		if _, err := os.Stat(filepath.Join(d, "tm.so")); err == nil {
			return d
		}
	}
	t.Fatal("kamailio modules not found")
	return ""
}

// startKamailio runs kamailio in the foreground on a runtime port and
// returns "127.0.0.1:port".
func startKamailio(t *testing.T) string {
	t.Helper()
	bin := testenv.LookPath(t, "kamailio")
	dir := t.TempDir()
	port := testenv.FreePort(t, "udp")
	cfg := strings.NewReplacer("@PORT@", strconv.Itoa(port), "@MODDIR@", kamailioModDir(t)).Replace(kamailioCfg)
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	logPath := filepath.Join(dir, "kamailio.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "-DD", "-E", "-f", cfgPath, "-P", filepath.Join(dir, "kamailio.pid"),
		"-Y", dir, "-w", dir, "-m", "32", "-M", "8")
	cmd.Stdout, cmd.Stderr = logf, logf
	// kamailio forks its workers: run it in its own process group and kill
	// the whole group, or the children outlive the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() || os.Getenv("KAMAILIO_LOG") != "" {
			data, _ := os.ReadFile(logPath)
			if len(data) > 8000 {
				data = data[len(data)-8000:]
			}
			t.Logf("kamailio log:\n%s", data)
		}
	})
	waitBound(t, "tcp", port)
	waitBound(t, "udp", port)
	return "127.0.0.1:" + strconv.Itoa(port)
}

// registerContact registers bob's binding pointing at contactPort with a
// plain sipgo client (digest on 401), as a SIP phone would.
func registerContact(t *testing.T, registrar string, contactPort int) {
	t.Helper()
	ua, err := sipgo.NewUA()
	require.NoError(t, err)
	defer ua.Close()
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	require.NoError(t, err)
	var ruri sipgox.Uri
	require.NoError(t, sipgox.ParseUri("sip:"+registrar, &ruri))
	req := sipgox.NewRequest(sipgox.REGISTER, ruri)
	aor := sipgox.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1"}
	fromParams := sipgox.NewParams()
	fromParams.Add("tag", "regbob")
	req.AppendHeader(&sipgox.FromHeader{Address: aor, Params: fromParams})
	req.AppendHeader(&sipgox.ToHeader{Address: aor})
	req.AppendHeader(&sipgox.ContactHeader{Address: sipgox.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: contactPort}})
	req.AppendHeader(sipgox.NewHeader("Expires", "300"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.Do(ctx, req)
	require.NoError(t, err)
	if res.StatusCode == 401 {
		res, err = cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "bob", Password: "pwbob"})
		require.NoError(t, err)
	}
	require.Equal(t, 200, res.StatusCode, res.String())
}

func TestInteropKamailio(t *testing.T) {
	kam := startKamailio(t)
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ua := newTestUA(t)
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()

			// Our REGISTER: 401 answered with the auth name, distinct from the login.
			reg, err := ua.Register(ctx, RegisterRequest{User: "1000", AuthUser: "auth1000", Password: "pw1000",
				Domain: kam, Transport: tr, Expires: 120 * time.Second})
			require.NoError(t, err)
			assert.Equal(t, 120*time.Second, reg.Expires())
			_, err = ua.Register(ctx, RegisterRequest{User: "1000", AuthUser: "auth1000", Password: "wrong", Domain: kam, Transport: tr})
			assert.ErrorIs(t, err, ErrUnauthorized)

			// Callee: sipp, registered as bob.
			sp := startSipp(t, sippUASInfoBye, "u1")
			registerContact(t, kam, sp.port)

			// INVITE through kamailio: 407 answered, routed to sipp; INFO and BYE
			// follow the Record-Route route set back through kamailio.
			d, err := ua.Invite(ctx, InviteRequest{Callee: "bob", Domain: kam, From: "1000", AuthUser: "auth1000",
				Password: "pw1000", DisplayName: "Stream", Transport: tr, Offer: []byte(ourSDP)})
			require.NoError(t, err, sp.logs())
			assert.Contains(t, string(d.AnswerSDP()), "PCMA/8000")
			require.NoError(t, d.SendDTMF(ctx, '5', true), sp.logs())
			require.NoError(t, d.Bye(ctx), sp.logs())
			sp.wait(t)

			// Unknown callee: kamailio's 404 as a typed error.
			_, err = ua.Invite(ctx, InviteRequest{Callee: "nobody", Domain: kam, From: "1000", AuthUser: "auth1000",
				Password: "pw1000", Transport: tr, Offer: []byte(ourSDP)})
			assert.ErrorIs(t, err, ErrNotFound)
			// Wrong password: rechallenged, then a 407 error.
			_, err = ua.Invite(ctx, InviteRequest{Callee: "bob", Domain: kam, From: "1000", AuthUser: "auth1000",
				Password: "nope", Transport: tr, Offer: []byte(ourSDP)})
			assert.ErrorIs(t, err, ErrUnauthorized)

			require.NoError(t, reg.Close(ctx))
		})
	}
}
