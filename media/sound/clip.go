package sound

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sipstream/sipstream/media/resample"
)

// The sample rates this package handles (those of media/resample).
const (
	minRate = 1000
	maxRate = 384000
)

// ErrRate is wrapped by the errors returned (by Read, Resample, NewLive)
// for a sample rate outside 1000..384000 Hz.
var ErrRate = errors.New("sound: sample rate out of range")

// Clip is a decoded sound: mono 16-bit PCM held in memory. Load and
// Decode make one from a file; a Clip built by hand (a generated tone, a
// prompt) plays the same way. A Clip is not modified by playing it, so
// any number of players may share one.
type Clip struct {
	// Format is the kind of file the clip was decoded from
	// (FormatUnknown for a clip built by hand).
	Format Format
	// SampleRate is the rate of Samples in Hz (1000..384000 to be
	// played).
	SampleRate int
	// Samples is the sound, mono.
	Samples []int16
}

// Duration returns the clip's length.
func (c *Clip) Duration() time.Duration {
	if c.SampleRate <= 0 {
		return 0
	}
	return time.Duration(int64(len(c.Samples)) * int64(time.Second) / int64(c.SampleRate))
}

// Play returns a Source that plays the clip at rate Hz (zero means the
// clip's own rate), resampled with media/resample, once or, if loop is
// set, over and over until the reader stops reading. A looped clip joins
// its end to its start without a gap and, when it is at least 40 ms
// long, through a 10 ms cross-fade of its last samples into its first
// ones, so a sound whose ends do not match does not click at the seam
// (the loop is then 10 ms shorter than the clip). An empty clip ends at
// once, looped or not. A rate out of range makes every Read fail with an
// error wrapping ErrRate. (Decoded files have standard rates; a clip
// built by hand at an odd rate, say 44101 Hz, may need a resampler that
// is slow to set up, or be refused with ErrRate.)
func (c *Clip) Play(rate int, loop bool) Source {
	if rate == 0 {
		rate = c.SampleRate
	}
	p := &player{rate: rate, s: c.Samples, loop: loop}
	if err := checkRate(c.SampleRate); err != nil {
		p.err = err
		return p
	}
	if err := checkRate(rate); err != nil {
		p.err = err
		return p
	}
	p.ratio = float64(c.SampleRate) / float64(rate)
	if rate != c.SampleRate {
		rs, err := resample.New(resample.Config{InRate: c.SampleRate, OutRate: rate})
		if err != nil {
			p.err = fmt.Errorf("%w: %v", ErrRate, err)
			return p
		}
		p.rs = rs
	}
	if loop {
		x := c.SampleRate / 100 // 10 ms
		if len(p.s) >= 4*x && x > 0 {
			p.seam = make([]int16, x)
			tail := p.s[len(p.s)-x:]
			for i := range p.seam {
				p.seam[i] = int16((int32(tail[i])*int32(x-i) + int32(p.s[i])*int32(i)) / int32(x))
			}
		}
	}
	return p
}

// maxFileRate is the highest sample rate a decoded file (or a Live's
// input) may have.
const maxFileRate = 192000

// checkFileRate accepts the sample rate of a file or of a live stream's
// frames: a multiple of 25 Hz from 1000 to 192000 Hz. Every standard rate
// is one (8000, 11025, 22050, 44100, 48000, 96000, 192000...); an odd
// rate such as 383998 Hz would need thousands of resampler phases and
// seconds of CPU to set up, which a hostile file must not cost.
func checkFileRate(r int) error {
	if r < minRate || r > maxFileRate || r%25 != 0 {
		return fmt.Errorf("%w: %d Hz (a multiple of 25 Hz up to %d Hz is decoded)", ErrRate, r, maxFileRate)
	}
	return nil
}

func checkRate(r int) error {
	if r < minRate || r > maxRate {
		return fmt.Errorf("%w: %d Hz", ErrRate, r)
	}
	return nil
}

// player is Clip.Play's Source.
type player struct {
	rate  int
	s     []int16
	loop  bool
	seam  []int16 // the cross-fade that replaces the first and last 10 ms on a loop
	ratio float64 // input samples per output sample
	rs    *resample.Resampler
	err   error

	pos     int  // next input sample of s
	inSeam  bool // the next input comes from seam
	seamPos int
	out     pending
	ended   bool // all input given (and flushed)
}

