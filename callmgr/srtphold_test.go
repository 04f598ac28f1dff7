package callmgr

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sip/siptest"
)

// TestHoldSRTP: hold and unhold re-key an SRTP call (every offer carries
// new SDES keys): after unhold the peer still decodes what we send (an
// injected tone) and we still decrypt what it sends.
func TestHoldSRTP(t *testing.T) {
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{SRTP: true, Audio: true}})
	require.NoError(t, err)
	defer peer.Close()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 26500, RTPPortMax: 26599})
	require.NoError(t, err)
	defer m.Close(context.Background())
	ctx := ctxT(t)
	c, err := m.StartCall(ctx, CallParams{CallID: "srtp-hold", Callee: peer.URI(), HasAudio: true, SRTP: SRTPRequired})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	require.True(t, c.Info().Secure)
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Hold(ctx))
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, c.Unhold(ctx))
	before := c.Stats()
	heard := len(pc.ReceivedAudio())
	clip := &sound.Clip{SampleRate: 8000, Samples: testmedia.Tone(1000, 8000, 0, 8000, 0.5)}
	require.NoError(t, c.InjectSound(ctx, clip.Play(8000, false), "tone"))
	time.Sleep(1200 * time.Millisecond)
	after := c.Stats()
	pcm := pc.ReceivedAudio()[heard:]
	require.Greater(t, len(pcm), 4000)
	assert.Greater(t, testmedia.Goertzel(pcm[len(pcm)/4:len(pcm)*3/4], 8000, 1000), 0.8, "the peer decrypts our audio after the re-key")
	assert.Greater(t, after.Audio.PacketsReceived, before.Audio.PacketsReceived+20, "we still receive the peer's audio")
	assert.Equal(t, before.Audio.SRTPErrors, after.Audio.SRTPErrors, "and decrypt it")
	require.NoError(t, c.Terminate(ctx))
}
