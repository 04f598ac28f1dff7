// Package transcode turns the audio a SIP peer sends (G.711 A-law/µ-law,
// Opus) into AAC-LC for targets that accept nothing else (RTMP to YouTube,
// Facebook, Twitch), keeping the timeline: every AAC frame carries the PTS of
// the input audio it decodes to, so lip sync with the video holds.
//
// The path is: decode (media/g711 or github.com/pion/opus) → mix to the
// output channel count → resample (media/resample) → encode (media/aac).
// A narrow-band source takes the encoder's band-limited fast path: G.711 is
// resampled to a quarter of the output rate (12 kHz for 48 kHz) and coded
// up to its 4 kHz bandwidth only, for a fraction of the work of full-band
// coding (the decoded audio comes out 1.5 output samples, 31 µs at 48 kHz,
// later than its PTS say: far below the millisecond of RTMP and FLV
// timestamps). Opus is coded full band. A stream that started narrow-band
// and receives Opus restarts with a full-band encoder.
// Lost packets are concealed (see below), overlapping input is cut,
// a long gap restarts the AAC stream on the new timestamps, and Silence
// produces silent AAC for calls without audio. A Mixer (SetMixer) adds
// audio of its own, a sound played into the broadcast, to the PCM just
// before the encoder, paced by the call's timestamps.
//
// Output PTS (= DTS) are strictly increasing, at least a millisecond
// apart, across restarts, Flush and Silence too: a new stream never starts
// before the previous stream's output ends (its priming frame goes right
// after it; input before that is cut as overlap), nor before zero, and a
// stream that starts at zero has no priming frame (there is no room for it:
// it would share the first frame's timestamp).
//
// Concealment: a hole in the input (a lost RTP packet shows as a gap in the
// frames' PTS, as does a payload the decoder rejected) is filled in the
// spirit of ITU-T G.711 Appendix I, for G.711 and Opus alike: the last
// pitch period before the hole is repeated, at full level for 10 ms, then
// fading by 20 % per 10 ms; from 60 ms on the hole is silence. Where the
// input resumes, the repetition is cross-faded into it over 4 ms. A lost 20
// ms packet of voice or tone is thus bridged without a click or a drop-out,
// and a long hole still ends in silence. The timeline is unchanged: a hole
// is filled with exactly as many samples as silence would have. pion/opus
// offers no decoding of a following packet's in-band FEC (LBRR), so that is
// not used. On the no-loss path concealment costs one copy of the input
// into a 60 ms history.
package transcode

import (
	"errors"
	"fmt"
	"time"

	"github.com/pion/opus"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/aac"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/resample"
)

// ErrUnsupported is returned by Write for a codec ToAAC cannot decode
// (Speex: no pure-Go decoder is available).
var ErrUnsupported = errors.New("transcode: unsupported input codec")

// ErrConfig is wrapped by the errors NewToAAC returns for an invalid config.
var ErrConfig = errors.New("transcode: invalid config")

// ErrDecode wraps a payload the codec's decoder rejected. The frame's time
// is treated as lost (concealed if later audio follows).
var ErrDecode = errors.New("transcode: cannot decode payload")

// AACConfig configures ToAAC.
type AACConfig struct {
	// SampleRate of the AAC output: 48000 or 44100 (any AAC rate works).
	// Zero means 48000.
	SampleRate int
	// Channels of the AAC output: 1, or 2 (mono input is duplicated, what
	// Facebook asks for). Zero means 1.
	Channels int
	// Bitrate of the AAC output in bit/s, over all channels. Zero means
	// 64000 (mono duplicated into stereo is coded as mid/side and costs
	// about one channel, so 64000 suits both).
	Bitrate int
	// MaxGap is the longest hole in the input that is filled (concealed,
	// then silence);
	// after a longer one the AAC stream restarts on the new timestamps.
	// Zero means 5 s.
	MaxGap time.Duration
	// Tolerance is how far a frame's PTS may differ from where the samples
	// before it end without being treated as a gap (filled with silence) or
	// an overlap (cut): timestamps derived from arrival times jitter. The
	// output timeline stays within Tolerance of the input's, so jitter of
	// up to ±Tolerance/2 around the stream's start passes untouched. Zero
	// means 10 ms (half a typical packet, so a lost packet is still
	// filled).
	Tolerance time.Duration
}

