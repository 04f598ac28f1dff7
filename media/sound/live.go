package sound

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/pion/opus"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/resample"
)

// Live buffer sizes.
const (
	// LiveMaxDelay is the most audio a Live holds: when its reader falls
	// behind (or its writer's clock runs faster), the oldest samples are
	// dropped so that the delay stays bounded.
	LiveMaxDelay = 200 * time.Millisecond
	// LivePrebuffer is how much a Live gathers before Read returns
	// samples again after it ran dry: two 20 ms packets, so that a
	// writer whose packets arrive up to 20 ms late does not starve a
	// reader pulling every 20 ms.
	LivePrebuffer = 40 * time.Millisecond
)

// ErrLiveClosed is returned by WriteFrame after Close.
var ErrLiveClosed = errors.New("sound: live source closed")

// ErrCodec is returned by WriteFrame for a frame it cannot decode: a codec
// other than PCMA, PCMU and Opus, or a payload the decoder rejects.
var ErrCodec = errors.New("sound: cannot decode frame")

// Live is a Source fed with the audio frames of another stream (a call's
// PCMA, PCMU or Opus as a media session delivers them): it decodes them,
// resamples them to its rate and holds them in a bounded ring until they
// are read. Read returns 0, nil while nothing is buffered, so a reader
// sends silence over a gap; after running dry Read waits for
// LivePrebuffer of audio before it gives samples again, which absorbs
// jitter between the writer's and the reader's clocks. At most
// LiveMaxDelay is held: beyond that the oldest samples are dropped.
//
// One goroutine may call WriteFrame while another calls Read; Stats and
// Close may be called from any goroutine.
type Live struct {
	rate    int
	maxLen  int // ring capacity in samples
	prefill int

	// writer's state
	opus     *opus.Decoder
	pcm      []int16
	mono     []int16
	gapBuf   []int16
	rs       *resample.Resampler
	rsRate   int
	res      []int16
	next     time.Duration // PTS expected of the next frame
	haveNext bool

	mu     sync.Mutex
	ring   []int16
	head   int // index of the oldest sample
	n      int // samples held
	primed bool
	closed bool
	stats  LiveStats
}

// LiveStats are a Live's counters (they only grow).
type LiveStats struct {
	Frames     uint64 // frames written and decoded
	BadFrames  uint64 // frames rejected (ErrCodec)
	Samples    uint64 // samples buffered, at the Live's rate, gap fill included
	GapSamples uint64 // silence inserted for holes in the frames' timeline
	Dropped    uint64 // samples dropped because more than LiveMaxDelay was held
	Underruns  uint64 // times a read found the buffer empty after it had played
}

// NewLive returns an empty Live whose Read gives samples at rate Hz.
func NewLive(rate int) (*Live, error) {
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	max := int(int64(rate) * int64(LiveMaxDelay) / int64(time.Second))
	return &Live{
		rate:    rate,
		maxLen:  max,
		prefill: int(int64(rate) * int64(LivePrebuffer) / int64(time.Second)),
		ring:    make([]int16, max),
	}, nil
}

// SampleRate returns the rate given to NewLive.
func (l *Live) SampleRate() int { return l.rate }

// WriteFrame decodes one audio frame (PCMA, PCMU or Opus; the frame is
// borrowed: nothing of it is kept) and buffers its samples. A hole in the
// frames' timeline (PTS further than one frame ahead of the previous
// frame's end, up to LiveMaxDelay) is filled with silence so that the
// audio keeps its timing; a frame that starts before the previous one
// ended (a duplicate) is dropped. A frame that cannot be decoded returns
// an error wrapping ErrCodec and the Live stays usable.
func (l *Live) WriteFrame(f *media.Frame) error {
	if l.isClosed() {
		return ErrLiveClosed
	}
	pcm, rate, err := l.decode(f)
	if err != nil {
		l.mu.Lock()
		l.stats.BadFrames++
		l.mu.Unlock()
		return err
	}
	if len(pcm) == 0 {
		return nil
	}
	d := time.Duration(int64(len(pcm)) * int64(time.Second) / int64(rate))
	gap := 0
	if l.haveNext {
		switch late := f.PTS - l.next; {
		case late < -d/2:
			return nil // overlaps what was written: a duplicate
		case late > d/2 && late <= LiveMaxDelay:
			gap = int(int64(late) * int64(rate) / int64(time.Second))
		}
	}
	l.next, l.haveNext = f.PTS+d, true
	if rate != l.rsRate {
		l.rsRate, l.rs = rate, nil
		if rate != l.rate {
			rs, err := resample.New(resample.Config{InRate: rate, OutRate: l.rate})
			if err != nil {
				return fmt.Errorf("%w: %v", ErrCodec, err)
			}
			l.rs = rs
		}
	}
	if gap > 0 {
		l.gapBuf = slices.Grow(l.gapBuf[:0], gap+len(pcm))[:gap]
		clear(l.gapBuf)
		l.gapBuf = append(l.gapBuf, pcm...)
		pcm = l.gapBuf
	}
	out := pcm
	if l.rs != nil {
		l.res = l.rs.Process(l.res[:0], pcm)
		out = l.res
	}
	gapOut := int(int64(gap) * int64(l.rate) / int64(rate))
	l.mu.Lock()
	l.stats.Frames++
	l.stats.GapSamples += uint64(gapOut)
	l.push(out)
	l.mu.Unlock()
	return nil
}

