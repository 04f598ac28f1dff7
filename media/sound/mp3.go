package sound

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hajimehoshi/go-mp3"
)

// id3v2Size returns the length of the ID3v2 tag at the start of b
// (header, body and footer), or 0 when there is none.
//
// Specification: ID3 tag version 2.4.0 - Main Structure, §3.1
// (syncsafe size), §3.4 (footer).
func id3v2Size(b []byte) int {
	if len(b) < 10 || string(b[:3]) != "ID3" {
		return 0
	}
	sz := b[6:10]
	if (sz[0]|sz[1]|sz[2]|sz[3])&0x80 != 0 {
		return 0 // not syncsafe: not a tag
	}
	n := 10 + (int(sz[0])<<21 | int(sz[1])<<14 | int(sz[2])<<7 | int(sz[3]))
	if b[5]&0x10 != 0 {
		n += 10 // footer
	}
	return n
}

// isMP3Header reports whether h starts an MPEG audio Layer III frame
// header (ISO/IEC 11172-3 §2.4.1.3, with MPEG-2 and 2.5 version bits).
func isMP3Header(h []byte) bool {
	if len(h) < 4 || h[0] != 0xff || h[1]&0xe0 != 0xe0 {
		return false
	}
	version := h[1] >> 3 & 3
	layer := h[1] >> 1 & 3
	bitrate := h[2] >> 4
	rate := h[2] >> 2 & 3
	return version != 1 && layer == 1 && bitrate != 0 && bitrate != 15 && rate != 3
}

// isMP3 reports whether b starts like an MP3 file: an ID3v2 tag (whose
// end lies beyond b, or is followed by a frame header), or a Layer III
// frame header.
func isMP3(b []byte) bool {
	if n := id3v2Size(b); n > 0 {
		return n+4 > len(b) || isMP3Header(b[n:])
	}
	return isMP3Header(b)
}

// mp3DecoderDelay is the delay of the MP3 synthesis filter bank in
// samples, which LAME's gapless information leaves out.
const mp3DecoderDelay = 529

// mp3Gapless reads the gapless playback information of an MP3 written by
// LAME or ffmpeg: the first frame is then a Xing/Info frame (decoded as a
// frame of silence) whose LAME tag gives the encoder delay and the
// padding. It returns how many decoded samples to drop at the start (that
// frame, the encoder delay and the decoder delay) and at the end (the
// padding less the decoder delay).
//
// Specification: the LAME tag, "Mp3 Info Tag rev 1 specifications"
// (gabriel.mp3-tech.org/mp3infotag.html): the delay and padding are two
// 12-bit fields at offset 21 of the tag.
func mp3Gapless(b []byte) (head, tail int, ok bool) {
	b = b[min(id3v2Size(b), len(b)):]
	if !isMP3Header(b) {
		return 0, 0, false
	}
	mpeg1 := b[1]>>3&3 == 3
	mono := b[3]>>6 == 3
	side, frame := 17, 576
	switch {
	case mpeg1 && !mono:
		side, frame = 32, 1152
	case mpeg1:
		side, frame = 17, 1152
	case mono:
		side = 9
	}
	x := b[min(4+side, len(b)):]
	if len(x) < 8 || (string(x[:4]) != "Xing" && string(x[:4]) != "Info") {
		return 0, 0, false
	}
	flags := binary.BigEndian.Uint32(x[4:8])
	off := 8
	for _, f := range []struct {
		bit  uint32
		size int
	}{{1, 4}, {2, 4}, {4, 100}, {8, 4}} {
		if flags&f.bit != 0 {
			off += f.size
		}
	}
	if len(x) < off+24 {
		return 0, 0, false
	}
	tag := x[off:]
	if v := string(tag[:4]); v != "LAME" && v != "Lavc" && v != "Lavf" {
		return 0, 0, false
	}
	delay := int(tag[21])<<4 | int(tag[22])>>4
	pad := int(tag[22]&0x0f)<<8 | int(tag[23])
	// With less padding than the decoder's delay, the last samples are
	// still in the filter bank when the frames end: nothing to cut there.
	return frame + delay + mp3DecoderDelay, max(pad-mp3DecoderDelay, 0), true
}

// decodeMP3 decodes MPEG-1/2/2.5 Layer III with github.com/hajimehoshi/go-mp3,
// which always outputs 16-bit little-endian stereo at the file's rate.
func decodeMP3(b []byte, o options) (c *Clip, err error) {
	defer func() {
		// The decoder is third-party code fed hostile input: a panic in it
		// is a malformed file, not a crash.
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%w: MP3: decoder failed: %v", ErrMalformed, r)
		}
	}()
	// Skip ID3v2 tags here: go-mp3 allocates the size a tag claims (up to
	// 4 GiB for a size that is not syncsafe) before reading it.
	for len(b) >= 3 && string(b[:3]) == "ID3" {
		n := id3v2Size(b)
		if n == 0 || n > len(b) {
			return nil, fmt.Errorf("%w: MP3: invalid or truncated ID3v2 tag", ErrMalformed)
		}
		b = b[n:]
	}
	// A plain io.Reader: given an io.Seeker, go-mp3 scans the whole file
	// once more to index frames, which Decode does not need.
	d, err := mp3.NewDecoder(struct{ io.Reader }{bytes.NewReader(b)})
	if err != nil {
		return nil, fmt.Errorf("%w: MP3: %v", ErrMalformed, err)
	}
	rate := d.SampleRate()
	if err := checkFileRate(rate); err != nil {
		return nil, fmt.Errorf("%w: MP3: %w", ErrMalformed, err)
	}
	limit := o.maxSamples(rate)
	// A compressed frame (at least 24 bytes at 8 kb/s) decodes to at most
	// 1152 samples: size the output from the input, within the limit.
	est := min(len(b)/24*1152, limit)
	out := make([]int16, 0, min(est, 1<<20))
	buf := make([]byte, 4*1152*4)
	var carry int // bytes of an incomplete stereo frame at the start of buf
	for {
		n, rerr := d.Read(buf[carry:])
		n += carry
		whole := n &^ 3
		for i := 0; i < whole; i += 4 {
			l := int32(int16(uint16(buf[i]) | uint16(buf[i+1])<<8))
			r := int32(int16(uint16(buf[i+2]) | uint16(buf[i+3])<<8))
			out = append(out, int16((l+r)/2))
		}
		carry = copy(buf, buf[whole:n])
		if len(out) > limit {
			return nil, fmt.Errorf("%w: MP3 longer than %v", ErrTooLong, o.maxDuration)
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				break
			}
			if len(out) == 0 {
				return nil, fmt.Errorf("%w: MP3: %v", ErrMalformed, rerr)
			}
			// Garbage after the audio (a truncated last frame, a tag
			// go-mp3 does not know): keep what was decoded.
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: MP3 without audio frames", ErrMalformed)
	}
	if head, tail, ok := mp3Gapless(b); ok && head+tail < len(out) {
		out = out[head : len(out)-tail]
	}
	return &Clip{Format: FormatMP3, SampleRate: rate, Samples: out}, nil
}
