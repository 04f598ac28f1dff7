package rtmp

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

// BenchmarkPublishWrites publishes the clip's video frames and AAC frames
// through rtmp.Client and reports the connection writes (syscalls) per
// frame of each kind.
func BenchmarkPublishWrites(b *testing.B) {
	// video800k: 800 kbit/s at 25 fps, what baresip sends at 640x360:
	// 3.7 KB P-frames and a 12 KB IDR every 2 s.
	big := func(n int, idr bool) []byte {
		au := make([]byte, 4+n)
		au[3] = byte(n)
		au[2] = byte(n >> 8)
		au[4] = 0x41
		if idr {
			au[4] = 0x65
		}
		return au
	}
	pFrame, idrFrame := big(3700, false), big(12000, true)
	for _, kind := range []string{"video", "video800k", "audio"} {
		b.Run(kind, func(b *testing.B) {
			ws := startWireSink(b)
			var writes atomic.Int64
			c, err := Dial(context.Background(), ws.url, ClientConfig{
				Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					var d net.Dialer
					nc, err := d.DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					return testenv.CountWrites(nc, &writes), nil
				},
			})
			require.NoError(b, err)
			defer c.Close()
			require.NoError(b, c.WriteAACConfig(benchASC))
			frames := clipFrames()
			require.NoError(b, c.WriteH264(0, 0, frames[0].avcc, frames[0].key))
			b.ReportAllocs()
			start := writes.Load()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ts := time.Duration(i+1) * 40 * time.Millisecond
				switch kind {
				case "video":
					f := frames[(i+1)%len(frames)]
					err = c.WriteH264(ts, ts, f.avcc, f.key)
				case "video800k":
					if i%50 == 49 {
						err = c.WriteH264(ts, ts, idrFrame, true)
					} else {
						err = c.WriteH264(ts, ts, pFrame, false)
					}
				default:
					err = c.WriteAAC(ts, benchAudio)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(writes.Load()-start)/float64(b.N), "writes/frame")
		})
	}
}

// countingDial dials TCP and counts the Write calls on the connection.
func countingDial(writes *atomic.Int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return testenv.CountWrites(nc, writes), nil
	}
}

// TestClientWritesPerFrame: each frame, of several chunks or one, is one
// write on the connection; between Hold and Flush, nothing is written and
// Flush writes the whole batch at once; the server reads it all, in order.
func TestClientWritesPerFrame(t *testing.T) {
	got := make(chan message, 64)
	url := fakeServer(t, func(c *conn) {
		defer close(got)
		if serveUntilPublish(c, func(command) error { return onStatus(c, "status", codePublishStart) }) != nil {
			return
		}
		for {
			m, err := c.readMessage()
			if err != nil {
				return
			}
			got <- m
		}
	})
	var writes atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, url, ClientConfig{ChunkSize: 1000, Dial: countingDial(&writes)})
	require.NoError(t, err)
	defer c.Close()
	frames := clipFrames()
	require.True(t, frames[0].key)

	w0 := writes.Load()
	require.NoError(t, c.WriteAACConfig(benchASC))
	big := append([]byte{0, 0, 0x0b, 0xb8, 0x41}, make([]byte, 2999)...) // 3000-byte P slice: 4 chunks
	require.NoError(t, c.WriteH264(0, 0, frames[0].avcc, true))          // sequence header + frame
	require.NoError(t, c.WriteH264(40*time.Millisecond, 40*time.Millisecond, big, false))
	require.NoError(t, c.WriteAAC(10*time.Millisecond, benchAudio))
	require.Equal(t, int64(5), writes.Load()-w0, "one write per message")

	c.Hold()
	require.NoError(t, c.WriteH264(80*time.Millisecond, 80*time.Millisecond, big, false))
	require.NoError(t, c.WriteAAC(31*time.Millisecond, benchAudio))
	require.NoError(t, c.WriteAAC(52*time.Millisecond, benchAudio))
	require.Equal(t, int64(5), writes.Load()-w0, "nothing written while held")
	require.NoError(t, c.Flush())
	require.Equal(t, int64(6), writes.Load()-w0, "one write for the batch")
	require.NoError(t, c.Flush()) // nothing held: no write
	require.Equal(t, int64(6), writes.Load()-w0)

	// A held batch stays within 16 KiB: the sixth 3 KB frame sends the
	// first five.
	c.Hold()
	for i := 0; i < 6; i++ {
		ts := time.Duration(3+i) * 40 * time.Millisecond
		require.NoError(t, c.WriteH264(ts, ts, big, false))
	}
	require.Equal(t, int64(7), writes.Load()-w0)
	require.NoError(t, c.Flush())
	require.Equal(t, int64(8), writes.Load()-w0)

	want := []struct {
		typ uint8
		ts  uint32
		n   int
	}{
		{typeAudio, 0, 4}, {typeVideo, 0, -1}, {typeVideo, 0, -1}, {typeVideo, 40, len(big) + 5},
		{typeAudio, 10, len(benchAudio) + 2},
		{typeVideo, 80, len(big) + 5}, {typeAudio, 31, len(benchAudio) + 2}, {typeAudio, 52, len(benchAudio) + 2},
		{typeVideo, 120, len(big) + 5}, {typeVideo, 160, len(big) + 5}, {typeVideo, 200, len(big) + 5},
		{typeVideo, 240, len(big) + 5}, {typeVideo, 280, len(big) + 5}, {typeVideo, 320, len(big) + 5},
	}
	for i, w := range want {
		var m message
		select {
		case m = <-got:
		case <-ctx.Done():
			t.Fatalf("message %d not received", i)
		}
		require.Equal(t, w.typ, m.Type, "message %d", i)
		require.Equal(t, w.ts, m.Timestamp, "message %d", i)
		if w.n >= 0 {
			require.Len(t, m.Payload, w.n, "message %d", i)
		}
	}
}