// ToAAC transcodes one audio stream to AAC. It is not safe for concurrent use:
// one goroutine (the stream's) owns it.
type ToAAC struct {
	cfg AACConfig
	enc *aac.Encoder
	asc []byte
	// The encoder's input: its rate and the source bandwidth it was told
	// (zero: full band), and whether it has been given no samples since it
	// was made or flushed (then it can be swapped for another).
	encMode  encMode
	encFresh bool

	started bool
	t0      time.Duration // timeline position of the stream's first sample
	aus     int64         // access units emitted since t0
	haveEnd bool          // an access unit was emitted (by any stream)
	end     time.Duration // where the last emitted access unit ends
	// Input side.
	inRate   int
	inCh     int
	inPos    time.Duration // timeline position of the next input sample
	inFrac   int64         // input samples since the last re-anchor
	inAnchor time.Duration // timeline position where inFrac counts from
	rs       *resample.Resampler
	opus     *opus.Decoder
	plc      concealer // fills holes in the input (conceal.go)
	mix      Mixer     // adds audio before the encoder (mix.go); nil: none

	pcm, mono, out []int16
	frame          media.Frame
}

// NewToAAC returns a transcoder for cfg.
func NewToAAC(cfg AACConfig) (*ToAAC, error) {
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 48000
	}
	if cfg.Channels == 0 {
		cfg.Channels = 1
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 64000
	}
	if cfg.MaxGap == 0 {
		cfg.MaxGap = 5 * time.Second
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 10 * time.Millisecond
	}
	if cfg.MaxGap < 0 || cfg.Tolerance < 0 {
		return nil, fmt.Errorf("%w: negative MaxGap or Tolerance", ErrConfig)
	}
	t := &ToAAC{cfg: cfg}
	enc, err := t.newEncoder(encMode{inRate: cfg.SampleRate})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	t.enc, t.encMode, t.encFresh, t.asc = enc, encMode{inRate: cfg.SampleRate}, true, enc.AudioSpecificConfig()
	t.frame = media.Frame{Codec: media.CodecAAC, Keyframe: true, ClockRate: uint32(cfg.SampleRate),
		Channels: uint8(cfg.Channels), Duration: t.auDuration()}
	return t, nil
}

// AudioSpecificConfig returns the AAC AudioSpecificConfig of the output.
func (t *ToAAC) AudioSpecificConfig() []byte { return append([]byte(nil), t.asc...) }

// Delay is the AAC encoder's delay (one frame). Frames are stamped with the
// PTS of the audio they decode to, so the first frame of a stream (the
// encoder's priming, which decodes to silence) is stamped Delay before the
// stream's first input, or zero if that would be negative. Latency (how
// much input must arrive before a frame comes out) is larger: about two AAC
// frames (the encoder holds one block of look-ahead) plus the resampler's
// half filter; it does not shift PTS.
func (t *ToAAC) Delay() time.Duration { return t.enc.Delay() }

func (t *ToAAC) auDuration() time.Duration {
	return time.Duration(aac.FrameSamples) * time.Second / time.Duration(t.cfg.SampleRate)
}

// Write transcodes one input audio frame (PCMA, PCMU or Opus, on the call's
// timeline) and calls emit for each AAC frame completed. emit is called
// synchronously; the Frame it gets is reused after emit returns (copy the
// struct to keep it), its Payload is newly allocated and may be retained.
// A frame that cannot be decoded returns an error wrapping ErrDecode or
// ErrUnsupported; the transcoder stays usable.
func (t *ToAAC) Write(f *media.Frame, emit func(*media.Frame)) error {
	switch f.Codec {
	case media.CodecPCMA, media.CodecPCMU, media.CodecOpus:
	case media.CodecSpeex:
		return fmt.Errorf("%w: %v", ErrUnsupported, f.Codec)
	default:
		return fmt.Errorf("%w: %v", ErrUnsupported, f.Codec)
	}
	pcm, rate, ch, err := t.decode(f)
	if err != nil {
		return err
	}
	if len(pcm) == 0 {
		return nil
	}
	t.feed(f.PTS, pcm, rate, ch, emit)
	return nil
}

