package sound

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/internal/testmedia"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readAll reads src in reads of size until io.EOF or limit samples.
func readAll(t testing.TB, src Source, size, limit int) ([]int16, error) {
	var out []int16
	buf := make([]int16, size)
	for len(out) < limit {
		n, err := src.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
		if n == 0 {
			t.Fatalf("Read returned 0, nil from a clip")
		}
	}
	return out, nil
}

// maxStep is the largest difference between neighbouring samples: a click
// shows as a step far above a tone's.
func maxStep(s []int16) int {
	m := 0
	for i := 1; i < len(s); i++ {
		m = max(m, abs(int(s[i])-int(s[i-1])))
	}
	return m
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestPlayOnceResampled: the 44.1 kHz stereo WAV played at 8 kHz in
// 20 ms reads is 100 ms of the 1 kHz tone, then io.EOF with the last
// samples.
func TestPlayOnceResampled(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "tone1k_44100_stereo_s16.wav"))
	require.NoError(t, err)
	src := c.Play(8000, false)
	require.Equal(t, 8000, src.SampleRate())
	out, err := readAll(t, src, 160, 1<<20)
	require.ErrorIs(t, err, io.EOF)
	require.InDelta(t, 800, len(out), 2)
	require.Greater(t, testmedia.Goertzel(out[80:720], 8000, 1000), 0.95)
	n, err := src.Read(make([]int16, 10))
	require.Equal(t, 0, n)
	require.ErrorIs(t, err, io.EOF)
}

// TestPlayLoop: a looped clip goes on past its end with the tone
// continuous: no block of it loses the tone and no step between samples
// exceeds a clean tone's by much (a click would).
func TestPlayLoop(t *testing.T) {
	for _, name := range []string{"tone1k_8000_ulaw.wav", "tone1k_48000.opus", "tone1k_44100.mp3"} {
		c, err := Load(filepath.Join("testdata", name))
		require.NoError(t, err)
		src := c.Play(8000, true)
		out, err := readAll(t, src, 160, 8000*3)
		require.NoError(t, err, name)
		require.Len(t, out, 8000*3)
		for i := 0; i+160 <= len(out); i += 160 {
			require.Greater(t, testmedia.Goertzel(out[i:i+160], 8000, 1000), 0.9, "%s block at %d", name, i)
		}
		ref := testmedia.Tone(1000, 8000, 0, 800, 0.125)
		require.Less(t, maxStep(out[200:]), maxStep(ref)*13/10, name)
	}
}

// TestPlayLoopSeam: a clip whose end does not meet its start (a tone cut
// mid-cycle) loops without a click thanks to the cross-fade, and plays at
// its own rate when rate is zero.
func TestPlayLoopSeam(t *testing.T) {
	tone := testmedia.Tone(440, 8000, 0, 8000/440*40+3, 0.5) // 3 samples into a cycle
	c := &Clip{SampleRate: 8000, Samples: tone}
	require.Greater(t, maxStep(append(append([]int16(nil), tone...), tone...)), maxStep(tone)*2, "the seam would click")
	out, err := readAll(t, c.Play(0, true), 333, len(tone)*5)
	require.NoError(t, err)
	require.LessOrEqual(t, maxStep(out), maxStep(tone)*11/10)
	// Period: the clip less the 10 ms cross-fade.
	p := len(tone) - 80
	require.Equal(t, out[100:400], out[p+100:p+400])
}

func TestPlayEdgeCases(t *testing.T) {
	// An empty clip ends at once, looped too.
	for _, loop := range []bool{false, true} {
		n, err := (&Clip{SampleRate: 8000}).Play(8000, loop).Read(make([]int16, 160))
		require.Equal(t, 0, n)
		require.ErrorIs(t, err, io.EOF)
	}
	// A short clip (no cross-fade) loops whole.
	c := &Clip{SampleRate: 8000, Samples: []int16{1, 2, 3}}
	out, err := readAll(t, c.Play(8000, true), 4, 12)
	require.NoError(t, err)
	require.Equal(t, []int16{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}, out)
	// Rates out of range fail on Read.
	for _, src := range []Source{c.Play(500, false), (&Clip{SampleRate: 0, Samples: []int16{1}}).Play(8000, false)} {
		_, err := src.Read(make([]int16, 10))
		require.ErrorIs(t, err, ErrRate)
	}
}

// sliceSource is a Source over samples, returning at most chunk per read
// (0 for a gap when gap is set on that read).
type sliceSource struct {
	rate  int
	s     []int16
	chunk int
	gaps  map[int]bool
	reads int
	err   error
}

