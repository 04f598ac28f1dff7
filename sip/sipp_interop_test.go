//go:build interop

package sip

import (
	"context"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sipp 3.6.1 scenarios, written at test time. Quirks (testenv.SippConfig): each
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
  <!-- sipgo hands each response to a goroutine of its own, so a 200 sent
       right after the 180 can be processed first and the 180 then comes
       too late for OnProgress; 20 ms apart, as a phone rings. -->
  <pause milliseconds="20"/>
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
` + sippOfferBody + `
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

// startSipp runs sipp with scenario as a UAS on 127.0.0.1 over transport
// ("udp" or "tcp"), for one call.
func startSipp(t *testing.T, scenario, transport string) *testenv.Sipp {
	t.Helper()
	return testenv.StartSipp(t, testenv.SippConfig{Scenario: scenario, Transport: transport, Timeout: 30 * time.Second})
}

func TestInteropSippAnswerInfoBye(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			sp := startSipp(t, sippUASInfoBye, tr)
			ua := newTestUA(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var ringing bool
			d, err := ua.Invite(ctx, InviteRequest{
				Callee: sp.URI("bob"), From: "alice", DisplayName: "Alice",
				Transport: tr, Offer: []byte(ourSDP),
				OnProgress: func(p Progress) { ringing = ringing || p.StatusCode == 180 },
			})
			require.NoError(t, err, sp.Logs())
			assert.True(t, ringing)
			assert.Contains(t, string(d.AnswerSDP()), "m=audio")
			assert.Contains(t, string(d.AnswerSDP()), "PCMA/8000")
			require.NoError(t, d.SendDTMF(ctx, '5', true), sp.Logs())
			require.NoError(t, d.Bye(ctx), sp.Logs())
			assert.NoError(t, d.Err())
			assert.NoError(t, sp.Wait(40*time.Second))
		})
	}
}

func TestInteropSippHangsUp(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			sp := startSipp(t, sippUASHangup, tr)
			ua := newTestUA(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d, err := ua.Invite(ctx, InviteRequest{
				Callee: sp.URI("bob"), From: "alice", Transport: tr, Offer: []byte(ourSDP),
			})
			require.NoError(t, err, sp.Logs())
			select {
			case <-d.Done():
			case <-ctx.Done():
				t.Fatalf("no BYE from sipp\n%s", sp.Logs())
			}
			assert.ErrorIs(t, d.Err(), ErrRemoteBye)
			assert.NoError(t, sp.Wait(40*time.Second))
		})
	}
}
