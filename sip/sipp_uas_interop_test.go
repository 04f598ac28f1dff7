//go:build interop

package sip

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sipp 3.6.1 calling our UA (we answer). Quirks as in sipp_interop_test.go:
// each <send> goes straight to the next <recv>.

const sippInviteHead = `INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Alice Sipp" <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
Contact: <sip:alice@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
X-Test: sipp
Content-Type: application/sdp
Content-Length: [len]
`

// sippOfferBody is sipp's SDP (an offer, or the answer of sippAnswer).
const sippOfferBody = `
v=0
o=sipp 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=sendrecv
`

// sippAckNon2xx acknowledges the last final non-2xx (same branch: [last_Via:]).
const sippAckNon2xx = `  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
`

// sippAnsweredInfoBye: after the INVITE of CSeq SEQ, wait for the 200,
// ACK it, send INFO DTMF 7, then BYE.
const sippAnsweredInfoBye = `  <recv response="100" optional="true">
  </recv>
  <recv response="180" optional="true">
  </recv>
  <recv response="200" rrs="true">
  </recv>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: SEQ ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
INFO [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: NEXT1 INFO
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal=7
Duration=160
    ]]>
  </send>
  <recv response="200">
  </recv>
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: NEXT2 BYE
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true">
  </recv>
`

// sippInvite is the first INVITE (CSeq 1) of a scenario.
var sippInvite = `  <send retrans="500">
    <![CDATA[
` + strings.Replace(sippInviteHead, "Call-ID: [call_id]\n", "Call-ID: [call_id]\nCSeq: 1 INVITE\n", 1) + sippOfferBody + `
    ]]>
  </send>
`

// sippChallenged sends the INVITE, is challenged (401), ACKs and sends it
// again (CSeq 2) with -au/-ap's credentials ([authentication]).
var sippChallenged = sippInvite + `  <recv response="100" optional="true">
  </recv>
  <recv response="401" auth="true">
  </recv>
` + sippAckNon2xx + `  <send retrans="500">
    <![CDATA[
` + strings.Replace(sippInviteHead, "Call-ID: [call_id]\n", "Call-ID: [call_id]\nCSeq: 2 INVITE\n[authentication]\n", 1) + sippOfferBody + `
    ]]>
  </send>
`

// sippUACPlain calls with an SDP offer, then INFO and BYE.
var sippUACPlain = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipstream uac plain">
` + sippInvite + strings.NewReplacer("SEQ", "1", "NEXT1", "2", "NEXT2", "3").Replace(sippAnsweredInfoBye) + `</scenario>
`

// sippUACAuth answers the challenge and goes on as sippUACPlain.
var sippUACAuth = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipstream uac digest">
` + sippChallenged + strings.NewReplacer("SEQ", "2", "NEXT1", "3", "NEXT2", "4").Replace(sippAnsweredInfoBye) + `</scenario>
`

// sippUACWrongPassword answers the challenge and gets 403.
var sippUACWrongPassword = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipstream uac wrong password">
` + sippChallenged + `  <recv response="100" optional="true">
  </recv>
  <recv response="403">
  </recv>
` + strings.Replace(sippAckNon2xx, "CSeq: 1 ACK", "CSeq: 2 ACK", 1) + `</scenario>
`

// sippCallee answers every INVITE (after Authenticate with auth, if not
// nil) and reports what it saw.
type sippCallee struct {
	mu      sync.Mutex
	users   []string
	dtmf    []rune
	headers []Header
	from    Address
	offer   []byte
	dialogs chan *Dialog
}

func newSippCallee(t *testing.T, ua *UA, auth *Authenticator) *sippCallee {
	c := &sippCallee{dialogs: make(chan *Dialog, 2)}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	ua.OnInvite(func(in *IncomingInvite) {
		wg.Add(1)
		defer wg.Done()
		user := ""
		if auth != nil {
			u, err := in.Authenticate(auth)
			if err != nil {
				return
			}
			user = u
		}
		c.mu.Lock()
		c.users = append(c.users, user)
		c.headers, c.from, c.offer = in.Headers(), in.From(), in.Offer()
		c.mu.Unlock()
		_ = in.Progress(180, "Ringing", nil)
		d, err := in.Answer(context.Background(), []byte(peerSDP), AnswerOptions{OnDTMF: func(r rune, _ time.Duration) {
			c.mu.Lock()
			c.dtmf = append(c.dtmf, r)
			c.mu.Unlock()
		}})
		if err == nil {
			c.dialogs <- d
		}
	})
	return c
}

// ended returns the answered call once sipp's BYE has ended it.
func (c *sippCallee) ended(t *testing.T, sp *testenv.Sipp) *Dialog {
	t.Helper()
	var d *Dialog
	select {
	case d = <-c.dialogs:
	case <-time.After(5 * time.Second):
		t.Fatalf("no answered call\n%s", sp.Logs())
	}
	waitRemoteBye(t, d)
	return d
}

func TestInteropSippCallsUs(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ua := newTestUA(t)
			c := newSippCallee(t, ua, nil)
			sp, err := testenv.RunSipp(t, testenv.SippConfig{Scenario: sippUACPlain, Transport: tr, Remote: uaAddr(ua, tr),
				Timeout: 30 * time.Second, Args: []string{"-s", "bob"}}, 40*time.Second)
			require.NoError(t, err)
			d := c.ended(t, sp)
			assert.True(t, d.Incoming())
			c.mu.Lock()
			defer c.mu.Unlock()
			assert.Equal(t, []rune{'7'}, c.dtmf)
			assert.Equal(t, "alice", c.from.User)
			assert.Equal(t, "Alice Sipp", c.from.DisplayName)
			assert.Contains(t, string(c.offer), "PCMA/8000")
			assert.Contains(t, c.headers, Header{Name: "X-Test", Value: "sipp"})
			assert.Contains(t, sp.Messages(), "SIP/2.0 180 Ringing")
			waitNoDialogs(t, ua)
		})
	}
}

func TestInteropSippDigest(t *testing.T) {
	ua := newTestUA(t)
	c := newSippCallee(t, ua, testAuth())
	sp, err := testenv.RunSipp(t, testenv.SippConfig{Scenario: sippUACAuth, Remote: uaAddr(ua, "udp"),
		Timeout: 30 * time.Second, Args: []string{"-s", "bob", "-au", "alice", "-ap", "s3cret"}}, 40*time.Second)
	require.NoError(t, err)
	c.ended(t, sp)
	c.mu.Lock()
	assert.Equal(t, []string{"alice"}, c.users)
	assert.Equal(t, []rune{'7'}, c.dtmf)
	for _, h := range c.headers {
		assert.NotEqual(t, "authorization", strings.ToLower(h.Name), "credentials exposed")
	}
	c.mu.Unlock()
	assert.Contains(t, sp.Messages(), `WWW-Authenticate: Digest realm="test.realm"`)
	assert.Contains(t, sp.Messages(), `Authorization: Digest username="alice"`)

	// A wrong password: 401, then 403, no call.
	_, err = testenv.RunSipp(t, testenv.SippConfig{Scenario: sippUACWrongPassword, Remote: uaAddr(ua, "udp"),
		Timeout: 30 * time.Second, Args: []string{"-s", "bob", "-au", "alice", "-ap", "wrong"}}, 40*time.Second)
	require.NoError(t, err)
	c.mu.Lock()
	assert.Len(t, c.users, 1)
	c.mu.Unlock()
	waitNoDialogs(t, ua)
}
