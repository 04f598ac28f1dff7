//go:build interop && linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtpdtmf"
	"github.com/sipstream/sipstream/sip/siptest"
)

// Issue 17 (dial-in) against real programs: sipp as a calling phone, baresip
// calling through kamailio to the gateway registered there, and strangers
// refused without a trace.

// sipReadyRE finds the bound SIP address in the server's "ready" log line.
var sipReadyRE = regexp.MustCompile(`msg=ready sip=(\S+)`)

// sipAddrOf returns the server's SIP address (127.0.0.1:PORT, UDP).
func sipAddrOf(t *testing.T, srv *serverProcess) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := sipReadyRE.FindStringSubmatch(srv.log()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server logged no SIP address:\n%s", srv.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sippHook is the application's REST hook: the webhookRecorder for the
// call events, and the answer to OnCallEvent (the WCS way of deciding an
// incoming call) with the call objects it was given.
type sippHook struct {
	*webhookRecorder
	srv *httptest.Server

	mu       sync.Mutex
	answer   string // OnCallEvent's JSON answer
	incoming []map[string]any
}

func newSippHook(t *testing.T, answer string) *sippHook {
	h := &sippHook{webhookRecorder: newWebhookRecorder(t), answer: answer}
	events := h.webhookRecorder.srv.Config.Handler
	h.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/OnCallEvent" {
			events.ServeHTTP(rw, r)
			return
		}
		var call map[string]any
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		_ = json.Unmarshal(b, &call)
		h.mu.Lock()
		h.incoming = append(h.incoming, call)
		answer := h.answer
		h.mu.Unlock()
		rw.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(rw, answer)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// calls returns the call objects OnCallEvent received.
func (h *sippHook) calls() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.incoming...)
}

// waitEvent waits for the webhook's event of type typ with info for
// callID, and returns when it arrived.
func (h *sippHook) waitEvent(t *testing.T, callID, typ, info string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		h.webhookRecorder.mu.Lock()
		for _, ev := range h.webhookRecorder.events {
			if ev.CallID == callID && ev.Type == typ && ev.Info == info {
				h.webhookRecorder.mu.Unlock()
				return
			}
		}
		h.webhookRecorder.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s %q for %s within 20 s", typ, info, callID)
}

// sippDialInCaller is a UAC scenario: a phone that calls [service] at the
// gateway with an audio (PCMA, telephone-event) and video (H.264) offer,
// sippAnswer's SDP, whose ports, AUDIOPORT and VIDEOPORT, are
// testmedia.Replayer's (sipp 3.6 cannot play an audio and a video pcap in
// one call), sends DTMF 5 by INFO (application/dtmf-relay) once answered,
// answers the gateway's INFOs while it waits WAITMS for the test to play
// its media, and hangs up (BYE). Every <send> is followed by a <recv> (sipp 3.6.1
// aborts a call that receives while it pauses after a send).
const sippDialInCaller = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="dial-in phone">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sipp Phone" <sip:phone@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Subject: dial-in
Content-Type: application/sdp
Content-Length: [len]

` + sippAnswer + `]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sipp Phone" <sip:phone@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
[routes]
Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
INFO [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sipp Phone" <sip:phone@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 INFO
[routes]
Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Type: application/dtmf-relay
Content-Length: [len]

Signal=5
Duration=160
]]></send>
  <recv response="200"/>
  <label id="1"/>
  <recv request="INFO" timeout="WAITMS" ontimeout="9"/>
  <send next="1"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="9"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sipp Phone" <sip:phone@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 3 BYE
