package rtmpsink

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/aac"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/sound"
)

// toneSource is a sound.Source of a sine: n samples (negative: endless) at
// amplitude amp of full scale (zero: 0.25).
type toneSource struct {
	rate int
	freq float64
	n    int
	amp  float64
	read atomic.Int64 // samples read
}

func (s *toneSource) SampleRate() int { return s.rate }

func (s *toneSource) Read(p []int16) (int, error) {
	pos := int(s.read.Load())
	k := len(p)
	if s.n >= 0 {
		k = min(k, s.n-pos)
	}
	amp := s.amp
	if amp == 0 {
		amp = 0.25
	}
	for i := 0; i < k; i++ {
		p[i] = int16(math.Round(amp * 32767 * math.Sin(2*math.Pi*s.freq*float64(pos+i)/float64(s.rate))))
	}
	s.read.Add(int64(k))
	if s.n >= 0 && pos+k >= s.n {
		return k, io.EOF
	}
	return k, nil
}

// endLog records OnSoundEnd calls with the PTS of the frame being written.
type endLog struct {
	mu   sync.Mutex
	srcs []sound.Source
	at   []time.Duration
	now  atomic.Int64 // PTS of the frame being written
}

func (l *endLog) on(src sound.Source) {
	l.mu.Lock()
	l.srcs = append(l.srcs, src)
	l.at = append(l.at, time.Duration(l.now.Load()))
	l.mu.Unlock()
}

func (l *endLog) get() ([]sound.Source, []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sound.Source(nil), l.srcs...), append([]time.Duration(nil), l.at...)
}

// pcmaTone is 20 ms frame i of a 440 Hz PCMA tone.
func pcmaTone(i int, codec media.Codec) *media.Frame {
	ts := time.Duration(i) * 20 * time.Millisecond
	pcm := testmedia.Tone(440, 8000, i*160, 160, 0.25)
	payload := g711.EncodeALaw(nil, pcm)
	if codec == media.CodecPCMU {
		payload = g711.EncodeULaw(nil, pcm)
	}
	return &media.Frame{Codec: codec, PTS: ts, DTS: ts, Keyframe: true, ClockRate: 8000, Channels: 1,
		Duration: 20 * time.Millisecond, Payload: payload}
}

// soundSink starts an audio-only sink (no generated video) on a fake
// server and waits until it is active.
func soundSink(t *testing.T, mode AudioMode, ends *endLog) (*Sink, *fakeServer, *statusLog) {
	t.Helper()
	srv := newFakeServer()
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.Video, cfg.NoGeneratedVideo, cfg.AudioMode = false, true, mode
	cfg.OnSoundEnd = ends.on
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	l.wait(t, StatusActive)
	return s, srv, l
}

// writeTone writes frames from..to of the 440 Hz call tone; at frame k it
// calls at[k] first.
func writeTone(t *testing.T, s *Sink, ends *endLog, codec media.Codec, from, to int, at map[int]func()) {
	t.Helper()
	for i := from; i < to; i++ {
		if f := at[i]; f != nil {
			f()
		}
		fr := pcmaTone(i, codec)
		ends.now.Store(int64(fr.PTS))
		require.NoError(t, s.WriteFrame(fr))
	}
}

// renderOps decodes what conn published (AAC or G.711) onto a timeline of
// d at rate, each frame at its PTS.
func renderOps(t *testing.T, ops []op, conn, rate int, d time.Duration) []int16 {
	t.Helper()
	out := make([]int16, int64(d)*int64(rate)/int64(time.Second))
	var dec *aac.Decoder
	var pcm []int16
	for _, o := range ops {
		if o.conn != conn {
			continue
		}
		switch o.kind {
		case "aaccfg":
			var err error
			dec, err = aac.NewDecoder(rate, 1)
			require.NoError(t, err)
			continue
		case "aac":
			require.NotNil(t, dec, "AAC before its sequence header")
			var err error
			pcm, err = dec.Decode(pcm[:0], o.payload)
			require.NoError(t, err)
		case "g711":
			require.Equal(t, 8000, rate)
			pcm = g711.DecodeALaw(pcm[:0], o.payload)
			if !o.alaw {
				pcm = g711.DecodeULaw(pcm[:0], o.payload)
			}
		default:
			continue
		}
		at := int(int64(o.pts) * int64(rate) / int64(time.Second))
		for j := 0; j < len(pcm) && at+j < len(out); j++ {
			out[at+j] = pcm[j]
		}
	}
	return out
}

