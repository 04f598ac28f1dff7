package rtmpsink

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sink"
)

// BenchmarkFanoutToRTMP measures a call's frames (3.7 KB H.264 P-frames
// at 25 fps with a 12 KB keyframe every 2 s, and 20 ms G.711 frames)
// through a sink.Fanout, this sink and rtmp.Client to an in-process
// rtmp.Server over loopback TCP, and reports the connection writes per
// frame. The frames are offered as fast as the benchmark goes, so the
// sink's queue holds several frames whenever its goroutine lags.
func BenchmarkFanoutToRTMP(b *testing.B) {
	srv, err := rtmp.NewServer(rtmp.ServerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	var writes atomic.Int64
	dial := func(ctx context.Context, c *cfgOK) (publisher, error) {
		return rtmp.Dial(ctx, c.URL, rtmp.ClientConfig{StreamName: c.StreamName,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var d net.Dialer
				nc, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return testenv.CountWrites(nc, &writes), nil
			}})
	}
	active := make(chan struct{})
	s, err := newSink(Config{URL: "rtmp://" + l.Addr().String() + "/live", StreamName: "bench",
		Audio: true, Video: true, AudioMode: AudioPassthrough,
		OnStatus: func(st Status, _ string) {
			if st == StatusActive {
				close(active)
			}
		}}, dial, realClock{})
	if err != nil {
		b.Fatal(err)
	}
	<-active
	f := sink.NewFanout(sink.FanoutConfig{})
	if err := f.Add("rtmp", s, 1<<12); err != nil {
		b.Fatal(err)
	}
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x62, 0xe4, 0x80}
	pps := []byte{0x68, 0xcb, 0x8c, 0xb2}
	avc := func(nalus ...[]byte) []byte {
		var out []byte
		for _, n := range nalus {
			out = append(out, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
			out = append(out, n...)
		}
		return out
	}
	idrSlice := make([]byte, 12000)
	idrSlice[0] = 0x65
	pSlice := make([]byte, 3700)
	pSlice[0] = 0x41
	idr, pf := avc(sps, pps, idrSlice), avc(pSlice)
	pcm := make([]byte, 160)
	write := func(i int) {
		k := i / 3
		var fr media.Frame
		if i%3 == 0 {
			ts := time.Duration(k) * 40 * time.Millisecond
			fr = media.Frame{Codec: media.CodecH264, PTS: ts, DTS: ts, ClockRate: 90000, Payload: pf}
			if k%50 == 0 {
				fr.Keyframe, fr.Payload = true, idr
			}
		} else {
			ts := time.Duration(2*k+i%3-1) * 20 * time.Millisecond
			fr = media.Frame{Codec: media.CodecPCMA, PTS: ts, DTS: ts, Keyframe: true, ClockRate: 8000,
				Channels: 1, Duration: 20 * time.Millisecond, Payload: pcm}
		}
		if err := f.WriteFrame(&fr); err != nil {
			b.Fatal(err)
		}
	}
	wait := func(n uint64) {
		deadline := time.Now().Add(10 * time.Second)
		for s.Stats().FramesSent+s.Stats().FramesDropped < n {
			if time.Now().After(deadline) {
				b.Fatalf("stuck: %+v", s.Stats())
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	write(0) // the keyframe, sequence headers and metadata
	wait(1)
	w0 := writes.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		write(i)
		if i%1024 == 0 {
			wait(uint64(i + 1))
		}
	}
	wait(uint64(b.N + 1))
	b.StopTimer()
	b.ReportMetric(float64(writes.Load()-w0)/float64(b.N), "writes/frame")
	if st := s.Stats(); st.FramesDropped != 0 {
		b.Fatalf("%+v", st)
	}
	if err := f.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}
