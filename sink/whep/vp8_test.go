package whep_test

import (
	"bytes"
	"math/rand"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/whep"
)

// VP8 frames and Opus packets reach a pion viewer unchanged.
func TestVP8AndOpusPassThrough(t *testing.T) {
	s := newSink(t, whep.Config{Video: media.CodecVP8, Audio: media.CodecOpus})
	ts := serve(t, s)

	pc, offer := newOffer(t, viewerOpts{})
	type rx struct {
		kind    webrtc.RTPCodecType
		mime    string
		payload []byte
		marker  bool
	}
	pkts := make(chan rx, 4096)
	done := make(chan struct{})
	readers := make(chan struct{}, 2)
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			defer func() { readers <- struct{}{} }()
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				select {
				case pkts <- rx{tr.Kind(), tr.Codec().MimeType, append([]byte(nil), p.Payload...), p.Marker}:
				case <-done:
					return
				}
			}
		}()
	})
	resp := postOffer(t, ts.URL+"/whep", offer)
	var answer bytes.Buffer
	_, _ = answer.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST: %d %s", resp.StatusCode, answer.String())
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.String()}); err != nil {
		t.Fatal(err)
	}
	tracks := 0
	defer func() {
		close(done)
		_ = pc.GracefulClose()
		for ; tracks > 0; tracks-- {
			<-readers
		}
	}()
	waitFor(t, "viewer to connect", func() bool { return s.Stats().Viewers == 1 })

	rng := rand.New(rand.NewSource(1))
	var video, audio [][]byte
	for i := 0; i < 20; i++ {
		vf := make([]byte, 500+rng.Intn(3000))
		rng.Read(vf)
		video = append(video, vf)
		f := media.Frame{Codec: media.CodecVP8, PTS: time.Duration(i) * 40 * time.Millisecond, Keyframe: i == 0, Payload: vf, ClockRate: 90000}
		if err := s.WriteFrame(&f); err != nil {
			t.Fatal(err)
		}
		af := append([]byte{0xfc}, bytes.Repeat([]byte{byte(i)}, 60)...) // Opus TOC: 20 ms CELT
		audio = append(audio, af)
		a := media.Frame{Codec: media.CodecOpus, PTS: time.Duration(i) * 20 * time.Millisecond, Keyframe: true, Payload: af,
			ClockRate: 48000, Channels: 2, Duration: 20 * time.Millisecond}
		if err := s.WriteFrame(&a); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}

	var gotVideo, gotAudio [][]byte
	var cur []byte
	var dep codecs.VP8Packet
	seen := map[webrtc.RTPCodecType]bool{}
	deadline := time.After(20 * time.Second)
	for len(gotVideo) < len(video) || len(gotAudio) < len(audio) {
		select {
		case p := <-pkts:
			if !seen[p.kind] {
				seen[p.kind] = true
				tracks++
			}
			if p.kind == webrtc.RTPCodecTypeAudio {
				if p.mime != webrtc.MimeTypeOpus {
					t.Fatalf("audio codec %s", p.mime)
				}
				gotAudio = append(gotAudio, p.payload)
				continue
			}
			if p.mime != webrtc.MimeTypeVP8 {
				t.Fatalf("video codec %s", p.mime)
			}
			b, err := dep.Unmarshal(p.payload)
			if err != nil {
				t.Fatal(err)
			}
			cur = append(cur, b...)
			if p.marker {
				gotVideo = append(gotVideo, cur)
				cur = nil
			}
		case <-deadline:
			t.Fatalf("got %d/%d VP8 frames, %d/%d Opus packets", len(gotVideo), len(video), len(gotAudio), len(audio))
		}
	}
	for i := range video {
		if !bytes.Equal(gotVideo[i], video[i]) {
			t.Fatalf("VP8 frame %d differs", i)
		}
		if !bytes.Equal(gotAudio[i], audio[i]) {
			t.Fatalf("Opus packet %d differs", i)
		}
	}
}
