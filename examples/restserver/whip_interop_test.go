//go:build interop

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/sip/siptest"
)

// whipPublishPage publishes the microphone (Chromium's fake capture device,
// fed a WAV file) to /whip/op1 with the WHIP protocol: an offer with every
// candidate POSTed as application/sdp with the admin's login, the answer
// from the 201, then it reports the connection and keeps publishing.
const whipPublishPage = `<!doctype html>
<html><body><pre id="log"></pre>
<script>
"use strict";
const auth = "Basic " + btoa("LOGIN");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
  const r = {};
  try {
    // No audio processing: noise suppression would take a steady tone
    // for noise.
    const stream = await navigator.mediaDevices.getUserMedia({audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
    const pc = new RTCPeerConnection();
    pc.addTransceiver(stream.getAudioTracks()[0], {direction: "sendonly", streams: [stream]});
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
    });
    const resp = await fetch("/whip/op1", {method: "POST", headers: {"Content-Type": "application/sdp", "Authorization": auth}, body: pc.localDescription.sdp});
    r.status = resp.status;
    r.location = resp.headers.get("Location") || "";
    const answer = await resp.text();
    if (resp.status !== 201) throw new Error("POST /whip/op1: " + resp.status + ": " + answer);
    await pc.setRemoteDescription({type: "answer", sdp: answer});
    for (let i = 0; i < 200 && pc.connectionState !== "connected"; i++) await sleep(50);
    r.state = pc.connectionState;
    await sleep(500);
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "audio") r.packetsSent = s.packetsSent;
      if (s.type === "codec" && s.mimeType.startsWith("audio/")) r.codec = s.mimeType;
    });
    window.whipPC = pc; // keep publishing
  } catch (e) {
    r.error = e.name + ": " + e.message;
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(r)});
})();
</script>
</body></html>`

// whipReport is what whipPublishPage reports.
type whipReport struct {
	Error       string `json:"error"`
	Status      int    `json:"status"`
	Location    string `json:"location"`
	State       string `json:"state"`
	PacketsSent int    `json:"packetsSent"`
	Codec       string `json:"codec"`
}

// TestInteropChromiumWHIPInject: Chromium publishes its microphone (a
// 1 kHz tone from a WAV file) over WHIP to /whip/op1; a call to a siptest
// callee gets /call/inject_stream/startup {streamName: "op1"} and the
// callee hears the tone (G.711 at 8 kHz); /call/inject_stream/terminate
// brings silence; injected again, the tone is back until the publisher's
// resource is DELETEd, which ends the publication and silences the call.
func TestInteropChromiumWHIPInject(t *testing.T) {
	testenv.LookPath(t, "chromium")
	dir := t.TempDir()
	wav := filepath.Join(dir, "tone.wav")
	// 2 s of a 1 kHz tone at 48 kHz, half scale (Chromium loops the file).
	require.NoError(t, os.WriteFile(wav, testmedia.WAV(testmedia.Tone(1000, 48000, 0, 96000, 0.5), 48000), 0o644))

	peer := startPeer(t, siptest.Script{})
	srv := startRun(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// The page is served on the server's origin (through a proxy), as an
	// operator's page would be.
	target, err := url.Parse("http://" + srv.addr)
	require.NoError(t, err)
	reports := newPageReports[whipReport](1)
	mux := reports.mux(map[string]func() string{
		"/whip.html": func() string { return strings.ReplaceAll(whipPublishPage, "LOGIN", testUser+":"+testPass) },
	})
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	code, body := rest(t, srv.base, "/call/startup", map[string]any{"callId": "op", "callee": peer.URI(), "hasAudio": true, "hasVideo": false})
	require.Equal(t, http.StatusOK, code, string(body))
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	waitCall(t, srv.base, "op", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })

	// Nothing is published as op1 yet.
	code, body = rest(t, srv.base, "/call/inject_stream/startup", map[string]any{"callId": "op", "streamName": "op1"})
	require.Equal(t, http.StatusNotFound, code, string(body))
	// WHIP needs the admin's login.
	resp, err := http.Post(ts.URL+"/whip/op1", "application/sdp", strings.NewReader("v=0\r\n"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	chromium := testenv.StartChromium(t, testenv.ChromiumConfig{URL: ts.URL + "/whip.html", Args: []string{
		"--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--use-file-for-fake-audio-capture=" + wav}})
	defer chromium.Close()
	rep := reports.next(t, "the WHIP page", 60*time.Second)
	t.Logf("page: %+v", rep)
	require.Empty(t, rep.Error)
	require.Equal(t, http.StatusCreated, rep.Status)
	require.Equal(t, "connected", rep.State)
	require.True(t, strings.HasPrefix(rep.Location, "/whip/op1/"), rep.Location)
	require.Equal(t, "audio/opus", strings.ToLower(rep.Codec))

	// toneFor injects op1, listens for d and returns what the callee heard.
	toneFor := func(d time.Duration) []int16 {
		t.Helper()
		before := len(pc.ReceivedAudio())
		code, body := rest(t, srv.base, "/call/inject_stream/startup", map[string]any{"callId": "op", "streamName": "op1"})
		require.Equal(t, http.StatusOK, code, string(body))
		time.Sleep(d)
		return pc.ReceivedAudio()[before:]
	}
	heard := toneFor(3 * time.Second)
	require.Greater(t, len(heard), 16000, "about 3 s of audio")
	mid := heard[len(heard)/3 : len(heard)*5/6]
	g := testmedia.Goertzel(mid, 8000, 1000)
	t.Logf("callee: Goertzel(1 kHz) over %d samples while op1 was injected: %.3f", len(mid), g)
	assert.Greater(t, g, 0.5, "Chromium's 1 kHz tone reached the SIP callee")

	code, body = rest(t, srv.base, "/call/inject_stream/terminate", map[string]any{"callId": "op"})
	require.Equal(t, http.StatusOK, code, string(body))
	stopped := len(pc.ReceivedAudio())
	time.Sleep(1500 * time.Millisecond)
	after := pc.ReceivedAudio()[stopped+2400:] // 300 ms for what was in flight
	require.Greater(t, len(after), 4000)
	ga := testmedia.Goertzel(after, 8000, 1000)
	t.Logf("callee: Goertzel(1 kHz) after inject_stream/terminate: %.3f", ga)
	assert.Less(t, ga, 0.1, "silence after inject_stream/terminate")

	// Again, then the publisher's DELETE ends the publication: silence.
	heard = toneFor(1500 * time.Millisecond)
	assert.Greater(t, testmedia.Goertzel(heard[len(heard)/3:], 8000, 1000), 0.5, "the tone again")
	req, err := http.NewRequest(http.MethodDelete, withLogin(ts.URL)+rep.Location, nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	stopped = len(pc.ReceivedAudio())
	time.Sleep(1500 * time.Millisecond)
	after = pc.ReceivedAudio()[stopped+2400:]
	gd := testmedia.Goertzel(after, 8000, 1000)
	t.Logf("callee: Goertzel(1 kHz) after the publication's DELETE: %.3f", gd)
	assert.Less(t, gd, 0.1, "silence once the publication ended")
	code, body = rest(t, srv.base, "/call/inject_stream/startup", map[string]any{"callId": "op", "streamName": "op1"})
	require.Equal(t, http.StatusNotFound, code, "the publication is gone: %s", body)

	code, _ = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "op"})
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, pc.WaitBye(ctx))
}