// decode turns a frame's payload into interleaved PCM.
func (t *ToAAC) decode(f *media.Frame) (pcm []int16, rate, ch int, err error) {
	switch f.Codec {
	case media.CodecPCMA, media.CodecPCMU:
		rate = int(f.ClockRate)
		if rate == 0 {
			rate = 8000
		}
		ch = int(f.Channels)
		if ch == 0 {
			ch = 1
		}
		if ch > 2 || rate < 1000 || rate > 384000 {
			return nil, 0, 0, fmt.Errorf("%w: G.711 at %d Hz, %d channels", ErrDecode, rate, ch)
		}
		if f.Codec == media.CodecPCMA {
			t.pcm = g711.DecodeALaw(t.pcm[:0], f.Payload)
		} else {
			t.pcm = g711.DecodeULaw(t.pcm[:0], f.Payload)
		}
		return t.pcm[:len(t.pcm)/ch*ch], rate, ch, nil
	default: // Opus
		if t.opus == nil {
			d, err := opus.NewDecoderWithOutput(48000, t.cfg.Channels)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("%w: %w", ErrDecode, err)
			}
			t.opus = &d
		}
		const maxOpus = 5760 // 120 ms at 48 kHz
		if cap(t.pcm) < maxOpus*2 {
			t.pcm = make([]int16, maxOpus*2)
		}
		buf := t.pcm[:maxOpus*t.cfg.Channels]
		n, err := t.decodeOpus(f.Payload, buf)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%w: opus: %w", ErrDecode, err)
		}
		return buf[:n*t.cfg.Channels], 48000, t.cfg.Channels, nil
	}
}

// decodeOpus calls the third-party decoder on network input; a panic in it
// becomes an error (and a fresh decoder) instead of taking the call down.
func (t *ToAAC) decodeOpus(payload []byte, out []int16) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			t.opus = nil
			n, err = 0, fmt.Errorf("decoder panic: %v", r)
		}
	}()
	if len(payload) == 0 {
		return 0, errors.New("empty payload")
	}
	return t.opus.DecodeToInt16(payload, out)
}

// encMode is what an encoder takes: input at inRate (the output rate, or
// a half or quarter of it), from a source band-limited to bw Hz (zero: full
// band).
type encMode struct{ inRate, bw int }

// encoderFor returns the cheapest encoder input for a source at rate: the
// band-limited fast path of aac.EncoderConfig for sources whose band ends
// well below the output's (G.711 at 8 kHz: 12 kHz input and 4 kHz bandwidth
// for a 48 kHz stream), full rate otherwise (Opus, or a mixer set).
func (t *ToAAC) encoderFor(rate int) encMode {
	out := t.cfg.SampleRate
	if 2*rate >= out || t.mix != nil {
		return encMode{inRate: out}
	}
	for _, d := range []int{4, 2} {
		// The decimated input's Nyquist frequency must lie above the
		// resampler's stopband edge (0.54·rate), with room to spare.
		if out%d == 0 && 4*(out/d) >= 5*rate {
			return encMode{inRate: out / d, bw: rate / 2}
		}
	}
	return encMode{inRate: out, bw: rate / 2}
}

// covers reports whether an encoder for m can carry a source that wants w.
func (m encMode) covers(w encMode) bool {
	return m.inRate >= w.inRate && (m.bw == 0 || (w.bw != 0 && m.bw >= w.bw))
}

func (t *ToAAC) newEncoder(m encMode) (*aac.Encoder, error) {
	return aac.NewEncoder(aac.EncoderConfig{SampleRate: t.cfg.SampleRate, Channels: t.cfg.Channels,
		Bitrate: t.cfg.Bitrate, InputRate: m.inRate, Bandwidth: m.bw})
}

