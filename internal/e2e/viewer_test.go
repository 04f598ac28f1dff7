package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtph264"
)

// viewer is a pion/webrtc client that plays a WHEP endpoint the way a
// browser would (receive-only video and audio transceivers, complete offer,
// no trickle ICE) and keeps what it receives: every H.264 access unit it
// depacketizes with media/rtph264 (AVC form), and the audio decoded to
// linear PCM.
type viewer struct {
	pc       *webrtc.PeerConnection
	location string // the WHEP resource URL from the answer's Location

	wg sync.WaitGroup // track readers

	mu          sync.Mutex
	closed      bool
	videoMime   string
	audioMime   string
	aus         [][]byte // access units in arrival order (copies)
	keyframes   []bool
	auErrors    int // access units the decoder dropped or refused
	videoPkts   int
	audioPkts   int
	pcm         []int16 // decoded G.711 audio, 8 kHz
	audioOthers int     // audio packets of codecs the viewer cannot decode
}

// viewerAPI builds a pion API for a loopback-only viewer with pion's
// default codecs (H.264, VP8, Opus, PCMU, PCMA among them), NACK and RTCP
// reports, as browsers have.
func viewerAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(ir)), nil
}

// play negotiates a viewer with the WHEP endpoint at url (POST offer, 201 +
// answer). The viewer runs until close.
func play(ctx context.Context, client *http.Client, url string) (_ *viewer, err error) {
	api, err := viewerAPI()
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &viewer{pc: pc}
	defer func() {
		if err != nil {
			v.close()
		}
	}()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.closed {
			return
		}
		v.wg.Add(1)
		go v.read(tr)
	})
	recvonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, recvonly); err != nil {
			return nil, err
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, fmt.Errorf("viewer ICE gathering: %w", ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("WHEP POST: %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		return nil, fmt.Errorf("WHEP answer has Content-Type %q", ct)
	}
	v.location = resp.Header.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return nil, err
	}
	return v, nil
}

// read consumes one remote track until the connection closes.
func (v *viewer) read(tr *webrtc.TrackRemote) {
	defer v.wg.Done()
	mime := tr.Codec().MimeType
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	v.mu.Lock()
	if video {
		v.videoMime = mime
	} else {
		v.audioMime = mime
	}
	v.mu.Unlock()
	var dec *rtph264.Decoder
	if video && strings.EqualFold(mime, webrtc.MimeTypeH264) {
		dec, _ = rtph264.NewDecoder(rtph264.DecoderConfig{})
	}
	var pcm []int16
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		v.mu.Lock()
		switch {
		case video:
			v.videoPkts++
			if dec == nil {
				break
			}
			fr, _, err := dec.Decode(pkt)
			switch {
			case err == nil:
				v.aus = append(v.aus, bytes.Clone(fr.Payload))
				v.keyframes = append(v.keyframes, fr.Keyframe)
			case !errors.Is(err, rtph264.ErrMorePacketsNeeded):
				v.auErrors++
			}
		case strings.EqualFold(mime, webrtc.MimeTypePCMA):
			v.audioPkts++
			pcm = g711.DecodeALaw(pcm[:0], pkt.Payload)
			v.pcm = append(v.pcm, pcm...)
		case strings.EqualFold(mime, webrtc.MimeTypePCMU):
			v.audioPkts++
			pcm = g711.DecodeULaw(pcm[:0], pkt.Payload)
			v.pcm = append(v.pcm, pcm...)
		default:
			v.audioPkts++
			v.audioOthers++
		}
		v.mu.Unlock()
	}
}

// snapshot is a copy of what a viewer has received so far.
type snapshot struct {
	videoMime, audioMime string
	aus                  [][]byte
	keyframes            []bool
	auErrors             int
	videoPkts, audioPkts int
	pcm                  []int16
}

func (v *viewer) snapshot() snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	return snapshot{
		videoMime: v.videoMime, audioMime: v.audioMime,
		aus: append([][]byte(nil), v.aus...), keyframes: append([]bool(nil), v.keyframes...),
		auErrors: v.auErrors, videoPkts: v.videoPkts, audioPkts: v.audioPkts,
		pcm: append([]int16(nil), v.pcm...),
	}
}

// waitUntil polls cond on the viewer's snapshot until it holds or ctx ends.
func (v *viewer) waitUntil(ctx context.Context, cond func(snapshot) bool) (snapshot, error) {
	for {
		s := v.snapshot()
		if cond(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop ends the viewer's WHEP session the standard way: DELETE on its
// resource. base is the server's URL the Location is relative to.
func (v *viewer) stop(ctx context.Context, client *http.Client, base string) (int, error) {
	u := v.location
	if strings.HasPrefix(u, "/") {
		u = base + u
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// close closes the peer connection and waits for the track readers.
// Idempotent.
func (v *viewer) close() {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.closed = true
	v.mu.Unlock()
	_ = v.pc.GracefulClose()
	v.wg.Wait()
}
