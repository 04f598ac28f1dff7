package callmgr

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sip/siptest"
)

// toneIn reports the share of 8 kHz samples' energy at freq over the
// given window of the audio a siptest peer received (seconds from its
// start).
func toneIn(pcm []int16, from, to float64, freq float64) float64 {
	a, b := int(from*8000), int(to*8000)
	if b > len(pcm) {
		b = len(pcm)
	}
	if a >= b {
		return 0
	}
	return testmedia.Goertzel(pcm[a:b], 8000, freq)
}

// TestInjectSoundAndStreamToPeer: the real stack sends an injected sound
// (a 16 kHz clip, resampled to the call's 8 kHz G.711) and then another
// call's live audio to a siptest peer, which decodes what it received: the
// clip's 1 kHz tone, then the other peer's 600 Hz tone, then silence.
// talkerAndListener places two answered calls with the real stack: "talk"
// to a peer that sends a 600 Hz PCMA tone (its ToStream is "talk"),
// "listen" to a silent PCMU peer, whose received audio the test reads.
func talkerAndListener(t *testing.T) (m *Manager, talk, listen *Call, heard *siptest.PeerCall) {
	t.Helper()
	talker, err := siptest.NewPeer(siptest.Config{User: "talker", Script: siptest.Script{Audio: true, ToneHz: 600, AudioCodecs: []media.Codec{media.CodecPCMA}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = talker.Close() })
	listener, err := siptest.NewPeer(siptest.Config{User: "listener", Script: siptest.Script{AudioCodecs: []media.Codec{media.CodecPCMU}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = listener.Close() })
	m, err = New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 26200, RTPPortMax: 26299})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx := ctxT(t)
	talk, err = m.StartCall(ctx, CallParams{CallID: "talk", Callee: talker.URI(), ToStream: "talk", HasAudio: true})
	require.NoError(t, err)
	listen, err = m.StartCall(ctx, CallParams{CallID: "listen", Callee: listener.URI(), HasAudio: true})
	require.NoError(t, err)
	require.NoError(t, talk.WaitEstablished(ctx))
	require.NoError(t, listen.WaitEstablished(ctx))
	heard, err = listener.WaitCall(ctx)
	require.NoError(t, err)
	return m, talk, listen, heard
}

func TestInjectSoundAndStreamToPeer(t *testing.T) {
	m, a, b, pc := talkerAndListener(t)
	ctx := ctxT(t)

	start := time.Now()
	at := func() float64 { return time.Since(start).Seconds() }
	clip := &sound.Clip{SampleRate: 16000, Samples: testmedia.Tone(1000, 16000, 0, 16000*3/2, 0.4)}
	require.NoError(t, m.InjectSound(ctx, "listen", clip.Play(clip.SampleRate, false), "tone.wav"))
	soundAt := at()
	require.Equal(t, "tone.wav", b.Info().InjectedSound)
	require.True(t, waitFor(func() bool { return b.Info().InjectedSound == "" }), "the sound's end is reported")
	soundEnd := at()
	assert.InDelta(t, 1.5, soundEnd-soundAt, 0.5, "the 1.5 s clip plays in real time")

	require.NoError(t, m.InjectStream(ctx, "listen", "talk"))
	streamAt := at()
	assert.Equal(t, "talk", b.Info().InjectedStream)
	assert.Len(t, a.Info().Sinks, 1, "the talker's call has the tap")
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, m.InjectStream(ctx, "listen", ""))
	streamEnd := at()
	require.True(t, waitFor(func() bool { return len(a.Info().Sinks) == 0 }), "the tap is removed")
	time.Sleep(time.Second)

	pcm := pc.ReceivedAudio()
	// The peer's recording starts with the first packet, about when the
	// call was answered: before start. Windows are taken well inside each
	// phase, counted back from the end of the recording.
	end := float64(len(pcm)) / 8000
	now := at()
	toRec := func(x float64) float64 { return end - (now - x) }
	assert.Greater(t, toneIn(pcm, toRec(soundAt+0.3), toRec(soundEnd-0.3), 1000), 0.8, "the clip's 1 kHz tone reaches the peer")
	assert.Greater(t, toneIn(pcm, toRec(streamAt+0.5), toRec(streamEnd-0.2), 600), 0.8, "the talker's 600 Hz tone reaches the peer")
	assert.Less(t, toneIn(pcm, toRec(streamEnd+0.4), end, 600), 0.2, "silence again after inject_stream/terminate")

	require.NoError(t, a.Terminate(ctx))
	require.NoError(t, b.Terminate(ctx))
}

// TestInjectStreamSourceEnds: when the call whose audio is injected ends,
// the listening call goes back to silence and says so.
func TestInjectStreamSourceEnds(t *testing.T) {
	_, a, b, _ := talkerAndListener(t)
	ctx := ctxT(t)
	require.NoError(t, b.InjectStream(ctx, "talk"))
	assert.Equal(t, "talk", b.Info().InjectedStream)
	require.NoError(t, a.Terminate(ctx))
	require.True(t, waitFor(func() bool { return b.Info().InjectedStream == "" }), "the end of the source is noticed")
	assert.ErrorIs(t, b.InjectStream(ctx, "talk"), ErrStreamNotFound)
	require.NoError(t, b.Terminate(ctx))
}
