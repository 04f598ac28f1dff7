package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sip/siptest"
)

// startRTMPServer is an rtmp.Server on a free loopback port; it returns the
// server and its application URL rtmp://127.0.0.1:PORT/live.
func startRTMPServer(t *testing.T) (*rtmp.Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s, err := rtmp.NewServer(rtmp.ServerConfig{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.Serve(l); err != nil && !errors.Is(err, rtmp.ErrServerClosed) {
			t.Errorf("rtmp server: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = s.Close()
		wg.Wait()
	})
	return s, "rtmp://" + l.Addr().String() + "/live"
}

func startPeer(t *testing.T, script siptest.Script) *siptest.Peer {
	t.Helper()
	p, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Script: script})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// The whole server in-process, as a user runs it, against a siptest callee
// and our RTMP server: startup → ESTABLISHED and RTMP_STREAM_ACTIVE with
// audio and video published → DTMF in both ways reaches the callee →
// terminate sends BYE → the webhook got the statuses in order.
func TestEndToEndCall(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true, Video: true, SendSR: true})
	rs, rtmpURL := startRTMPServer(t)
	hook := newWebhookRecorder(t)
	srv := startRun(t, "-webhook", hook.srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sub := rs.Subscribe("live", "e2e", 0)
	defer sub.Close()

	code, body := rest(t, srv.base, "/call/startup", map[string]any{
		"callId": "e2e-1", "callee": peer.URI(), "rtmpUrl": rtmpURL, "rtmpStream": "e2e",
		"toStream": "e2e-view", "hasAudio": "true", "hasVideo": true, "sipPassword": "s3cret-pass",
	})
	require.Equal(t, http.StatusOK, code, string(body))
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, pc.WaitEstablished(ctx))

	c := waitCall(t, srv.base, "e2e-1", "ESTABLISHED + RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	require.Equal(t, peer.URI(), c.Callee)
	require.Equal(t, rtmpURL, c.RTMPURL)
	require.Equal(t, "e2e", c.RTMPStream)
	require.Equal(t, "e2e-view", c.StreamName)
	require.True(t, c.HasAudio && c.HasVideo)
	require.Equal(t, 200, c.SIPStatus)

	// What reaches the RTMP server: an AVC sequence header, then video and
	// audio tags.
	var seenAudio, seenVideo, seenAVCHeader bool
	for !(seenAudio && seenVideo && seenAVCHeader) {
		tag, err := sub.ReadTag(ctx)
		require.NoError(t, err, "published tags")
		switch tag.Type {
		case 8:
			seenAudio = true
		case 9:
			seenVideo = true
			if len(tag.Data) > 1 && tag.Data[0] == 0x17 && tag.Data[1] == 0 {
				seenAVCHeader = true
			}
		}
	}

	// WebRTC: the call plays at /whep/{toStream}, starting on a keyframe.
	viewer := playWHEP(t, srv.base+"/whep/e2e-view")
	require.True(t, answerHasVideoTrack(viewer.answer()), "no video track in the answer:\n%s", viewer.answer())
	viewer.wait(t, 25, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	viewer.mu.Lock()
	require.True(t, viewer.mimes[webrtc.MimeTypeH264], "%v", viewer.mimes)
	require.True(t, viewer.mimes[webrtc.MimeTypePCMA] || viewer.mimes[webrtc.MimeTypePCMU], "%v", viewer.mimes)
	require.True(t, viewer.nalSPS, "the viewer got an SPS (a keyframe)")
	viewer.mu.Unlock()
	metrics := getMetrics(t, srv.base)
	require.Contains(t, metrics, "sipstream_webrtc_viewers 1\n")
	require.Contains(t, metrics, "sipstream_webrtc_streams 1\n")
	require.Contains(t, metrics, `sipstream_calls{status="ESTABLISHED"} 1`+"\n")
	require.Contains(t, metrics, `sipstream_rtmp_legs{status="active"} 1`+"\n")
	audioPkts := metricValue(t, metrics, `sipstream_rtp_packets_received_total{kind="audio"}`)
	videoPkts := metricValue(t, metrics, `sipstream_rtp_packets_received_total{kind="video"}`)
	require.Positive(t, audioPkts)
	require.Positive(t, videoPkts)
	require.Contains(t, metrics, `sipstream_rtp_jitter_seconds{call_id="e2e-1",kind="audio"}`)
	require.Positive(t, metricValue(t, metrics, `sipstream_keyframes_received_total`))
	require.Contains(t, metrics, "sipstream_rtcp_nacks_sent_total ")
	require.Contains(t, metrics, "sipstream_video_frozen_seconds_total ")
	// The call object carries the media counters.
	c = waitCall(t, srv.base, "e2e-1", "media counters", func(c wcsapi.Call) bool {
		return c.MediaStats != nil && c.MediaStats.Video.Frames > 0 && c.MediaStats.Audio.PacketsReceived > 0
	})
	require.Positive(t, c.MediaStats.Video.KeyframesReceived)
	require.Positive(t, c.MediaStats.Video.PacketsReceived)
	viewer.stop(t, srv.base)

	// DTMF: RFC 2833 events on the audio stream, then SIP INFO (both kinds).
	code, body = rest(t, srv.base, "/call/send_dtmf", map[string]any{"callId": "e2e-1", "dtmf": "12", "type": "RFC2833"})
	require.Equal(t, http.StatusOK, code, string(body))
	got, err := pc.WaitDTMF(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, "12", got)
	code, body = rest(t, srv.base, "/call/send_dtmf", map[string]any{"callId": "e2e-1", "dtmf": "#", "type": "INFO"})
	require.Equal(t, http.StatusOK, code, string(body))
	code, body = rest(t, srv.base, "/call/send_dtmf", map[string]any{"callId": "e2e-1", "dtmf": "5", "type": "INFO_RELAY"})
	require.Equal(t, http.StatusOK, code, string(body))
	got, err = pc.WaitDTMF(ctx, 4)
	require.NoError(t, err)
	require.Equal(t, "12#5", got)
	infos, err := pc.WaitInfos(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, "application/dtmf", infos[0].ContentType())
	require.Equal(t, "application/dtmf-relay", infos[1].ContentType())

	// Unknown call: 404.
	code, _ = rest(t, srv.base, "/call/send_dtmf", map[string]any{"callId": "nope", "dtmf": "1"})
	require.Equal(t, http.StatusNotFound, code)
	// The same callId again while it is live: 409.
	code, _ = rest(t, srv.base, "/call/startup", map[string]any{"callId": "e2e-1", "callee": peer.URI()})
	require.Equal(t, http.StatusConflict, code)

	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "e2e-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, pc.WaitBye(ctx), "the callee saw our BYE")
	waitGone(t, srv.base, "e2e-1")

	hook.waitStatus(t, "e2e-1", "FINISH")
	calls, rtmps := hook.statuses("e2e-1")
	t.Logf("webhook: call %v, rtmp %v", calls, rtmps)
	require.True(t, inOrder(calls, []string{"ESTABLISHED", "FINISH"}), "call statuses %v", calls)
	require.Equal(t, "FINISH", calls[len(calls)-1], "FINISH is the last call status: %v", calls)
	require.Equal(t, 1, countOf(calls, "ESTABLISHED"), "%v", calls)
	require.Contains(t, rtmps, "RTMP_STREAM_ACTIVE")
	hook.mu.Lock()
	require.Empty(t, hook.bad)
	for _, ev := range hook.events {
		if ev.Type == "DtmfEvent" {
			continue
		}
		require.Equal(t, "CallStatusEvent", ev.Type, "the call's RTMP leg is reported in CallStatusEvents, never the WHEP sink: %+v", ev)
		require.Equal(t, rtmpURL, ev.RTMPURL, "%+v", ev)
		require.Equal(t, "***", ev.RTMPStream, "the stream key is redacted: %+v", ev)
		require.Equal(t, "Flash", ev.MediaProvider, "%+v", ev)
		require.NotEmpty(t, ev.NodeID, "%+v", ev)
	}
	hook.mu.Unlock()

	metrics = getMetrics(t, srv.base)
	require.Contains(t, metrics, `sipstream_calls_ended_total{status="FINISH"} 1`+"\n")
	require.Contains(t, metrics, "sipstream_webrtc_streams 0\n")
	// The ended call's packets stay counted.
	require.GreaterOrEqual(t, metricValue(t, metrics, `sipstream_rtp_packets_received_total{kind="audio"}`), audioPkts)
	require.GreaterOrEqual(t, metricValue(t, metrics, `sipstream_rtp_packets_received_total{kind="video"}`), videoPkts)
	require.NotContains(t, metrics, `sipstream_rtp_jitter_seconds{call_id="e2e-1"`)
	require.NotContains(t, metrics, "s3cret-pass")

	require.NoError(t, srv.stop())
	require.NotContains(t, srv.log.String(), "s3cret-pass", "the SIP password is never logged")
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// Stopping the server (SIGINT: run's context canceled) hangs up every live
// call with a BYE before run returns.
func TestShutdownSendsBye(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true})
	hook := newWebhookRecorder(t)
	srv := startRun(t, "-webhook", hook.srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var pcs []*siptest.PeerCall
	for _, id := range []string{"bye-1", "bye-2"} {
		code, body := rest(t, srv.base, "/call/startup", map[string]any{"callId": id, "callee": peer.URI(), "hasVideo": false})
		require.Equal(t, http.StatusOK, code, string(body))
		pc, err := peer.WaitCall(ctx)
		require.NoError(t, err)
		require.NoError(t, pc.WaitEstablished(ctx))
		waitCall(t, srv.base, id, "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
		pcs = append(pcs, pc)
	}

	require.NoError(t, srv.stop())
	for _, pc := range pcs {
		// run closed the SIP user agent before it returned, so any BYE the
		// peer gets was sent during the shutdown. (The peer may record it a
		// moment after answering it: wait, not poll once.)
		require.NoError(t, pc.WaitBye(ctx), "call %s got no BYE", pc.CallID())
		require.Equal(t, siptest.EndRemoteBye, pc.End(), "call %s", pc.CallID())
		_, ok := pc.Bye()
		require.True(t, ok)
		// The webhook was told before run returned.
		calls, _ := hook.statuses(pc.CallID())
		require.Equal(t, []string{"ESTABLISHED", "FINISH"}, calls[len(calls)-2:], "call %s: %v", pc.CallID(), calls)
	}
}

// waitGone waits until /call/find no longer shows callID live: FINISH, or
// 404 once the manager forgot it.
func waitGone(t *testing.T, base, callID string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, ok := findCall(t, base, callID)
		if !ok || c.Status == "FINISH" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("call %s still live 30 s after terminate", callID)
}

// An audio-only call plays audio-only: the WHEP answer has no video track,
// and audio packets arrive.
func TestWebRTCAudioOnlyCall(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true, NoVideo: true})
	srv := startRun(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, body := rest(t, srv.base, "/call/startup", map[string]any{"callId": "audio-1", "callee": peer.URI(), "hasVideo": "false"})
	require.Equal(t, http.StatusOK, code, string(body))
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, pc.WaitEstablished(ctx))
	waitCall(t, srv.base, "audio-1", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })

	// toStream defaults to the callId.
	viewer := playWHEP(t, srv.base+"/whep/audio-1")
	viewer.wait(t, 25, webrtc.RTPCodecTypeAudio)
	viewer.mu.Lock()
	require.Zero(t, viewer.packets[webrtc.RTPCodecTypeVideo])
	for mime := range viewer.mimes {
		require.True(t, strings.HasPrefix(mime, "audio/"), "track %s in an audio-only call", mime)
	}
	viewer.mu.Unlock()
	require.False(t, answerHasVideoTrack(viewer.answer()), "video track in the answer of an audio-only call:\n%s", viewer.answer())

	// A second call may not take the stream name of a live one.
	code, _ = rest(t, srv.base, "/call/startup", map[string]any{"callId": "audio-2", "callee": peer.URI(), "toStream": "audio-1"})
	require.Equal(t, http.StatusConflict, code)

	// Terminate: the viewer's stream is gone with the call.
	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "audio-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, pc.WaitBye(ctx))
	waitGone(t, srv.base, "audio-1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Post(srv.base+"/whep/audio-1", "application/sdp", strings.NewReader("v=0\r\n"))
		require.NoError(t, err)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			break
		}
		require.True(t, time.Now().Before(deadline), "/whep/audio-1 still served after the call ended: %d", resp.StatusCode)
		time.Sleep(50 * time.Millisecond)
	}
	viewer.close()
}

