package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testwhep"
)

// whepViewer is a testwhep viewer playing a call's WHEP URL, as the page's
// player does in a browser, counting what it receives.
type whepViewer struct {
	w *testwhep.Viewer

	mu      sync.Mutex
	mimes   map[string]bool // codecs of the tracks that started
	packets map[webrtc.RTPCodecType]int
	nalSPS  bool // an H.264 SPS arrived (the viewer starts on a keyframe)
}

// playWHEP offers to url and starts reading every track.
func playWHEP(t *testing.T, url string) *whepViewer {
	t.Helper()
	v := &whepViewer{mimes: map[string]bool{}, packets: map[webrtc.RTPCodecType]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := testwhep.Play(ctx, url, testwhep.Config{ReadTrack: func(tr *webrtc.TrackRemote, _ <-chan struct{}) { v.read(tr) }})
	require.NoError(t, err)
	v.w = w
	t.Cleanup(w.Close)
	require.NotEmpty(t, w.Location)
	return v
}

// answer is the server's SDP answer.
func (v *whepViewer) answer() string { return v.w.Answer }

func (v *whepViewer) read(tr *webrtc.TrackRemote) {
	v.mu.Lock()
	v.mimes[tr.Codec().MimeType] = true
	v.mu.Unlock()
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
			t.Fatalf("viewer: want %d packets of %v, got %v (state %s)", n, kinds, got, v.w.PC.ConnectionState())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop DELETEs the viewer's resource, as the page's Stop does.
func (v *whepViewer) stop(t *testing.T, base string) {
	t.Helper()
	code, err := v.w.Delete(context.Background(), base)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	v.close()
}

func (v *whepViewer) close() { v.w.Close() }
