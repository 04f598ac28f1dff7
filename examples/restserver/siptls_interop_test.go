//go:build interop && linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
)

// sipTLSPortRE finds the SIP over TLS listener's port in the server's log.
var sipTLSPortRE = regexp.MustCompile(`msg="SIP over TLS" listen-port=(\d+)`)

// kamailioTLSCall is a call placed over REST to baresip registered (over
// UDP) at kamailio, through kamailio's TLS listener.
func kamailioTLSCall(callID, stream string, kam *testenv.Kamailio, ngx *testenv.Nginx) map[string]any {
	return map[string]any{
		"callId": callID, "callee": "bob", "sipDomain": kam.Host(), "sipOutboundProxy": kam.TLSAddr, "sipTransport": "tls",
		"rtmpUrl": ngx.RTMPURL(), "rtmpStream": stream, "hasAudio": "true", "hasVideo": "true",
	}
}

// checkPublished records stream from nginx while the call publishes it and
// checks that ffmpeg decodes its H.264 (baresip's 640x360) and finds
// baresip's tone in its AAC.
func checkPublished(t *testing.T, rec *testenv.Recording, toneHz float64) {
	t.Helper()
	require.NoError(t, rec.Wait(60*time.Second), "ffmpeg read the stream from nginx")
	streams := testenv.ProbeStreams(t, rec.File)
	require.Equal(t, "h264", streams["video"].CodecName)
	require.Equal(t, 640, streams["video"].Width)
	require.Equal(t, "aac", streams["audio"].CodecName)
	rep := testenv.AnalyseRecording(t, rec, 3*time.Second)
	t.Logf("published: %s", rep)
	require.Greater(t, rep.Video.DecodedFrames, 25, "H.264 decoded")
	pcm := testenv.DecodePCM(t, rec.File, 8000)
	require.Greater(t, len(pcm), 8000*3)
	// Blocks of 250 ms: the tone fills most of them (the stream may start
	// with the silence sent before baresip's audio arrives).
	var tones []string
	toned := 0
	for i := 0; i+2000 <= len(pcm); i += 2000 {
		tone, off := testmedia.Goertzel(pcm[i:i+2000], 8000, toneHz), testmedia.Goertzel(pcm[i:i+2000], 8000, toneHz*1.7)
		if tone > 0.8 && off < 0.05 {
			toned++
		}
		tones = append(tones, fmt.Sprintf("%.2f/%.2f", tone, off))
	}
	t.Logf("audio, %.0f Hz / %.0f Hz per 250 ms: %v", toneHz, toneHz*1.7, tones)
	require.GreaterOrEqual(t, toned, 8, "2 s of baresip's tone")
}

