//go:build interop && linux

package main

import (
	"bufio"
	"bytes"
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
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtph264"
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

// serverProcess is the restserver binary running in its own process group.
type serverProcess struct {
	cmd  *exec.Cmd
	base string // http://admin:PASS@127.0.0.1:PORT (the login is ignored without one)
	addr string // 127.0.0.1:PORT
	done chan error

	mu     sync.Mutex
	stderr bytes.Buffer
}

func (p *serverProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

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
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &serverProcess{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		if t.Failed() {
			t.Logf("server log:\n%s", p.log())
		}
	})
	select {
	case a := <-addr:
		p.addr = a
		p.base = withLogin("http://" + a)
	case err := <-p.done:
		t.Fatalf("the server exited before listening: %v\n%s", err, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("the server logged no HTTP address within 60 s:\n%s", p.log())
	}
	return p
}

// interrupt sends SIGINT (Ctrl-C) and waits for a clean exit.
func (p *serverProcess) interrupt(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-p.done:
		p.done <- err
		require.NoError(t, err, "exit status after SIGINT\n%s", p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not exit within 30 s of SIGINT\n%s", p.log())
	}
}

// --- sipp as the callee ---

// sippUAS is sipp running a UAS scenario written at test time: it answers
// one call with an SDP whose media ports are the test's replayer sockets,
// answers every INFO with 200, and ends (exit status 0) after the caller's
// BYE.
type sippUAS struct {
	port     int
	messages string // sipp's -trace_msg file
	done     chan error
	out      bytes.Buffer
}

const sippScenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="restserver interop callee">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]RSTag[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]RSTag[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio AUDIO_PORT RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
m=video VIDEO_PORT RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=42e01e
a=rtcp-fb:96 nack pli
a=sendrecv
]]></send>
  <recv request="ACK" crlf="true"/>
  <label id="1"/>
  <recv request="INFO" optional="true" next="2"/>
  <recv request="BYE"/>
  <send next="9"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="2"/>
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
</scenario>
`

func startSipp(t *testing.T, audioPort, videoPort int) *sippUAS {
	t.Helper()
	bin := testenv.LookPath(t, "sipp")
	dir := t.TempDir()
	s := &sippUAS{port: testenv.FreePort(t, "udp"), messages: filepath.Join(dir, "messages.log"), done: make(chan error, 1)}
	sc := strings.NewReplacer("AUDIO_PORT", strconv.Itoa(audioPort), "VIDEO_PORT", strconv.Itoa(videoPort)).Replace(sippScenario)
	sf := filepath.Join(dir, "uas.xml")
	require.NoError(t, os.WriteFile(sf, []byte(sc), 0o644))
	cmd := exec.Command(bin, "-sf", sf, "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", strconv.Itoa(s.port), "-m", "1",
		"-nostdin", "-trace_msg", "-message_file", s.messages, "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		s.done <- nil
	})
	// sipp binds its UDP port right after start; wait until it is taken.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.port})
		if err != nil {
			break // sipp has it
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func (s *sippUAS) uri() string { return fmt.Sprintf("sip:callee@127.0.0.1:%d", s.port) }

// log returns sipp's message trace so far.
func (s *sippUAS) log() string {
	b, _ := os.ReadFile(s.messages)
	return string(b)
}

// wait waits for sipp to end its one call and returns its exit error.
func (s *sippUAS) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("sipp did not end within 30 s: %s", s.out.String())
	}
}

var mLineRE = regexp.MustCompile(`(?m)^m=(audio|video) (\d+) `)

// offerPorts waits for the INVITE in sipp's trace and returns the audio and
// video RTP ports of the server's offer.
func (s *sippUAS) offerPorts(t *testing.T) (audio, video int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		log := s.log()
		if i := strings.Index(log, "INVITE sip:"); i >= 0 {
			for _, m := range mLineRE.FindAllStringSubmatch(log[i:], -1) {
				p, _ := strconv.Atoi(m[2])
				if m[1] == "audio" && audio == 0 {
					audio = p
				}
				if m[1] == "video" && video == 0 {
					video = p
				}
			}
			if audio != 0 && video != 0 {
				return audio, video
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no INVITE with audio and video in sipp's trace:\n%s", s.log())
	return 0, 0
}

// --- the callee's media: our replayer (sipp 3.6 plays one pcap per call) ---

// replayer sends the H.264 test clip (25 fps) and a 1 kHz A-law tone from
// the ports sipp's answer names, and counts the RFC 4733 events it receives.
type replayer struct {
	audio, video *net.UDPConn

	mu     sync.Mutex
	events map[byte]bool // telephone-event codes received
	wg     sync.WaitGroup
}

func newReplayer(t *testing.T) *replayer {
	t.Helper()
	r := &replayer{events: map[byte]bool{}}
	var err error
	r.audio, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	r.video, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() {
		r.audio.Close()
		r.video.Close()
		r.wg.Wait()
	})
	r.wg.Add(1)
	go r.readAudio()
	return r
}

func (r *replayer) ports() (int, int) {
	return r.audio.LocalAddr().(*net.UDPAddr).Port, r.video.LocalAddr().(*net.UDPAddr).Port
}

func (r *replayer) readAudio() {
	defer r.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := r.audio.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) == nil && p.PayloadType == 101 && len(p.Payload) >= 4 {
			r.mu.Lock()
			r.events[p.Payload[0]] = true
			r.mu.Unlock()
		}
	}
}

func (r *replayer) gotEvent(code byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[code]
}

// play sends media to the server's ports until ctx ends.
func (r *replayer) play(ctx context.Context, t *testing.T, audioPort, videoPort int) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		adst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: audioPort}
		vdst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: videoPort}
		enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, SSRC: 0x7e57, InitialSequenceNumber: 1})
		if err != nil {
			t.Error(err)
			return
		}
		aus := testmedia.ClipAccessUnits()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pcm := testmedia.Tone(1000, 8000, n*160, 160, 0.3)
			ap := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(n),
				Timestamp: uint32(n * 160), SSRC: 0xa0d10}, Payload: g711.EncodeALaw(nil, pcm)}
			if b, err := ap.Marshal(); err == nil {
				_, _ = r.audio.WriteToUDP(b, adst)
			}
			if n%2 == 0 {
				f := n / 2
				pkts, err := enc.Encode(aus[f%len(aus)].NALUs, uint32(f*3600))
				if err != nil {
					t.Error(err)
					return
				}
				for _, p := range pkts {
					if b, err := p.Marshal(); err == nil {
						_, _ = r.video.WriteToUDP(b, vdst)
					}
				}
			}
		}
	}()
}

// ffprobeStreams reads a live RTMP stream with ffprobe and returns its
// streams' codec names.
func ffprobeStreams(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	t0 := time.Now()
	defer func() { t.Logf("ffprobe took %v", time.Since(t0)) }()
	out, err := exec.CommandContext(ctx, testenv.LookPath(t, "ffprobe"), "-v", "error", "-rw_timeout", "20000000",
		"-show_entries", "stream=codec_name,width,height,sample_rate", "-of", "compact=p=0", url).CombinedOutput()
	require.NoError(t, err, "ffprobe %s: %s", url, out)
	return strings.TrimSpace(string(out))
}

// The server binary, started as a user would, places a call to sipp and
// publishes it to nginx-rtmp; everything is driven over HTTP.
func TestInteropServerSippNginx(t *testing.T) {
	ngx := testenv.StartNginxRTMP(t)
	hook := newWebhookRecorder(t)
	media := newReplayer(t)
	ap, vp := media.ports()
	sipp := startSipp(t, ap, vp)
	srv := startServerProcess(t, "-webhook", hook.srv.URL)

	code, body := rest(t, srv.base, "/call/startup", map[string]any{
		"callId": "interop-1", "callee": sipp.uri(), "rtmpUrl": ngx.RTMPURL(), "rtmpStream": "interop",
		"hasAudio": "true", "hasVideo": "true", "sipLogin": "restserver", "visibleName": "Interop Test",
	})
	require.Equal(t, http.StatusOK, code, string(body))
	waitCall(t, srv.base, "interop-1", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serverAudio, serverVideo := sipp.offerPorts(t)
	media.play(ctx, t, serverAudio, serverVideo)

	c := waitCall(t, srv.base, "interop-1", "RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	require.Equal(t, sipp.uri(), c.Callee)
	require.Equal(t, ngx.RTMPURL(), c.RTMPURL)

	// The stream on nginx is readable: H.264 (the clip's 320x240) and AAC.
	probe := ffprobeStreams(t, ngx.RTMPURL()+"/interop")
	t.Logf("ffprobe: %s", probe)
	require.Contains(t, probe, "codec_name=h264")
	require.Contains(t, probe, "width=320|height=240")
	require.Contains(t, probe, "codec_name=aac")

	// DTMF: INFO (application/dtmf) and INFO_RELAY reach sipp; RFC 2833
	// events reach the callee's audio port.
	for _, d := range []struct{ digit, typ string }{{"7", "INFO"}, {"5", "INFO_RELAY"}, {"9", "RFC2833"}} {
		code, body = rest(t, srv.base, "/call/send_dtmf", map[string]any{"callId": "interop-1", "dtmf": d.digit, "type": d.typ})
		require.Equal(t, http.StatusOK, code, "%s %s: %s", d.typ, d.digit, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !media.gotEvent(9) {
		require.True(t, time.Now().Before(deadline), "no RFC 4733 event 9 reached the callee")
		time.Sleep(20 * time.Millisecond)
	}

	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "interop-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, sipp.wait(t), "sipp ends its call successfully (it saw our BYE)\n%s", sipp.log())
	msgs := sipp.log()
	require.Contains(t, msgs, "INFO sip:")
	require.Regexp(t, `(?i)Content-Type: application/dtmf\r?\n`, msgs)
	require.Contains(t, msgs, "application/dtmf-relay")
	require.Contains(t, msgs, "Signal=5")
	require.Contains(t, msgs, "BYE sip:")
	require.Contains(t, msgs, `"Interop Test"`)
	cancel()

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
const result = { ok: false, callee: "", statuses: [], rtmpStatus: "", established: false, videoWidth: 0,
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
      const cells = d.querySelectorAll("#calls tr td");
      result.rtmpStatus = cells.length > 4 ? cells[4].textContent : "";
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
	Error              string   `json:"error"`
}

// Headless Chromium opens the page of a -demo server, clicks Call: the call
// reaches ESTABLISHED and RTMP_STREAM_ACTIVE on the page, and the page's
// WebRTC player shows the demo's video (frames decoded increasing) and
// receives its audio (within 20 s; typically 1-2 s, logged as playMs).
func TestInteropChromiumDemoPage(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
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

	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--mute-audio", "--autoplay-policy=no-user-gesture-required",
		"--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
		"--user-data-dir="+t.TempDir(), ts.URL+"/interop.html")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()

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

	// The page's call is the server's.
	calls := waitCall(t, srv.base, findOnlyCall(t, srv.base), "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
	require.Equal(t, res.Callee, calls.Callee)

	// The command the banner prints plays the demo stream: ffprobe reads it
	// from the embedded RTMP server.
	m := regexp.MustCompile(`watch the stream:\s+ffplay (\S+)`).FindStringSubmatch(srv.log())
	require.NotNil(t, m, "no ffplay command in the banner:\n%s", srv.log())
	probe := ffprobeStreams(t, m[1])
	t.Logf("ffprobe %s: %s", m[1], probe)
	require.Contains(t, probe, "codec_name=h264")
	require.Contains(t, probe, "codec_name=aac")
	srv.interrupt(t)
}

// findOnlyCall returns the callId of the server's one call.
func findOnlyCall(t *testing.T, base string) string {
	t.Helper()
	code, body := rest(t, base, "/call/find_all", map[string]any{})
	require.Equal(t, http.StatusOK, code, string(body))
	var calls []wcsapi.Call
	require.NoError(t, json.Unmarshal(body, &calls))
	require.Len(t, calls, 1)
	return calls[0].CallID
}
