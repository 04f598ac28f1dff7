//go:build interop

package sip

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Call control against sipp 3.6.1 as the callee: hold and unhold with
// re-INVITE, 491 glare, blind and attended transfer with REFER and NOTIFY.
// The scenarios are in testdata/sipp_*.xml; each checks what it receives
// with <ereg check_it="true">, so a wrong SDP direction or Refer-To fails
// sipp's call and its exit code.

func sippScenario(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return string(b)
}

// sippDial starts sipp with the scenario file name (its TARGET_RE-like
// placeholders replaced by vars) over tr, places a call to it from ua and
// returns sipp, the dialog and a context that ends with the test (30 s).
func sippDial(t *testing.T, ua *UA, name, tr string, vars map[string]string) (*testenv.Sipp, *Dialog, context.Context) {
	t.Helper()
	sp := testenv.StartSipp(t, testenv.SippConfig{Scenario: sippScenario(t, name), Transport: tr, Vars: vars, Timeout: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	d, err := ua.Invite(ctx, InviteRequest{Callee: sp.URI("bob"), From: "alice", Transport: tr, Offer: []byte(ourSDP)})
	require.NoError(t, err, sp.Logs())
	return sp, d, ctx
}

func TestInteropSippReinviteHoldUnhold(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			sp, d, ctx := sippDial(t, newTestUA(t), "sipp_reinvite_hold.xml", tr, nil)
			assert.True(t, d.PeerAllows("REFER"))
			assert.True(t, d.PeerSupports("replaces"))

			answer, err := d.Reinvite(ctx, []byte(holdSDP))
			require.NoError(t, err, sp.Logs())
			assert.Equal(t, []string{"recvonly"}, sdpDirections(answer))
			answer, err = d.Reinvite(ctx, []byte(resumeSDP))
			require.NoError(t, err, sp.Logs())
			assert.Equal(t, []string{"sendrecv"}, sdpDirections(answer))
			require.NoError(t, d.Bye(ctx), sp.Logs())
			require.NoError(t, sp.Wait(40*time.Second))
			msgs := sp.Messages()
			assert.Regexp(t, `X-Hold: a=sendonly`, msgs, "sipp saw the hold offer")
			assert.Regexp(t, `X-Resume: a=sendrecv`, msgs, "sipp saw the resume offer")
		})
	}
}

// TestInteropSippReinviteWrongDirectionFails: the scenario's check is real:
// a sendrecv offer where it expects sendonly fails sipp's call.
func TestInteropSippReinviteWrongDirectionFails(t *testing.T) {
	sp, d, ctx := sippDial(t, newTestUA(t), "sipp_reinvite_hold.xml", "udp", nil)
	_, _ = d.Reinvite(ctx, []byte(resumeSDP)) // sipp wants sendonly: it aborts the call
	_ = d.Bye(ctx)
	err := sp.Wait(30 * time.Second)
	require.Error(t, err, "sipp accepted a sendrecv offer as a hold")
	assert.Contains(t, err.Error(), "regexp")
}

func TestInteropSippReinvite491(t *testing.T) {
	sp, d, ctx := sippDial(t, newTestUA(t), "sipp_reinvite_491.xml", "udp", nil)
	start := time.Now()
	answer, err := d.Reinvite(ctx, []byte(holdSDP))
	took := time.Since(start)
	require.NoError(t, err, sp.Logs())
	assert.Equal(t, []string{"recvonly"}, sdpDirections(answer))
	assert.GreaterOrEqual(t, took, 2100*time.Millisecond, "retried before RFC 3261's glare delay")
	assert.Less(t, took, 6*time.Second)
	require.NoError(t, d.Bye(ctx), sp.Logs())
	require.NoError(t, sp.Wait(40*time.Second))
	t.Logf("re-INVITE answered after a 491 and a retry in %v", took.Round(time.Millisecond))
}