// A call with "sipTransport":"tls" goes to kamailio over TLS (mutual:
// kamailio requires our -sip-tls-cert, we verify its certificate with
// -sip-tls-ca and its address), kamailio relays it to baresip, and the
// stream on nginx-rtmp decodes, baresip's tone in it. Kamailio's log shows
// the INVITE came over TLS, with a Contact and Via naming our -sip-tls
// listener, and kamailio's BYE reaches us there (the call ends without our
// terminate). With the wrong CA the call fails (the log says why) and no
// TLS connection is left open.
func TestInteropSIPTLSThroughKamailio(t *testing.T) {
	ours := testenv.SelfSigned(t, "restserver.test")
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Users: map[string]string{"bob": "pwbob"}, HangUpAfter: 15 * time.Second,
		TLS: &testenv.KamailioTLS{ClientCA: ours.CertFile, RequireClientCert: true}})
	testenv.StartBaresip(t, testenv.BaresipConfig{User: "bob", Password: "pwbob", Registrar: kam.Addr, Video: true, ToneHz: 1000})
	ngx := testenv.StartNginxRTMP(t)
	hook := newWebhookRecorder(t)
	srv := startRun(t, "-sip-tls", "127.0.0.1:0", "-sip-tls-cert", ours.CertFile, "-sip-tls-key", ours.KeyFile,
		"-sip-tls-ca", kam.TLSCert.CertFile, "-webhook", hook.srv.URL)
	m := sipTLSPortRE.FindStringSubmatch(srv.log.String())
	require.NotNil(t, m, "no SIP over TLS listener in the log:\n%s", srv.log.String())
	tlsPort := m[1]
	require.NotEqual(t, "0", tlsPort)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := testenv.RecordStream(t, ngx.RTMPURL()+"/tls", 5*time.Second)
	require.NoError(t, ngx.WaitStream(ctx, "tls"), "ffmpeg waits at nginx before the call starts: %s", rec.Log())
	code, body := rest(t, srv.base, "/call/startup", kamailioTLSCall("tls-1", "tls", kam, ngx))
	require.Equal(t, http.StatusOK, code, string(body))
	waitCall(t, srv.base, "tls-1", "RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	checkPublished(t, rec, 1000)

	// Kamailio hangs up: its BYE goes to our Contact, the TLS listener.
	hook.waitStatus(t, "tls-1", "FINISH")
	klog := kam.Log()
	t.Logf("kamailio:\n%s", grepLines(klog, "INVITE", "BYE"))
	t.Logf("server: %s", grepLines(srv.log.String(), "BYE", "dialog ended"))
	// The INVITE came over TLS (not a fallback to UDP or TCP), naming our
	// TLS listener in Contact and Via.
	require.Regexp(t, `req INVITE sip:bob@127\.0\.0\.1\S* from 127\.0\.0\.1:\d+/tls`, klog)
	require.NotRegexp(t, `req INVITE sip:bob@\S* from 127\.0\.0\.1:\d+/(udp|tcp)\n`, klog)
	require.Regexp(t, `hdr INVITE from tls: Contact <sips?:[^>]*@127\.0\.0\.1:`+tlsPort+`;transport=tls>`, klog)
	require.Regexp(t, `Via SIP/2\.0/TLS 127\.0\.0\.1:`+tlsPort+`;`, klog)
	require.NotContains(t, klog, "req BYE", "the BYE was kamailio's, not ours")
	require.Contains(t, srv.log.String(), `msg="sip: dialog ended" call_id=tls-1 reason="sip: remote hangup"`)

	// A CA that did not sign kamailio's certificate: the call fails, the
	// server's log says why, and no TLS connection is left behind.
	require.NoError(t, srv.stop()) // its connection to kamailio ends with it
	require.Eventually(t, func() bool { return countConns(t, kam.TLSPort) == 0 }, 10*time.Second, 100*time.Millisecond)
	other := testenv.SelfSigned(t, "other.test")
	bad := startRun(t, "-sip-tls-cert", ours.CertFile, "-sip-tls-key", ours.KeyFile, "-sip-tls-ca", other.CertFile, "-webhook", hook.srv.URL)
	code, body = rest(t, bad.base, "/call/startup", kamailioTLSCall("tls-bad-ca", "wrongca", kam, ngx))
	require.Equal(t, http.StatusOK, code, string(body))
	ev := hook.event(t, "tls-bad-ca", "FAILED")
	t.Logf("wrong CA: %+v", ev)
	// The webhook says the connection failed (sipMessage; no SIP answer, so
	// no SIP code; API callers get no network details, see Security), the
	// server's log says why.
	require.Equal(t, "connection failed", ev.SIPMessage)
	require.Regexp(t, `msg="call ended" callID=tls-bad-ca status=FAILED .*x509: certificate signed by unknown authority`, bad.log.String())
	require.Eventually(t, func() bool { return countConns(t, kam.TLSPort) == 0 }, 10*time.Second, 100*time.Millisecond,
		"TLS connections to kamailio left open")
	require.NoError(t, bad.stop())

	// Without our certificate kamailio refuses the connection (mutual TLS).
	// Under TLS 1.3 its alert comes after the handshake, about when the
	// INVITE is written: when the write fails the call fails at once (no
	// SIP status, a transport error in the log); when the write went out
	// first, sipgo (v1.7.3) does not fail the transaction as the connection
	// closes, and the call fails at Timer B: 408 after 32 s.
	anon := startRun(t, "-sip-tls-ca", kam.TLSCert.CertFile, "-webhook", hook.srv.URL)
	invites := strings.Count(kam.Log(), "req INVITE")
	t0 := time.Now()
	code, body = rest(t, anon.base, "/call/startup", kamailioTLSCall("tls-no-cert", "nocert", kam, ngx))
	require.Equal(t, http.StatusOK, code, string(body))
	require.Eventually(t, func() bool { c, _ := hook.statuses("tls-no-cert"); return slices.Contains(c, "FAILED") }, 60*time.Second, 100*time.Millisecond)
	ev = hook.event(t, "tls-no-cert", "FAILED")
	t.Logf("no client certificate: failed after %v: %+v\n%s", time.Since(t0), ev, grepLines(anon.log.String(), "tls-no-cert"))
	require.Contains(t, []int{0, 408}, ev.SIPStatus)
	require.Equal(t, invites, strings.Count(kam.Log(), "req INVITE"), "no INVITE got through without a client certificate")
	require.Eventually(t, func() bool { return countConns(t, kam.TLSPort) == 0 }, 10*time.Second, 100*time.Millisecond,
		"the refused TLS connection left open")
	require.NoError(t, anon.stop())
}

