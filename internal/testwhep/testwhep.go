// Package testwhep is the WHEP viewer sipstream's tests play with: a
// pion/webrtc peer that offers receive-only transceivers the way a browser
// does (a complete offer, no trickle ICE), on loopback only, and hands each
// remote track to the test.
package testwhep

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// Config says what a viewer offers and does with what it receives. The
// zero value offers video and audio with pion's default codecs, NACK and
// RTCP reports, and reads nothing.
type Config struct {
	// NoVideo and NoAudio leave out the video or audio transceiver.
	NoVideo, NoAudio bool
	// VideoMime registers only this video codec (payload type 96, 90 kHz)
	// and no audio codec. Empty means pion's default codecs (H.264, VP8,
	// Opus, PCMU, PCMA among them).
	VideoMime string
	// BrowserInterceptors uses all of pion's default interceptors (NACK,
	// RTCP reports, stats, TWCC), as browsers have. False means NACK and
	// RTCP reports only.
	BrowserInterceptors bool
	// ReadTrack is run on a goroutine of its own for each remote track; it
	// should read until ReadRTP fails (the connection closed) or done is
	// closed (Close was called). Close waits for it. Nil means tracks are
	// not read.
	ReadTrack func(tr *webrtc.TrackRemote, done <-chan struct{})
	// Client makes the WHEP requests. Nil means http.DefaultClient.
	Client *http.Client
}

// NewAPI returns a pion API for a loopback-only viewer configured by cfg.
func NewAPI(cfg Config) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if cfg.VideoMime == "" {
		if err := m.RegisterDefaultCodecs(); err != nil {
			return nil, err
		}
	} else if err := m.RegisterCodec(webrtc.RTPCodecParameters{PayloadType: 96,
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: cfg.VideoMime, ClockRate: 90000}}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if cfg.BrowserInterceptors {
		if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
			return nil, err
		}
	} else {
		if err := webrtc.ConfigureNack(m, ir); err != nil {
			return nil, err
		}
		if err := webrtc.ConfigureRTCPReports(ir); err != nil {
			return nil, err
		}
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
}

// Offer creates a peer connection with cfg's receive-only transceivers and
// returns it with its complete offer (ICE gathering finished, or ctx
// ended). The caller closes the connection.
func Offer(ctx context.Context, cfg Config) (_ *webrtc.PeerConnection, sdp string, err error) {
	api, err := NewAPI(cfg)
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
	if err := addTransceivers(pc, cfg); err != nil {
		return nil, "", err
	}
	sdp, err = localOffer(ctx, pc)
	return pc, sdp, err
}

func addTransceivers(pc *webrtc.PeerConnection, cfg Config) error {
	recvonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if !cfg.NoVideo {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recvonly); err != nil {
			return err
		}
	}
	if !cfg.NoAudio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recvonly); err != nil {
			return err
		}
	}
	return nil
}

func localOffer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("viewer ICE gathering: %w", ctx.Err())
	}
	return pc.LocalDescription().SDP, nil
}

// Viewer is a WHEP session started by Play.
type Viewer struct {
	// PC is the viewer's peer connection.
	PC *webrtc.PeerConnection
	// Location is the WHEP resource URL from the answer's Location header
	// (often relative to the server).
	Location string
	// Answer is the server's SDP answer.
	Answer string

	cfg  Config
	done chan struct{}
	wg   sync.WaitGroup // track readers
	mu   sync.Mutex
	shut bool
}

// Play negotiates a viewer with the WHEP endpoint at url: POST the offer,
// expect 201 Created with an application/sdp answer. The viewer runs until
// Close.
func Play(ctx context.Context, url string, cfg Config) (_ *Viewer, err error) {
	api, err := NewAPI(cfg)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &Viewer{PC: pc, cfg: cfg, done: make(chan struct{})}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.shut || cfg.ReadTrack == nil {
			return
		}
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			cfg.ReadTrack(tr, v.done)
		}()
	})
	if err := addTransceivers(pc, cfg); err != nil {
		return nil, err
	}
	offer, err := localOffer(ctx, pc)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(offer))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := v.client().Do(req)
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
	v.Location, v.Answer = resp.Header.Get("Location"), string(body)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: v.Answer}); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *Viewer) client() *http.Client {
	if v.cfg.Client != nil {
		return v.cfg.Client
	}
	return http.DefaultClient
}

// Delete ends the WHEP session the standard way, DELETE on its resource,
// and returns the status code. base is the server's URL a relative
// Location is resolved against.
func (v *Viewer) Delete(ctx context.Context, base string) (int, error) {
	u := v.Location
	if strings.HasPrefix(u, "/") {
		u = base + u
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := v.client().Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Close closes the peer connection and waits for the track readers.
// Idempotent.
func (v *Viewer) Close() {
	v.mu.Lock()
	if v.shut {
		v.mu.Unlock()
		return
	}
	v.shut = true
	close(v.done)
	v.mu.Unlock()
	_ = v.PC.GracefulClose()
	v.wg.Wait()
}
