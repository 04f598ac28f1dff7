//go:build interop

package callmgr

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtph264"
)

// --- nginx-rtmp that records every stream (appending across restarts) ---

type recNginx struct {
	t      *testing.T
	bin    string
	prefix string
	dir    string
	port   int
	cmd    *exec.Cmd
	out    bytes.Buffer
}

func startRecordingNginx(t *testing.T) *recNginx {
	t.Helper()
	n := &recNginx{t: t, bin: testenv.LookPath(t, "nginx"), prefix: t.TempDir(), dir: t.TempDir(), port: testenv.FreePort(t, "tcp")}
	const module = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	if _, err := os.Stat(module); err != nil {
		if testenv.InCI() {
			t.Fatalf("libnginx-mod-rtmp missing: %v", err)
		}
		t.Skipf("libnginx-mod-rtmp missing: %v", err)
	}
	require.NoError(t, os.Chmod(n.dir, 0o777)) // the worker may run unprivileged
	require.NoError(t, os.MkdirAll(filepath.Join(n.prefix, "logs"), 0o777))
	conf := strings.Join([]string{
		"load_module " + module + ";",
		"daemon off;",
		"master_process off;",
		"error_log " + n.prefix + "/logs/error.log info;",
		"pid " + n.prefix + "/logs/nginx.pid;",
		"events { worker_connections 32; }",
		"rtmp { server {",
		"  listen 127.0.0.1:" + strconv.Itoa(n.port) + ";",
		"  application live { live on; record all; record_path " + n.dir + "; record_append on; }",
		"} }",
	}, "\n")
	require.NoError(t, os.WriteFile(filepath.Join(n.prefix, "nginx.conf"), []byte(conf), 0o644))
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *recNginx) start() {
	n.t.Helper()
	cmd := exec.Command(n.bin, "-p", n.prefix, "-c", filepath.Join(n.prefix, "nginx.conf"))
	cmd.Stdout, cmd.Stderr = &n.out, &n.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(n.t, cmd.Start())
	n.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp4", n.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nginx not listening: %v\n%s", err, n.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs nginx's process group (a crash, not a shutdown).
func (n *recNginx) kill() {
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	_ = n.cmd.Wait()
	n.cmd = nil
}

func (n *recNginx) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }
func (n *recNginx) url() string  { return "rtmp://" + n.addr() + "/live" }

// --- sipp as the callee ---

