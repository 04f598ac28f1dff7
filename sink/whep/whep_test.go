package whep_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/whep"
)

var _ sink.Sink = (*whep.Sink)(nil)
var _ http.Handler = (*whep.Sink)(nil)

func newSink(t *testing.T, cfg whep.Config) *whep.Sink {
	t.Helper()
	if cfg.ICEIPs == nil {
		cfg.ICEIPs = loopback
	}
	s, err := whep.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// checkTone decodes PCMA payloads and checks they carry the 1 kHz tone.
func checkTone(t *testing.T, payloads [][]byte) {
	t.Helper()
	var pcm []int16
	for _, p := range payloads {
		pcm = g711.DecodeALaw(pcm, p)
	}
	if len(pcm) < 1600 {
		t.Fatalf("only %d audio samples", len(pcm))
	}
	if g := testmedia.Goertzel(pcm, 8000, toneHz); g < 0.9 {
		t.Errorf("1 kHz energy fraction %.3f, want > 0.9", g)
	}
	if g := testmedia.Goertzel(pcm, 8000, 1500); g > 0.05 {
		t.Errorf("1.5 kHz energy fraction %.3f, want < 0.05", g)
	}
}

// A pion viewer receives exactly the access units and the tone fed into the
// sink.
func TestViewerReceivesFramesSent(t *testing.T) {
	var kf atomic.Int32
	s := newSink(t, whep.Config{Video: media.CodecH264, Audio: media.CodecPCMA,
		RequestKeyframe: func() { kf.Add(1) }})
	ts := serve(t, s)
	v := dialViewer(t, ts.URL+"/whep", viewerOpts{})
	defer v.close()
	if !strings.HasPrefix(v.location, "/whep/") {
		t.Fatalf("Location %q", v.location)
	}
	if !strings.Contains(v.answer, "H264/90000") || !strings.Contains(v.answer, "PCMA/8000") {
		t.Fatalf("answer lacks H264 or PCMA:\n%s", v.answer)
	}
	if strings.Contains(v.answer, "VP8") || strings.Contains(v.answer, "opus") {
		t.Errorf("answer offers codecs the call does not send:\n%s", v.answer)
	}
	waitFor(t, "viewer to connect", func() bool { return s.Stats().Viewers == 1 })
	if kf.Load() == 0 {
		t.Error("no keyframe requested for a viewer joining without a cached keyframe")
	}

	frames := clipFrames(t)
	audioN := 0
	for i := range frames {
		if err := s.WriteFrame(&frames[i]); err != nil {
			t.Fatal(err)
		}
		for ; audioN < 2*(i+1); audioN++ {
			a := toneFrame(audioN)
			if err := s.WriteFrame(&a); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(3 * time.Millisecond) // stay within the socket buffers
	}
	for i := range frames {
		got, err := recvFrame(v.video, 20*time.Second)
		if err != nil {
			t.Fatalf("access unit %d: %v (stats %+v)", i, err, s.Stats())
		}
		if !bytes.Equal(got.Payload, frames[i].Payload) || got.Keyframe != frames[i].Keyframe {
			t.Fatalf("access unit %d differs: got %d bytes key=%v, sent %d bytes key=%v",
				i, len(got.Payload), got.Keyframe, len(frames[i].Payload), frames[i].Keyframe)
		}
	}
	var audio [][]byte
	for len(audio) < audioN {
		select {
		case p := <-v.audio:
			audio = append(audio, p)
		case <-time.After(20 * time.Second):
			t.Fatalf("received %d of %d audio packets", len(audio), audioN)
		}
	}
	checkTone(t, audio)

	st := s.Stats()
	if st.FramesDropped != 0 || st.FramesIgnored != 0 || st.FramesSent != uint64(len(frames)+audioN) {
		t.Errorf("stats %+v", st)
	}

	if code := deleteResource(t, ts.URL, v.location); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	if n := s.Stats().Viewers; n != 0 {
		t.Errorf("%d viewers after DELETE", n)
	}
	if code := deleteResource(t, ts.URL, v.location); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", code)
	}
}

// A viewer joining mid-GOP gets the cached keyframe first, then frames from
// the next keyframe on; one joining right after a keyframe continues with the
// frames that follow it.
func TestLateViewerStartsOnCachedKeyframe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int   // frames written before the viewer joins
		want   []int // indexes of the first access units it must get
	}{
		{"mid-GOP", 30, []int{25, 50, 51, 52}},
		{"right after keyframe", 26, []int{25, 26, 27, 28}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kf atomic.Int32
			s := newSink(t, whep.Config{Video: media.CodecH264, Audio: media.CodecPCMA,
				RequestKeyframe: func() { kf.Add(1) }})
			ts := serve(t, s)
			frames := clipFrames(t)
			for i := 0; i < tc.before; i++ {
				if err := s.WriteFrame(&frames[i]); err != nil {
					t.Fatal(err)
				}
			}
			v := dialViewer(t, ts.URL+"/whep", viewerOpts{noAudio: true})
			defer v.close()
			waitFor(t, "viewer to connect", func() bool { return s.Stats().Viewers == 1 })
			for i := tc.before; i < len(frames); i++ {
				if err := s.WriteFrame(&frames[i]); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Millisecond)
			}
			for _, idx := range tc.want {
				got, err := recvFrame(v.video, 20*time.Second)
				if err != nil {
					t.Fatalf("waiting for access unit %d: %v", idx, err)
				}
				if !bytes.Equal(got.Payload, frames[idx].Payload) {
					t.Fatalf("got %d bytes (key=%v), want access unit %d (%d bytes)", len(got.Payload), got.Keyframe, idx, len(frames[idx].Payload))
				}
			}
			wantKF := tc.before%testmedia.ClipGOP != 1
			if (kf.Load() > 0) != wantKF {
				t.Errorf("keyframe requests %d, want some: %v", kf.Load(), wantKF)
			}
		})
	}
}

