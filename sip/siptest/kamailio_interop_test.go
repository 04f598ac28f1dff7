//go:build interop

package siptest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

// kamailioConfig is a registrar and record-routing proxy without
// authentication or database (usrloc in memory).
const kamailioConfig = `#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
listen=udp:127.0.0.1:%d
mpath="%s"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
modparam("usrloc", "db_mode", 0)
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (has_totag()) {
		if (loose_route()) { t_relay(); exit; }
		if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	if (is_method("REGISTER")) { save("location"); exit; }
	if (is_method("INVITE")) { record_route(); }
	if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
	t_relay();
}
`

// kamailioModules finds the module directory of the Debian package, which
// depends on the architecture.
func kamailioModules(t *testing.T) string {
	dirs, _ := filepath.Glob("/usr/lib/*/kamailio/modules")
	dirs = append(dirs, "/usr/lib/kamailio/modules", "/usr/lib64/kamailio/modules")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "tm.so")); err == nil {
			return d + "/"
		}
	}
	t.Fatal("kamailio modules (tm.so) not found")
	return ""
}

// startKamailio runs kamailio in the foreground on a free loopback port and
// returns its address; its process group is killed at the end of the test.
func startKamailio(t *testing.T) string {
	t.Helper()
	bin := testenv.LookPath(t, "kamailio")
	dir := t.TempDir()
	port := testenv.FreePort(t, "udp")
	cfg := filepath.Join(dir, "kamailio.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(kamailioConfig, port, kamailioModules(t))), 0o600))
	cmd := exec.Command(bin, "-DD", "-E", "-f", cfg, "-Y", dir, "-w", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kamailio output:\n%s", out.String())
		}
	})
	return "127.0.0.1:" + strconv.Itoa(port)
}

// TestInteropKamailioRouting registers a peer with kamailio, calls it
// through kamailio (which record-routes), and has the peer hang up: its BYE
// must follow the route set back through kamailio to the caller.
func TestInteropKamailioRouting(t *testing.T) {
	kam := startKamailio(t)
	callee := newPeer(t, Config{User: "carol", Script: Script{Audio: true}})
	ctx := testCtx(t)
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err = callee.Register(rctx, RegisterRequest{Registrar: kam, Expires: time.Minute})
		cancel()
		if err == nil {
			break
		}
	}
	require.NoError(t, err, "kamailio did not accept the REGISTER")

	u := newUAC(t, "udp")
	d, err := u.call(ctx, "sip:carol@"+kam, u.offer(false).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	c, err := callee.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	assert.Contains(t, c.Header("Record-Route"), kam)
	readRTP(t, u.audio.rtp, 3) // media flows directly

	require.NoError(t, c.Hangup(ctx))
	select {
	case id := <-u.byes:
		assert.Equal(t, d.InviteRequest.CallID().Value(), id)
	case <-ctx.Done():
		t.Fatal("the BYE did not come back through kamailio")
	}
	assert.NotEmpty(t, callee.Requests("ACK"), "the ACK reached the peer through kamailio")
}
