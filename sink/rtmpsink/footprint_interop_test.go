//go:build interop

package rtmpsink_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

// TestInteropFootprint measures what an RTMP sink publishing to nginx-rtmp
// holds once it has published a few seconds of an 800 kbit/s call (3.7 KB
// P-frames, a 12 KB keyframe, G.711 audio), behind a Fanout as a call
// attaches it: heap and stacks per sink, goroutines per sink. It logs the
// figures and fails if a sink holds more than 256 KiB or starts more than
// three goroutines (its fan-out queue's, its reconnect manager, its
// connection's reader).
func TestInteropFootprint(t *testing.T) {
	srv := testenv.StartNginxRTMP(t)
	for _, mode := range []rtmpsink.AudioMode{rtmpsink.AudioPassthrough, rtmpsink.AudioAAC} {
		t.Run(mode.String(), func(t *testing.T) { footprint(t, srv.RTMPURL(), mode) })
	}
}

func footprint(t *testing.T, url string, mode rtmpsink.AudioMode) {
	const n = 40
	aus := testmedia.ClipAccessUnits()
	key := rtph264.JoinAVC(aus[0].NALUs)
	idr := append(append([]byte(nil), key...), make([]byte, 12000-len(key))...)
	binary.BigEndian.PutUint32(idr[len(key):], uint32(12000-len(key)-4)) // one more IDR slice
	idr[len(key)+4] = 0x65
	pf := make([]byte, 3704)
	pf[2], pf[3], pf[4] = 0x0e, 0x74, 0x41 // one 3700-byte P slice
	pcm := make([]byte, 160)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()

	fans := make([]*sink.Fanout, n)
	sinks := make([]*rtmpsink.Sink, n)
	for i := range fans {
		s, err := rtmpsink.New(rtmpsink.Config{URL: url, StreamName: fmt.Sprintf("fp%d", i), Audio: true, Video: true, AudioMode: mode})
		require.NoError(t, err)
		sinks[i] = s
		fans[i] = sink.NewFanout(sink.FanoutConfig{})
		require.NoError(t, fans[i].Add("rtmp", s, 0))
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range sinks {
		for s.Status() != rtmpsink.StatusActive {
			require.True(t, time.Now().Before(deadline), "sink not active: %v", s.Status())
			time.Sleep(10 * time.Millisecond)
		}
	}
	const seconds = 3
	for k := 0; k < 25*seconds; k++ {
		for _, f := range fans {
			ts := time.Duration(k) * 40 * time.Millisecond
			v := &media.Frame{Codec: media.CodecH264, PTS: ts, DTS: ts, ClockRate: 90000, Payload: pf}
			if k%50 == 0 {
				v.Keyframe, v.Payload = true, idr
			}
			require.NoError(t, f.WriteFrame(v))
			for j := 0; j < 2; j++ {
				at := ts + time.Duration(j)*20*time.Millisecond
				require.NoError(t, f.WriteFrame(&media.Frame{Codec: media.CodecPCMA, PTS: at, DTS: at, Keyframe: true,
					ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond, Payload: pcm}))
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, s := range sinks {
		for s.Stats().FramesSent < 25*seconds*2 {
			require.True(t, time.Now().Before(deadline), "frames not sent: %+v", s.Stats())
			time.Sleep(10 * time.Millisecond)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	heap := (float64(after.HeapInuse) - float64(before.HeapInuse)) / n
	stack := (float64(after.StackInuse) - float64(before.StackInuse)) / n
	gor := float64(g1-g0) / n
	t.Logf("%s: per sink: heap %.1f KiB, stacks %.1f KiB, %.2f goroutines; frames sent by the first: %+v",
		mode, heap/1024, stack/1024, gor, sinks[0].Stats())
	for _, f := range fans {
		require.NoError(t, f.Close(context.Background()))
	}
	require.LessOrEqual(t, heap+stack, 256.0*1024)
	require.LessOrEqual(t, gor, 3.0)
}
