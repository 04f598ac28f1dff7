package transcode

import (
	"time"

	"github.com/sipstream/sipstream/media"
)

// Mixer adds audio of its own (a sound played into a broadcast) to the PCM
// ToAAC is about to encode.
//
// Mix is called with every block of PCM on its way to the AAC encoder, in
// timeline order, each sample once: the call's decoded audio, concealment,
// the silence that fills short holes and Silence's output alike. pcm holds
// len(pcm)/channels interleaved sample frames at rate Hz (the output's
// SampleRate; channels is 1, or 2 for stereo input to stereo output, and
// Mix puts its audio in every channel); Mix changes
// them in place (add with saturation, or replace) and must not retain pcm.
// The audio's timing therefore follows the call's timestamps, not the wall
// clock: a hole the transcoder fills is mixed into, a hole long enough to
// restart the stream (MaxGap) is skipped without consuming the mixer's
// audio, and input cut as overlap is never passed to Mix.
//
// Mix is called on the goroutine that calls Write, Silence and Flush, and
// must not block.
type Mixer interface {
	// Mix puts the mixer's next len(pcm)/channels samples into pcm.
	Mix(pcm []int16, rate, channels int)
}

// SetMixer sets the mixer whose audio is added to the output from the next
// encoded sample on; nil removes it.
//
// While a mixer is set the encoder codes the full band, so that a sound is
// not cut to the 4 kHz of the band-limited G.711 path: a stream that is on
// that path restarts, on its next Write or Silence, with a full-band
// encoder (the call's audio has a hole of one or two AAC frames there, as
// when Opus replaces G.711). Removing the mixer keeps the full-band encoder
// until the stream restarts for another reason.
func (t *ToAAC) SetMixer(m Mixer) { t.mix = m }

// widen moves a band-limited stream to a full-band encoder once a mixer is
// set (see SetMixer): a stream that has encoded samples restarts at pts (its
// tail is flushed unmixed: Mix only ever sees the output's rate), an encoder
// that has not is swapped.
func (t *ToAAC) widen(pts time.Duration, emit func(*media.Frame)) {
	switch {
	case t.mix == nil || t.encMode.bw == 0:
	case t.started && !t.encFresh:
		t.restart(pts, emit)
	case t.rs != nil:
		t.setInput(t.inRate, t.inCh, emit)
	}
}
