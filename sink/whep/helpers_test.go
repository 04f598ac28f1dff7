package whep_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/internal/testmedia"
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

// testViewer is a pion/webrtc client playing a WHEP endpoint.
type testViewer struct {
	pc       *webrtc.PeerConnection
	location string
	answer   string
	video    chan media.Frame // decoded access units (payload copied)
	audio    chan []byte      // audio payloads (copied)
	ssrc     chan webrtc.SSRC // video SSRC once the track starts
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	mu       sync.Mutex
	closed   bool
}

type viewerOpts struct {
	noVideo, noAudio bool
	videoMime        string // register only this video codec (default: pion defaults)
}

func newClientAPI(o viewerOpts) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if o.videoMime == "" {
		if err := m.RegisterDefaultCodecs(); err != nil {
			return nil, err
		}
	} else {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{PayloadType: 96,
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: o.videoMime, ClockRate: 90000}}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
}

// newOffer creates a client peer connection and its complete offer.
func newOffer(t testing.TB, o viewerOpts) (*webrtc.PeerConnection, string) {
	t.Helper()
	pc, sdp, err := makeOffer(o)
	if err != nil {
		t.Fatal(err)
	}
	return pc, sdp
}

func makeOffer(o viewerOpts) (_ *webrtc.PeerConnection, _ string, err error) {
	api, err := newClientAPI(o)
	if err != nil {
		return nil, "", err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			_ = pc.GracefulClose()
		}
	}()
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if !o.noVideo {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv); err != nil {
			return nil, "", err
		}
	}
	if !o.noAudio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv); err != nil {
			return nil, "", err
		}
	}
	off, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, "", err
	}
	g := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(off); err != nil {
		return nil, "", err
	}
	select {
	case <-g:
	case <-time.After(20 * time.Second):
		return nil, "", errors.New("client ICE gathering timed out")
	}
	return pc, pc.LocalDescription().SDP, nil
}

func postOffer(t testing.TB, url, sdp string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/sdp", strings.NewReader(sdp))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// dialViewer negotiates a viewer with the endpoint at url.
func dialViewer(t testing.TB, url string, o viewerOpts) *testViewer {
	t.Helper()
	v, err := dial(url, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// dial negotiates a viewer; it may run on any goroutine.
func dial(url string, o viewerOpts) (*testViewer, error) {
	pc, offer, err := makeOffer(o)
	if err != nil {
		return nil, err
	}
	v := &testViewer{pc: pc, video: make(chan media.Frame, 1024), audio: make(chan []byte, 4096),
		ssrc: make(chan webrtc.SSRC, 1), done: make(chan struct{})}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		// wg.Add must not race with close's wg.Wait.
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.closed {
			return
		}
		v.wg.Add(1)
		go v.read(tr)
	})
	resp, err := http.Post(url, "application/sdp", strings.NewReader(offer))
	if err != nil {
		v.close()
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		v.close()
		return nil, fmt.Errorf("POST: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		v.close()
		return nil, fmt.Errorf("answer Content-Type %q", ct)
	}
	v.location = resp.Header.Get("Location")
	v.answer = string(body)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: v.answer}); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

func (v *testViewer) read(tr *webrtc.TrackRemote) {
	defer v.wg.Done()
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
			case <-v.done:
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
		case <-v.done:
			return
		}
	}
}

func (v *testViewer) close() {
	v.once.Do(func() {
		v.mu.Lock()
		v.closed = true
		v.mu.Unlock()
		close(v.done)
		_ = v.pc.GracefulClose()
		v.wg.Wait()
	})
}

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
