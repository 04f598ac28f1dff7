package rtmp

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dialDiscard publishes to a server that reads and discards everything,
// so that only the Client's work is measured.
func dialDiscard(tb testing.TB) *Client {
	tb.Helper()
	url := fakeServer(tb, func(c *conn) {
		if serveUntilPublish(c, func(command) error { return onStatus(c, "status", codePublishStart) }) != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c.nc) // after publish: just drain
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, url, ClientConfig{})
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	return c
}

// TestClientWriteAllocs: the steady-state write path of H.264 and audio
// allocates nothing per frame (our chunk writer encodes into a reused
// buffer; gortmplib's made five allocations per message).
func TestClientWriteAllocs(t *testing.T) {
	c := dialDiscard(t)
	frames := clipFrames()
	for i, f := range frames { // warm up: buffers grow, config sent
		ts := time.Duration(i) * 40 * time.Millisecond
		require.NoError(t, c.WriteH264(ts, ts, f.avcc, f.key))
	}
	require.NoError(t, c.WriteAACConfig([]byte{0x11, 0x90}))
	pcm := make([]byte, 160)
	i := len(frames)
	allocs := testing.AllocsPerRun(200, func() {
		f := frames[i%len(frames)]
		ts := time.Duration(i) * 40 * time.Millisecond
		if err := c.WriteH264(ts, ts, f.avcc, f.key); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteG711(ts, true, pcm); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteAAC(ts, pcm[:100]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	// AllocsPerRun counts every goroutine: leave one for the reader's.
	t.Logf("%.1f allocations for a video, a G.711 and an AAC message", allocs)
	require.LessOrEqual(t, allocs, 1.0)
}

// BenchmarkClientWrite measures the Client's write path: clip frames to a
// server that discards them. SetBytes is the mean access unit size.
func BenchmarkClientWrite(b *testing.B) {
	c := dialDiscard(b)
	frames := clipFrames()
	total := 0
	for _, f := range frames {
		total += len(f.avcc)
	}
	b.SetBytes(int64(total / len(frames)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := frames[i%len(frames)]
		ts := time.Duration(i) * 40 * time.Millisecond
		if err := c.WriteH264(ts, ts, f.avcc, f.key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientToServer measures a frame's way through Client, loopback
// TCP and our Server to a Subscription. Allocations include the Server's
// one copy of each message (shared by all its subscribers).
func BenchmarkClientToServer(b *testing.B) {
	s, err := NewServer(ServerConfig{})
	require.NoError(b, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go func() { _ = s.Serve(l) }()
	defer s.Close()
	sub := s.Subscribe("live", "bench", 1<<16)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	c, err := Dial(ctx, "rtmp://"+l.Addr().String()+"/live/bench", ClientConfig{})
	require.NoError(b, err)
	defer c.Close()
	frames := clipFrames()
	total := 0
	for _, f := range frames {
		total += len(f.avcc)
	}
	b.SetBytes(int64(total / len(frames)))
	b.ReportAllocs()
	b.ResetTimer()
	got := 0
	for i := 0; i < b.N; i++ {
		f := frames[i%len(frames)]
		ts := time.Duration(i) * 40 * time.Millisecond
		if err := c.WriteH264(ts, ts, f.avcc, f.key); err != nil {
			b.Fatal(err)
		}
		// Keep the subscription drained so nothing is dropped.
		for got < i-1000 {
			if _, err := sub.ReadTag(ctx); err != nil {
				b.Fatal(err)
			}
			got++
		}
	}
	for got < b.N { // every frame arrived (+1 for the sequence header)
		if _, err := sub.ReadTag(ctx); err != nil {
			b.Fatal(err)
		}
		got++
	}
	b.StopTimer()
	if d := sub.Dropped(); d != 0 {
		b.Fatalf("%d tags dropped", d)
	}
}
