//go:build interop

package siptest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// TestInteropBaresipCalls has baresip, a real softphone, call the peer: its
// offer must be answered, its 440 Hz test tone must arrive, and the peer's
// BYE must be accepted.
func TestInteropBaresipCalls(t *testing.T) {
	bin := testenv.LookPath(t, "baresip")
	p := newPeer(t, Config{Script: Script{Audio: true}})
	dir := t.TempDir()
	port := testenv.FreePort(t, "udp")
	config := "sip_listen\t127.0.0.1:" + strconv.Itoa(port) + "\n" +
		"sip_transports\tudp\n" +
		"audio_source\tausine,440\n" +
		"ausrc_srate\t48000\n" +
		"ausrc_channels\t2\n" +
		"audio_player\taufile," + filepath.Join(dir, "played.wav") + "\n" +
		"audio_alert\taufile," + filepath.Join(dir, "alert.wav") + "\n" +
		"module_path\t/usr/lib/baresip/modules\n" +
		"module\tg711.so\n" +
		"module\tausine.so\n" +
		"module\taufile.so\n" +
		"module_app\taccount.so\n" +
		"module_app\tmenu.so\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "accounts"), []byte("<sip:tester@127.0.0.1>;regint=0\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "contacts"), nil, 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-4", "-n", "127.0.0.1", "-f", dir, "-e", "/dial "+p.URI(), "-t", "8")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("baresip output:\n%s", out.String())
		}
	})
	watcher := make(chan struct{})
	go func() {
		// Fail fast when baresip gives up.
		defer close(watcher)
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	t.Cleanup(func() { cancel(); <-watcher })

	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	require.NoError(t, c.WaitRTP(ctx, media.KindAudio, 50))
	specs := c.Streams()
	require.NotEmpty(t, specs)
	assert.Contains(t, string(c.OfferSDP()), "c=IN IP4 127.0.0.1")
	assert.Contains(t, []media.Codec{media.CodecPCMA, media.CodecPCMU}, specs[0].Formats[0].Codec)
	audio := c.ReceivedAudio()
	require.Greater(t, len(audio), 4000)
	assert.Greater(t, testmedia.Goertzel(audio[len(audio)-4000:], 8000, 440), 0.5)
	require.NoError(t, c.Hangup(ctx))
}