// tones returns the shares of 440 Hz and 1 kHz in the 100 ms of pcm at at.
func tones(pcm []int16, rate int, at time.Duration) (g440, g1k float64) {
	i := int(int64(at) * int64(rate) / int64(time.Second))
	x := pcm[i : i+rate/10]
	return testmedia.Goertzel(x, rate, 440), testmedia.Goertzel(x, rate, 1000)
}

func requireBoth(t *testing.T, pcm []int16, rate int, at time.Duration) {
	t.Helper()
	g440, g1k := tones(pcm, rate, at)
	require.True(t, g440 > 0.3 && g1k > 0.3 && g440+g1k > 0.85, "at %v: 440 Hz %.3f, 1 kHz %.3f: want both", at, g440, g1k)
}

func requireCallOnly(t *testing.T, pcm []int16, rate int, at time.Duration) {
	t.Helper()
	g440, g1k := tones(pcm, rate, at)
	require.True(t, g440 > 0.85 && g1k < 0.02, "at %v: 440 Hz %.3f, 1 kHz %.3f: want 440 Hz alone", at, g440, g1k)
}

// AAC mode: a 1 s sound set at 1 s is heard with the call from 1 s to 2 s
// (by the call's timestamps: the frames are written as fast as the test
// goes), its end is reported once at about 2 s, and the call's tone goes
// on alone. Then an endless sound stopped by SetSound(nil) is not reported.
func TestSoundMixedIntoAAC(t *testing.T) {
	for _, codec := range []media.Codec{media.CodecPCMA, media.CodecPCMU} {
		ends := &endLog{}
		s, srv, _ := soundSink(t, AudioAAC, ends)
		once := &toneSource{rate: 16000, freq: 1000, n: 16000}
		endless := &toneSource{rate: 44100, freq: 1000, n: -1}
		writeTone(t, s, ends, codec, 0, 250, map[int]func(){
			50:  func() { require.NoError(t, s.SetSound(once)) },
			150: func() { require.NoError(t, s.SetSound(endless)) },
			200: func() { require.NoError(t, s.SetSound(nil)) },
		})
		srcs, at := ends.get()
		require.Equal(t, []sound.Source{once}, srcs, "the sound that ended, once; not the one stopped")
		assert.InDelta(t, float64(2*time.Second), float64(at[0]), float64(150*time.Millisecond),
			"the end is reported when the call's timeline reaches it (encoder latency aside)")
		pcm := renderOps(t, srv.snapshot(), 1, 48000, 5*time.Second)
		requireCallOnly(t, pcm, 48000, 500*time.Millisecond)
		requireBoth(t, pcm, 48000, 1200*time.Millisecond)
		requireBoth(t, pcm, 48000, 1800*time.Millisecond)
		requireCallOnly(t, pcm, 48000, 2500*time.Millisecond)
		requireBoth(t, pcm, 48000, 3500*time.Millisecond)
		requireCallOnly(t, pcm, 48000, 4500*time.Millisecond)
		// Paced by the timeline: the endless sound was read for the
		// second it played, not more.
		assert.InDelta(t, 44100, endless.read.Load(), 44100*0.05)
	}
}

// Passthrough: the sound is mixed in the G.711 domain; the call's own
// payloads are not touched (the fan-out shares them); a lost packet skips
// the sound forward by as much.
func TestSoundMixedIntoG711(t *testing.T) {
	ends := &endLog{}
	s, srv, _ := soundSink(t, AudioPassthrough, ends)
	src := &toneSource{rate: 8000, freq: 1000, n: -1}
	require.NoError(t, s.SetSound(src))
	f := pcmaTone(0, media.CodecPCMA)
	orig := append([]byte(nil), f.Payload...)
	require.NoError(t, s.WriteFrame(f))
	require.Equal(t, orig, f.Payload, "the call's frame is not modified")
	writeTone(t, s, ends, media.CodecPCMA, 1, 50, nil)
	writeTone(t, s, ends, media.CodecPCMA, 55, 100, nil) // 100 ms lost
	require.InDelta(t, 16000, src.read.Load(), 160, "the sound follows the timeline over the loss")
	writeTone(t, s, ends, media.CodecPCMA, 100, 150, map[int]func(){100: func() { require.NoError(t, s.SetSound(nil)) }})
	pcm := renderOps(t, srv.snapshot(), 1, 8000, 3*time.Second)
	requireBoth(t, pcm, 8000, 500*time.Millisecond)
	requireBoth(t, pcm, 8000, 1500*time.Millisecond)
	requireCallOnly(t, pcm, 8000, 2500*time.Millisecond)
	srcs, _ := ends.get()
	assert.Empty(t, srcs)
}

