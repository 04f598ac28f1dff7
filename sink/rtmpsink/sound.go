package rtmpsink

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/resample"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/media/transcode"
)

// ErrSound is wrapped by the errors SetSound returns when the sink cannot
// mix a sound into what it publishes.
var ErrSound = errors.New("rtmpsink: cannot play a sound")

// mixable is what the AAC converter needs to mix a sound: media/transcode's
// ToAAC has it.
type mixable interface {
	SetMixer(m transcode.Mixer)
}

// SetSound plays src into the published audio, mixed with the call's
// (added with saturation, resampled to the output's rate), until src ends
// (io.EOF, or any other error from Read) or the next SetSound; nil stops
// the sound. A sound that played to its end is reported through
// Config.OnSoundEnd; one stopped or replaced by SetSound is not.
//
// The sound is paced by the call's audio timestamps, not the wall clock,
// so it stays in sync with the call and never piles up: what the sink
// publishes of the call's timeline, it publishes of the sound. Holes in the
// call's audio that the AAC converter fills (up to AACConfig.MaxGap) carry
// the sound; while nothing is published (before the first keyframe, while
// reconnecting, over a longer hole) the sound waits, and it goes on where
// it was once publishing resumes, a reconnect included.
//
// What is mixed, by AudioMode and the call's audio:
//   - AudioAAC with G.711 or Opus: at the PCM stage before the AAC encoder
//     (transcode.ToAAC.SetMixer). The encoder codes the full band while a
//     sound plays, so a G.711 call's stream restarts once when the first
//     sound starts (a hole of one or two AAC frames, about 40 ms).
//   - AudioAAC on a video-only call: the sound replaces the silent AAC.
//   - AudioPassthrough with G.711: the sound is resampled to the call's
//     8 kHz and mixed in the G.711 domain (decoded, added, encoded again),
//     so it keeps the telephone band. A lost packet skips the sound
//     forward by as much, up to AACConfig.MaxGap.
//   - AAC input (Config.AudioSpecificConfig, or AAC frames seen): there is
//     no AAC decoder to mix with, so SetSound returns an error wrapping
//     ErrSound; so it does for a video-only call in AudioPassthrough mode
//     (it publishes no audio) and for a Config.NewAAC converter without a
//     SetMixer(transcode.Mixer) method.
//
// A push muted by callmgr (which hands the sink G.711 silence in place of
// the call's audio) publishes the sound alone. callmgr withholds a muted
// call's Opus instead, so there the sound waits until the push is unmuted
// (or callmgr hands the sink silence for Opus too).
//
// SetSound may be called from any goroutine, concurrently with WriteFrame;
// src is read only on the goroutine that calls WriteFrame, and its
// SampleRate must lie between 1000 and 384000 Hz. After Close a sound is
// never read.
func (s *Sink) SetSound(src sound.Source) error {
	if src != nil {
		if err := s.canMix(); err != nil {
			return err
		}
		if r := src.SampleRate(); r < 1000 || r > 384000 {
			return fmt.Errorf("%w: sample rate %d Hz", ErrSound, r)
		}
	}
	s.mix.set(src)
	return nil
}

// canMix says why SetSound cannot mix into this sink's audio, if it cannot.
func (s *Sink) canMix() error {
	switch {
	case s.cfg.AudioSpecificConfig != nil || s.sawAAC.Load():
		return fmt.Errorf("%w: the call's audio is AAC, which cannot be decoded to mix into", ErrSound)
	case s.cfg.AudioMode == AudioPassthrough && !s.cfg.Audio:
		return fmt.Errorf("%w: a video-only call publishes no audio in passthrough mode; sound needs AudioAAC", ErrSound)
	case s.cfg.AudioMode == AudioAAC && s.mixConv == nil:
		return fmt.Errorf("%w: the AAC converter from Config.NewAAC cannot mix (no SetMixer method)", ErrSound)
	}
	return nil
}

// syncMixer hands the AAC converter the mixer while a sound is set and
// takes it back after: ToAAC belongs to the writer, so SetSound only flags
// the change. writeMu must be held.
func (s *Sink) syncMixer() {
	on := s.mix.active.Load()
	if s.mixConv == nil || on == s.w.mixOn {
		return
	}
	s.w.mixOn = on
	if on {
		s.mixConv.SetMixer(&s.mix)
	} else {
		s.mixConv.SetMixer(nil)
	}
}

// soundEnds reports the sounds that played to their end through
// Config.OnSoundEnd. writeMu must be held (the mixer's lock must not).
func (s *Sink) soundEnds() {
	if !s.mix.hasEnded.Load() {
		return
	}
	for _, src := range s.mix.takeEnded() {
		if s.cfg.OnSoundEnd != nil {
			s.cfg.OnSoundEnd(src)
		}
	}
}

// mixG711 returns f's G.711 payload with the sound mixed in, in a new
// slice, and skips the sound over a hole before f. writeMu must be held.
func (s *Sink) mixG711(f *media.Frame) []byte {
	w := &s.w
	rate := int(f.ClockRate)
	if rate == 0 {
		rate = 8000
	}
	alaw := f.Codec == media.CodecPCMA
	if alaw {
		w.pcm = g711.DecodeALaw(w.pcm[:0], f.Payload)
	} else {
		w.pcm = g711.DecodeULaw(w.pcm[:0], f.Payload)
	}
	// The FLV tag says 8 kHz mono: a stereo payload is mixed as mono.
	s.mix.mixAt(w.pcm, rate, f.PTS, s.maxGap())
	if alaw {
		return g711.EncodeALaw(make([]byte, 0, len(w.pcm)), w.pcm)
	}
	return g711.EncodeULaw(make([]byte, 0, len(w.pcm)), w.pcm)
}

