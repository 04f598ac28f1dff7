package whep_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/sipstream/sipstream/sink/whep"
)

// TestIdleFootprint measures what a WHEP sink nobody watches holds after a
// second of a call (the clip's H.264, whose first frame is a keyframe, and
// PCMA): heap per sink, with the retained keyframe counted, and
// goroutines, of which it must start none. It fails above 64 KiB a sink.
func TestIdleFootprint(t *testing.T) {
	const n = 200
	frames := clipFrames(t)[:25]
	keyBytes := len(frames[0].Payload)
	tone := toneFrame(0)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	sinks := make([]*whep.Sink, n)
	for i := range sinks {
		s, err := whep.New(whep.Config{})
		if err != nil {
			t.Fatal(err)
		}
		sinks[i] = s
		for j := range frames {
			// A fan-out hands every sink its own copy.
			f := frames[j]
			f.Payload = append([]byte(nil), f.Payload...)
			if err := s.WriteFrame(&f); err != nil {
				t.Fatal(err)
			}
			a := tone
			if err := s.WriteFrame(&a); err != nil {
				t.Fatal(err)
			}
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	heap := (float64(after.HeapInuse) - float64(before.HeapInuse)) / n
	t.Logf("idle WHEP sink: heap %.1f KiB (of which the kept keyframe %.1f KiB), %d goroutines for %d sinks",
		heap/1024, float64(keyBytes)/1024, g1-g0, n)
	if g1 != g0 {
		t.Errorf("%d idle sinks started %d goroutines", n, g1-g0)
	}
	if heap > 64<<10 {
		t.Errorf("an idle sink holds %.1f KiB", heap/1024)
	}
	for _, s := range sinks {
		if st := s.Stats(); st.FramesIn != 50 || st.PacketsSent != 0 {
			t.Errorf("stats %+v", st)
		}
		s.Close(context.Background())
	}
}
