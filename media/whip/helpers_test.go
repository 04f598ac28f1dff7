package whip_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media/whip"
)

// startServer serves a whip.Server at /whip/ of a test HTTP server; the
// test's cleanup closes both.
func startServer(t *testing.T, cfg whip.Config) (*whip.Server, string) {
	t.Helper()
	s, err := whip.New(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/whip/", s)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, ts.URL
}

// opusPackets are the Opus packets of an Ogg Opus file (RFC 7845): the
// pages' segments joined into packets, the two header packets left out.
func opusPackets(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var pkts [][]byte
	var cur []byte
	for len(b) > 0 {
		require.True(t, len(b) >= 27 && string(b[:4]) == "OggS", "Ogg page")
		nseg := int(b[26])
		require.GreaterOrEqual(t, len(b), 27+nseg)
		lacing := b[27 : 27+nseg]
		body := b[27+nseg:]
		for _, l := range lacing {
			require.GreaterOrEqual(t, len(body), int(l))
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				pkts = append(pkts, cur)
				cur = nil
			}
		}
		b = body
	}
	require.Greater(t, len(pkts), 2)
	require.True(t, bytes.HasPrefix(pkts[0], []byte("OpusHead")))
	return pkts[2:]
}

// publisher is a pion peer connection publishing one track over WHIP.
type publisher struct {
	pc       *webrtc.PeerConnection
	track    *webrtc.TrackLocalStaticSample
	location string // the resource's URL
}

// newPublisherPC is a peer connection for local tests (host candidates on
// loopback, no mDNS).
func newPublisherPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	m := &webrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.GracefulClose() })
	return pc
}

// offer makes pc's offer, with every candidate.
func offer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	o, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(o))
	<-gathered
	return pc.LocalDescription().SDP
}

// post sends an offer to url and returns the response's status, body and
// Location.
func post(t *testing.T, url, contentType, body string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

// publish starts publishing a track of codec (webrtc.MimeTypeOpus, ...) to
// endpoint and waits until the peer connection is connected.
func publish(t *testing.T, base, endpoint, mimeType string, clock uint32, channels uint16) *publisher {
	t.Helper()
	pc := newPublisherPC(t)
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mimeType, ClockRate: clock, Channels: channels}, "audio", "whip-test")
	require.NoError(t, err)
	_, err = pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	connected := make(chan struct{})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	code, answer, loc := post(t, base+endpoint, "application/sdp", offer(t, pc))
	require.Equal(t, http.StatusCreated, code, answer)
	require.True(t, strings.HasPrefix(loc, endpoint+"/"), loc)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher did not connect")
	}
	return &publisher{pc: pc, track: track, location: base + loc}
}

// send writes the packets as 20 ms samples, paced in real time, n times
// over, until ctx ends.
func (p *publisher) send(ctx context.Context, pkts [][]byte, n int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range n {
		for _, pkt := range pkts {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			if err := p.track.WriteSample(pionmedia.Sample{Data: pkt, Duration: 20 * time.Millisecond}); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return err
			}
		}
	}
	return nil
}

// del sends DELETE to the publisher's resource.
func del(t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
