package sound

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/sipstream/sipstream/media/g711"
)

// WAV format tags (Microsoft's mmreg.h).
const (
	wavPCM        = 0x0001
	wavFloat      = 0x0003
	wavALaw       = 0x0006
	wavMuLaw      = 0x0007
	wavExtensible = 0xfffe
)

// wavFmt is the part of a "fmt " chunk the decoder uses.
type wavFmt struct {
	tag      uint16
	channels int
	rate     int
	bits     int
}

// decodeWAV decodes a RIFF WAVE file. This is a small parser of our own:
// github.com/go-audio/wav decodes every 8-bit file as unsigned PCM, so it
// reads A-law and µ-law WAV (format tags 6 and 7, what telephony sound
// files are) as noise, and it needs an io.ReadSeeker.
//
// Specification: Microsoft "Multimedia Programming Interface and Data
// Specifications 1.0" (RIFF, WAVE, fmt and data chunks),
// WAVE_FORMAT_EXTENSIBLE (mmreg.h, ksmedia.h).
func decodeWAV(b []byte, o options) (*Clip, error) {
	if len(b) < 12 {
		return nil, fmt.Errorf("%w: WAV: short RIFF header", ErrMalformed)
	}
	var (
		f       wavFmt
		haveFmt bool
		data    []byte
		found   bool
	)
	p := b[12:]
	for len(p) >= 8 && !found {
		id := string(p[:4])
		size := uint64(binary.LittleEndian.Uint32(p[4:8]))
		p = p[8:]
		body := p
		if size <= uint64(len(p)) {
			body = p[:size]
		} else if id != "data" {
			return nil, fmt.Errorf("%w: WAV: %q chunk of %d bytes runs past the end", ErrMalformed, id, size)
		}
		// A data chunk longer than the file (a recording cut short, or a
		// streaming writer's 0xFFFFFFFF) is read up to the end.
		switch id {
		case "fmt ":
			var err error
			if f, err = parseWAVFmt(body); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("%w: WAV: data chunk before fmt chunk", ErrMalformed)
			}
			data, found = body, true
		}
		adv := uint64(len(body))
		if size%2 == 1 && adv < uint64(len(p)) {
			adv++ // chunks are padded to an even size
		}
		p = p[adv:]
	}
	if !haveFmt {
		return nil, fmt.Errorf("%w: WAV: no fmt chunk", ErrMalformed)
	}
	if !found {
		return nil, fmt.Errorf("%w: WAV: no data chunk", ErrMalformed)
	}
	width := f.bits / 8
	frame := width * f.channels
	frames := len(data) / frame
	if frames > o.maxSamples(f.rate) {
		return nil, fmt.Errorf("%w: WAV of %.1f s, the limit is %v", ErrTooLong, float64(frames)/float64(f.rate), o.maxDuration)
	}
	out := make([]int16, frames)
	for i := range out {
		fr := data[i*frame : i*frame+frame]
		var sum int32
		for c := 0; c < f.channels; c++ {
			sum += int32(wavSample(f, fr[c*width:c*width+width]))
		}
		out[i] = int16(sum / int32(f.channels))
	}
	return &Clip{Format: FormatWAV, SampleRate: f.rate, Samples: out}, nil
}

// parseWAVFmt reads and checks a fmt chunk.
func parseWAVFmt(b []byte) (wavFmt, error) {
	if len(b) < 16 {
		return wavFmt{}, fmt.Errorf("%w: WAV: fmt chunk of %d bytes", ErrMalformed, len(b))
	}
	f := wavFmt{
		tag:      binary.LittleEndian.Uint16(b[0:2]),
		channels: int(binary.LittleEndian.Uint16(b[2:4])),
		rate:     int(binary.LittleEndian.Uint32(b[4:8])),
		bits:     int(binary.LittleEndian.Uint16(b[14:16])),
	}
	if f.tag == wavExtensible {
		// cbSize, wValidBitsPerSample, dwChannelMask, then the
		// SubFormat GUID whose first two bytes are the format tag.
		if len(b) < 40 {
			return wavFmt{}, fmt.Errorf("%w: WAV: WAVE_FORMAT_EXTENSIBLE fmt chunk of %d bytes", ErrMalformed, len(b))
		}
		f.tag = binary.LittleEndian.Uint16(b[24:26])
	}
	if f.channels < 1 || f.channels > 8 {
		return wavFmt{}, fmt.Errorf("%w: WAV with %d channels", ErrUnsupportedFormat, f.channels)
	}
	if err := checkFileRate(f.rate); err != nil {
		return wavFmt{}, fmt.Errorf("%w: WAV: %w", ErrUnsupportedFormat, err)
	}
	ok := false
	switch f.tag {
	case wavPCM:
		ok = f.bits == 8 || f.bits == 16 || f.bits == 24 || f.bits == 32
	case wavFloat:
		ok = f.bits == 32 || f.bits == 64
	case wavALaw, wavMuLaw:
		ok = f.bits == 8
	default:
		return wavFmt{}, fmt.Errorf("%w: WAV format tag 0x%04x (PCM, IEEE float, A-law and µ-law are decoded)", ErrUnsupportedFormat, f.tag)
	}
	if !ok {
		return wavFmt{}, fmt.Errorf("%w: WAV format tag %d with %d bits per sample", ErrUnsupportedFormat, f.tag, f.bits)
	}
	return f, nil
}

// wavSample converts one sample of one channel to 16 bits.
func wavSample(f wavFmt, s []byte) int16 {
	switch f.tag {
	case wavALaw:
		return g711.ALawToLinear(s[0])
	case wavMuLaw:
		return g711.ULawToLinear(s[0])
	case wavFloat:
		var v float64
		if f.bits == 32 {
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(s)))
		} else {
			v = math.Float64frombits(binary.LittleEndian.Uint64(s))
		}
		return floatToInt16(v)
	}
	switch f.bits {
	case 8:
		return int16(int(s[0])-128) << 8 // 8-bit PCM is unsigned
	case 16:
		return int16(binary.LittleEndian.Uint16(s))
	case 24:
		return int16(uint16(s[1]) | uint16(s[2])<<8)
	default: // 32
		return int16(binary.LittleEndian.Uint16(s[2:]))
	}
}

// floatToInt16 scales a sample of full scale ±1 to 16 bits, saturating
// (NaN is silence).
func floatToInt16(v float64) int16 {
	switch {
	case v != v:
		return 0
	case v >= 1:
		return math.MaxInt16
	case v <= -1:
		return math.MinInt16
	}
	return int16(math.Round(v * 32767))
}