// A video-only call's silent AAC carries the sound instead.
func TestSoundReplacesSilence(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.Audio, cfg.AudioMode = false, AudioAAC
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	defer s.Close(context.Background())
	l.wait(t, StatusActive)
	for i := 0; i < 75; i++ { // 3 s at 25 fps
		if i == 25 {
			require.NoError(t, s.SetSound(&toneSource{rate: 48000, freq: 1000, n: -1}))
		}
		require.NoError(t, s.WriteFrame(vframe(i, i%25 == 0)))
	}
	pcm := renderOps(t, srv.snapshot(), 1, 48000, 3*time.Second)
	var e float64
	for _, v := range pcm[48000/4 : 48000*3/4] {
		e += float64(v) * float64(v)
	}
	require.Zero(t, e, "silence before the sound")
	_, g1k := tones(pcm, 48000, 2*time.Second)
	require.Greater(t, g1k, 0.95, "the sound in place of silence")
}

// A reconnect keeps the sound playing from where it was.
func TestSoundSurvivesReconnect(t *testing.T) {
	ends := &endLog{}
	s, srv, l := soundSink(t, AudioAAC, ends)
	src := &toneSource{rate: 16000, freq: 1000, n: -1}
	require.NoError(t, s.SetSound(src))
	writeTone(t, s, ends, media.CodecPCMA, 0, 50, nil)
	srv.setUp(false)
	writeTone(t, s, ends, media.CodecPCMA, 50, 51, nil) // fails: LOST
	l.wait(t, StatusLost)
	read := src.read.Load()
	writeTone(t, s, ends, media.CodecPCMA, 51, 100, nil) // dropped
	require.Equal(t, read, src.read.Load(), "the sound waits while nothing is published")
	srv.setUp(true)
	l.wait(t, StatusActive)
	writeTone(t, s, ends, media.CodecPCMA, 100, 200, nil)
	pcm := renderOps(t, srv.snapshot(), 2, 48000, 4*time.Second)
	requireBoth(t, pcm, 48000, 3*time.Second)
	// One second published on the first connection, two on the second,
	// less what the stream restarts cost.
	assert.InDelta(t, 48000, src.read.Load(), 2000)
}

// What cannot carry a sound says so.
func TestSoundErrors(t *testing.T) {
	l := newStatusLog()
	src := &toneSource{rate: 8000, freq: 1000, n: -1}
	for name, mod := range map[string]func(*Config){
		"AAC input":              func(c *Config) { c.AudioMode, c.AudioSpecificConfig = AudioAAC, []byte{0x11, 0x90} },
		"passthrough video-only": func(c *Config) { c.Audio = false },
		"converter cannot mix": func(c *Config) {
			c.AudioMode = AudioAAC
			c.NewAAC = func() (AudioConverter, error) { return noMix{}, nil }
		},
	} {
		cfg := testConfig(l)
		cfg.OnStatus = nil
		mod(&cfg)
		s, err := newSink(cfg, newFakeServer().dial, realClock{})
		require.NoError(t, err)
		err = s.SetSound(src)
		require.ErrorIs(t, err, ErrSound, name)
		t.Log(err)
		require.NoError(t, s.SetSound(nil), name)
		require.NoError(t, s.Close(context.Background()))
	}
	ends := &endLog{}
	s, _, _ := soundSink(t, AudioPassthrough, ends)
	require.ErrorIs(t, s.SetSound(&toneSource{rate: 100}), ErrSound, "sample rate")
	require.NoError(t, s.WriteFrame(&media.Frame{Codec: media.CodecAAC, PTS: 0, Payload: []byte{1}}))
	require.ErrorIs(t, s.SetSound(src), ErrSound, "AAC seen")
}

type noMix struct{}

func (noMix) AudioSpecificConfig() []byte                  { return []byte{0x11, 0x88} }
func (noMix) Write(*media.Frame, func(*media.Frame)) error { return nil }
func (noMix) Silence(time.Duration, func(*media.Frame))    {}
func (noMix) Flush(func(*media.Frame))                     {}

// panicSource panics on its second read.
type panicSource struct{ reads int }

func (*panicSource) SampleRate() int { return 8000 }
func (p *panicSource) Read(b []int16) (int, error) {
	p.reads++
	if p.reads > 1 {
		panic("decoder bug")
	}
	return len(b), nil
}

// errSource fails at once with an error that is not io.EOF.
type errSource struct{}