// PLI from a viewer asks for a keyframe, at most once per KeyframeInterval.
func TestPLIRequestsKeyframe(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		want     func(n int32) bool
	}{
		{"every PLI", time.Nanosecond, func(n int32) bool { return n >= 4 }},
		{"rate-limited", time.Hour, func(n int32) bool { return n == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var kf atomic.Int32
			s := newSink(t, whep.Config{Video: media.CodecH264, RequestKeyframe: func() { kf.Add(1) },
				KeyframeInterval: tc.interval, Probe: time.Millisecond})
			ts := serve(t, s)
			frames := clipFrames(t)
			v := dialViewer(t, ts.URL+"/whep", viewerOpts{noAudio: true})
			defer v.close()
			waitFor(t, "viewer to connect", func() bool { return s.Stats().Viewers == 1 })
			for i := 0; i < 3; i++ {
				if err := s.WriteFrame(&frames[i]); err != nil {
					t.Fatal(err)
				}
			}
			var ssrc uint32
			select {
			case x := <-v.ssrc:
				ssrc = uint32(x)
			case <-time.After(20 * time.Second):
				t.Fatal("no video track")
			}
			for i := 0; i < 3; i++ {
				if err := v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "3 PLIs", func() bool { return s.Stats().PLIs >= 3 })
			if n := kf.Load(); !tc.want(n) || s.Stats().KeyframeRequests != uint64(n) {
				t.Errorf("%d keyframe requests (stats %d)", n, s.Stats().KeyframeRequests)
			}
		})
	}
}

// An audio-only call is answered audio-only and plays the tone.
func TestAudioOnlyCall(t *testing.T) {
	s := newSink(t, whep.Config{Probe: 100 * time.Millisecond})
	ts := serve(t, s)
	first := toneFrame(0)
	if err := s.WriteFrame(&first); err != nil { // declares PCMA
		t.Fatal(err)
	}
	v := dialViewer(t, ts.URL+"/whep", viewerOpts{})
	defer v.close()
	// The video section stays (BUNDLE), without a track.
	_, videoSection, _ := strings.Cut(v.answer, "m=video ")
	videoSection, _, _ = strings.Cut(videoSection, "m=audio ")
	if !strings.Contains(v.answer, "PCMA/8000") || strings.Contains(v.answer, "H264") ||
		strings.Contains(videoSection, "a=ssrc:") || strings.Contains(videoSection, "a=msid:") {
		t.Fatalf("answer is not audio-only PCMA:\n%s", v.answer)
	}
	waitFor(t, "viewer to connect", func() bool { return s.Stats().Viewers == 1 })
	var audio [][]byte
	for n := 1; len(audio) < 50; n++ {
		a := toneFrame(n)
		if err := s.WriteFrame(&a); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-v.audio:
			audio = append(audio, p)
		case <-time.After(5 * time.Millisecond):
		}
		if n > 5000 {
			t.Fatalf("received only %d audio packets", len(audio))
		}
	}
	checkTone(t, audio)
}