// referRun places a call to a sipp running sipp_refer.xml, transfers it
// and returns the progress reports.
func referRun(t *testing.T, tr, targetRE, final, target string, opts ReferOptions, ua *UA) []ReferProgress {
	t.Helper()
	sp, d, ctx := sippDial(t, ua, "sipp_refer.xml", tr, map[string]string{"TARGET_RE": targetRE, "FINAL_STATUS": final})
	var mu sync.Mutex
	var got []ReferProgress
	fin := make(chan struct{})
	opts.OnProgress = func(p ReferProgress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		if p.Final {
			close(fin)
		}
	}
	require.NoError(t, d.Refer(ctx, target, opts), sp.Logs())
	select {
	case <-fin:
	case <-ctx.Done():
		t.Fatalf("no final NOTIFY\n%s", sp.Logs())
	}
	require.NoError(t, d.Bye(ctx), sp.Logs())
	require.NoError(t, sp.Wait(40*time.Second))
	mu.Lock()
	defer mu.Unlock()
	return got
}

func TestInteropSippReferBlind(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ua := newTestUA(t)
			// A bare number becomes a SIP URI at the dialog's domain
			// (sipp's address).
			got := referRun(t, tr, `^ *.sip:\+4930123@127\.0\.0\.1:[0-9]+>$`, "200 OK", "+4930123", ReferOptions{}, ua)
			assert.Equal(t, []ReferProgress{{100, "Trying", false}, {200, "OK", true}}, got)
		})
	}
}

func TestInteropSippReferTransferFails(t *testing.T) {
	ua := newTestUA(t)
	got := referRun(t, "udp", `^ *.sip:carol@pbx\.example>$`, "486 Busy Here", "sip:carol@pbx.example", ReferOptions{}, ua)
	assert.Equal(t, []ReferProgress{{100, "Trying", false}, {486, "Busy Here", true}}, got)
}

// TestInteropSippReferAttended: the Refer-To of an attended transfer
// carries the consultation call's Replaces, escaped, as sipp's regexp
// expects it.
func TestInteropSippReferAttended(t *testing.T) {
	ua := newTestUA(t)
	consult := testenv.StartSipp(t, testenv.SippConfig{Scenario: testenv.SippCallee(
		"v=0\no=c 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio [media_port] RTP/AVP 8\na=rtpmap:8 PCMA/8000\n"), Timeout: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const callID = "consult-42@sipstream.test"
	d2, err := ua.Invite(ctx, InviteRequest{Callee: consult.URI("carol"), From: "alice", CallID: callID, Offer: []byte(ourSDP)})
	require.NoError(t, err, consult.Logs())
	var ourTag, theirTag string
	require.True(t, d2.call(func() { ourTag, _ = d2.from.Params.Get("tag"); theirTag = d2.remoteTag }))
	re := `^ *.sip:127\.0\.0\.1:` + strconv.Itoa(consult.Port) + `\?Replaces=consult-42%40sipstream\.test%3Bto-tag%3D` +
		regexp.QuoteMeta(theirTag) + `%3Bfrom-tag%3D` + regexp.QuoteMeta(ourTag) + `>$`
	got := referRun(t, "udp", re, "200 OK", "", ReferOptions{Replaces: d2}, ua)
	assert.Equal(t, []ReferProgress{{100, "Trying", false}, {200, "OK", true}}, got)
	require.NoError(t, d2.Bye(ctx), consult.Logs())
	require.NoError(t, consult.Wait(40*time.Second))
}

// TestInteropSippReferWrongTargetFails: the scenario's Refer-To check is
// real: another target fails sipp's call.
func TestInteropSippReferWrongTargetFails(t *testing.T) {
	sp, d, ctx := sippDial(t, newTestUA(t), "sipp_refer.xml", "udp",
		map[string]string{"TARGET_RE": `^ *.sip:carol@pbx\.example>$`, "FINAL_STATUS": "200 OK"})
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	_ = d.Refer(short, "sip:dave@pbx.example", ReferOptions{}) // sipp 3.6.1 marks the call failed, may still answer
	_ = d.Bye(ctx)
	err := sp.Wait(30 * time.Second)
	require.Error(t, err, "sipp accepted the wrong Refer-To")
	assert.Contains(t, err.Error(), "regexp")
}
