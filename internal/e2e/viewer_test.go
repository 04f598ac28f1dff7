package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/internal/testwhep"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtph264"
)

// viewer is a testwhep viewer that plays a WHEP endpoint the way a
// browser would (receive-only video and audio transceivers, complete offer,
// no trickle ICE, pion's default interceptors) and keeps what it receives:
// every H.264 access unit it depacketizes with media/rtph264 (AVC form),
// and the audio decoded to linear PCM.
type viewer struct {
	w *testwhep.Viewer

	mu          sync.Mutex
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

// play negotiates a viewer with the WHEP endpoint at url (POST offer, 201 +
// answer). The viewer runs until close.
func play(ctx context.Context, client *http.Client, url string) (*viewer, error) {
	v := &viewer{}
	w, err := testwhep.Play(ctx, url, testwhep.Config{BrowserInterceptors: true, Client: client,
		ReadTrack: func(tr *webrtc.TrackRemote, _ <-chan struct{}) { v.read(tr) }})
	if err != nil {
		return nil, err
	}
	v.w = w
	return v, nil
}

// read consumes one remote track until the connection closes.
func (v *viewer) read(tr *webrtc.TrackRemote) {
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
func (v *viewer) stop(ctx context.Context, _ *http.Client, base string) (int, error) {
	return v.w.Delete(ctx, base)
}

// close closes the peer connection and waits for the track readers.
// Idempotent.
func (v *viewer) close() { v.w.Close() }
