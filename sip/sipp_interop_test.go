//go:build interop

package sip

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sipp 3.6.1 scenarios, written at test time. Quirks (DESIGN.md): each
// <send> goes straight to the next <recv>; every assigned variable is used.

const sippHeaderEcho = `[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]`

const sippAnswer = `  <recv request="INVITE" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
    </action>
  </recv>
  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:bob@[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:bob@[local_ip]:[local_port];transport=[transport]>
X-Caller:[$from]
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=sendrecv

    ]]>
  </send>
  <recv request="ACK" crlf="true">
  </recv>
`

// sippUASInfoBye answers, expects an INFO with DTMF 5 (fails the call
// otherwise), then our BYE.
const sippUASInfoBye = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipstream uas info bye">
` + sippAnswer + `  <recv request="INFO">
    <action>
      <ereg regexp="Signal=5" search_in="body" check_it="true" assign_to="sig"/>
    </action>
  </recv>
  <send>
    <![CDATA[
SIP/2.0 200 OK
` + sippHeaderEcho + `
X-Got: [$sig]
Content-Length: 0

    ]]>
  </send>
  <recv request="BYE">
  </recv>
  <send>
    <![CDATA[
SIP/2.0 200 OK
` + sippHeaderEcho + `
Content-Length: 0

    ]]>
  </send>
</scenario>
`

// sippUASHangup answers and hangs up itself.
const sippUASHangup = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipstream uas hangup">
` + sippAnswer + `  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
BYE sip:alice@[remote_ip]:[remote_port];transport=[transport] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:bob@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To:[$from]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true">
  </recv>
</scenario>
`

type sippProc struct {
	cmd  *exec.Cmd
	done chan error
	out  string
	port int
}

// startSipp runs sipp with scenario as a UAS on 127.0.0.1 (transport "u1"
// or "t1"), for one call.
func startSipp(t *testing.T, scenario, transport string, extra ...string) *sippProc {
	t.Helper()
	bin := testenv.LookPath(t, "sipp")
	dir := t.TempDir()
	scen := filepath.Join(dir, "scenario.xml")
	require.NoError(t, os.WriteFile(scen, []byte(scenario), 0o644))
	network := "udp"
	if transport == "t1" {
		network = "tcp"
	}
	port := testenv.FreePort(t, network)
	mediaPort := testenv.FreePort(t, "udp")
	out := filepath.Join(dir, "sipp.out")
	f, err := os.Create(out)
	require.NoError(t, err)
	args := append([]string{"-sf", scen, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mp", strconv.Itoa(mediaPort),
		"-t", transport, "-m", "1", "-timeout", "30s", "-nostdin", "-trace_err", "-trace_msg",
		"-message_file", filepath.Join(dir, "messages.log"), "-error_file", filepath.Join(dir, "errors.log")}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	p := &sippProc{cmd: cmd, done: make(chan error, 1), out: dir, port: port}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	waitBound(t, network, port)
	return p
}

// waitBound waits until something listens on 127.0.0.1:port.
func waitBound(t *testing.T, network string, port int) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if network == "tcp" {
			if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
				c.Close()
				return
			}
		} else {
			c, err := net.ListenPacket("udp4", addr)
			if err != nil {
				return // taken: the program has bound it
			}
			c.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listening on %s %s", network, addr)
}

// wait returns sipp's exit status and, on failure, its logs.
func (p *sippProc) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("sipp failed: %v\n%s", err, p.logs())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("sipp did not finish\n%s", p.logs())
	}
}

func (p *sippProc) logs() string {
	var b strings.Builder
	for _, name := range []string{"errors.log", "messages.log"} {
		data, _ := os.ReadFile(filepath.Join(p.out, name))
		if len(data) > 6000 {
			data = data[len(data)-6000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", name, data)
	}
	return b.String()
}

func TestInteropSippAnswerInfoBye(t *testing.T) {
	for _, tr := range []struct{ sipp, ours string }{{"u1", "udp"}, {"t1", "tcp"}} {
		t.Run(tr.ours, func(t *testing.T) {
			sp := startSipp(t, sippUASInfoBye, tr.sipp)
			ua := newTestUA(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var ringing bool
			d, err := ua.Invite(ctx, InviteRequest{
				Callee: "sip:bob@127.0.0.1:" + strconv.Itoa(sp.port), From: "alice", DisplayName: "Alice",
				Transport: tr.ours, Offer: []byte(ourSDP),
				OnProgress: func(p Progress) { ringing = ringing || p.StatusCode == 180 },
			})
			require.NoError(t, err, sp.logs())
			assert.True(t, ringing)
			assert.Contains(t, string(d.AnswerSDP()), "m=audio")
			assert.Contains(t, string(d.AnswerSDP()), "PCMA/8000")
			require.NoError(t, d.SendDTMF(ctx, '5', true), sp.logs())
			require.NoError(t, d.Bye(ctx), sp.logs())
			assert.NoError(t, d.Err())
			sp.wait(t)
		})
	}
}

func TestInteropSippHangsUp(t *testing.T) {
	for _, tr := range []struct{ sipp, ours string }{{"u1", "udp"}, {"t1", "tcp"}} {
		t.Run(tr.ours, func(t *testing.T) {
			sp := startSipp(t, sippUASHangup, tr.sipp)
			ua := newTestUA(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d, err := ua.Invite(ctx, InviteRequest{
				Callee: "sip:bob@127.0.0.1:" + strconv.Itoa(sp.port), From: "alice", Transport: tr.ours, Offer: []byte(ourSDP),
			})
			require.NoError(t, err, sp.logs())
			select {
			case <-d.Done():
			case <-ctx.Done():
				t.Fatalf("no BYE from sipp\n%s", sp.logs())
			}
			assert.ErrorIs(t, d.Err(), ErrRemoteBye)
			sp.wait(t)
		})
	}
}
