package session

import (
	"errors"
	"fmt"
	"io"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/sound"
)

// Errors of audio injection.
var (
	// ErrCannotEncode is returned by SetAudioSource (and passed to
	// Config.OnAudioSourceEnd when a re-INVITE changes the codec) when
	// the audio stream sends a codec the session cannot encode: only
	// PCMA and PCMU are, since no pure-Go Opus encoder can be had (an
	// Opus call still gets its silence frames).
	ErrCannotEncode = errors.New("session: cannot encode injected audio in the negotiated codec (PCMA and PCMU only)")
	// ErrNoAudio is returned by SetAudioSource for a session without an
	// audio stream.
	ErrNoAudio = errors.New("session: no audio stream")
	// ErrSourceReplaced is passed to Config.OnAudioSourceEnd for a source
	// that another SetAudioSource call replaced (or stopped with nil).
	ErrSourceReplaced = errors.New("session: audio source replaced")
	// errBadRead: a Source's Read returned a count out of range.
	errBadRead = errors.New("session: audio source returned an invalid count")
)

// SetAudioSource sends src to the peer in place of the silence of the
// audio stream; nil goes back to silence. It replaces (and ends, with
// ErrSourceReplaced) a source set before.
//
// Each 20 ms packet takes the next 20 ms of src at the negotiated clock
// rate (src is resampled to it if its own rate differs), encoded with the
// stream's codec; what src does not have at that moment (Read returned
// fewer samples, a live source with a gap) is silence. The packets keep
// the stream's SSRC, sequence numbers and timestamps, across re-INVITEs
// too. DTMF keeps priority: while a digit is sent, src is read and its
// samples dropped, so that it stays in time. While the stream does not
// send (hold, recvonly) src is not read and nothing is sent; it resumes
// where it was when sending resumes.
//
// When src returns io.EOF the stream goes back to silence and
// Config.OnAudioSourceEnd is called with a nil error; a Read error, a
// re-INVITE to a codec that cannot be encoded, a replacement or Close end
// it with that error. src is read on the session's owner goroutine only.
//
// Only PCMA and PCMU can be encoded: SetAudioSource returns
// ErrCannotEncode when the negotiated sending codec is another (Opus,
// Speex). Before Start any source is taken and checked at Start. A
// sample rate out of range (1000..384000 Hz) is an error wrapping
// sound.ErrRate.
func (s *Session) SetAudioSource(src sound.Source) error {
	return s.do(func() error { return s.setAudioSource(src) })
}

// setAudioSource is SetAudioSource on the owner goroutine.
func (s *Session) setAudioSource(src sound.Source) error {
	st := s.audio
	if st == nil {
		return ErrNoAudio
	}
	if src != nil {
		if r := src.SampleRate(); r < 1000 || r > 384000 {
			return fmt.Errorf("%w: audio source at %d Hz", sound.ErrRate, r)
		}
		if st.configured {
			if pf := sendFormat(st.spec); pf == nil || !canEncode(pf.Codec) {
				return ErrCannotEncode
			}
		}
	}
	st.endSource(ErrSourceReplaced)
	st.src = src
	return nil
}

// canEncode reports whether injected audio can be encoded in c.
func canEncode(c media.Codec) bool {
	return c == media.CodecPCMA || c == media.CodecPCMU
}

// endSource stops injecting, reporting err (nil: the source ended).
func (st *stream) endSource(err error) {
	if st.src == nil {
		return
	}
	src := st.src
	st.src, st.srcRead, st.srcRate = nil, nil, 0
	if st.s.cfg.OnAudioSourceEnd != nil {
		st.s.cfg.OnAudioSourceEnd(src, err)
	}
}

// injected returns the payload of the next packet from the injected
// source, or the silence payload over a gap, and ends the source at its
// end. It allocates nothing once its buffers have grown.
func (st *stream) injected() []byte {
	n := int(st.sendRate / 50)
	if st.srcRead == nil || st.srcRate != st.sendRate {
		r, err := sound.Resample(st.src, int(st.sendRate))
		if err != nil {
			st.endSource(err)
			return st.silence
		}
		st.srcRead, st.srcRate = r, st.sendRate
	}
	if cap(st.pcm) < n {
		st.pcm = make([]int16, n)
		st.payload = make([]byte, 0, n)
	}
	pcm := st.pcm[:n]
	got := 0
	var err error
	for got < n {
		var k int
		k, err = st.srcRead.Read(pcm[got:])
		if k < 0 || k > n-got {
			k, err = 0, errBadRead
		}
		got += k
		if err != nil || k == 0 {
			break
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = nil
		}
		st.endSource(err)
	}
	if got == 0 {
		return st.silence
	}
	clear(pcm[got:])
	if st.sendCodec == media.CodecPCMA {
		st.payload = g711.EncodeALaw(st.payload[:0], pcm)
	} else {
		st.payload = g711.EncodeULaw(st.payload[:0], pcm)
	}
	return st.payload
}