// answerHasVideoTrack reports whether an SDP answer sends a video track (the
// test the page's player makes: a video section with a=msid or a=ssrc).
func answerHasVideoTrack(sdp string) bool {
	for _, sec := range strings.Split(strings.ReplaceAll(sdp, "\r\n", "\n"), "\nm=")[1:] {
		if strings.HasPrefix(sec, "video ") && !strings.HasPrefix(sec, "video 0 ") &&
			(strings.Contains(sec, "\na=msid:") || strings.Contains(sec, "\na=ssrc:")) {
			return true
		}
	}
	return false
}

// -demo: the page's defaults place a call to the demo callee that reaches
// ESTABLISHED and RTMP_STREAM_ACTIVE on the embedded RTMP server, as one
// click on Call does; the banner says where to look.
func TestDemoOneClick(t *testing.T) {
	srv := startRun(t, "-demo")
	resp, err := http.Get(srv.base + "/defaults")
	require.NoError(t, err)
	var def map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&def))
	resp.Body.Close()
	log := srv.log.String()
	require.Contains(t, log, "open the page:      http://"+srv.addr+"/")
	require.Contains(t, log, "log in:             no login (the demo serves this machine only)")
	require.Contains(t, log, "ffplay "+def["rtmpUrl"].(string)+"/"+demoStream)

	// What the page's form sends.
	body := map[string]any{"callId": "demo-call", "hasAudio": "true", "hasVideo": "true", "sipRegisterRequired": "false"}
	for _, k := range []string{"callee", "rtmpUrl", "rtmpStream", "toStream"} {
		body[k] = def[k]
	}
	code, out := rest(t, srv.base, "/call/startup", body)
	require.Equal(t, http.StatusOK, code, string(out))
	waitCall(t, srv.base, "demo-call", "ESTABLISHED + RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	viewer := playWHEP(t, srv.base+"/whep/"+demoStream)
	viewer.wait(t, 10, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	viewer.stop(t, srv.base)
	require.NoError(t, srv.stop())
}

func getMetrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(b)
}