func (errSource) SampleRate() int           { return 8000 }
func (errSource) Read([]int16) (int, error) { return 0, errors.New("file truncated") }

// A source that panics or fails ends the sound (reported), not the push.
func TestSoundSourceFailures(t *testing.T) {
	for _, mode := range []AudioMode{AudioAAC, AudioPassthrough} {
		ends := &endLog{}
		s, srv, _ := soundSink(t, mode, ends)
		p := &panicSource{}
		require.NoError(t, s.SetSound(p))
		writeTone(t, s, ends, media.CodecPCMA, 0, 20, nil)
		require.NoError(t, s.SetSound(errSource{}))
		writeTone(t, s, ends, media.CodecPCMA, 20, 40, nil)
		srcs, _ := ends.get()
		require.Equal(t, []sound.Source{p, errSource{}}, srcs, mode.String())
		require.NotEmpty(t, srv.snapshot())
		require.Equal(t, StatusActive, s.Status())
	}
}

// SetSound from another goroutine while frames are written, and through a
// reconnect: the race detector watches.
func TestSoundConcurrentWithWrites(t *testing.T) {
	for _, mode := range []AudioMode{AudioAAC, AudioPassthrough} {
		ends := &endLog{}
		s, srv, _ := soundSink(t, mode, ends)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var src sound.Source
				if i%3 != 2 {
					src = &toneSource{rate: 8000 * (1 + i%6), freq: 1000, n: 800 * (i % 4)}
				}
				if err := s.SetSound(src); err != nil {
					panic(err)
				}
				time.Sleep(time.Millisecond)
			}
		}()
		for i := 0; i < 400; i++ {
			if i == 200 {
				srv.setUp(false)
			}
			if i == 220 {
				srv.setUp(true)
			}
			require.NoError(t, s.WriteFrame(pcmaTone(i, media.CodecPCMA)))
			if i%20 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		close(stop)
		<-done
		require.NoError(t, s.Close(context.Background()))
	}
}

// scriptSource is a sound.Source driven by a script: each Read returns
// the next count (clamped to len(p)), 0xFF meaning io.EOF and 0xFE another
// error; an exhausted script is io.EOF.
type scriptSource struct {
	rate   int
	script []byte
}

func (s *scriptSource) SampleRate() int { return s.rate }

func (s *scriptSource) Read(p []int16) (int, error) {
	if len(s.script) == 0 {
		return 0, io.EOF
	}
	c := s.script[0]
	s.script = s.script[1:]
	switch c {
	case 0xFF:
		return 0, io.EOF
	case 0xFE:
		return 0, errors.New("bad file")
	}
	n := min(int(c)*7, len(p))
	for i := range p[:n] {
		p[i] = int16(i * 997)
	}
	return n, nil
}

// FuzzSoundMixer drives the mixer with sources that return what they
// like, at rates of all kinds, into blocks of any size, rate and channel
// count, through mixAt's hole skipping too: it never panics, never writes
// outside a block, and ends each source at most once.
func FuzzSoundMixer(f *testing.F) {
	f.Add(uint16(8000), uint16(48000), uint8(1), []byte{1, 2, 3, 0, 200, 0xFF}, []byte{160, 20, 7})
	f.Add(uint16(44100), uint16(8000), uint8(2), []byte{255, 0xFE}, []byte{1, 255, 0})
	f.Add(uint16(1000), uint16(65535), uint8(3), []byte{}, []byte{9})
	f.Fuzz(func(t *testing.T, srcRate, mixRate uint16, ch uint8, script, blocks []byte) {
		var m soundMixer
		src := &scriptSource{rate: int(srcRate), script: script}
		m.set(src)
		rate := max(int(mixRate), 1000)
		nch := int(ch%3) + 1
		pts := time.Duration(0)
		for i, b := range blocks {
			n := int(b) * 4 * nch
			buf := make([]int16, n+2)
			buf[n], buf[n+1] = 12345, -12345 // guards past the block
			if i%2 == 0 {
				m.Mix(buf[:n], rate, nch)
			} else {
				pts += time.Duration(b) * time.Millisecond
				m.mixAt(buf[:n/nch], rate, pts, time.Second)
			}
			if buf[n] != 12345 || buf[n+1] != -12345 {
				t.Fatal("wrote past the block")
			}
		}
		if e := m.takeEnded(); len(e) > 1 || (len(e) == 1 && e[0] != sound.Source(src)) {
			t.Fatalf("ended %v", e)
		}
	})
}