func (s *sliceSource) SampleRate() int { return s.rate }
func (s *sliceSource) Read(p []int16) (int, error) {
	s.reads++
	if s.gaps[s.reads] {
		return 0, nil
	}
	if len(s.s) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.chunk)], s.s)
	s.s = s.s[n:]
	return n, nil
}

// TestMix: two tones sum (both found), saturation clips instead of
// wrapping, the mix ends with its longest source, and a source at another
// rate is resampled.
func TestMix(t *testing.T) {
	a := (&Clip{SampleRate: 8000, Samples: testmedia.Tone(600, 8000, 0, 800, 0.3)}).Play(8000, false)
	b := (&Clip{SampleRate: 16000, Samples: testmedia.Tone(1400, 16000, 0, 3200, 0.3)}).Play(16000, false)
	m, err := Mix(a, nil, b)
	require.NoError(t, err)
	require.Equal(t, 8000, m.SampleRate())
	out, err := readAll(t, m, 160, 1<<20)
	require.ErrorIs(t, err, io.EOF)
	require.InDelta(t, 1600, len(out), 2)
	both := out[100:700]
	require.InDelta(t, 0.5, testmedia.Goertzel(both, 8000, 600), 0.05)
	require.InDelta(t, 0.5, testmedia.Goertzel(both, 8000, 1400), 0.05)
	require.Greater(t, testmedia.Goertzel(out[900:1500], 8000, 1400), 0.95)

	loud := &Clip{SampleRate: 8000, Samples: []int16{30000, -30000, 100}}
	m, err = Mix(loud.Play(0, false), loud.Play(0, false))
	require.NoError(t, err)
	buf := make([]int16, 8)
	n, err := m.Read(buf)
	require.Equal(t, 3, n)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, []int16{32767, -32768, 200}, buf[:3])

	_, err = Mix()
	require.Error(t, err)
	_, err = Mix(nil)
	require.Error(t, err)
}

// TestMixLive: a gap in one source is silence for it; a read where every
// source has nothing returns 0, nil; a failing source is dropped and its
// error reported once.
func TestMixLive(t *testing.T) {
	boom := errors.New("boom")
	x := &sliceSource{rate: 8000, s: []int16{1, 1, 1, 1}, chunk: 2, gaps: map[int]bool{1: true}}
	y := &sliceSource{rate: 8000, s: []int16{10, 10, 10, 10, 10, 10}, chunk: 4, gaps: map[int]bool{1: true}, err: boom}
	m, err := Mix(x, y)
	require.NoError(t, err)
	buf := make([]int16, 4)
	n, err := m.Read(buf)
	require.Equal(t, 0, n)
	require.NoError(t, err)
	n, err = m.Read(buf)
	require.NoError(t, err)
	require.Equal(t, []int16{11, 11, 10, 10}, buf[:n])
	n, err = m.Read(buf)
	require.NoError(t, err)
	require.Equal(t, []int16{11, 11}, buf[:n])
	n, err = m.Read(buf) // x ended, y failed
	require.Equal(t, 0, n)
	require.ErrorIs(t, err, boom)
	n, err = m.Read(buf)
	require.Equal(t, 0, n)
	require.ErrorIs(t, err, io.EOF)
}

// TestResample: a 16 kHz tone read through Resample at 8 kHz keeps its
// frequency and length; a short read of the source is a short read.
func TestResample(t *testing.T) {
	src := &sliceSource{rate: 16000, s: testmedia.Tone(1000, 16000, 0, 3200, 0.25), chunk: 1 << 20, gaps: map[int]bool{5: true}}
	r, err := Resample(src, 8000)
	require.NoError(t, err)
	require.Equal(t, 8000, r.SampleRate())
	var out []int16
	buf := make([]int16, 160)
	short := 0
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if n < len(buf) && err == nil {
			short++
		}
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
	}
	require.Equal(t, 1, short, "the gap")
	require.InDelta(t, 1600, len(out), 2)
	require.Greater(t, testmedia.Goertzel(out[100:1500], 8000, 1000), 0.95)
	same, err := Resample(src, 16000)
	require.NoError(t, err)
	require.Same(t, Source(src), same)
	_, err = Resample(src, 100)
	require.ErrorIs(t, err, ErrRate)
}

// TestPlayAllocs: reading a playing clip allocates nothing once its
// buffers have grown.
func TestPlayAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := &Clip{SampleRate: 44100, Samples: testmedia.Tone(1000, 44100, 0, 44100, 0.25)}
	src := c.Play(8000, true)
	buf := make([]int16, 160)
	for range 10 {
		_, _ = src.Read(buf)
	}
	allocs := testing.AllocsPerRun(200, func() { _, _ = src.Read(buf) })
	require.Zero(t, allocs)
}
