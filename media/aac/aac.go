// Package aac is an AAC-LC (MPEG-4 Audio Object Type 2) encoder written in
// pure Go, for republishing SIP call audio where only AAC is accepted (RTMP
// to YouTube, Facebook, Twitch).
//
// The encoder uses long blocks (sine window) and switches to eight short
// blocks (LONG_START, EIGHT_SHORT, LONG_STOP, one window group) around
// attacks that a transient detector finds with one block of look-ahead
// (which adds latency, not delay). Each frame gets a global scalefactor from
// a rate loop that spends a fixed bit budget plus what a bit reservoir saved
// from easier frames; per-band offsets follow the band's level so that the
// power-law quantiser's noise is spread evenly. Noiseless coding uses all
// eleven spectral Huffman codebooks and the scalefactor codebook; mono is a
// single_channel_element, stereo a channel_pair_element with a common window
// and per-band mid/side coding. There is no psychoacoustic model: the
// allocation spreads the quantisation noise evenly over the spectrum, which
// maximises the signal-to-noise ratio for a given bitrate.
//
// Band-limited sources (telephone audio in a 48 kHz stream) take a fast
// path: EncoderConfig.Bandwidth leaves the empty bands uncoded
// (max_sfb), and EncoderConfig.InputRate lets the encoder take its input
// at a quarter (or half) of the sampling rate and compute the MDCT at that
// rate, which for a band-limited signal gives the same lower spectrum as
// the full-size transform (see makeWindows).
//
// Output is raw access units (what FLV, RTMP and MP4 carry) plus the 2-byte
// AudioSpecificConfig; ADTS wraps access units for .aac files.
//
// Specification: ISO/IEC 14496-3:2009 subpart 4 (General Audio coding):
// §4.4.2 raw_data_block, single_channel_element, channel_pair_element,
// ics_info, section_data, scale_factor_data, spectral_data; §4.6.2 and
// §4.6.3 (scalefactors, noiseless coding), §4.6.11 (filterbank), Annex 4.A
// (Huffman tables); §1.6.2.1 AudioSpecificConfig; ISO/IEC 13818-7 §6.2 and
// 14496-3 §1.A.2 (ADTS).
package aac

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// FrameSamples is the number of samples per channel in one access unit.
const FrameSamples = 1024

// ErrConfig is wrapped by the errors NewEncoder returns for an invalid config.
var ErrConfig = errors.New("aac: invalid encoder config")

// EncoderConfig configures an Encoder.
type EncoderConfig struct {
	// SampleRate in Hz: one of the AAC sampling frequencies 8000, 11025,
	// 12000, 16000, 22050, 24000, 32000, 44100, 48000 (64000, 88200 and
	// 96000 work too). It must be set.
	SampleRate int
	// Channels is 1 (mono) or 2 (stereo, interleaved input). Zero means 1.
	Channels int
	// LongOnly disables short windows: every frame uses long blocks even
	// across attacks (slightly fewer bits of side information, audible
	// pre-echo on sharp transients). False means short windows are used
	// where a transient justifies them.
	LongOnly bool
	// Bitrate is the target average bitrate in bit/s over all channels.
	// Zero means 64000 per channel, or the most the format can carry at low
	// sample rates (6144 bits per channel per frame).
	Bitrate int
	// InputRate is the sample rate of the PCM given to Encode: SampleRate,
	// SampleRate/2 or SampleRate/4 (12000 for a 48000 Hz stream). Below
	// SampleRate the encoder computes only the part of the spectrum the
	// input can hold (below InputRate/2; the bands above are not coded)
	// from InputRate samples, at about 1/2 or 1/4 of the transform work:
	// the fast path for band-limited sources such as telephone audio,
	// resampled to 12 kHz for a 48 kHz stream. The input must then be
	// band-limited to at most about 0.45·InputRate (what a resampler's
	// anti-image filter leaves), and input sample j stands for the centre
	// of the output samples [D·j, D·j+D), D = SampleRate/InputRate: the
	// decoded audio comes out (D−1)/2 output samples (31 µs at 48 kHz,
	// D = 4) later than with full-rate input sampled on the output's grid.
	// Zero means SampleRate.
	InputRate int
	// Bandwidth is the highest audio frequency of the source, in Hz (4000
	// for G.711): the bands above it are not coded and cost neither bits
	// nor work. The coded bandwidth is the lowest of Bandwidth, the one
	// chosen from the bitrate (6 kHz at 24 kbit/s per channel and below,
	// 16 kHz at 64 kbit/s, 20 kHz at 96) and InputRate/2. Zero means no
	// limit of its own.
	Bandwidth int
}

