package whep_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/internal/testwhep"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/sink/whep"
)

var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

// serve mounts s at /whep on a loopback test server.
func serve(t *testing.T, s *whep.Sink) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/whep", s)
	mux.Handle("/whep/", s)
	mux.Handle("/player/", http.StripPrefix("/player", whep.PlayerHandler()))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// clipFrames returns the test clip as Frames in AVC form, 25 fps.
func clipFrames(t testing.TB) []media.Frame {
	t.Helper()
	aus := testmedia.ClipAccessUnits()
	out := make([]media.Frame, len(aus))
	for i, au := range aus {
		pts := time.Duration(i) * time.Second / testmedia.ClipFPS
		out[i] = media.Frame{Codec: media.CodecH264, PTS: pts, DTS: pts, Keyframe: au.Keyframe,
			Payload: rtph264.JoinAVC(au.NALUs), ClockRate: 90000}
	}
	return out
}

const toneHz = 1000

// toneFrame returns the n-th 20 ms PCMA frame of a 1 kHz tone.
func toneFrame(n int) media.Frame {
	pcm := testmedia.Tone(toneHz, 8000, n*160, 160, 0.5)
	return media.Frame{Codec: media.CodecPCMA, PTS: time.Duration(n) * 20 * time.Millisecond,
		DTS: time.Duration(n) * 20 * time.Millisecond, Keyframe: true,
		Payload: g711.EncodeALaw(nil, pcm), ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond}
}

// testViewer is a testwhep viewer whose tracks feed channels: decoded
// video access units, audio payloads and the video SSRC.
type testViewer struct {
	w        *testwhep.Viewer
	pc       *webrtc.PeerConnection
	location string
	answer   string
	video    chan media.Frame // decoded access units (payload copied)
	audio    chan []byte      // audio payloads (copied)
	ssrc     chan webrtc.SSRC // video SSRC once the track starts
}

// viewerOpts says what a test viewer offers.
type viewerOpts struct {
	noVideo, noAudio bool
	videoMime        string // register only this video codec (default: pion defaults)
}

func (o viewerOpts) config() testwhep.Config {
	return testwhep.Config{NoVideo: o.noVideo, NoAudio: o.noAudio, VideoMime: o.videoMime}
}

// newOffer returns a peer connection and its complete offer, to POST by
// hand.
func newOffer(t testing.TB, o viewerOpts) (*webrtc.PeerConnection, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc, sdp, err := testwhep.Offer(ctx, o.config())
	if err != nil {
		t.Fatal(err)
	}
	return pc, sdp
}

func postOffer(t testing.TB, url, sdp string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/sdp", strings.NewReader(sdp))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func dialViewer(t testing.TB, url string, o viewerOpts) *testViewer {
	t.Helper()
	v, err := dial(url, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func dial(url string, o viewerOpts) (*testViewer, error) {
	v := &testViewer{video: make(chan media.Frame, 1024), audio: make(chan []byte, 4096), ssrc: make(chan webrtc.SSRC, 1)}
	cfg := o.config()
	cfg.ReadTrack = v.read
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := testwhep.Play(ctx, url, cfg)
	if err != nil {
		return nil, err
	}
	v.w, v.pc, v.location, v.answer = w, w.PC, w.Location, w.Answer
	return v, nil
}

func (v *testViewer) read(tr *webrtc.TrackRemote, done <-chan struct{}) {
	isVideo := tr.Kind() == webrtc.RTPCodecTypeVideo
	var dec *rtph264.Decoder
	if isVideo {
		dec, _ = rtph264.NewDecoder(rtph264.DecoderConfig{})
		select {
		case v.ssrc <- tr.SSRC():
		default:
		}
	}
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if !isVideo {
			select {
			case v.audio <- append([]byte(nil), pkt.Payload...):
			case <-done:
				return
			}
			continue
		}
		fr, _, err := dec.Decode(pkt)
		if err != nil {
			continue
		}
		fr.Payload = append([]byte(nil), fr.Payload...)
		select {
		case v.video <- fr:
		case <-done:
			return
		}
	}
}

func (v *testViewer) close() { v.w.Close() }

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func deleteResource(t testing.TB, base, location string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, base+location, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var errTimeout = errors.New("timeout")

func recvFrame(ch <-chan media.Frame, d time.Duration) (media.Frame, error) {
	select {
	case f := <-ch:
		return f, nil
	case <-time.After(d):
		return media.Frame{}, errTimeout
	}
}