// event waits for the webhook's CallStatusEvent with status for callID
// and returns it.
func (w *webhookRecorder) event(t *testing.T, callID, status string) wcsapi.StatusEvent {
	t.Helper()
	w.waitStatus(t, callID, status)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.events {
		if ev.CallID == callID && ev.Type == "CallStatusEvent" && ev.Status == status {
			return ev
		}
	}
	t.Fatalf("no %s event for %s", status, callID)
	return wcsapi.StatusEvent{}
}

// grepLines returns the lines of text that contain one of words.
func grepLines(text string, words ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// countConns counts this machine's established TCP connections to
// 127.0.0.1:port (from /proc/net/tcp).
func countConns(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	require.NoError(t, err)
	want := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		// local address, remote address, state 01 = ESTABLISHED.
		if len(f) > 3 && f[2] == want && f[3] == "01" {
			n++
		}
	}
	return n
}

// An SRTP call requested over REST ("srtp":"required"), over TLS so the
// SDES keys travel encrypted (our BYE too), to baresip with
// mediaenc=srtp-mand: the call
// reports secure media and its stream on nginx-rtmp decodes, baresip's
// tone in it; baresip says both streams are SRTP. The same request to a
// baresip without SRTP fails with its refusal's status (488). No key
// reaches the log.
func TestInteropSRTPOverREST(t *testing.T) {
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Users: map[string]string{"bob": "pwbob", "carol": "pwcarol"},
		TLS: &testenv.KamailioTLS{}})
	bob := testenv.StartBaresip(t, testenv.BaresipConfig{User: "bob", Password: "pwbob", Registrar: kam.Addr, Video: true,
		ToneHz: 1000, MediaEnc: "srtp-mand"})
	testenv.StartBaresip(t, testenv.BaresipConfig{User: "carol", Password: "pwcarol", Registrar: kam.Addr})
	ngx := testenv.StartNginxRTMP(t)
	hook := newWebhookRecorder(t)
	srv := startRun(t, "-sip-tls-ca", kam.TLSCert.CertFile, "-webhook", hook.srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := testenv.RecordStream(t, ngx.RTMPURL()+"/srtp", 5*time.Second)
	require.NoError(t, ngx.WaitStream(ctx, "srtp"), "ffmpeg waits at nginx before the call starts: %s", rec.Log())
	req := kamailioTLSCall("srtp-1", "srtp", kam, ngx)
	req["srtp"] = "required"
	code, body := rest(t, srv.base, "/call/startup", req)
	require.Equal(t, http.StatusOK, code, string(body))
	c := waitCall(t, srv.base, "srtp-1", "RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	require.True(t, c.Secure, "SRTP media: %+v", c)
	require.Equal(t, "required", c.SRTP)
	checkPublished(t, rec, 1000)
	for _, kind := range []string{"audio", "video"} {
		require.Contains(t, bob.Output(), "srtp: "+kind+": SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)", "baresip's %s is SRTP", kind)
	}
	c, _ = findCall(t, srv.base, "srtp-1")
	require.NotNil(t, c.MediaStats)
	t.Logf("media stats: %+v", *c.MediaStats)
	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "srtp-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	hook.waitStatus(t, "srtp-1", "FINISH")
	require.Eventually(t, func() bool { return strings.Contains(kam.Log(), "hdr BYE from tls:") }, 10*time.Second, 50*time.Millisecond,
		"kamailio saw no BYE over TLS:\n%s", kam.Log())
	require.Regexp(t, `req BYE \S+ from 127\.0\.0\.1:\d+/tls`, kam.Log(), "our BYE went over TLS")

	req = kamailioTLSCall("srtp-refused", "srtp-refused", kam, ngx)
	req["callee"], req["srtp"], req["hasVideo"] = "carol", "required", "false"
	code, body = rest(t, srv.base, "/call/startup", req)
	require.Equal(t, http.StatusOK, code, string(body))
	ev := hook.event(t, "srtp-refused", "FAILED")
	t.Logf("required, refused: %+v", ev)
	require.Equal(t, 488, ev.SIPStatus, "baresip refuses RTP/SAVP")
	require.Equal(t, "Not Acceptable Here", ev.SIPMessage)
	require.NotContains(t, srv.log.String(), "inline:", "no SDES key in the log")
}
