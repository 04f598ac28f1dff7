//go:build interop && linux

package whep_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/whep"
)

// testPage plays /whep with the shipped player.js and reports what the
// browser saw to /report.
const testPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>whep interop</title></head>
<body><video id="v" autoplay playsinline muted></video>
<script src="/player/player.js"></script>
<script>
"use strict";
const t0 = performance.now();
const audioOnlyCall = new URLSearchParams(location.search).get("mode") === "audio";
const result = { ok: false, audioOnly: false, videoWidth: 0, videoHeight: 0, framesDecodedFirst: -1, framesDecoded: 0,
  audioPackets: 0, videoCodec: "", audioCodec: "", pair: "", elapsedMs: 0, error: "" };
async function report() {
  result.elapsedMs = Math.round(performance.now() - t0);
  await fetch("/report", { method: "POST", body: JSON.stringify(result) });
}
(async () => {
  let session = null;
  try {
    const video = document.getElementById("v");
    session = await whepPlay("/whep", video);
    result.audioOnly = session.audioOnly;
    while (performance.now() - t0 < 10000) {
      await new Promise((r) => setTimeout(r, 200));
      const stats = await session.pc.getStats();
      const codecs = {};
      stats.forEach((s) => { if (s.type === "codec") codecs[s.id] = s.mimeType; });
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") {
          result.framesDecoded = s.framesDecoded || 0;
          result.videoCodec = codecs[s.codecId] || "";
        }
        if (s.type === "inbound-rtp" && s.kind === "audio") {
          result.audioPackets = s.packetsReceived || 0;
          result.audioCodec = codecs[s.codecId] || "";
        }
        if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
          const l = stats.get(s.localCandidateId), r = stats.get(s.remoteCandidateId);
          result.pair = (l ? l.address + ":" + l.port : "?") + " <-> " + (r ? r.address + ":" + r.port : "?");
        }
      });
      result.videoWidth = video.videoWidth;
      result.videoHeight = video.videoHeight;
      if (audioOnlyCall) {
        if (result.audioPackets > 25) { // half a second of 20 ms packets
          result.ok = true;
          break;
        }
      } else if (result.videoWidth > 0 && result.framesDecoded > 0) {
        if (result.framesDecodedFirst < 0) {
          result.framesDecodedFirst = result.framesDecoded;
        } else if (result.framesDecoded > result.framesDecodedFirst && result.audioPackets > 0) {
          result.ok = true;
          break;
        }
      }
    }
  } catch (e) {
    result.error = String(e);
  }
  if (session) {
    await session.stop(); // DELETE the viewer resource
  }
  await report();
})();
</script></body></html>`

type browserResult struct {
	OK                 bool   `json:"ok"`
	AudioOnly          bool   `json:"audioOnly"`
	VideoWidth         int    `json:"videoWidth"`
	VideoHeight        int    `json:"videoHeight"`
	FramesDecodedFirst int    `json:"framesDecodedFirst"`
	FramesDecoded      int    `json:"framesDecoded"`
	AudioPackets       int    `json:"audioPackets"`
	VideoCodec         string `json:"videoCodec"`
	AudioCodec         string `json:"audioCodec"`
	Pair               string `json:"pair"`
	ElapsedMs          int    `json:"elapsedMs"`
	Error              string `json:"error"`
}

// runCall feeds a live call into s (the clip looped at 25 fps when video,
// a 1 kHz PCMA tone in 20 ms frames) until the returned stop is called.
func runCall(t *testing.T, s *whep.Sink, video bool) (stop func()) {
	t.Helper()
	quit := make(chan struct{})
	var feeder sync.WaitGroup
	feeder.Add(1)
	frames := clipFrames(t)
	go func() {
		defer feeder.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			a := toneFrame(i)
			_ = s.WriteFrame(&a)
			if video && i%2 == 0 {
				n := i / 2
				f := frames[n%len(frames)]
				f.PTS = time.Duration(n) * 40 * time.Millisecond
				f.DTS = f.PTS
				_ = s.WriteFrame(&f)
			}
		}
	}()
	return func() { close(quit); feeder.Wait() }
}

// playInChromium serves s at /whep with the test page and returns what
// headless Chromium reports after opening page?query.
func playInChromium(t *testing.T, s *whep.Sink, query string) browserResult {
	t.Helper()
	results := make(chan browserResult, 1)
	mux := http.NewServeMux()
	mux.Handle("/whep", s)
	mux.Handle("/whep/", s)
	mux.Handle("/player/", http.StripPrefix("/player", whep.PlayerHandler()))
	mux.HandleFunc("/test.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, testPage)
	})
	mux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		var res browserResult
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&res); err != nil {
			res.Error = "bad report: " + err.Error()
		}
		select {
		case results <- res:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()

	// Killed (with its helpers) before the test server closes.
	defer testenv.StartChromium(t, testenv.ChromiumConfig{URL: ts.URL + "/test.html?" + query}).Close()

	var res browserResult
	select {
	case res = <-results:
	case <-time.After(90 * time.Second):
		t.Fatalf("chromium reported nothing within 90 s (sink stats %+v)", s.Stats())
	}
	t.Logf("chromium: %+v", res)
	t.Logf("sink: %+v", s.Stats())
	if res.Error != "" || !res.OK {
		t.Fatalf("browser did not play the call within 10 s: %+v", res)
	}
	// The page DELETEd its viewer resource before reporting.
	waitFor(t, "the browser's viewer to leave", func() bool { return s.Stats().Viewers == 0 })
	if st := s.Stats(); st.ViewersTotal != 1 {
		t.Errorf("viewers total %d, want 1", st.ViewersTotal)
	}
	return res
}

// Headless Chromium plays a live call through the shipped player script:
// within 10 s the <video> has the clip's size, frames are being decoded and
// PCMA audio packets arrive; leaving DELETEs the viewer.
func TestInteropChromiumPlaysWHEP(t *testing.T) {
	s := newSink(t, whep.Config{Video: media.CodecH264, Audio: media.CodecPCMA})
	stop := runCall(t, s, true)
	defer stop()
	res := playInChromium(t, s, "mode=av")
	if res.VideoWidth != 320 || res.VideoHeight != 240 || res.AudioOnly {
		t.Errorf("video %dx%d (audio only %v), want 320x240", res.VideoWidth, res.VideoHeight, res.AudioOnly)
	}
	if res.FramesDecoded <= res.FramesDecodedFirst || res.AudioPackets == 0 {
		t.Errorf("frames decoded %d -> %d, audio packets %d", res.FramesDecodedFirst, res.FramesDecoded, res.AudioPackets)
	}
	if res.VideoCodec != "video/H264" || res.AudioCodec != "audio/PCMA" {
		t.Errorf("codecs %q %q, want video/H264 audio/PCMA", res.VideoCodec, res.AudioCodec)
	}
}

// An audio-only call (codec learned from the frames) plays audio-only.
func TestInteropChromiumPlaysAudioOnlyCall(t *testing.T) {
	s := newSink(t, whep.Config{Probe: 200 * time.Millisecond})
	stop := runCall(t, s, false)
	defer stop()
	res := playInChromium(t, s, "mode=audio")
	if !res.AudioOnly || res.VideoWidth != 0 || res.AudioCodec != "audio/PCMA" || res.AudioPackets == 0 {
		t.Errorf("audio-only call: %+v", res)
	}
}
