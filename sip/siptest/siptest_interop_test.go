//go:build interop

package siptest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// TestInteropSippUAC has sipp's built-in uac scenario call the peer: INVITE
// with SDP, 180, 200, ACK, a 2 s pause with RTP echoed back by sipp, BYE.
// The peer's tone must come back through sipp intact.
func TestInteropSippUAC(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			p := newPeer(t, Config{Transport: transport, Script: Script{Ring: 100 * time.Millisecond, Audio: true, ToneHz: 600, SendSR: true}})
			_, err := testenv.RunSipp(t, testenv.SippConfig{Builtin: "uac", Transport: transport, Remote: p.Addr(),
				Timeout: 30 * time.Second, Args: []string{"-s", "peer", "-rtp_echo", "-d", "2000"}}, 40*time.Second)
			require.NoError(t, err)

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
	_, err := testenv.RunSipp(t, testenv.SippConfig{Scenario: sippRegisterScenario, Remote: p.Addr(), Timeout: 30 * time.Second}, 40*time.Second)
	require.NoError(t, err)
	regs, err := p.WaitRegistrations(testCtx(t), 1)
	require.NoError(t, err)
	assert.Equal(t, "alice", regs[0].User)
	assert.Equal(t, 300, regs[0].Expires)
	assert.Equal(t, 2, p.RegisterCount())
}
