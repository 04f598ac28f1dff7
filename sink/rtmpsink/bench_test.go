package rtmpsink

import (
	"context"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/rtmp/flv"
)

// discard is a publisher that drops everything: the benchmark measures the
// sink (and the AAC transcoding it does), not the network.
type discard struct{}

func (discard) WriteMetadata(flv.Metadata) error                           { return nil }
func (discard) WriteH264(time.Duration, time.Duration, []byte, bool) error { return nil }
func (discard) WriteAACConfig([]byte) error                                { return nil }
func (discard) WriteAAC(time.Duration, []byte) error                       { return nil }
func (discard) WriteG711(time.Duration, bool, []byte) error                { return nil }
func (discard) Close() error                                               { return nil }

// BenchmarkPublish measures one frame of a call (25 fps H.264 + 50 pps
// PCMA, interleaved) through the sink, with AAC transcoding and with G.711
// passthrough.
func BenchmarkPublish(b *testing.B) {
	for _, mode := range []AudioMode{AudioAAC, AudioPassthrough} {
		b.Run(mode.String(), func(b *testing.B) {
			active := make(chan struct{})
			s, err := newSink(Config{URL: "rtmp://127.0.0.1/live/k", Audio: true, Video: true, AudioMode: mode,
				OnStatus: func(st Status, _ string) {
					if st == StatusActive {
						close(active)
					}
				}},
				func(context.Context, *cfgOK) (publisher, error) { return discard{}, nil }, realClock{})
			if err != nil {
				b.Fatal(err)
			}
			<-active
			pcm := make([]byte, 160)
			for i := range pcm {
				pcm[i] = byte(i * 7)
			}
			v := &media.Frame{Codec: media.CodecH264, Keyframe: true, ClockRate: 90000, Payload: make([]byte, 1500)}
			a := &media.Frame{Codec: media.CodecPCMA, Keyframe: true, ClockRate: 8000, Channels: 1,
				Duration: 20 * time.Millisecond, Payload: pcm}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// frames 3k: video; 3k+1, 3k+2: audio
				k := i / 3
				if i%3 == 0 {
					v.PTS = time.Duration(k) * 40 * time.Millisecond
					v.DTS = v.PTS
					v.Keyframe = k%25 == 0
					_ = s.WriteFrame(v)
				} else {
					a.PTS = time.Duration(2*k+i%3-1) * 20 * time.Millisecond
					a.DTS = a.PTS
					_ = s.WriteFrame(a)
				}
			}
			b.StopTimer()
			if st := s.Stats(); st.FramesSent+st.FramesDropped != uint64(b.N) || st.FramesSent < uint64(b.N)*9/10 {
				b.Fatalf("%d frames: %+v", b.N, st)
			}
			_ = s.Close(context.Background())
		})
	}
}