// Encoder turns 16-bit PCM into AAC-LC access units. It is not safe for
// concurrent use.
type Encoder struct {
	cfg       EncoderConfig
	sfIdx     int
	swb       []uint16 // band offsets of the current frame (long, or short interleaved)
	nb        int      // bands coded in the current frame (bandwidth limit)
	swbLong   []uint16
	nbLong    int
	shortOff  []uint16 // short-window band offsets (128 lines)
	swbShort8 []uint16 // the same ×8: one group of eight windows, interleaved
	nbShort   int
	// Time-domain sizes at the input rate: dec = SampleRate/InputRate, blk
	// = FrameSamples/dec input samples per block, shortN = shortSamples/dec
	// per short window, which starts at shortSt = shortStart/dec, and the
	// transient detector's segments of seg = transientSeg/dec samples.
	dec, blk, shortN, shortSt, seg int

	win       *windows
	mdct      *mdct
	mdctShort *mdct

	seq          int  // window sequence of the current (last coded) frame
	shortPending bool // the next frame must be EIGHT_SHORT

	ch   []*channel
	fill int     // samples per channel in the look-ahead block
	part []int16 // leftover samples of an incomplete interleaved frame

	meanBits, reservoir, maxReservoir int
	lastG                             int      // global scalefactor of the last frame
	slope                             float64  // bits saved per global scalefactor step, last seen (0: unknown)
	evalG                             int      // global scalefactor of the quantisation in place
	keptG                             int      // global scalefactor whose choices keep saved (−1: none)
	msUsed                            [64]bool // per band: coded as mid/side
	msBands                           int      // number of bands with msUsed
	haveBlock                         bool     // a block of input sits in the window (hist[1024:])

	w   bitWriter
	z   []float64
	asc [2]byte
}

// channel is the per-channel state and per-frame work space.
type channel struct {
	hist    [2 * FrameSamples]float64                // the window of the next frame: two blocks of input (2·blk used)
	ahead   [FrameSamples]float64                    // the block after it (look-ahead for window switching; blk used)
	segE    [3 * FrameSamples / transientSeg]float64 // transient detector: energy per segment of hist+ahead
	spec    [FrameSamples]float64
	xp      [FrameSamples]float64 // |spec|^(3/4)
	q       [FrameSamples]int32
	bandMax [64]float64 // max xp per band
	xpReady [64]bool    // xp holds the band's values
	bandRMS [64]float64 // RMS of each band's lines
	sfOff   [64]int     // scalefactor offset of each band from the global one
	sfMin   [64]int     // smallest scalefactor that keeps |q| ≤ 8191
	sf      [64]int
	cb      [64]int
	maxSfb  int
	// sf, cb and maxSfb of the finest scalefactor found to fit so far in
	// the rate loop.
	keepSf, keepCb [64]int
	keepMaxSfb     int
}