[routes]
Contact: <sip:phone@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
`

// sippTraceTime matches the separator line before each message of sipp's
// message trace, with its time.
var sippTraceTime = regexp.MustCompile(`(?m)^-+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$`)

// sippTimes returns the times sipp's trace gives the messages whose text
// contains first (a start line such as "INVITE sip:" or "SIP/2.0 200 ").
func sippTimes(trace, first string) []time.Time {
	var out []time.Time
	idx := sippTraceTime.FindAllStringSubmatchIndex(trace, -1)
	for i, m := range idx {
		end := len(trace)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		if !strings.Contains(trace[m[1]:end], "\n"+first) {
			continue
		}
		if at, err := time.ParseInLocation("2006-01-02 15:04:05.000000", trace[m[2]:m[3]], time.Local); err == nil {
			out = append(out, at)
		}
	}
	return out
}

// sendRFC2833 sends digit as RFC 4733 events (payload type 101, 100 ms)
// from conn to dst on an SSRC of its own, at the schedule's pace.
func sendRFC2833(t *testing.T, conn *net.UDPConn, dst *net.UDPAddr, digit rune) {
	t.Helper()
	code, ok := rtpdtmf.EventCode(digit)
	require.True(t, ok)
	enc, err := rtpdtmf.NewEncoder(rtpdtmf.EncoderConfig{PayloadType: 101, SSRC: rand.Uint32()})
	require.NoError(t, err)
	sched, err := enc.Encode(rtpdtmf.Event{Code: code, Duration: 100 * time.Millisecond, Volume: 10}, rand.Uint32())
	require.NoError(t, err)
	seq := uint16(rand.Uint32())
	start := time.Now()
	for i, tp := range sched {
		time.Sleep(time.Until(start.Add(tp.At)))
		tp.Packet.SequenceNumber = seq + uint16(i)
		b, err := tp.Packet.Marshal()
		require.NoError(t, err)
		_, err = conn.WriteToUDP(b, dst)
		require.NoError(t, err)
	}
}

// TestInteropDialInSippAV: sipp calls the gateway (-inbound-rtmp-url,
// -inbound-allow 127.0.0.1/32) as a phone with an A/V offer; the REST hook
// is asked (OnCallEvent, incoming) and answers {} (the flags decide); media
// from our replayer reaches nginx-rtmp at live/{Request-URI user}, decoded
// by ffmpeg as H.264 and AAC with every IDR within 20 ms of its tone burst;
// DTMF by INFO and by RFC 2833 is reported (DtmfEvent); sipp's BYE ends
// the call FINISH and the stream leaves nginx.
func TestInteropDialInSippAV(t *testing.T) {
	ngx := testenv.StartNginxRTMP(t)
	hook := newSippHook(t, "{}")
	rp, err := testmedia.NewReplayer(testmedia.ReplayerConfig{Audio: media.CodecPCMA, Burst: 200 * time.Millisecond, Video: true, RTCP: true})
	require.NoError(t, err)
	t.Cleanup(rp.Close)
	srv := startServerProcess(t, "-webhook", hook.srv.URL,
		"-inbound-rtmp-url", ngx.RTMPURL(), "-inbound-allow", "127.0.0.1/32")
	sipAddr := sipAddrOf(t, srv)

	const stream = "dialin1"
	const callID = "dialin-av-1@127.0.0.1"
	// nginx holds a player until the publisher comes: the file has the
	// stream from its first tag.
	recording := testenv.RecordStream(t, ngx.RTMPURL()+"/"+stream, 10*time.Second)
	sipp := testenv.StartSipp(t, testenv.SippConfig{Scenario: sippDialInCaller, Remote: sipAddr, Timeout: 120 * time.Second,
		Vars: map[string]string{"AUDIOPORT": strconv.Itoa(rp.AudioPort()), "VIDEOPORT": strconv.Itoa(rp.VideoPort()), "WAITMS": "30000"},
		Args: []string{"-s", stream, "-cid_str", "dialin-av-%u@%s"}})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	audioPort, err := sipp.AnsweredPort(ctx, "audio")
	require.NoError(t, err)
	videoPort, err := sipp.AnsweredPort(ctx, "video")
	require.NoError(t, err)
	audioDst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: audioPort}
	replayCtx, stopReplay := context.WithCancel(context.Background())
	replayDone := make(chan struct{})
	go func() {
		defer close(replayDone)
		if _, _, err := rp.Run(replayCtx, audioDst, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: videoPort}); err != nil && replayCtx.Err() == nil {
			t.Error(err)
		}
	}()
	defer func() { stopReplay(); <-replayDone }()

	c := waitCall(t, srv.base, callID, "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
	assert.True(t, c.Incoming, "the call object says incoming")
	assert.Equal(t, "phone", c.Caller)
	assert.Equal(t, stream, c.Callee)
	c = waitCall(t, srv.base, callID, "RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool { return c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE" })
	active := time.Now()
	assert.Equal(t, stream, c.RTMPStream)

	// The REST hook was asked first (the WCS way), with the call as RING.
	calls := hook.calls()
	require.NotEmpty(t, calls, "OnCallEvent was not POSTed")
	assert.Equal(t, true, calls[0]["incoming"], "%v", calls[0])
	assert.Equal(t, "RING", calls[0]["status"], "%v", calls[0])
	assert.Equal(t, stream, calls[0]["callee"], "%v", calls[0])
	assert.Equal(t, "phone", calls[0]["caller"], "%v", calls[0])

	// INFO dtmf-relay (sipp sent it right after its ACK).
	hook.waitEvent(t, callID, "DtmfEvent", "5")

	require.NoError(t, recording.Wait(60*time.Second))
	stopReplay()
	<-replayDone
	rep := testenv.AnalyseRecording(t, recording, 8*time.Second)
	t.Logf("published stream: %s", rep)
	streams := testenv.ProbeStreams(t, recording.File)
	assert.Equal(t, "h264", streams["video"].CodecName)
	assert.Equal(t, testmedia.ClipWidth, streams["video"].Width)
	assert.Equal(t, testmedia.ClipHeight, streams["video"].Height)
	assert.Equal(t, "aac", streams["audio"].CodecName)
	assert.Empty(t, testenv.DecodeErrors(t, recording.File), "ffmpeg decodes the published stream without errors")
	av := testenv.KeyframeToneOffsets(t, recording.File)
	t.Logf("A/V offset (tone onset - IDR time, + = audio late): median/worst %v; all %v (IDRs %d, unmatched %d)", av, av.Offsets, av.Flashes, av.Skipped)
	require.GreaterOrEqual(t, len(av.Offsets), 5, "IDRs matched to tone bursts: %v", av)
	for _, o := range av.Offsets {
		assert.LessOrEqual(t, o.Abs(), 20*time.Millisecond, "A/V offset %v", av.Offsets)
	}

	// RFC 2833 from the phone's audio port, once its media stopped.
	sendRFC2833(t, rp.AudioConn, audioDst, '7')
	hook.waitEvent(t, callID, "DtmfEvent", "7")

	// sipp hangs up once its wait is over: the call ends FINISH and the
	// stream leaves nginx.
	require.NoError(t, sipp.Wait(60*time.Second), "sipp's call passed its scenario (its BYE answered 200)")
	hook.waitStatus(t, callID, "FINISH")
	st, _ := hook.statuses(callID)
	t.Logf("webhook statuses of %s: %v", callID, st)
	assert.True(t, inOrder(st, []string{"ESTABLISHED", "FINISH"}), "%v", st)
	require.Eventually(t, func() bool {
		list, err := ngx.Streams(context.Background())
		if err != nil {
			return false
		}
		for _, s := range list {
			if s.Name == stream && s.Publishing != nil {
				return false
			}
		}
		return true
	}, 15*time.Second, 100*time.Millisecond, "the stream is still published on nginx after the BYE")
	msgs := sipp.Messages()
	invite, trying, ok := sippTimes(msgs, "INVITE sip:"), sippTimes(msgs, "SIP/2.0 100 "), sippTimes(msgs, "SIP/2.0 200 ")
	if len(invite) > 0 && len(trying) > 0 && len(ok) > 0 {
		t.Logf("sipp's trace: INVITE → 100 Trying %v, → 200 OK %v; RTMP_STREAM_ACTIVE seen by polling %v after the 200",
			trying[0].Sub(invite[0]).Round(100*time.Microsecond), ok[0].Sub(invite[0]).Round(100*time.Microsecond), active.Sub(ok[0]).Round(time.Millisecond))
	}
	assert.Contains(t, msgs, "Signal=5")
	assert.Regexp(t, `(?m)^BYE sip:`, msgs)
}

// registrations reads /rest-api/registration/find_all: the list, and the
// body as received. No registration at all is a 404 (as the product's
// find_all answers when it finds nothing): an empty list. Anything else
// unexpected is an error (no require: it runs in Eventually's goroutine).
func registrations(t *testing.T, base string) ([]map[string]any, string, error) {
	t.Helper()
	code, body := rest(t, base, "/registration/find_all", map[string]any{})
	switch code {
	case http.StatusNotFound:
		return nil, string(body), nil
	case http.StatusOK:
	default:
		return nil, string(body), fmt.Errorf("registration/find_all: %d %s", code, body)
	}
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, string(body), fmt.Errorf("registration/find_all: %w: %s", err, body)
	}
	return list, string(body), nil
}

// TestInteropDialInBaresipKamailio: the gateway registers to kamailio as
// "gw" (-account); baresip, registered there too, calls gw, kamailio
// forwards the INVITE to the gateway's registered contact, and the call is
// answered (it comes from the account's registrar) and published at
// live/gw, where ffmpeg decodes baresip's H.264 and finds its 1 kHz tone
// in the AAC (checkPublished).
// /rest-api/registration/find_all shows the account REGISTERED, with no
// password.
func TestInteropDialInBaresipKamailio(t *testing.T) {
	const gwPassword = "pw-gw-4711"
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Users: map[string]string{"alice": "pwalice", "gw": gwPassword}})
	ngx := testenv.StartNginxRTMP(t)
	srv := startServerProcess(t, "-account", "sip:gw:"+gwPassword+"@"+kam.Addr, "-inbound-rtmp-url", ngx.RTMPURL())

	var list []map[string]any
	var body string
	require.Eventually(t, func() bool {
		var err error
		list, body, err = registrations(t, srv.base)
		return err == nil && len(list) == 1 && list[0]["state"] == "REGISTERED"
	}, 30*time.Second, 100*time.Millisecond, "the account did not reach REGISTERED: %s", body)
	t.Logf("registration/find_all: %s", body)
	assert.Equal(t, "gw", list[0]["user"])
	assert.NotContains(t, body, gwPassword)
	assert.Contains(t, kam.Log(), "req REGISTER")

	b := testenv.StartBaresip(t, testenv.BaresipConfig{User: "alice", Password: "pwalice", Registrar: kam.Addr, Video: true, Control: true, ToneHz: 1000})
	recording := testenv.RecordStream(t, ngx.RTMPURL()+"/gw", 6*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	require.NoError(t, b.Dial(ctx, "sip:gw@"+kam.Addr))
	// H.264 640x360 and AAC decoded, baresip's 1 kHz tone in it.
	checkPublished(t, recording, 1000)
	t.Logf("6 s recorded %v after baresip dialled", time.Since(t0).Round(time.Millisecond))

	id := findOnlyCall(t, srv.base)
	c, ok := findCall(t, srv.base, id)
	require.True(t, ok)
	assert.True(t, c.Incoming)
	assert.Equal(t, "alice", c.Caller)
	assert.Equal(t, "gw", c.Callee)
	_, err := b.Command(ctx, "hangup", "")
	require.NoError(t, err)
	// baresip's BYE ends the call: FINISH, then gone from /call/find.
	require.Eventually(t, func() bool {
		c, ok := findCall(t, srv.base, id)
		return !ok || c.Status == "FINISH"
	}, 30*time.Second, 100*time.Millisecond, "the call did not end after baresip hung up")
	assert.NotContains(t, srv.log(), gwPassword, "the account's password is not logged")
}

// rtpSockets counts the UDP sockets of process pid bound to a port in
// [lo, hi]: its socket inodes (/proc/PID/fd) found in /proc/net/udp.
func rtpSockets(t *testing.T, pid, lo, hi int) int {
	t.Helper()
	inodes := map[string]bool{}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	for _, e := range ents {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if ino, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	b, err := os.ReadFile("/proc/net/udp")
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 10 || !inodes[f[9]] {
			continue
		}
		_, portHex, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseInt(portHex, 16, 32); err == nil && int(p) >= lo && int(p) <= hi {
			n++
		}
	}
	return n
}

// fdCount counts the open file descriptors of process pid.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	return len(ents)
}

// serverFootprint is what a refused INVITE must not leave behind.
type serverFootprint struct {
	fds, goroutines, rtpPorts int
}

func footprint(t *testing.T, srv *serverProcess, lo, hi int) serverFootprint {
	t.Helper()
	code, metrics := getText(t, srv.base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	return serverFootprint{fds: fdCount(t, srv.p.Pid()), goroutines: int(metricValue(t, metrics, "go_goroutines")), rtpPorts: rtpSockets(t, srv.p.Pid(), lo, hi)}
}

// settled waits until the server's footprint is back to at most base (one
// goroutine of slack: the HTTP server's for the /metrics request itself)
// and returns it.
func settled(t *testing.T, srv *serverProcess, lo, hi int, base serverFootprint) serverFootprint {
	t.Helper()
	var now serverFootprint
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		now = footprint(t, srv, lo, hi)
		if now.fds <= base.fds && now.goroutines <= base.goroutines+1 && now.rtpPorts == 0 {
			break
		}
	}
	return now
}

// steady waits until the server's footprint holds still (the same twice,
// 500 ms apart, with no RTP socket bound) and returns it: the baseline.
func steady(t *testing.T, srv *serverProcess, lo, hi int) serverFootprint {
	t.Helper()
	prev := footprint(t, srv, lo, hi)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		now := footprint(t, srv, lo, hi)
		if now == prev && now.rtpPorts == 0 {
			return now
		}
		prev = now
	}
	return prev
}

// getText GETs url and returns the status and the body.
func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	// No keep-alive: an idle connection would hold goroutines of the
	// server's that the footprint counts.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestInteropDialInStrangers: a gateway that takes calls from digest users
// (-inbound-users) answers a caller with the right password, then refuses
// 30 INVITEs without credentials (401) and 30 with a wrong password (403);
// a gateway that takes calls only from -inbound-allow 10.0.0.0/8 refuses
// loopback callers 403. No refusal leaves an open file, a goroutine or an
// RTP port behind (the process's /proc fd count, go_goroutines, the RTP
// range's sockets), and no password reaches the log.
func TestInteropDialInStrangers(t *testing.T) {
	ngx := testenv.StartNginxRTMP(t)
	lo := 20000 + 2*rand.IntN(4000)
	hi := lo + 99
	usersFile := filepath.Join(t.TempDir(), "inbound-users")
	require.NoError(t, os.WriteFile(usersFile, []byte("carol:pw-carol-77\n"), 0o600))
	srv := startServerProcess(t, "-rtp-ports", fmt.Sprintf("%d-%d", lo, hi),
		"-inbound-users", usersFile, "-inbound-rtmp-url", ngx.RTMPURL())
	target := "sip:dialin@" + sipAddrOf(t, srv)

	caller, err := siptest.NewPeer(siptest.Config{User: "carol"})
	require.NoError(t, err)
	defer caller.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// The right password gets through (so that what follows is a refusal,
	// not a gateway that answers nobody).
	call, err := caller.Call(ctx, target, siptest.CallOptions{Password: "pw-carol-77", NoVideo: true, Script: siptest.Script{Audio: true}})
	require.NoError(t, err, srv.log())
	require.NoError(t, call.WaitRTP(ctx, media.KindAudio, 10), "the gateway sends RTP (silence) back")
	require.NoError(t, call.Hangup(ctx))
	base := steady(t, srv, lo, hi)
	require.Zero(t, base.rtpPorts, "the answered call's ports were given back")
	t.Logf("footprint after the answered call: %+v", base)

	const n = 30
	t0 := time.Now()
	for i := range n {
		var se *siptest.StatusError
		_, err := caller.Call(ctx, target, siptest.CallOptions{NoVideo: true})
		require.True(t, errors.As(err, &se), "INVITE %d without credentials: %v", i, err)
		require.Equal(t, 401, se.Code)
		_, err = caller.Call(ctx, target, siptest.CallOptions{Password: "wrong-pw", NoVideo: true})
		require.True(t, errors.As(err, &se), "INVITE %d with a wrong password: %v", i, err)
		require.Equal(t, 403, se.Code)
	}
	t.Logf("%d INVITEs refused in %v", 2*n, time.Since(t0).Round(time.Millisecond))
	after := settled(t, srv, lo, hi, base)
	t.Logf("footprint after %d refusals: %+v (before %+v)", 2*n, after, base)
	assert.LessOrEqual(t, after.fds, base.fds, "open files")
	assert.LessOrEqual(t, after.goroutines, base.goroutines+1, "goroutines")
	assert.Zero(t, after.rtpPorts, "RTP ports bound")
	_, metrics := getText(t, srv.base+"/metrics")
	t.Logf("incoming metrics:\n%s", grepLines(metrics, "sipstream_incoming"))
	assert.Regexp(t, `(?m)^sipstream_incoming\S*\{[^}]*unauthorized[^}]*\} [1-9]`, metrics)
	assert.Regexp(t, `(?m)^sipstream_incoming\S*\{[^}]*forbidden[^}]*\} [1-9]`, metrics)
	assert.NotContains(t, srv.log(), "pw-carol-77")
	assert.NotContains(t, srv.log(), "wrong-pw")

	// Only 10.0.0.0/8 may call: loopback is a stranger, refused 403.
	lo2 := lo + 200
	srv2 := startServerProcess(t, "-rtp-ports", fmt.Sprintf("%d-%d", lo2, lo2+99),
		"-inbound-allow", "10.0.0.0/8", "-inbound-rtmp-url", ngx.RTMPURL())
	target2 := "sip:dialin@" + sipAddrOf(t, srv2)
	base2 := steady(t, srv2, lo2, lo2+99)
	for i := range n {
		var se *siptest.StatusError
		_, err := caller.Call(ctx, target2, siptest.CallOptions{NoVideo: true})
		require.True(t, errors.As(err, &se), "INVITE %d from outside -inbound-allow: %v", i, err)
		require.Equal(t, 403, se.Code)
	}
	after2 := settled(t, srv2, lo2, lo2+99, base2)
	t.Logf("-inbound-allow server: footprint after %d refusals %+v (before %+v)", n, after2, base2)
	assert.LessOrEqual(t, after2.fds, base2.fds, "open files")
	assert.LessOrEqual(t, after2.goroutines, base2.goroutines+1, "goroutines")
	assert.Zero(t, after2.rtpPorts, "RTP ports bound")
}