// feed places decoded PCM at pts on the timeline: gaps become silence,
// overlaps are cut, a format change flushes the resampler, a long gap
// restarts the stream, and so does a source wider than the band-limited
// encoder the stream started with (G.711, then Opus).
func (t *ToAAC) feed(pts time.Duration, pcm []int16, rate, ch int, emit func(*media.Frame)) {
	t.widen(pts, emit)
	if t.started && !t.encFresh && !t.encMode.covers(t.encoderFor(rate)) {
		t.restart(pts, emit)
	}
	if !t.started {
		t.start(pts)
	}
	if t.inRate != rate || t.inCh != ch || t.rs == nil {
		t.setInput(rate, ch, emit)
	}
	gap := pts - t.inPos
	switch {
	case gap > t.cfg.MaxGap:
		t.restart(pts, emit)
		t.setInput(rate, ch, emit)
	case gap > t.cfg.Tolerance:
		t.conceal(int(int64(gap)*int64(rate)/int64(time.Second)), emit)
	case gap < -t.cfg.Tolerance:
		skip := int(int64(-gap) * int64(rate) / int64(time.Second))
		if skip*ch >= len(pcm) {
			return
		}
		pcm = pcm[skip*ch:]
	}
	t.plc.recover(pcm) // after a concealed hole: overlap-add into the input
	t.plc.record(pcm)
	t.push(pcm, emit)
}

// conceal fills a hole of n samples per channel: the last pitch period
// repeated and faded out (see conceal.go), then silence.
func (t *ToAAC) conceal(n int, emit func(*media.Frame)) {
	if t.plc.begin() {
		var buf [960 * 2]int16
		for n > 0 {
			k := min(n, 960)
			w := t.plc.fill(buf[:k*t.inCh])
			t.push(buf[:w*t.inCh], emit)
			n -= w
			if w < k {
				break // faded out
			}
		}
	}
	t.silence(n, emit)
}

// Silence produces silent AAC up to until on the timeline (for calls
// without audio, or to keep the audio track going through a long pause).
// A stream that has not started starts at zero.
func (t *ToAAC) Silence(until time.Duration, emit func(*media.Frame)) {
	t.widen(t.inPos, emit)
	if !t.started {
		t.start(0)
	}
	if t.rs == nil {
		// As if from G.711: the cheapest encoder input. Audio that needs
		// more bandwidth restarts the stream (see feed).
		t.setInput(8000, 1, emit)
	}
	if gap := until - t.inPos; gap > 0 {
		t.silence(int(int64(gap)*int64(t.inRate)/int64(time.Second)), emit)
		t.plc.reset(t.inRate, t.inCh) // audio after this pause is not continued from before it
	}
}

// Flush emits the AAC frames still held by the resampler and the encoder
// (the audio up to the last input) and ends the stream; the next Write
// starts a new one.
func (t *ToAAC) Flush(emit func(*media.Frame)) {
	if !t.started {
		return
	}
	if t.rs != nil {
		t.out = t.rs.Flush(t.out[:0])
		t.encode(t.out, emit)
	}
	aus, _ := t.enc.Flush()
	t.emit(aus, emit)
	t.started, t.rs, t.aus, t.encFresh = false, nil, 0, true
}

// start begins a stream at pts, or later: never before zero, and never
// before the end of the previous stream's output plus one frame, so that
// the new stream's priming frame lands after everything emitted before
// (input before the new start is cut like any overlap).
func (t *ToAAC) start(pts time.Duration) {
	pts = max(pts, 0)
	if t.haveEnd {
		pts = max(pts, t.end+t.auDuration())
	}
	t.started = true
	t.t0, t.inPos, t.inAnchor, t.inFrac, t.aus = pts, pts, pts, 0, 0
}

func (t *ToAAC) restart(pts time.Duration, emit func(*media.Frame)) {
	t.Flush(emit)
	t.start(pts)
}