func TestHTTPErrors(t *testing.T) {
	s := newSink(t, whep.Config{Video: media.CodecH264, MaxViewers: 1, MediaWait: 50 * time.Millisecond})
	ts := serve(t, s)

	resp, err := http.Post(ts.URL+"/whep", "text/plain", strings.NewReader("v=0"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("wrong Content-Type: %d", resp.StatusCode)
	}
	resp, err = http.Get(ts.URL + "/whep")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	if code := deleteResource(t, ts.URL, "/whep/nosuchviewer"); code != http.StatusNotFound {
		t.Errorf("DELETE unknown: %d", code)
	}
	resp = postOffer(t, ts.URL+"/whep", "this is not SDP")
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage offer: %d", resp.StatusCode)
	}

	// The call sends H.264; a viewer that only takes VP8 gets 406.
	pc, offer := newOffer(t, viewerOpts{noAudio: true, videoMime: "video/VP8"})
	resp = postOffer(t, ts.URL+"/whep", offer)
	defer resp.Body.Close()
	_ = pc.GracefulClose()
	if resp.StatusCode != http.StatusNotAcceptable {
		b, _ := io.ReadAll(resp.Body)
		t.Errorf("VP8-only offer: %d %s", resp.StatusCode, b)
	}

	// Viewer limit.
	v := dialViewer(t, ts.URL+"/whep", viewerOpts{})
	defer v.close()
	pc, offer = newOffer(t, viewerOpts{})
	resp = postOffer(t, ts.URL+"/whep", offer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("viewer over the limit: %d", resp.StatusCode)
	}

	// A sink that has seen no media and has no codec configured.
	s2 := newSink(t, whep.Config{MediaWait: 50 * time.Millisecond})
	ts2 := serve(t, s2)
	resp = postOffer(t, ts2.URL+"/whep", offer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("no media: %d", resp.StatusCode)
	}

	// After Close.
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp = postOffer(t, ts.URL+"/whep", offer)
	resp.Body.Close()
	_ = pc.GracefulClose()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d", resp.StatusCode)
	}
	f := clipFrames(t)[0]
	if err := s.WriteFrame(&f); err != whep.ErrClosed {
		t.Errorf("WriteFrame after Close: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []whep.Config{
		{Video: media.CodecPCMA},
		{Audio: media.CodecSpeex},
		{MaxViewers: -1},
		{MTU: 10},
		{UDPPortMin: 5000},
		{UDPPortMin: 6000, UDPPortMax: 5000},
		{ICEServers: []whep.ICEServer{{URLs: []string{"http://x"}}}},
		{Probe: -time.Second},
	} {
		if s, err := whep.New(cfg); err == nil {
			_ = s.Close(context.Background())
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func patch(t *testing.T, url, ctype, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Trickled candidates are accepted with 204; an ICE restart is refused.
func TestTrickleICEPatch(t *testing.T) {
	s := newSink(t, whep.Config{Video: media.CodecH264, Audio: media.CodecPCMA})
	ts := serve(t, s)
	v := dialViewer(t, ts.URL+"/whep", viewerOpts{})
	defer v.close()
	var ufrag string
	for _, l := range strings.Split(v.pc.LocalDescription().SDP, "\r\n") {
		if strings.HasPrefix(l, "a=ice-ufrag:") {
			ufrag = strings.TrimPrefix(l, "a=ice-ufrag:")
			break
		}
	}
	frag := "a=ice-ufrag:" + ufrag + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"
	url := ts.URL + v.location
	if code := patch(t, url, "application/trickle-ice-sdpfrag", frag); code != http.StatusNoContent {
		t.Errorf("PATCH: %d", code)
	}
	if code := patch(t, url, "application/sdp", frag); code != http.StatusUnsupportedMediaType {
		t.Errorf("PATCH with application/sdp: %d", code)
	}
	restart := strings.Replace(frag, ufrag, "newufrag", 1)
	if code := patch(t, url, "application/trickle-ice-sdpfrag", restart); code != http.StatusUnprocessableEntity {
		t.Errorf("ICE restart: %d", code)
	}
	if code := patch(t, ts.URL+"/whep/nosuchviewer", "application/trickle-ice-sdpfrag", frag); code != http.StatusNotFound {
		t.Errorf("PATCH unknown viewer: %d", code)
	}
}

func TestCORSPreflight(t *testing.T) {
	s := newSink(t, whep.Config{Video: media.CodecH264, AllowOrigin: "*"})
	ts := serve(t, s)
	req, _ := http.NewRequest(http.MethodOptions, ts.URL+"/whep", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		resp.Header.Get("Accept-Post") != "application/sdp" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

// A viewer whose POST waits for the first media is answered 503 when the
// sink closes; one that never connects is dropped after ConnectTimeout.
func TestCloseDuringOfferAndConnectTimeout(t *testing.T) {
	s := newSink(t, whep.Config{MediaWait: time.Minute})
	ts := serve(t, s)
	pc, offer := newOffer(t, viewerOpts{})
	defer pc.GracefulClose()
	codes := make(chan int, 1)
	go func() {
		resp, err := http.Post(ts.URL+"/whep", "application/sdp", strings.NewReader(offer))
		if err != nil {
			codes <- 0
			return
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // let the POST start waiting
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-codes:
		if c != http.StatusServiceUnavailable {
			t.Errorf("POST during Close: %d", c)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("POST still waiting after Close")
	}

	// The timeout runs from before the answer is sent: it must leave the
	// probe below time to run on a loaded machine.
	s2 := newSink(t, whep.Config{Audio: media.CodecPCMA, ConnectTimeout: 3 * time.Second})
	ts2 := serve(t, s2)
	pc2, offer2 := newOffer(t, viewerOpts{})
	resp := postOffer(t, ts2.URL+"/whep", offer2)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		_ = pc2.GracefulClose()
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if code := patch(t, ts2.URL+loc, "text/plain", ""); code != http.StatusUnsupportedMediaType {
		_ = pc2.GracefulClose()
		t.Fatalf("fresh viewer resource: %d", code)
	}
	_ = pc2.GracefulClose() // never applies the answer: no ICE, no DTLS
	waitFor(t, "the unconnected viewer to be dropped", func() bool {
		// A PATCH with the wrong type probes without stopping the viewer.
		return patch(t, ts2.URL+loc, "text/plain", "") == http.StatusNotFound
	})
	if st := s2.Stats(); st.Viewers != 0 || st.ViewersTotal != 1 {
		t.Errorf("stats %+v", st)
	}
}

// The answer advertises the configured public address (1:1 NAT) besides the
// local one, on ports from the configured range. The test only reads the
// answer: nothing is sent to the public address.
func TestAnswerCandidates(t *testing.T) {
	public := "203.0.113.7"
	s := newSink(t, whep.Config{Audio: media.CodecPCMA, UDPPortMin: 42000, UDPPortMax: 42099,
		PublicIPs: []netip.Addr{netip.MustParseAddr(public)}, MediaWait: time.Second})
	ts := serve(t, s)
	pc, offer := newOffer(t, viewerOpts{noVideo: true})
	defer pc.GracefulClose()
	resp := postOffer(t, ts.URL+"/whep", offer)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	var hosts []string
	for _, l := range strings.Split(string(body), "\r\n") {
		if !strings.HasPrefix(l, "a=candidate:") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 8 || f[7] != "host" {
			t.Errorf("not a host candidate: %s", l)
			continue
		}
		hosts = append(hosts, f[4])
		if port, err := strconv.Atoi(f[5]); err != nil || port < 42000 || port > 42099 {
			t.Errorf("candidate port outside 42000-42099: %s", l)
		}
	}
	joined := strings.Join(hosts, " ")
	if !strings.Contains(joined, "127.0.0.1") || !strings.Contains(joined, public) {
		t.Errorf("host candidates %v, want 127.0.0.1 and %s", hosts, public)
	}
	if strings.Contains(string(body), ".local") {
		t.Error("mDNS candidate in the answer")
	}
}
