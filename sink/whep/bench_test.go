package whep

import (
	"context"
	"fmt"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// BenchmarkWriteFrame measures WriteFrame for the clip's access units
// (packetized once) queued to n viewers whose queues are drained.
func BenchmarkWriteFrame(b *testing.B) {
	frames := make([]media.Frame, testmedia.ClipFrames)
	total := 0
	for i := range frames {
		frames[i] = h264Frame(i)
		total += len(frames[i].Payload)
	}
	for _, n := range []int{0, 1, 10} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) {
			s, err := New(Config{Video: media.CodecH264})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			done := make(chan struct{})
			drained := make(chan struct{})
			var vs []*viewer
			for i := 0; i < n; i++ {
				v := &viewer{queue: make(chan *unit, 1024), video: &webrtc.TrackLocalStaticRTP{}}
				vs = append(vs, v)
				s.active[v] = struct{}{}
				go func() {
					defer func() { drained <- struct{}{} }()
					for {
						select {
						case <-v.queue:
						case <-done:
							return
						}
					}
				}()
			}
			b.SetBytes(int64(total / len(frames)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.WriteFrame(&frames[i%len(frames)]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(done)
			for range vs {
				<-drained
			}
			s.mu.Lock()
			clear(s.active)
			s.mu.Unlock()
			if d := s.Stats().FramesDropped; d > 0 {
				b.Logf("%d frames dropped", d)
			}
		})
	}
}