// pending is resampled output not yet read.
type pending struct {
	buf []int16
	pos int
}

// take moves what it can of the pending samples to dst and returns how
// many it moved; 0 when none are pending.
func (q *pending) take(dst []int16) int {
	c := copy(dst, q.buf[q.pos:])
	q.pos += c
	return c
}

func (p *player) SampleRate() int { return p.rate }

// next returns up to max input samples, aliasing s or seam; none at the
// end of a clip played once.
func (p *player) next(max int) []int16 {
	if len(p.s) == 0 {
		return nil
	}
	if p.inSeam {
		c := p.seam[p.seamPos:min(p.seamPos+max, len(p.seam))]
		p.seamPos += len(c)
		if p.seamPos == len(p.seam) {
			p.inSeam, p.seamPos = false, 0
			p.pos = len(p.seam) // the seam stood for the start too
		}
		return c
	}
	end := len(p.s)
	if p.loop {
		end -= len(p.seam)
	}
	if p.pos >= end {
		if !p.loop {
			return nil
		}
		if len(p.seam) > 0 {
			p.inSeam = true
			return p.next(max)
		}
		p.pos = 0
	}
	c := p.s[p.pos:min(p.pos+max, end)]
	p.pos += len(c)
	return c
}

// Read fills p with the next samples. It returns io.EOF after the last
// sample of a clip played once, together with the last samples.
func (p *player) Read(dst []int16) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n := 0
	for n < len(dst) {
		if c := p.out.take(dst[n:]); c > 0 {
			n += c
			continue
		}
		if p.ended {
			return n, io.EOF
		}
		want := len(dst) - n
		if p.rs == nil {
			in := p.next(want)
			if len(in) == 0 {
				p.ended = true
				continue
			}
			n += copy(dst[n:], in)
			continue
		}
		// Feed about as much input as the output still wanted needs (at
		// least 10 ms, so small reads do not cost a filter run each).
		in := p.next(max(int(float64(want)*p.ratio)+1, p.rs.OutRate()/100))
		p.out.pos = 0
		if len(in) == 0 {
			p.out.buf = p.rs.Flush(p.out.buf[:0])
			p.ended = true
			continue
		}
		p.out.buf = p.rs.Process(p.out.buf[:0], in)
	}
	return n, nil
}

// Resample returns src converted to rate Hz (src itself when it already
// is at that rate). The returned Source reads src on demand and ends when
// it ends; a short read of src (a live source with a gap) is a short
// read of the result. An error wrapping ErrRate is returned for a rate
// out of range.
func Resample(src Source, rate int) (Source, error) {
	if src.SampleRate() == rate {
		return src, nil
	}
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	if err := checkRate(src.SampleRate()); err != nil {
		return nil, err
	}
	rs, err := resample.New(resample.Config{InRate: src.SampleRate(), OutRate: rate})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRate, err)
	}
	return &resampled{src: src, rs: rs, ratio: float64(src.SampleRate()) / float64(rate)}, nil
}

// resampled is Resample's Source.
type resampled struct {
	src   Source
	rs    *resample.Resampler
	ratio float64
	in    []int16
	out   pending
	eof   bool
	err   error
}

func (r *resampled) SampleRate() int { return r.rs.OutRate() }

func (r *resampled) Read(dst []int16) (int, error) {
	n := 0
	for n < len(dst) {
		if c := r.out.take(dst[n:]); c > 0 {
			n += c
			continue
		}
		if r.eof {
			return n, r.err
		}
		want := int(float64(len(dst)-n)*r.ratio) + 1
		if cap(r.in) < want {
			r.in = make([]int16, want)
		}
		k, err := r.src.Read(r.in[:want])
		r.out.pos = 0
		r.out.buf = r.rs.Process(r.out.buf[:0], r.in[:k])
		if err != nil {
			r.out.buf = r.rs.Flush(r.out.buf)
			r.eof, r.err = true, err
			continue
		}
		if k == 0 {
			break // a gap in a live source
		}
		if len(r.out.buf) == 0 && k < want {
			break // what came in is still in the filter
		}
	}
	return n, nil
}
