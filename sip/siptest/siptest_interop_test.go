//go:build interop

package siptest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// runSipp runs sipp to completion (it must exit by itself) and returns its
// combined output; the process is killed at the end of the test in any case.
func runSipp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	sipp := testenv.LookPath(t, "sipp")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, sipp, append(args, "-m", "1", "-timeout", "30s", "-timeout_error", "-nostdin", "-trace_err")...)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		if b, rerr := os.ReadFile(filepath.Join(cmd.Dir, "uac_"+strconv.Itoa(cmd.Process.Pid)+"_errors.log")); rerr == nil {
			out.Write(b)
		}
	}
	return out.String(), err
}

// TestInteropSippUAC has sipp's built-in uac scenario call the peer: INVITE
// with SDP, 180, 200, ACK, a 2 s pause with RTP echoed back by sipp, BYE.
// The peer's tone must come back through sipp intact.
func TestInteropSippUAC(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			p := newPeer(t, Config{Transport: transport, Script: Script{Ring: 100 * time.Millisecond, Audio: true, ToneHz: 600, SendSR: true}})
			args := []string{"-sn", "uac", "-s", "peer", "-i", "127.0.0.1",
				"-p", strconv.Itoa(testenv.FreePort(t, transport)),
				"-mp", strconv.Itoa(testenv.FreePort(t, "udp")), "-rtp_echo", "-d", "2000", p.Addr()}
			if transport == "tcp" {
				args = append(args, "-t", "t1")
			}
			out, err := runSipp(t, args...)
			require.NoError(t, err, out)

			ctx := testCtx(t)
			c, err := p.WaitCall(ctx)
			require.NoError(t, err)
			require.NoError(t, c.WaitBye(ctx))
			r, err := c.WaitEnd(ctx)
			require.NoError(t, err)
			assert.Equal(t, EndRemoteBye, r)
			assert.Contains(t, string(c.OfferSDP()), "m=audio")
			specs := c.Streams()
			require.Len(t, specs, 1)
			assert.Equal(t, media.CodecPCMU, specs[0].Formats[0].Codec)
			// About 2 s of our 20 ms packets came back.
			assert.Greater(t, c.RTPPackets(media.KindAudio), 40)
			audio := c.ReceivedAudio()
			require.Greater(t, len(audio), 8000)
			assert.Greater(t, testmedia.Goertzel(audio[:8000], 8000, 600), 0.8)
		})
	}
}

const sippRegisterScenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register with digest">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:alice@[remote_ip]>;tag=[call_number]
      To: <sip:alice@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:alice@[local_ip]:[local_port]>
      Max-Forwards: 70
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:alice@[remote_ip]>;tag=[call_number]
      To: <sip:alice@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:alice@[local_ip]:[local_port]>
      [authentication username=alice password=s3cret]
      Max-Forwards: 70
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
`

// TestInteropSippRegister checks the registrar's digest authentication
// against sipp's own digest implementation.
func TestInteropSippRegister(t *testing.T) {
	p := newPeer(t, Config{Users: map[string]string{"alice": "s3cret"}})
	scenario := filepath.Join(t.TempDir(), "register.xml")
	require.NoError(t, os.WriteFile(scenario, []byte(sippRegisterScenario), 0o600))
	out, err := runSipp(t, "-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(testenv.FreePort(t, "udp")), p.Addr())
	require.NoError(t, err, out)
	regs, err := p.WaitRegistrations(testCtx(t), 1)
	require.NoError(t, err)
	assert.Equal(t, "alice", regs[0].User)
	assert.Equal(t, 300, regs[0].Expires)
	assert.Equal(t, 2, p.RegisterCount())
}