func (s *Sink) maxGap() time.Duration {
	if s.cfg.AAC.MaxGap > 0 {
		return s.cfg.AAC.MaxGap
	}
	return 5 * time.Second
}

// soundMixer is the transcode.Mixer that adds the current sound to a
// block of PCM. SetSound writes its source; the writer's goroutine reads
// and mixes it.
type soundMixer struct {
	active   atomic.Bool // a source is set
	hasEnded atomic.Bool // ended is not empty

	mu       sync.Mutex // guards what follows
	src      sound.Source
	rate     int                 // src's sample rate
	rs       *resample.Resampler // src's rate → the rate Mix was last called at; nil: to make
	in       []int16             // samples read from src
	q        []int16             // resampled samples not mixed yet
	eof      bool                // src ended: q holds the last of it
	ended    []sound.Source      // sources that played to their end, not reported yet
	next     time.Duration       // mixAt: where the last block ended on the timeline
	haveNext bool
}

// set makes src the sound (nil: none), dropping what is held of the last.
func (m *soundMixer) set(src sound.Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.src, m.rs, m.q, m.eof, m.haveNext = src, nil, m.q[:0], false, false
	if src != nil {
		m.rate = src.SampleRate()
	}
	m.active.Store(src != nil)
}

func (m *soundMixer) takeEnded() []sound.Source {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.ended
	m.ended = nil
	m.hasEnded.Store(false)
	return e
}

// Mix adds the sound's next len(pcm)/channels samples, at rate, to every
// channel of pcm, with saturation. A source with nothing to give (a live
// one between pieces) leaves the rest of the block as it is.
func (m *soundMixer) Mix(pcm []int16, rate, channels int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.src == nil || channels < 1 {
		return
	}
	need := len(pcm) / channels
	if !m.fill(need, rate) {
		return
	}
	k := min(need, len(m.q))
	for i, v := range m.q[:k] {
		for c := 0; c < channels; c++ {
			p := &pcm[i*channels+c]
			*p = int16(max(-32768, min(32767, int32(*p)+int32(v))))
		}
	}
	m.consume(k)
}

// mixAt mixes into pcm (mono at rate) that starts at pts on the call's
// timeline: a hole since the last block, up to maxGap, skips the sound
// forward by as much, so that it stays where the timeline is.
func (m *soundMixer) mixAt(pcm []int16, rate int, pts, maxGap time.Duration) {
	m.mu.Lock()
	gap := pts - m.next
	if m.haveNext && gap > 10*time.Millisecond && gap <= maxGap {
		m.skip(int(int64(gap)*int64(rate)/int64(time.Second)), rate)
	}
	m.next, m.haveNext = pts+time.Duration(int64(len(pcm))*int64(time.Second)/int64(rate)), true
	m.mu.Unlock()
	m.Mix(pcm, rate, 1)
}

// resync forgets the timeline position of mixAt: after a reconnect the
// sound goes on where it was, whatever the call's time.
func (m *soundMixer) resync() {
	m.mu.Lock()
	m.haveNext = false
	m.mu.Unlock()
}

// skip drops the sound's next n samples at rate (a hole in the call's
// audio that nothing fills). m.mu must be held.
func (m *soundMixer) skip(n, rate int) {
	for n > 0 && m.src != nil {
		k := min(n, 960)
		if !m.fill(k, rate) {
			return
		}
		k = min(k, len(m.q))
		if k == 0 && !m.eof {
			return // a live source with nothing buffered
		}
		m.consume(k)
		n -= k
	}
}

// fill reads from the source until q holds need samples at rate, the
// source has nothing more for now, or it ended. It reports false if the
// sound cannot be resampled to rate (then it is over).
func (m *soundMixer) fill(need, rate int) bool {
	if m.rs == nil || m.rs.OutRate() != rate {
		rs, err := resample.New(resample.Config{InRate: m.rate, OutRate: rate})
		if err != nil {
			m.finish()
			return false
		}
		m.rs, m.q = rs, m.q[:0]
	}
	for len(m.q) < need && !m.eof {
		want := (need-len(m.q))*m.rate/rate + 1
		if cap(m.in) < 1024 {
			m.in = make([]int16, 1024)
		}
		buf := m.in[:min(want, cap(m.in))]
		n, err := m.read(buf)
		if n > 0 {
			m.q = m.rs.Process(m.q, buf[:n])
		}
		if err != nil {
			m.q = m.rs.Flush(m.q)
			m.eof = true
		} else if n == 0 {
			break // nothing buffered: silence for the rest
		}
	}
	return true
}

// read calls the source; a panic in it ends the sound rather than the
// call's publishing.
func (m *soundMixer) read(p []int16) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("sound source panicked: %v", r)
		}
	}()
	n, err = m.src.Read(p)
	if n < 0 || n > len(p) {
		return 0, fmt.Errorf("sound source read %d samples into %d", n, len(p))
	}
	return n, err
}

// consume drops the first k samples of q; the sound is over once q is
// empty after its end.
func (m *soundMixer) consume(k int) {
	m.q = m.q[:copy(m.q, m.q[k:])]
	if m.eof && len(m.q) == 0 {
		m.finish()
	}
}

// finish ends the current sound and queues its end for OnSoundEnd.
func (m *soundMixer) finish() {
	m.ended = append(m.ended, m.src)
	m.hasEnded.Store(true)
	m.src, m.rs, m.q, m.eof = nil, nil, m.q[:0], false
	m.active.Store(false)
}