// setInput switches to a new input format: what the old resampler holds is
// pushed out first so the output stays continuous. An encoder that has not
// been given samples yet is swapped for the cheapest one the source allows.
func (t *ToAAC) setInput(rate, ch int, emit func(*media.Frame)) {
	if t.rs != nil {
		t.out = t.rs.Flush(t.out[:0])
		t.encode(t.out, emit)
	}
	if want := t.encoderFor(rate); t.encFresh && want != t.encMode {
		if enc, err := t.newEncoder(want); err == nil {
			t.enc, t.encMode = enc, want
		}
	}
	rch := 1
	if ch == 2 && t.cfg.Channels == 2 {
		rch = 2
	}
	encRate := t.encMode.inRate
	rs, err := resample.New(resample.Config{InRate: rate, OutRate: encRate, Channels: rch})
	if err != nil {
		// Rates were validated by decode; fall back to pass-through
		// timing by treating the input as already at the encoder's rate.
		rs, _ = resample.New(resample.Config{InRate: encRate, OutRate: encRate, Channels: rch})
		rate = encRate
	}
	t.rs, t.inRate, t.inCh = rs, rate, ch
	t.inAnchor, t.inFrac = t.inPos, 0
	t.plc.reset(rate, ch)
}

// silence pushes n samples per channel of zeros at the input rate.
func (t *ToAAC) silence(n int, emit func(*media.Frame)) {
	if n <= 0 {
		return
	}
	const chunk = 960
	var zeros [chunk * 2]int16
	for n > 0 {
		k := min(n, chunk)
		t.push(zeros[:k*t.inCh], emit)
		n -= k
	}
}

// push resamples interleaved input PCM (t.inCh channels) and encodes it.
func (t *ToAAC) push(pcm []int16, emit func(*media.Frame)) {
	frames := len(pcm) / t.inCh
	t.inFrac += int64(frames)
	t.inPos = t.inAnchor + time.Duration(t.inFrac*int64(time.Second)/int64(t.inRate))
	in := pcm
	switch {
	case t.inCh == 2 && t.cfg.Channels == 1: // downmix
		t.mono = t.mono[:0]
		for i := 0; i+1 < len(pcm); i += 2 {
			t.mono = append(t.mono, int16((int32(pcm[i])+int32(pcm[i+1]))>>1))
		}
		in = t.mono
	}
	t.out = t.rs.Process(t.out[:0], in)
	t.encode(t.out, emit)
}

// encode feeds resampled PCM (1 channel, or the output's 2) to the encoder.
func (t *ToAAC) encode(pcm []int16, emit func(*media.Frame)) {
	if len(pcm) == 0 {
		return
	}
	if t.mix != nil && t.encMode.bw == 0 {
		ch := 1
		if t.cfg.Channels == 2 && t.inCh == 2 {
			ch = 2
		}
		t.mix.Mix(pcm, t.encMode.inRate, ch)
	}
	if t.cfg.Channels == 2 && !(t.inCh == 2) {
		// Duplicate mono into both channels.
		t.mono = t.mono[:0]
		for _, v := range pcm {
			t.mono = append(t.mono, v, v)
		}
		pcm = t.mono
	}
	t.encFresh = false
	aus, _ := t.enc.Encode(pcm) // never fails on whole frames
	t.emit(aus, emit)
}

// emit stamps and delivers access units: AU k decodes to the output samples
// [(k−1)·1024, k·1024) after the stream's start. Output PTS are strictly
// increasing across streams (see start): the priming frame goes Delay
// before the stream's start, or at zero, or at the end of the previous
// stream's output, and is left out when less than a millisecond (the
// resolution of RTMP and FLV) remains before the first sample (a stream
// starting at zero).
func (t *ToAAC) emit(aus [][]byte, emit func(*media.Frame)) {
	d := t.auDuration()
	for _, au := range aus {
		k := t.aus
		t.aus++
		var pts time.Duration
		if k == 0 {
			floor := time.Duration(0)
			if t.haveEnd {
				floor = t.end
			}
			pts = max(t.t0-d, floor)
			if t.t0-pts < time.Millisecond {
				continue // no room for the priming frame
			}
		} else {
			pts = t.t0 + time.Duration((k-1)*aac.FrameSamples*int64(time.Second)/int64(t.cfg.SampleRate))
		}
		t.haveEnd, t.end = true, pts+d
		t.frame.PTS, t.frame.DTS, t.frame.Payload = pts, pts, au
		emit(&t.frame)
	}
}