// sippCallee writes a UAS scenario whose SDP answer sends media from the
// given ports (our own RTP replayer sends it: sipp 3.6 cannot play an audio
// and a video pcap in one call) and starts sipp for one call.
func sippCallee(t *testing.T, audioPort, videoPort int) (port int, wait func() (string, error)) {
	t.Helper()
	bin := testenv.LookPath(t, "sipp")
	dir := t.TempDir()
	port = testenv.FreePort(t, "udp")
	// Each <send> goes straight on to the next <recv> (a message that comes
	// while sipp sits on a pause aborts the call).
	scenario := `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipstream callee">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
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
	scenario = strings.NewReplacer("AUDIOPORT", strconv.Itoa(audioPort), "VIDEOPORT", strconv.Itoa(videoPort)).Replace(scenario)
	sf := filepath.Join(dir, "callee.xml")
	require.NoError(t, os.WriteFile(sf, []byte(scenario), 0o644))
	msgs := filepath.Join(dir, "messages.log")
	cmd := exec.Command(bin, "-sf", sf, "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "1",
		"-nostdin", "-trace_msg", "-message_file", msgs, "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	time.Sleep(300 * time.Millisecond) // let sipp bind
	return port, func() (string, error) {
		select {
		case err := <-done:
			done <- err
			b, _ := os.ReadFile(msgs)
			return string(b), err
		case <-time.After(30 * time.Second):
			return "", fmt.Errorf("sipp did not finish: %s", out.String())
		}
	}
}

// --- RTP replayer: the H.264 clip and a 1 kHz A-law tone at real-time pace ---

func replay(ctx context.Context, t *testing.T, audio, video *net.UDPConn, audioDst, videoDst *net.UDPAddr) {
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, SSRC: 0x5151, InitialSequenceNumber: 1000})
	if err != nil {
		t.Error(err)
		return
	}
	aus := testmedia.ClipAccessUnits()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var aseq uint16
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pcm := testmedia.Tone(1000, 8000, n*160, 160, 0.3)
		ap := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: aseq, Timestamp: uint32(n * 160), SSRC: 0xA1A1},
			Payload: g711.EncodeALaw(nil, pcm)}
		aseq++
		if b, err := ap.Marshal(); err == nil {
			_, _ = audio.WriteToUDP(b, audioDst)
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
					_, _ = video.WriteToUDP(b, videoDst)
				}
			}
		}
	}
}

func ffprobeCodecs(t *testing.T, file string) string {
	out, err := exec.Command(testenv.LookPath(t, "ffprobe"), "-v", "error", "-show_entries", "stream=codec_name",
		"-of", "csv=p=0", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.TrimSpace(string(out))
}

func ffprobeDuration(t *testing.T, file string) float64 {
	out, err := exec.Command(testenv.LookPath(t, "ffprobe"), "-v", "error", "-show_entries", "format=duration",
		"-of", "csv=p=0", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(t, err, "%s", out)
	return d
}

// decodeErrors decodes the whole file with ffmpeg and returns its
// complaints.
func decodeErrors(t *testing.T, file string) string {
	out, err := exec.Command(testenv.LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.TrimSpace(string(out))
}

// packetTimes returns the pts (seconds) of a file's audio ("a") or video
// ("v") packets.
func packetTimes(t *testing.T, file, stream string) []float64 {
	out, err := exec.Command(testenv.LookPath(t, "ffprobe"), "-v", "error", "-select_streams", stream,
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", file).Output()
	require.NoError(t, err)
	var ts []float64
	for _, l := range strings.Fields(string(out)) {
		if v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64); err == nil {
			ts = append(ts, v)
		}
	}
	return ts
}

// decodePCM decodes a file's audio to 8 kHz mono samples.
func decodePCM(t *testing.T, file string) []int16 {
	out, err := exec.Command(testenv.LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", file, "-vn", "-ac", "1",
		"-ar", "8000", "-f", "s16le", "-").Output()
	require.NoError(t, err)
	pcm := make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(uint16(out[2*i]) | uint16(out[2*i+1])<<8)
	}
	return pcm
}

// TestInteropSippNginx: sipp answers, our replayer sends its media, the
// Manager publishes to a real nginx-rtmp. nginx is SIGKILLed and restarted
// mid-call: the stream must resume within 5 s (LOST, then ACTIVE). nginx's
// recording of the whole call and our own recording (MP4, the default
// format) must decode without errors with H.264 and audio.
func TestInteropSippNginx(t *testing.T) {
	ngx := startRecordingNginx(t)
	ffmpegOK := testenv.LookPath(t, "ffmpeg") != ""
	require.True(t, ffmpegOK)

	audioConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer audioConn.Close()
	videoConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer videoConn.Close()
	sippPort, sippWait := sippCallee(t, audioConn.LocalAddr().(*net.UDPAddr).Port, videoConn.LocalAddr().(*net.UDPAddr).Port)

	var (
		mu     sync.Mutex
		events []Event
		times  = map[SinkStatus]time.Time{}
	)
	recDir := t.TempDir()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 21000, RTPPortMax: 21999, RecordDir: recDir,
		OnEvent: func(ev Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
			if ev.Type == EventSinkStatus && ev.Sink.Primary && ev.Sink.Kind == SinkKindRTMP {
				times[ev.Sink.Status] = time.Now()
			}
		}})
	require.NoError(t, err)
	defer m.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	c, err := m.StartCall(ctx, CallParams{CallID: "interop-1", Callee: fmt.Sprintf("sip:callee@127.0.0.1:%d", sippPort),
		RTMPURL: ngx.url(), RTMPStream: "call1", HasAudio: true, HasVideo: true, Record: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))

	rctx, stopReplay := context.WithCancel(ctx)
	replayDone := make(chan struct{})
	go func() {
		defer close(replayDone)
		replay(rctx, t, audioConn, videoConn,
			&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.offerCfg.AudioPort},
			&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: c.offerCfg.VideoPort})
	}()
	defer func() { stopReplay(); <-replayDone }()

	rtmpIs := func(st SinkStatus) func() bool {
		return func() bool { return c.Info().RTMPStatus == st }
	}
	require.True(t, waitFor(rtmpIs(SinkActive)), "RTMP leg active; status %s", c.Info().RTMPStatus)
	require.NoError(t, m.SendDTMF(ctx, "interop-1", "5", DTMFInfoRelay))
	time.Sleep(4 * time.Second)

	// Crash nginx, bring it back a second later.
	ngx.kill()
	require.True(t, waitFor(rtmpIs(SinkLost)), "LOST after the crash; status %s", c.Info().RTMPStatus)
	time.Sleep(time.Second)
	restarted := time.Now()
	ngx.start()
	require.True(t, waitFor(rtmpIs(SinkActive)), "ACTIVE after the restart")
	mu.Lock()
	resumed := times[SinkActive].Sub(restarted)
	mu.Unlock()
	t.Logf("stream resumed %v after nginx came back", resumed)
	assert.Less(t, resumed, 5*time.Second, "resumes within 5 s")
	time.Sleep(3 * time.Second)

	info := c.Info()
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c) // every event delivered
	stopReplay()
	msgs, err := sippWait()
	require.NoError(t, err, "sipp exit (1 call, successful)")
	assert.Contains(t, msgs, "INFO sip:")
	assert.Contains(t, msgs, "application/dtmf-relay")
	assert.Contains(t, msgs, "Signal=5")
	assert.Contains(t, msgs, "BYE sip:")

	mu.Lock()
	var rtmpSeq []SinkStatus
	var callSeq []Status
	for _, ev := range events {
		switch {
		case ev.Type == EventSinkStatus && ev.Sink.Primary && ev.Sink.Kind == SinkKindRTMP && !ev.Removed:
			if len(rtmpSeq) == 0 || rtmpSeq[len(rtmpSeq)-1] != ev.Sink.Status {
				rtmpSeq = append(rtmpSeq, ev.Sink.Status)
			}
		case ev.Type == EventCallStatus:
			if len(callSeq) == 0 || callSeq[len(callSeq)-1] != ev.Status {
				callSeq = append(callSeq, ev.Status)
			}
		}
	}
	mu.Unlock()
	assert.Equal(t, []SinkStatus{SinkWait, SinkActive, SinkLost, SinkActive}, rtmpSeq)
	assert.Equal(t, []Status{StatusTrying, StatusRing, StatusEstablished, StatusFinish}, callSeq)

	// nginx's recording of the call (both publications, appended).
	flv := filepath.Join(ngx.dir, "call1.flv")
	codecs := ffprobeCodecs(t, flv)
	assert.Contains(t, codecs, "h264")
	assert.Contains(t, codecs, "aac")
	assert.Empty(t, decodeErrors(t, flv), "nginx recording decodes cleanly")
	if dbg := os.Getenv("CALLMGR_KEEP"); dbg != "" {
		b, _ := os.ReadFile(flv)
		_ = os.WriteFile(dbg, b, 0o644)
	}
	pcm := decodePCM(t, flv)
	require.Greater(t, len(pcm), 8000*3, "at least 3 s of audio")
	tone, off := testmedia.Goertzel(pcm, 8000, 1000), testmedia.Goertzel(pcm, 8000, 1700)
	assert.Greater(t, tone, 20*off, "the 1 kHz tone survives SIP → AAC → nginx (%.0f vs %.0f)", tone, off)

	// Both publications are in it: audio packets before and after a gap (the
	// crash), the second part lasting more than a second and a half.
	apts := packetTimes(t, flv, "a")
	require.NotEmpty(t, apts)
	gapAt := -1
	for i := 1; i < len(apts); i++ {
		if apts[i]-apts[i-1] > 1 {
			gapAt = i
		}
	}
	require.Greater(t, gapAt, 0, "a gap where nginx was down")
	assert.Greater(t, apts[len(apts)-1]-apts[gapAt], 1.5, "audio after the restart")
	vpts := packetTimes(t, flv, "v")
	require.NotEmpty(t, vpts)
	assert.Greater(t, vpts[len(vpts)-1], apts[gapAt], "video after the restart")

	// Our own recording: MP4 by default, A-law transcoded to AAC.
	assert.True(t, strings.HasSuffix(info.RecordPath, ".mp4"), info.RecordPath)
	codecs = ffprobeCodecs(t, info.RecordPath)
	assert.Contains(t, codecs, "h264")
	assert.Contains(t, codecs, "aac")
	assert.Empty(t, decodeErrors(t, info.RecordPath), "MP4 recording decodes cleanly")
	d := ffprobeDuration(t, info.RecordPath)
	assert.Greater(t, d, 7.0, "recording covers the call (%.1f s)", d)
}
