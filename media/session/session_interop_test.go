//go:build interop

package session

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
)

// TestInteropLossyH264OverUDPDecodesWithFFmpeg sends the H.264 clip twice
// over real UDP on loopback through 5 % loss, 30 ms jitter and 2 %
// reordering into a session; the frames it emits, written as Annex-B, must
// decode with ffmpeg without a single error, one picture per frame.
func TestInteropLossyH264OverUDPDecodesWithFFmpeg(t *testing.T) {
	testenv.LookPath(t, "ffmpeg")
	frames, onFrame := frameChan(1000)
	s, err := New(Config{IP: loopback, Video: true, OnFrame: onFrame})
	require.NoError(t, err)
	defer s.Close()

	raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	sender, err := netsim.NewConn(raw, netsim.Config{Seed: 42, Loss: 0.05, Jitter: 30 * time.Millisecond, Reorder: 0.02})
	require.NoError(t, err)
	defer sender.Close()
	require.NoError(t, s.Start([]media.StreamSpec{videoSpec(raw.LocalAddr().(*net.UDPAddr).AddrPort(), media.Feedback{PLI: true})}))

	_, pkts := clipPackets(t, 2, 0xc0ffee, 0x12345678)
	dst := net.UDPAddrFromAddrPort(s.LocalAddr(media.KindVideo))
	start := time.Now()
	for _, p := range pkts {
		if d := time.Until(start.Add(p.At)); d > 0 {
			time.Sleep(d)
		}
		_, err := sender.WriteTo(p.Data, dst)
		require.NoError(t, err)
	}
	time.Sleep(500 * time.Millisecond) // the last packets in flight and in the jitter buffer
	require.NotZero(t, sender.Stats().Lost)

	var annexB bytes.Buffer
	n := 0
	for done := false; !done; {
		select {
		case f := <-frames:
			nalus, err := rtph264.SplitAVC(f.data)
			require.NoError(t, err)
			annexB.Write(rtph264.JoinAnnexB(nalus))
			n++
		default:
			done = true
		}
	}
	require.NotZero(t, n)
	file := filepath.Join(t.TempDir(), "out.h264")
	require.NoError(t, os.WriteFile(file, annexB.Bytes(), 0o644))
	require.Empty(t, testenv.DecodeErrors(t, file), "ffmpeg reported errors")
	require.Equal(t, n, len(testenv.FrameMD5s(t, file)), "every emitted picture decodes")
	st := s.Stats().Video
	t.Logf("%d of %d frames emitted and decoded; %d packets lost on the way, %d PLIs", n, 200, sender.Stats().Lost, st.PLISent)
}
