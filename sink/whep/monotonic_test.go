package whep_test

import (
	"bytes"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/whep"
)

// TestViewerTimestampsMonotonic plays random frame schedules (duplicates,
// backward steps, jumps, sub-tick gaps) to a real pion viewer and checks
// the RTP packets it receives: per track, each frame's timestamp is
// strictly after the previous frame's.
func TestViewerTimestampsMonotonic(t *testing.T) {
	s := newSink(t, whep.Config{Video: media.CodecH264, Audio: media.CodecPCMA, QueueSize: 4096})
	ts := serve(t, s)
	pc, offer := newOffer(t, viewerOpts{})
	type rx struct {
		kind   webrtc.RTPCodecType
		ts     uint32
		marker bool
	}
	var mu sync.Mutex
	var got []rx
	done := make(chan struct{})
	var wg sync.WaitGroup
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				mu.Lock()
				got = append(got, rx{tr.Kind(), p.Timestamp, p.Marker})
				mu.Unlock()
				select {
				case <-done:
					return
				default:
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
	defer func() {
		close(done)
		_ = pc.GracefulClose()
		wg.Wait()
	}()
	waitFor(t, "viewer to connect", func() bool { return s.Stats().Viewers == 1 })

	sched := whep.RandomScheduleForTest(rand.New(rand.NewSource(7)), 400)
	for i := range sched {
		if err := s.WriteFrame(&sched[i]); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(5 * time.Millisecond) // let the socket drain
		}
	}
	waitFor(t, "frames to be sent", func() bool { return s.Stats().FramesSent == uint64(len(sched)) })
	waitFor(t, "packets to arrive", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return uint64(len(got)) >= s.Stats().PacketsSent*9/10
	})
	mu.Lock()
	defer mu.Unlock()
	last := map[webrtc.RTPCodecType]uint32{}
	seen := map[webrtc.RTPCodecType]bool{}
	frames := map[webrtc.RTPCodecType]int{}
	newFrame := map[webrtc.RTPCodecType]bool{webrtc.RTPCodecTypeVideo: true, webrtc.RTPCodecTypeAudio: true}
	for i, p := range got {
		if newFrame[p.kind] || p.kind == webrtc.RTPCodecTypeAudio {
			if seen[p.kind] && int32(p.ts-last[p.kind]) <= 0 {
				t.Fatalf("packet %d: %v frame at RTP time %d after %d", i, p.kind, p.ts, last[p.kind])
			}
			last[p.kind], seen[p.kind] = p.ts, true
			frames[p.kind]++
		} else if p.ts != last[p.kind] {
			t.Fatalf("packet %d: video packet of one frame changed timestamp", i)
		}
		newFrame[p.kind] = p.marker
	}
	if frames[webrtc.RTPCodecTypeVideo] < 100 || frames[webrtc.RTPCodecTypeAudio] < 100 {
		t.Fatalf("too few frames arrived: %v", frames)
	}
}