// The rest of what a user drives over HTTP against the real manager: HTTPS
// with the self-signed certificate, /push targets (published as
// "rtmp_"+toStream), and a recording that shutdown closes into a whole file.
func TestEndToEndPushRecordHTTPS(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	rs, rtmpURL := startRTMPServer(t)
	recDir := t.TempDir()
	srv := startRun(t, "-https", "127.0.0.1:0", "-record-dir", recDir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// HTTPS with the self-signed certificate serves the same page and API.
	m := regexp.MustCompile(`msg=listening scheme=https addr=(\S+)`).FindStringSubmatch(srv.log.String())
	require.NotNil(t, m, srv.log.String())
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // self-signed on purpose
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(withLogin("https://" + m[1] + "/"))
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(page), "Start a call")
	require.NotNil(t, resp.TLS)

	code, body := rest(t, srv.base, "/call/startup", map[string]any{
		"callId": "push-1", "callee": peer.URI(), "rtmpUrl": rtmpURL, "rtmpStream": "main", "toStream": "show",
		"record": "true",
	})
	require.Equal(t, http.StatusOK, code, string(body))
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	waitCall(t, srv.base, "push-1", "ESTABLISHED + RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})

	// A push of the call's stream: published as rtmp_show.
	sub := rs.Subscribe("live", "rtmp_show", 0)
	defer sub.Close()
	code, body = rest(t, srv.base, "/push/startup", map[string]any{"streamName": "show", "rtmpUrl": rtmpURL})
	require.Equal(t, http.StatusOK, code, string(body))
	var push wcsapi.Push
	require.NoError(t, json.Unmarshal(body, &push))
	require.NotEmpty(t, push.MediaSessionID)
	require.Equal(t, rtmpURL+"/rtmp_show", push.RTMPURL)
	for seenVideo := false; !seenVideo; {
		tag, err := sub.ReadTag(ctx)
		require.NoError(t, err, "the push publishes")
		seenVideo = tag.Type == 9
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body = rest(t, srv.base, "/push/find", map[string]any{"mediaSessionId": push.MediaSessionID})
		require.Equal(t, http.StatusOK, code, string(body))
		var ps []wcsapi.Push
		require.NoError(t, json.Unmarshal(body, &ps))
		require.Len(t, ps, 1)
		if ps[0].Status == "RTMP_STREAM_ACTIVE" {
			require.Equal(t, "show", ps[0].StreamName)
			break
		}
		require.True(t, time.Now().Before(deadline), "push status %s", ps[0].Status)
		time.Sleep(50 * time.Millisecond)
	}
	for _, path := range []string{"/push/mute", "/push/unmute"} {
		code, body = rest(t, srv.base, path, map[string]any{"mediaSessionId": push.MediaSessionID})
		require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	}
	// The call's own RTMP leg is not a push.
	code, _ = rest(t, srv.base, "/push/terminate", map[string]any{"mediaSessionId": "push-1/rtmp"})
	require.Equal(t, http.StatusNotFound, code)
	code, body = rest(t, srv.base, "/push/terminate", map[string]any{"mediaSessionId": push.MediaSessionID})
	require.Equal(t, http.StatusOK, code, string(body))
	code, _ = rest(t, srv.base, "/push/find", map[string]any{"mediaSessionId": push.MediaSessionID})
	require.Equal(t, http.StatusNotFound, code)

	// The call object gives the recording's file (MP4 by default).
	c, ok := findCall(t, srv.base, "push-1")
	require.True(t, ok)
	require.Equal(t, recDir, filepath.Dir(c.RecordPath), "recordPath %q", c.RecordPath)
	require.True(t, strings.HasSuffix(c.RecordPath, ".mp4"), c.RecordPath)

	// Let the recording get a few seconds, then stop the server with the
	// call up: the recording is closed into a whole MP4 file.
	time.Sleep(2 * time.Second)
	require.NoError(t, srv.stop())
	require.NoError(t, pc.WaitBye(ctx))
	files, err := filepath.Glob(filepath.Join(recDir, "*"))
	require.NoError(t, err)
	require.Equal(t, []string{c.RecordPath, c.RecordPath + callmgr.RecordingMetaSuffix}, files,
		"one recording, the one /call/find named, and its sidecar (call, start, duration: /recording/find_all)")
	rec, err := os.ReadFile(files[0])
	require.NoError(t, err)
	t.Logf("recording %s: %d bytes", filepath.Base(files[0]), len(rec))
	require.Greater(t, len(rec), 10_000)
	require.Equal(t, "ftyp", string(rec[4:8]), "MP4 file type box")
	require.True(t, bytes.Contains(rec, []byte("avc1")) && bytes.Contains(rec, []byte("mp4a")), "H.264 and AAC tracks")
	require.True(t, bytes.Contains(rec, []byte("moof")), "movie fragments")
}

// metricValue returns the value of the sample named exactly series (name
// with labels) in a Prometheus text exposition.
func metricValue(t *testing.T, metrics, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("no %s in the metrics:\n%s", series, metrics)
	return 0
}