// NewEncoder returns an encoder for cfg.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if cfg.Channels == 0 {
		cfg.Channels = 1
	}
	if cfg.Channels != 1 && cfg.Channels != 2 {
		return nil, fmt.Errorf("%w: %d channels (1 or 2 supported)", ErrConfig, cfg.Channels)
	}
	idx := -1
	for i, r := range sampleRates {
		if r.rate == cfg.SampleRate {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: sample rate %d is not an AAC sampling frequency", ErrConfig, cfg.SampleRate)
	}
	if cfg.InputRate == 0 {
		cfg.InputRate = cfg.SampleRate
	}
	dec := 0
	for _, d := range []int{1, 2, 4} {
		if cfg.InputRate*d == cfg.SampleRate {
			dec = d
		}
	}
	if dec == 0 {
		return nil, fmt.Errorf("%w: input rate %d (%d, %d/2 or %d/4)", ErrConfig, cfg.InputRate, cfg.SampleRate, cfg.SampleRate, cfg.SampleRate)
	}
	if cfg.Bandwidth < 0 {
		return nil, fmt.Errorf("%w: negative bandwidth %d", ErrConfig, cfg.Bandwidth)
	}
	maxRate := 6144 * cfg.Channels * cfg.SampleRate / FrameSamples
	if cfg.Bitrate == 0 {
		cfg.Bitrate = min(64000*cfg.Channels, maxRate)
	}
	if cfg.Bitrate < 8000 || cfg.Bitrate > maxRate {
		return nil, fmt.Errorf("%w: bitrate %d (8000..%d at %d Hz)", ErrConfig, cfg.Bitrate, maxRate, cfg.SampleRate)
	}
	e := &Encoder{cfg: cfg, sfIdx: idx, swbLong: sampleRates[idx].swb, dec: dec, blk: FrameSamples / dec,
		shortN: shortSamples / dec, shortSt: shortStart / dec, seg: transientSeg / dec,
		mdct: newMDCT(FrameSamples / dec), mdctShort: newMDCT(shortSamples / dec),
		z: make([]float64, 2*FrameSamples/dec), win: makeWindows(dec), shortOff: shortBands(idx)}
	e.swbShort8 = make([]uint16, len(e.shortOff))
	for i, o := range e.shortOff {
		e.swbShort8[i] = 8 * o
	}
	for range cfg.Channels {
		e.ch = append(e.ch, &channel{})
	}
	e.meanBits = int(int64(cfg.Bitrate) * FrameSamples / int64(cfg.SampleRate))
	e.maxReservoir = 6144*cfg.Channels - e.meanBits
	if e.maxReservoir < 0 {
		e.maxReservoir = 0
	}
	// Bandwidth: the lines above the cutoff are not coded.
	cutoff := bandwidth(cfg.Bitrate/cfg.Channels, cfg.SampleRate)
	if cfg.Bandwidth > 0 {
		cutoff = min(cutoff, cfg.Bandwidth)
	}
	cutoff = min(cutoff, cfg.InputRate/2)
	line := cutoff * 2 * FrameSamples / cfg.SampleRate
	e.nbLong = bandsBelow(e.swbLong, line)
	e.nbShort = bandsBelow(e.swbShort8, line)
	e.swb, e.nb = e.swbLong, e.nbLong
	// AudioSpecificConfig (§1.6.2.1): AAC LC, the rate's
	// samplingFrequencyIndex, channel configuration 1 or 2 (the channel
	// count), GASpecificConfig all zero: two bytes for every rate of
	// sampleRates.
	asc, err := mpeg4audio.AudioSpecificConfig{
		Type:          mpeg4audio.ObjectTypeAACLC,
		SampleRate:    cfg.SampleRate,
		ChannelConfig: uint8(cfg.Channels),
	}.Marshal()
	if err != nil || len(asc) != len(e.asc) {
		return nil, fmt.Errorf("%w: no 2-byte AudioSpecificConfig for %d Hz, %d channels", ErrConfig, cfg.SampleRate, cfg.Channels)
	}
	copy(e.asc[:], asc)
	return e, nil
}

// bandsBelow returns the number of bands of off that start below line.
func bandsBelow(off []uint16, line int) int {
	for b := 0; b+1 < len(off); b++ {
		if int(off[b]) >= line {
			return b
		}
	}
	return len(off) - 1
}

// bandwidth returns the audio bandwidth coded for a per-channel bitrate.
func bandwidth(bpc, rate int) int {
	var bw int
	switch {
	case bpc >= 96000:
		bw = 20000
	case bpc >= 64000:
		bw = 16000
	case bpc >= 48000:
		bw = 14000
	case bpc >= 32000:
		bw = 11000
	case bpc >= 24000:
		bw = 8000
	default:
		bw = 6000
	}
	return min(bw, rate/2)
}

// AudioSpecificConfig returns the 2-byte MPEG-4 AudioSpecificConfig that
// describes the stream (what FLV's AAC sequence header and MP4's esds carry).
func (e *Encoder) AudioSpecificConfig() []byte { return []byte{e.asc[0], e.asc[1]} }

