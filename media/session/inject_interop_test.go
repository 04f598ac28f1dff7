//go:build interop

package session

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
)

// TestInteropInjectedSoundDecodesWithFFmpeg: ffmpeg is the peer. The
// session plays an MP3 file (44.1 kHz stereo, decoded, resampled to 8 kHz,
// looped) into the call as PCMA over real UDP; ffmpeg receives the RTP
// as the SDP describes it and writes a WAV; every 100 ms of that WAV
// holds the 1 kHz tone.
func TestInteropInjectedSoundDecodesWithFFmpeg(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	port := testenv.FreeUDPRange(t, 2)
	dir := t.TempDir()
	sdp := filepath.Join(dir, "call.sdp")
	require.NoError(t, os.WriteFile(sdp, fmt.Appendf(nil,
		"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=inject\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n", port), 0o644))
	out := filepath.Join(dir, "heard.wav")
	p := testenv.StartProcess(t, exec.Command(ffmpeg, "-hide_banner", "-nostdin", "-protocol_whitelist", "file,udp,rtp",
		"-i", sdp, "-t", "3", "-c:a", "pcm_s16le", "-y", out))
	// Wait until ffmpeg listens on the RTP port.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			break
		}
		c.Close()
		require.False(t, p.Exited(), "ffmpeg exited: %s", p.Output())
		require.True(t, time.Now().Before(deadline), "ffmpeg does not listen on %d", port)
		time.Sleep(20 * time.Millisecond)
	}

	clip, err := sound.Load(filepath.Join("..", "sound", "testdata", "tone1k_44100.mp3"))
	require.NoError(t, err)
	s, err := New(Config{IP: loopback, Audio: true})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.SetAudioSource(clip.Play(8000, true)))
	sp := audioSpec(netip.AddrPortFrom(loopback, uint16(port)))
	require.NoError(t, s.Start([]media.StreamSpec{sp}))
	require.NoError(t, p.Wait(30*time.Second), "ffmpeg: %s", p.Output())

	heard, err := sound.Load(out)
	require.NoError(t, err)
	require.Equal(t, 8000, heard.SampleRate)
	require.InDelta(t, 3*time.Second, heard.Duration(), float64(100*time.Millisecond))
	for i := 0; i+800 <= len(heard.Samples); i += 800 {
		require.Greater(t, testmedia.Goertzel(heard.Samples[i:i+800], 8000, 1000), 0.9, "block at %v", time.Duration(i)*time.Second/8000)
	}
	t.Logf("ffmpeg decoded %v of PCMA; %d packets sent", heard.Duration(), s.Stats().Audio.PacketsSent)
}
