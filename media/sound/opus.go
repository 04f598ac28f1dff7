package sound

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/pion/opus"
)

// opusRate is the rate Opus in Ogg is decoded at (RFC 7845 §4: granule
// positions count 48 kHz samples whatever the input rate was).
const opusRate = 48000

// opusMaxFrame is the most samples per channel one Opus packet decodes to
// (120 ms at 48 kHz, RFC 6716 §3.2.5).
const opusMaxFrame = 5760

// opusHead is an Opus identification header (RFC 7845 §5.1).
type opusHead struct {
	channels int
	preSkip  int
	gain     int16 // Q7.8 dB
}

func parseOpusHead(p []byte) (opusHead, error) {
	if len(p) < 19 || !bytes.HasPrefix(p, []byte("OpusHead")) {
		return opusHead{}, fmt.Errorf("%w: Ogg Opus: identification header missing or short", ErrMalformed)
	}
	if p[8]>>4 != 0 {
		return opusHead{}, fmt.Errorf("%w: Ogg Opus version %d", ErrUnsupportedFormat, p[8])
	}
	h := opusHead{
		channels: int(p[9]),
		preSkip:  int(binary.LittleEndian.Uint16(p[10:12])),
		gain:     int16(binary.LittleEndian.Uint16(p[16:18])),
	}
	family := p[18]
	switch {
	case h.channels == 0:
		return opusHead{}, fmt.Errorf("%w: Ogg Opus with 0 channels", ErrMalformed)
	case family == 0 && h.channels > 2:
		return opusHead{}, fmt.Errorf("%w: Ogg Opus mapping family 0 with %d channels", ErrMalformed, h.channels)
	case family != 0:
		// One stream of at most two channels can still be decoded; a
		// multistream (surround) file cannot with pion/opus.
		if len(p) < 21+h.channels {
			return opusHead{}, fmt.Errorf("%w: Ogg Opus: short channel mapping table", ErrMalformed)
		}
		if p[19] != 1 || h.channels > 2 {
			return opusHead{}, fmt.Errorf("%w: multistream Ogg Opus (%d streams, %d channels)", ErrUnsupportedFormat, p[19], h.channels)
		}
	}
	return h, nil
}

// decodeOggOpus decodes a single-stream Ogg Opus file with pion/opus at
// 48 kHz, honouring pre-skip, output gain and end trimming (RFC 7845
// §4.2, §4.5, §5.1).
func decodeOggOpus(b []byte, o options) (c *Clip, err error) {
	defer func() {
		// pion/opus is fed hostile input: a panic in it is a malformed
		// file, not a crash.
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%w: Ogg Opus: decoder failed: %v", ErrMalformed, r)
		}
	}()
	var (
		head   opusHead
		dec    opus.Decoder
		n      int // packets seen
		pcm    []int16
		out    []int16
		skip   int // pre-skip samples still to drop
		total  int // samples decoded, pre-skip included
		limit  = o.maxSamples(opusRate)
		errBig = errors.New("too long")
	)
	last, err := oggPackets(b, func(pkt []byte) error {
		n++
		switch n {
		case 1:
			var err error
			if head, err = parseOpusHead(pkt); err != nil {
				return err
			}
			if dec, err = opus.NewDecoderWithOutput(opusRate, head.channels); err != nil {
				return fmt.Errorf("%w: Ogg Opus: %v", ErrMalformed, err)
			}
			skip = head.preSkip
			pcm = make([]int16, opusMaxFrame*head.channels)
			return nil
		case 2:
			if !bytes.HasPrefix(pkt, []byte("OpusTags")) {
				return fmt.Errorf("%w: Ogg Opus: comment header missing", ErrMalformed)
			}
			return nil
		}
		if len(pkt) == 0 {
			return nil // an empty packet carries nothing (RFC 7845 §3)
		}
		k, err := dec.DecodeToInt16(pkt, pcm)
		if err != nil {
			return fmt.Errorf("%w: Ogg Opus packet %d: %v", ErrMalformed, n-2, err)
		}
		if k < 0 || k > opusMaxFrame {
			return fmt.Errorf("%w: Ogg Opus packet %d decoded to %d samples", ErrMalformed, n-2, k)
		}
		total += k
		if total-head.preSkip > limit {
			return errBig
		}
		frames := pcm[:k*head.channels]
		if skip > 0 {
			d := min(skip, k)
			skip -= d
			frames = frames[d*head.channels:]
		}
		out = downmix(out, frames, head.channels)
		return nil
	})
	if errors.Is(err, errBig) {
		return nil, fmt.Errorf("%w: Ogg Opus longer than %v", ErrTooLong, o.maxDuration)
	}
	if err != nil {
		return nil, err
	}
	if n < 2 {
		return nil, fmt.Errorf("%w: Ogg Opus without headers", ErrMalformed)
	}
	// End trimming: the last page's granule position is the number of
	// samples, pre-skip included, that the stream really holds.
	if last.flags&oggEOS != 0 && last.granule != ^uint64(0) {
		if g := last.granule; g >= uint64(head.preSkip) && g-uint64(head.preSkip) < uint64(len(out)) {
			out = out[:g-uint64(head.preSkip)]
		}
	}
	if head.gain != 0 {
		applyGain(out, float64(head.gain)/256)
	}
	return &Clip{Format: FormatOggOpus, SampleRate: opusRate, Samples: out}, nil
}

// applyGain scales s by db decibels, saturating.
func applyGain(s []int16, db float64) {
	g := math.Pow(10, db/20)
	for i, v := range s {
		x := math.Round(float64(v) * g)
		s[i] = int16(max(min(x, math.MaxInt16), math.MinInt16))
	}
}
