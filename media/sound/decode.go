package sound

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Errors. The errors Load and Decode return wrap one of them.
var (
	// ErrUnsupportedFormat: the content is none of the formats this
	// package decodes (WAV with PCM, IEEE float, A-law or µ-law samples;
	// MP3; Ogg Opus), or a variant of one it cannot decode (a WAV
	// encoding other than those, Ogg Vorbis, multistream Opus).
	ErrUnsupportedFormat = errors.New("sound: unsupported format")
	// ErrMalformed: the content claims a supported format but is broken
	// or truncated.
	ErrMalformed = errors.New("sound: malformed file")
	// ErrTooLarge: the file exceeds the byte limit (WithMaxBytes).
	ErrTooLarge = errors.New("sound: file too large")
	// ErrTooLong: the decoded sound exceeds the duration limit
	// (WithMaxDuration).
	ErrTooLong = errors.New("sound: sound too long")
)

// Format is the kind of file a Clip was decoded from.
type Format uint8

// Formats.
const (
	FormatUnknown Format = iota
	// FormatWAV is RIFF WAVE (format tags 1 PCM, 3 IEEE float, 6 A-law,
	// 7 µ-law, and WAVE_FORMAT_EXTENSIBLE of those).
	FormatWAV
	// FormatMP3 is MPEG-1/2/2.5 Layer III, with or without ID3 tags.
	FormatMP3
	// FormatOggOpus is Opus in Ogg (RFC 7845), single stream.
	FormatOggOpus
)

// String returns "wav", "mp3", "ogg-opus" or "unknown".
func (f Format) String() string {
	switch f {
	case FormatWAV:
		return "wav"
	case FormatMP3:
		return "mp3"
	case FormatOggOpus:
		return "ogg-opus"
	}
	return "unknown"
}

// Default limits of Load and Decode.
const (
	// DefaultMaxDuration is the longest sound decoded unless
	// WithMaxDuration says otherwise.
	DefaultMaxDuration = 10 * time.Minute
	// DefaultMaxBytes is the largest file read unless WithMaxBytes says
	// otherwise (10 minutes of 44.1 kHz stereo 16-bit WAV is 106 MB).
	DefaultMaxBytes = 128 << 20
)

// Option changes a limit of Load or Decode.
type Option func(*options)

type options struct {
	maxDuration time.Duration
	maxBytes    int64
}

// WithMaxDuration sets the longest sound accepted: a longer one fails
// with ErrTooLong (decoding stops there; nothing longer is held in
// memory). Zero or negative keeps DefaultMaxDuration.
func WithMaxDuration(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.maxDuration = d
		}
	}
}

// WithMaxBytes sets the largest file accepted: a larger one fails with
// ErrTooLarge. Zero or negative keeps DefaultMaxBytes.
func WithMaxBytes(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBytes = n
		}
	}
}

func newOptions(opts []Option) options {
	o := options{maxDuration: DefaultMaxDuration, maxBytes: DefaultMaxBytes}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// maxSamples is the duration limit in samples (per channel) at rate.
func (o options) maxSamples(rate int) int {
	return int(int64(o.maxDuration) * int64(rate) / int64(time.Second))
}

// Load reads and decodes the sound file at path (see Decode). The format
// is recognised by content, whatever the file's extension.
func Load(path string, opts ...Option) (*Clip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sound: %w", err)
	}
	defer f.Close()
	o := newOptions(opts)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > o.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, fi.Size(), o.maxBytes)
	}
	c, err := decode(f, o)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Decode reads a whole sound file from r and decodes it to a Clip: mono
// 16-bit PCM at the file's own sample rate (channels are averaged). The
// format is recognised by its content (RIFF/WAVE, OggS with OpusHead, an
// ID3 tag or an MPEG audio frame header), never by a name. Input is
// limited to DefaultMaxBytes and DefaultMaxDuration unless options say
// otherwise; bad input gives an error wrapping ErrUnsupportedFormat,
// ErrMalformed, ErrTooLarge or ErrTooLong, never a panic.
//
// Ogg Opus honours the header's pre-skip, output gain and the end
// trimming of the last page's granule position (RFC 7845 §4.2, §4.5).
// MP3 keeps the encoder's delay and padding (a few tens of milliseconds
// of silence at the ends).
func Decode(r io.Reader, opts ...Option) (*Clip, error) {
	return decode(r, newOptions(opts))
}

func decode(r io.Reader, o options) (*Clip, error) {
	b, err := io.ReadAll(io.LimitReader(r, o.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("sound: reading: %w", err)
	}
	if int64(len(b)) > o.maxBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, o.maxBytes)
	}
	return decodeBytes(b, o)
}

// decodeBytes decodes a whole file held in memory.
func decodeBytes(b []byte, o options) (*Clip, error) {
	switch Detect(b) {
	case FormatWAV:
		return decodeWAV(b, o)
	case FormatOggOpus:
		return decodeOggOpus(b, o)
	case FormatMP3:
		return decodeMP3(b, o)
	}
	if len(b) >= 4 && bytes.Equal(b[:4], []byte("OggS")) {
		return nil, fmt.Errorf("%w: Ogg without Opus (Vorbis, FLAC or Speex in Ogg are not decoded)", ErrUnsupportedFormat)
	}
	return nil, fmt.Errorf("%w: not WAV, MP3 or Ogg Opus", ErrUnsupportedFormat)
}

// Detect returns the format of a file from its first bytes (a few hundred
// suffice; an ID3v2 tag is skipped when all of it is there), or
// FormatUnknown.
func Detect(b []byte) Format {
	switch {
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE":
		return FormatWAV
	case len(b) >= 4 && string(b[:4]) == "OggS":
		if isOggOpus(b) {
			return FormatOggOpus
		}
		return FormatUnknown
	}
	if isMP3(b) {
		return FormatMP3
	}
	return FormatUnknown
}

// downmix appends the average of the ch interleaved channels of each frame
// of src to dst.
func downmix(dst []int16, src []int16, ch int) []int16 {
	if ch == 1 {
		return append(dst, src...)
	}
	frames := len(src) / ch
	for i := 0; i < frames; i++ {
		var sum int32
		for _, v := range src[i*ch : i*ch+ch] {
			sum += int32(v)
		}
		dst = append(dst, int16(sum/int32(ch)))
	}
	return dst
}