// SampleRate returns the configured sample rate.
func (e *Encoder) SampleRate() int { return e.cfg.SampleRate }

// Channels returns the configured channel count.
func (e *Encoder) Channels() int { return e.cfg.Channels }

// Delay is how much later than its input the decoded audio comes out: one
// frame, because every access unit's second half overlaps the next one. The
// first access unit decodes to silence (the encoder's priming); access unit
// k decodes to input samples [(k−1)·1024, k·1024). (Encode returns access
// unit k once input sample (k+2)·1024 − 1 is in: one more block is held as
// look-ahead for window switching; this adds latency, not delay.)
func (e *Encoder) Delay() time.Duration {
	return time.Duration(FrameSamples) * time.Second / time.Duration(e.cfg.SampleRate)
}

// Encode consumes interleaved 16-bit samples at InputRate, of any length (an incomplete
// frame is kept for the next call) and returns the access units completed,
// each a newly allocated raw AAC frame without header.
func (e *Encoder) Encode(pcm []int16) ([][]byte, error) {
	var out [][]byte
	nch := e.cfg.Channels
	if len(e.part) > 0 {
		for len(e.part) < nch && len(pcm) > 0 {
			e.part = append(e.part, pcm[0])
			pcm = pcm[1:]
		}
		if len(e.part) < nch {
			return nil, nil
		}
		out = e.push(out, e.part)
		e.part = e.part[:0]
	}
	whole := len(pcm) / nch * nch
	out = e.push(out, pcm[:whole])
	e.part = append(e.part, pcm[whole:]...)
	return out, nil
}

// push adds whole interleaved sample frames to the current frame and encodes
// every frame that fills up.
func (e *Encoder) push(out [][]byte, pcm []int16) [][]byte {
	nch := e.cfg.Channels
	for len(pcm) > 0 {
		n := min(len(pcm)/nch, e.blk-e.fill)
		for c, ch := range e.ch {
			dst := ch.ahead[e.fill : e.fill+n]
			for i := range dst {
				dst[i] = float64(pcm[i*nch+c])
			}
		}
		e.fill += n
		pcm = pcm[n*nch:]
		if e.fill == e.blk {
			out = e.blockDone(out)
		}
	}
	return out
}

// blockDone takes a complete look-ahead block: the frame whose window ends
// with the block before it is encoded (the look-ahead decides whether the
// next frame needs short windows), then the block moves into the window.
func (e *Encoder) blockDone(out [][]byte) [][]byte {
	for _, ch := range e.ch {
		ch.segmentEnergies(e.blk, e.seg)
	}
	if e.haveBlock {
		out = append(out, e.encodeFrame())
	}
	for _, ch := range e.ch {
		copy(ch.hist[:e.blk], ch.hist[e.blk:2*e.blk])
		copy(ch.hist[e.blk:2*e.blk], ch.ahead[:e.blk])
		copy(ch.segE[:], ch.segE[FrameSamples/transientSeg:])
	}
	e.haveBlock = true
	e.fill = 0
	return out
}

// Flush encodes what is buffered, padded with silence, plus the frames that
// release the overlap of the last samples, and resets the encoder: the next
// Encode starts a new stream (with a new priming frame).
func (e *Encoder) Flush() ([][]byte, error) {
	var out [][]byte
	e.part = e.part[:0]
	if e.fill > 0 {
		for _, ch := range e.ch {
			clear(ch.ahead[e.fill:])
		}
		out = e.blockDone(out)
	}
	if e.haveBlock {
		// Two blocks of silence: one encodes the frame ending with the last
		// block, the next the frame that starts with it.
		for range 2 {
			for _, ch := range e.ch {
				clear(ch.ahead[:])
			}
			out = e.blockDone(out)
		}
	}
	for _, ch := range e.ch {
		clear(ch.hist[:])
		clear(ch.segE[:])
	}
	e.fill, e.reservoir, e.haveBlock, e.lastG, e.slope = 0, 0, false, 0, 0
	e.seq, e.shortPending = onlyLong, false
	return out, nil
}
