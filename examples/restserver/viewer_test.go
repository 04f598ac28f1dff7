package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
)

// whepViewer is a pion/webrtc client playing a call's WHEP URL, as the page's
// player does in a browser.
type whepViewer struct {
	pc       *webrtc.PeerConnection
	resource string
	answer   string

	mu      sync.Mutex
	mimes   map[string]bool // codecs of the tracks that started
	packets map[webrtc.RTPCodecType]int
	nalSPS  bool // an H.264 SPS arrived (the viewer starts on a keyframe)
	wg      sync.WaitGroup
}

// playWHEP offers to url and starts reading every track.
func playWHEP(t *testing.T, url string) *whepViewer {
	t.Helper()
	m := &webrtc.MediaEngine{}
	require.NoError(t, m.RegisterDefaultCodecs())
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	v := &whepViewer{pc: pc, mimes: map[string]bool{}, packets: map[webrtc.RTPCodecType]int{}}
	t.Cleanup(v.close)
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv)
	require.NoError(t, err)
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv)
	require.NoError(t, err)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.mu.Lock()
		v.mimes[tr.Codec().MimeType] = true
		v.wg.Add(1)
		v.mu.Unlock()
		go v.read(tr)
	})
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	select {
	case <-gathered:
	case <-time.After(20 * time.Second):
		t.Fatal("viewer ICE gathering timed out")
	}
	resp, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	v.resource = resp.Header.Get("Location")
	v.answer = string(body)
	require.NotEmpty(t, v.resource)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: v.answer}))
	return v
}

func (v *whepViewer) read(tr *webrtc.TrackRemote) {
	defer v.wg.Done()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		v.mu.Lock()
		v.packets[tr.Kind()]++
		if tr.Kind() == webrtc.RTPCodecTypeVideo && len(p.Payload) > 3 {
			switch p.Payload[0] & 0x1f {
			case 7:
				v.nalSPS = true
			case 24: // STAP-A: the first NAL unit after its 2-byte size
				v.nalSPS = v.nalSPS || p.Payload[3]&0x1f == 7
			}
		}
		v.mu.Unlock()
	}
}

// wait waits until the viewer got at least n packets of each kind in kinds.
func (v *whepViewer) wait(t *testing.T, n int, kinds ...webrtc.RTPCodecType) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		v.mu.Lock()
		ok := true
		for _, k := range kinds {
			ok = ok && v.packets[k] >= n
		}
		got := map[webrtc.RTPCodecType]int{}
		for k, c := range v.packets {
			got[k] = c
		}
		v.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("viewer: want %d packets of %v, got %v (state %s)", n, kinds, got, v.pc.ConnectionState())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop DELETEs the viewer's resource, as the page's Stop does.
func (v *whepViewer) stop(t *testing.T, base string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, base+v.resource, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	v.close()
}

func (v *whepViewer) close() {
	_ = v.pc.GracefulClose()
	v.wg.Wait()
}