// decode returns the frame's samples, mono, and their rate. The slice is
// the Live's scratch buffer.
func (l *Live) decode(f *media.Frame) ([]int16, int, error) {
	switch f.Codec {
	case media.CodecPCMA, media.CodecPCMU:
		rate := int(f.ClockRate)
		if rate == 0 {
			rate = 8000
		}
		ch := max(int(f.Channels), 1)
		if ch > 8 || checkFileRate(rate) != nil {
			return nil, 0, fmt.Errorf("%w: G.711 at %d Hz with %d channels", ErrCodec, rate, ch)
		}
		if f.Codec == media.CodecPCMA {
			l.pcm = g711.DecodeALaw(l.pcm[:0], f.Payload)
		} else {
			l.pcm = g711.DecodeULaw(l.pcm[:0], f.Payload)
		}
		if ch == 1 {
			return l.pcm, rate, nil
		}
		l.mono = downmix(l.mono[:0], l.pcm[:len(l.pcm)/ch*ch], ch)
		return l.mono, rate, nil
	case media.CodecOpus:
		if l.opus == nil {
			d, err := opus.NewDecoderWithOutput(opusRate, 1)
			if err != nil {
				return nil, 0, fmt.Errorf("%w: opus: %v", ErrCodec, err)
			}
			l.opus = &d
		}
		if cap(l.pcm) < opusMaxFrame {
			l.pcm = make([]int16, opusMaxFrame)
		}
		n, err := l.decodeOpus(f.Payload, l.pcm[:opusMaxFrame])
		if err != nil {
			return nil, 0, fmt.Errorf("%w: opus: %v", ErrCodec, err)
		}
		return l.pcm[:n], opusRate, nil
	}
	return nil, 0, fmt.Errorf("%w: %v", ErrCodec, f.Codec)
}

// decodeOpus calls pion/opus on network input; a panic in it becomes an
// error (and a fresh decoder next time).
func (l *Live) decodeOpus(payload []byte, out []int16) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			l.opus = nil
			n, err = 0, fmt.Errorf("decoder panic: %v", r)
		}
	}()
	if len(payload) == 0 {
		return 0, errors.New("empty payload")
	}
	n, err = l.opus.DecodeToInt16(payload, out)
	if err == nil && (n < 0 || n > len(out)) {
		err = fmt.Errorf("decoded %d samples", n)
	}
	return n, err
}

// push appends s to the ring, dropping the oldest samples beyond its
// capacity. l.mu is held.
func (l *Live) push(s []int16) {
	l.stats.Samples += uint64(len(s))
	if len(s) >= l.maxLen {
		l.stats.Dropped += uint64(l.n + len(s) - l.maxLen)
		copy(l.ring, s[len(s)-l.maxLen:])
		l.head, l.n = 0, l.maxLen
		return
	}
	if over := l.n + len(s) - l.maxLen; over > 0 {
		l.stats.Dropped += uint64(over)
		l.head = (l.head + over) % l.maxLen
		l.n -= over
	}
	tail := (l.head + l.n) % l.maxLen
	c := copy(l.ring[tail:], s)
	copy(l.ring, s[c:])
	l.n += len(s)
}

// Read gives the buffered samples, oldest first: 0, nil when there are
// none (or fewer than LivePrebuffer after the buffer ran dry), io.EOF
// once Close was called and everything was read.
func (l *Live) Read(p []int16) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primed && !l.closed {
		if l.n < l.prefill {
			return 0, nil
		}
		l.primed = true
	}
	k := min(len(p), l.n)
	c := copy(p[:k], l.ring[l.head:min(l.head+k, l.maxLen)])
	copy(p[c:k], l.ring)
	l.head = (l.head + k) % l.maxLen
	l.n -= k
	if l.n == 0 && k < len(p) {
		if l.closed {
			return k, io.EOF
		}
		l.primed = false
		l.stats.Underruns++
	}
	return k, nil
}

// Close ends the source: WriteFrame refuses further frames, and Read
// returns what is still buffered, then io.EOF. It is idempotent.
func (l *Live) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

func (l *Live) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Stats returns the Live's counters.
func (l *Live) Stats() LiveStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}
