//go:build interop && linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// --- the server binary, built once and started as a user would ---

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// serverBinary builds ./examples/restserver with `go build` (with -race when
// the tests run with it, which reuses the test's build cache).
func serverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		buildDir, buildErr = os.MkdirTemp("", "restserver-interop-")
		if buildErr != nil {
			return
		}
		afterTests = append(afterTests, func() { _ = os.RemoveAll(buildDir) })
		buildBin = filepath.Join(buildDir, "restserver")
		args := []string{"build", "-o", buildBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goBin, append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// serverProcess is the restserver binary run by testenv.StartProcess (its
// output in the test log on failure).
type serverProcess struct {
	p    *testenv.Process
	base string // http://admin:PASS@127.0.0.1:PORT (the login is ignored without one)
	addr string // 127.0.0.1:PORT
}

// log returns what the server printed so far.
func (p *serverProcess) log() string { return p.p.Output() }

// startServerProcess starts the binary with args after the loopback
// listeners on runtime ports, and reads the bound HTTP address from its log.
func startServerProcess(t *testing.T, args ...string) *serverProcess {
	t.Helper()
	bin := serverBinary(t)
	all := append([]string{"-http", "127.0.0.1:0", "-https", "", "-sip", "127.0.0.1:0", "-rtp-ports", rtpRange()}, args...)
	cmd := exec.Command(bin, all...)
	// The admin's login from the environment (as an operator sets it),
	// except for the demo on loopback (no login) and -no-auth.
	login := testUser + ":" + testPass
	if slices.Contains(args, "-demo") || slices.Contains(args, "-no-auth") {
		login = ""
	}
	cmd.Env = append(os.Environ(), "SIPSTREAM_AUTH="+login)
	p := &serverProcess{p: testenv.StartProcess(t, cmd)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(p.log()); m != nil {
			p.addr = m[1]
			p.base = withLogin("http://" + m[1])
			return p
		}
		if p.p.Exited() {
			t.Fatalf("the server exited before listening: %v\n%s", p.p.Wait(time.Second), p.log())
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server logged no HTTP address within 60 s:\n%s", p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// interrupt sends SIGINT (Ctrl-C) and waits for a clean exit.
func (p *serverProcess) interrupt(t *testing.T) {
	t.Helper()
	require.NoError(t, p.p.Signal(os.Interrupt))
	require.NoError(t, p.p.Wait(30*time.Second), "exit status after SIGINT\n%s", p.log())
}

// --- sipp as the callee (testenv.SippCallee), media from testmedia.Replayer ---

// sippAnswer is sipp's SDP answer: its media ports, AUDIOPORT and
// VIDEOPORT, are the replayer's sockets (sipp 3.6 cannot play an audio and
// a video pcap in one call).
const sippAnswer = `v=0
o=sipp 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio AUDIOPORT RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
m=video VIDEOPORT RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=42e01e
a=rtcp-fb:96 nack pli
a=sendrecv
`

// dtmfEvents collects the RFC 4733 event codes (payload type 101) that
// reach the replayer's audio socket.
type dtmfEvents struct {
	mu    sync.Mutex
	codes map[byte]bool
	done  chan struct{} // closed when the socket is
}

// readDTMF reads conn until it is closed.
func readDTMF(conn *net.UDPConn) *dtmfEvents {
	e := &dtmfEvents{codes: map[byte]bool{}, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) == nil && p.PayloadType == 101 && len(p.Payload) >= 4 {
				e.mu.Lock()
				e.codes[p.Payload[0]] = true
				e.mu.Unlock()
			}
		}
	}()
	return e
}

func (e *dtmfEvents) got(code byte) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.codes[code]
}

// probeLive reads a live RTMP stream with ffprobe and returns its streams.
func probeLive(t *testing.T, url string) map[string]testenv.ProbedStream {
	t.Helper()
	t0 := time.Now()
	streams := testenv.ProbeStreams(t, url)
	t.Logf("ffprobe %s took %v: %+v", url, time.Since(t0), streams)
	return streams
}

// The server binary, started as a user would, places a call to sipp and
// publishes it to nginx-rtmp; everything is driven over HTTP.
func TestInteropServerSippNginx(t *testing.T) {
	ngx := testenv.StartNginxRTMP(t)
	hook := newWebhookRecorder(t)
	// The H.264 clip (25 fps) and a 1 kHz A-law tone, at real-time pace.
	rp, err := testmedia.NewReplayer(testmedia.ReplayerConfig{Audio: media.CodecPCMA, Amplitude: 0.3, Video: true})
	require.NoError(t, err)
	events := readDTMF(rp.AudioConn)
	t.Cleanup(func() {
		rp.Close()
		<-events.done
	})
	sipp := testenv.StartSipp(t, testenv.SippConfig{Scenario: testenv.SippCallee(sippAnswer),
		Vars: map[string]string{"AUDIOPORT": strconv.Itoa(rp.AudioPort()), "VIDEOPORT": strconv.Itoa(rp.VideoPort())}})
	callee := sipp.URI("callee")
	srv := startServerProcess(t, "-webhook", hook.srv.URL)

	code, body := rest(t, srv.base, "/call/startup", map[string]any{
		"callId": "interop-1", "callee": callee, "rtmpUrl": ngx.RTMPURL(), "rtmpStream": "interop",
		"hasAudio": "true", "hasVideo": "true", "sipLogin": "restserver", "visibleName": "Interop Test",
	})
	require.Equal(t, http.StatusOK, code, string(body))
	waitCall(t, srv.base, "interop-1", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })

	octx, ocancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ocancel()
	serverAudio, err := sipp.OfferedPort(octx, "audio")
	require.NoError(t, err)
	serverVideo, err := sipp.OfferedPort(octx, "video")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	replayDone := make(chan struct{})
	go func() {
		defer close(replayDone)
		if _, _, err := rp.Run(ctx, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: serverAudio},
			&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: serverVideo}); err != nil {
			t.Error(err)
		}
	}()
	stopReplay := func() {
		cancel()
		<-replayDone
	}
	defer stopReplay()

	c := waitCall(t, srv.base, "interop-1", "RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	require.Equal(t, callee, c.Callee)
	require.Equal(t, ngx.RTMPURL(), c.RTMPURL)

	// The stream on nginx is readable: H.264 (the clip's 320x240) and AAC.
	streams := probeLive(t, ngx.RTMPURL()+"/interop")
	require.Equal(t, "h264", streams["video"].CodecName)
	require.Equal(t, 320, streams["video"].Width)
	require.Equal(t, 240, streams["video"].Height)
	require.Equal(t, "aac", streams["audio"].CodecName)

	// DTMF: INFO (application/dtmf) and INFO_RELAY reach sipp; RFC 2833
	// events reach the callee's audio port.
	for _, d := range []struct{ digit, typ string }{{"7", "INFO"}, {"5", "INFO_RELAY"}, {"9", "RFC2833"}} {
		code, body = rest(t, srv.base, "/call/send_dtmf", map[string]any{"callId": "interop-1", "dtmf": d.digit, "type": d.typ})
		require.Equal(t, http.StatusOK, code, "%s %s: %s", d.typ, d.digit, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !events.got(9) {
		require.True(t, time.Now().Before(deadline), "no RFC 4733 event 9 reached the callee")
		time.Sleep(20 * time.Millisecond)
	}

	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "interop-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, sipp.Wait(30*time.Second), "sipp ends its call successfully (it saw our BYE)")
	msgs := sipp.Messages()
	require.Contains(t, msgs, "INFO sip:")
	require.Regexp(t, `(?i)Content-Type: application/dtmf\r?\n`, msgs)
	require.Contains(t, msgs, "application/dtmf-relay")
	require.Contains(t, msgs, "Signal=5")
	require.Contains(t, msgs, "BYE sip:")
	require.Contains(t, msgs, `"Interop Test"`)
	stopReplay()

	hook.waitStatus(t, "interop-1", "FINISH")
	calls, rtmps := hook.statuses("interop-1")
	t.Logf("webhook: call %v, rtmp %v", calls, rtmps)
	require.True(t, inOrder(calls, []string{"TRYING", "ESTABLISHED", "FINISH"}), "call statuses %v", calls)
	require.Equal(t, "FINISH", calls[len(calls)-1], "call statuses %v", calls)
	if slices.Contains(calls, "RING") { // sipp's 180, unless the 200 overtook it
		require.True(t, inOrder(calls, []string{"TRYING", "RING", "ESTABLISHED"}), "call statuses %v", calls)
	}
	require.True(t, inOrder(rtmps, []string{"RTMP_STREAM_WAIT", "RTMP_STREAM_ACTIVE"}), "rtmp statuses %v", rtmps)

	srv.interrupt(t)
	require.Contains(t, srv.log(), "msg=\"shutting down\"")
}

// --- headless Chromium on the page ---

// chromiumPage is the test's own page (same origin as the server's, through
// a reverse proxy): it loads the server's page in an iframe, clicks Call on
// the demo form as a newcomer would, watches the call's status cell, and
// reports what the page shows, including the WebRTC player's stats.
const chromiumPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>restserver interop</title></head>
<body><iframe id="f" src="/" style="width:1200px;height:900px"></iframe>
<script>
"use strict";
const t0 = performance.now();
const result = { ok: false, callee: "", statuses: [], rtmpStatus: "", established: false, videoWidth: 0, dialinCallId: "", regs: "",
  framesDecodedFirst: -1, framesDecoded: 0, audioPackets: 0, audioOnly: false, playerState: "", playMs: 0, error: "" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, ms, cond) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const v = cond();
    if (v) return v;
    await sleep(100);
  }
  throw new Error("timed out waiting for " + what);
}
(async () => {
  try {
    await new Promise((r) => document.getElementById("f").addEventListener("load", r));
    const w = document.getElementById("f").contentWindow;
    const d = w.document;
    // The demo defaults fill the form.
    await until("the form's defaults", 10000, () => d.getElementById("callee").value);
    result.callee = d.getElementById("callee").value;
    d.getElementById("startBtn").click();
    // The call's row shows ESTABLISHED (pushed by the page's event stream).
    await until("ESTABLISHED on the page", 30000, () => {
      const cell = d.querySelector("#calls tr td.call-status");
      if (cell && result.statuses[result.statuses.length - 1] !== cell.textContent) result.statuses.push(cell.textContent);
      return cell && cell.textContent === "ESTABLISHED";
    });
    result.established = true;
    await until("RTMP_STREAM_ACTIVE on the page", 30000, () => {
      const cell = d.querySelector("#calls tr td.rtmp-status");
      result.rtmpStatus = cell ? cell.textContent : "";
      return result.rtmpStatus === "RTMP_STREAM_ACTIVE";
    });
    // The page plays the call it started once answered.
    const session = await until("the player", 30000, () => w.player);
    const tPlay = performance.now();
    const video = d.getElementById("player");
    result.audioOnly = session.audioOnly;
    // 10 s is the goal; 20 s leaves room for a loaded CI machine.
    const end = performance.now() + 20000;
    while (performance.now() < end) {
      await sleep(200);
      const stats = await session.pc.getStats();
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") result.framesDecoded = s.framesDecoded || 0;
        if (s.type === "inbound-rtp" && s.kind === "audio") result.audioPackets = s.packetsReceived || 0;
      });
      result.videoWidth = video.videoWidth;
      if (result.videoWidth > 0 && result.framesDecoded > 0) {
        if (result.framesDecodedFirst < 0) result.framesDecodedFirst = result.framesDecoded;
        else if (result.framesDecoded > result.framesDecodedFirst && result.audioPackets > 0) {
          result.ok = true;
          result.playMs = Math.round(performance.now() - tPlay);
          break;
        }
      }
    }
    result.playerState = d.getElementById("playerState").textContent;
    // Dial in: the demo phone calls the gateway; its row says "in".
    d.getElementById("dialinBtn").click();
    await until("an incoming call ESTABLISHED on the page", 30000, () => {
      for (const tr of d.querySelectorAll("#calls tr")) {
        const dir = tr.querySelector("td.dir"), st = tr.querySelector("td.call-status");
        if (dir && dir.textContent.includes("in") && st && st.textContent === "ESTABLISHED") {
          result.dialinCallId = tr.dataset.callId;
          return true;
        }
      }
      return false;
    });
    result.regs = d.getElementById("regs").textContent;
  } catch (e) {
    result.error = String(e);
  }
  await fetch("/report", { method: "POST", body: JSON.stringify(result) });
})();
</script></body></html>`

type pageResult struct {
	OK                 bool     `json:"ok"`
	Callee             string   `json:"callee"`
	Statuses           []string `json:"statuses"`
	RTMPStatus         string   `json:"rtmpStatus"`
	Established        bool     `json:"established"`
	VideoWidth         int      `json:"videoWidth"`
	FramesDecodedFirst int      `json:"framesDecodedFirst"`
	FramesDecoded      int      `json:"framesDecoded"`
	AudioPackets       int      `json:"audioPackets"`
	AudioOnly          bool     `json:"audioOnly"`
	PlayerState        string   `json:"playerState"`
	PlayMs             int      `json:"playMs"` // from the player's start to frames decoded increasing
	DialinCallID       string   `json:"dialinCallId"`
	Regs               string   `json:"regs"`
	Error              string   `json:"error"`
}

// Headless Chromium opens the page of a -demo server, clicks Call: the call
// reaches ESTABLISHED and RTMP_STREAM_ACTIVE on the page, and the page's
// WebRTC player shows the demo's video (frames decoded increasing) and
// receives its audio (within 20 s; typically 1-2 s, logged as playMs).
func TestInteropChromiumDemoPage(t *testing.T) {
	testenv.LookPath(t, "chromium")
	srv := startServerProcess(t, "-demo")
	target, err := http.NewRequest(http.MethodGet, "http://"+srv.addr, nil)
	require.NoError(t, err)

	results := make(chan pageResult, 1)
	proxy := httputil.NewSingleHostReverseProxy(target.URL)
	proxy.FlushInterval = -1 // the page's event stream
	mux := http.NewServeMux()
	mux.HandleFunc("GET /interop.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, chromiumPage)
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var res pageResult
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&res); err != nil {
			res.Error = "bad report: " + err.Error()
		}
		select {
		case results <- res:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", proxy)
	ts := httptest.NewServer(mux)
	defer ts.Close()

	chromium := testenv.StartChromium(t, testenv.ChromiumConfig{URL: ts.URL + "/interop.html"})
	defer chromium.Close() // before ts.Close: the page's event stream ends with it

	var res pageResult
	select {
	case res = <-results:
	case <-time.After(100 * time.Second):
		t.Fatalf("chromium reported nothing within 100 s")
	}
	t.Logf("page: %+v", res)
	require.Empty(t, res.Error)
	require.True(t, strings.HasPrefix(res.Callee, "sip:demo@127.0.0.1:"), res.Callee)
	require.True(t, res.Established, "ESTABLISHED on the page")
	require.Equal(t, "RTMP_STREAM_ACTIVE", res.RTMPStatus)
	require.True(t, res.OK, "the player showed the call: %+v", res)
	require.Equal(t, 320, res.VideoWidth)
	require.False(t, res.AudioOnly)

	// The page's calls are the server's: the one it placed, and the demo
	// phone's dial-in, incoming, published to the demo RTMP server.
	calls := waitCall(t, srv.base, findOnlyOutgoing(t, srv.base), "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
	require.Equal(t, res.Callee, calls.Callee)
	in := waitCall(t, srv.base, res.DialinCallID, "ESTABLISHED + RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	require.True(t, in.Incoming)
	require.Equal(t, "demo-dialin", in.Callee)
	require.Equal(t, "demo-phone", in.Caller)
	require.Equal(t, "none", strings.TrimSpace(res.Regs), "the registrations panel: -demo has no accounts")

	// The command the banner prints plays the demo stream: ffprobe reads it
	// from the embedded RTMP server.
	m := regexp.MustCompile(`watch the stream:\s+ffplay (\S+)`).FindStringSubmatch(srv.log())
	require.NotNil(t, m, "no ffplay command in the banner:\n%s", srv.log())
	streams := probeLive(t, m[1])
	require.Equal(t, "h264", streams["video"].CodecName)
	require.Equal(t, "aac", streams["audio"].CodecName)
	srv.interrupt(t)
}

// findOnlyCall returns the callId of the server's one call.
func findOnlyCall(t *testing.T, base string) string {
	t.Helper()
	return findOnly(t, base, func(wcsapi.Call) bool { return true })
}

// findOnlyOutgoing returns the callId of the server's one outgoing call.
func findOnlyOutgoing(t *testing.T, base string) string {
	t.Helper()
	return findOnly(t, base, func(c wcsapi.Call) bool { return !c.Incoming })
}

// findOnly returns the callId of the server's one call that keep keeps.
func findOnly(t *testing.T, base string, keep func(wcsapi.Call) bool) string {
	t.Helper()
	code, body := rest(t, base, "/call/find_all", map[string]any{})
	require.Equal(t, http.StatusOK, code, string(body))
	var calls []wcsapi.Call
	require.NoError(t, json.Unmarshal(body, &calls))
	var ids []string
	for _, c := range calls {
		if keep(c) {
			ids = append(ids, c.CallID)
		}
	}
	require.Len(t, ids, 1)
	return ids[0]
}
