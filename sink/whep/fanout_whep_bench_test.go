package whep_test

import (
	"context"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/whep"
)

// BenchmarkFanoutIdleWHEP measures what a WHEP sink nobody watches costs a
// call per frame, behind the fan-out as the REST server attaches it: the
// clip's H.264 access units plus 20 ms PCMA frames (two per video frame),
// an op being one frame. The fan-out's payload copy is included.
func BenchmarkFanoutIdleWHEP(b *testing.B) {
	aus := testmedia.ClipAccessUnits()
	frames := make([]media.Frame, len(aus))
	for i, au := range aus {
		frames[i] = media.Frame{Codec: media.CodecH264, Keyframe: au.Keyframe, ClockRate: 90000,
			Payload: rtph264.JoinAVC(au.NALUs)}
	}
	pcm := make([]byte, 160)
	a := &media.Frame{Codec: media.CodecPCMA, Keyframe: true, ClockRate: 8000, Channels: 1, Duration: 20e6, Payload: pcm}
	s, err := whep.New(whep.Config{})
	if err != nil {
		b.Fatal(err)
	}
	f := sink.NewFanout(sink.FanoutConfig{})
	if err := f.Add("webrtc", s, 1<<16); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i / 3
		if i%3 == 0 {
			v := &frames[k%len(frames)]
			v.PTS = time.Duration(k) * 40e6
			v.DTS = v.PTS
			err = f.WriteFrame(v)
		} else {
			a.PTS = time.Duration(2*k+i%3-1) * 20e6
			a.DTS = a.PTS
			err = f.WriteFrame(a)
		}
		if err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 { // a queued sink catches up: measure its work, not drops
			for s.Stats().FramesIn < uint64(i+1) {
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
	b.StopTimer()
	if err := f.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if st := s.Stats(); st.FramesIn != uint64(b.N) {
		b.Fatalf("whep got %d of %d frames", st.FramesIn, b.N)
	}
}
