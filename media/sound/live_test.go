package sound

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
)

// pcmaFrames returns a 1 kHz tone as 20 ms PCMA frames at 8 kHz with
// their PTS.
func pcmaFrames(n int) []media.Frame {
	tone := testmedia.Tone(1000, 8000, 0, 160*n, 0.25)
	out := make([]media.Frame, n)
	for i := range out {
		out[i] = media.Frame{
			Codec: media.CodecPCMA, ClockRate: 8000, Channels: 1,
			PTS: time.Duration(i) * 20 * time.Millisecond, Duration: 20 * time.Millisecond,
			Payload: g711.EncodeALaw(nil, tone[i*160:(i+1)*160]),
		}
	}
	return out
}

// opusFrames returns the packets of an Ogg Opus test file as frames.
func opusFrames(t testing.TB, name string) []media.Frame {
	var out []media.Frame
	n := 0
	_, err := oggPackets(readTestdata(t, name), func(p []byte) error {
		n++
		if n > 2 {
			out = append(out, media.Frame{Codec: media.CodecOpus, ClockRate: 48000, PTS: time.Duration(len(out)) * 20 * time.Millisecond, Payload: append([]byte(nil), p...)})
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// TestLiveTone: PCMA at 8 kHz and Opus at 48 kHz (mono and stereo
// packets) written into Lives at 16 and 8 kHz come out as the tone,
// resampled, in step with the frames.
func TestLiveTone(t *testing.T) {
	for _, c := range []struct {
		name   string
		rate   int
		frames []media.Frame
	}{
		{"pcma", 16000, pcmaFrames(25)},
		{"opus", 8000, opusFrames(t, "tone1k_48000.opus")[:25]},
		{"opus stereo", 8000, opusFrames(t, "tone1k_48000_stereo.opus")[:25]},
	} {
		l, err := NewLive(c.rate)
		require.NoError(t, err)
		require.Equal(t, c.rate, l.SampleRate())
		per := c.rate / 50
		var out []int16
		buf := make([]int16, per)
		for i := range c.frames {
			require.NoError(t, l.WriteFrame(&c.frames[i]))
			n, err := l.Read(buf)
			require.NoError(t, err)
			out = append(out, buf[:n]...)
		}
		// Everything written came out but the prebuffer (and the
		// resampler's latency).
		require.InDelta(t, 25*per-2*per, len(out), float64(per)/5, c.name)
		require.Greater(t, testmedia.Goertzel(out[per:], c.rate, 1000), 0.9, c.name)
		require.Equal(t, uint64(25), l.Stats().Frames)
	}
}

// TestLivePrebufferAndUnderrun: Read gives nothing until 40 ms are
// buffered, again after running dry, and a partial read counts an
// underrun.
func TestLivePrebufferAndUnderrun(t *testing.T) {
	l, err := NewLive(8000)
	require.NoError(t, err)
	fr := pcmaFrames(10)
	buf := make([]int16, 160)
	require.NoError(t, l.WriteFrame(&fr[0]))
	n, err := l.Read(buf)
	require.Equal(t, 0, n)
	require.NoError(t, err)
	require.NoError(t, l.WriteFrame(&fr[1]))
	n, _ = l.Read(buf)
	require.Equal(t, 160, n)
	n, _ = l.Read(make([]int16, 200))
	require.Equal(t, 160, n, "what is left")
	require.Equal(t, uint64(1), l.Stats().Underruns)
	require.NoError(t, l.WriteFrame(&fr[2]))
	n, _ = l.Read(buf)
	require.Equal(t, 0, n, "prebuffering again")
}

// TestLiveBounded: a reader that stops reading leaves at most 200 ms
// buffered, the newest; the oldest are dropped and counted.
func TestLiveBounded(t *testing.T) {
	l, err := NewLive(8000)
	require.NoError(t, err)
	fr := pcmaFrames(50) // 1 s
	for i := range fr {
		require.NoError(t, l.WriteFrame(&fr[i]))
	}
	buf := make([]int16, 8000)
	n, err := l.Read(buf)
	require.NoError(t, err)
	require.Equal(t, 1600, n)
	require.Equal(t, uint64(8000-1600), l.Stats().Dropped)
	want := g711.DecodeALaw(nil, fr[40].Payload)
	require.Equal(t, want, buf[:160], "the newest 200 ms are kept")
	// One huge frame keeps its end.
	big := media.Frame{Codec: media.CodecPCMU, Payload: make([]byte, 4000), PTS: time.Hour}
	big.Payload[3999] = 0x80
	require.NoError(t, l.WriteFrame(&big))
	n, _ = l.Read(buf)
	require.Equal(t, 1600, n)
	require.Equal(t, g711.ULawToLinear(0x80), buf[1599])
}

// TestLiveGapsAndDuplicates: a lost frame becomes silence of its length;
// a duplicate frame is dropped; a jump beyond 200 ms is not filled.
func TestLiveGapsAndDuplicates(t *testing.T) {
	l, err := NewLive(8000)
	require.NoError(t, err)
	fr := pcmaFrames(10)
	require.NoError(t, l.WriteFrame(&fr[0]))
	require.NoError(t, l.WriteFrame(&fr[2])) // fr[1] lost
	require.NoError(t, l.WriteFrame(&fr[2])) // duplicate
	fr[3].PTS += time.Second
	require.NoError(t, l.WriteFrame(&fr[3]))
	st := l.Stats()
	require.Equal(t, uint64(160), st.GapSamples)
	require.Equal(t, uint64(3), st.Frames)
	buf := make([]int16, 1000)
	n, _ := l.Read(buf)
	require.Equal(t, 640, n)
	require.Equal(t, make([]int16, 160), buf[160:320])
}

func TestLiveErrors(t *testing.T) {
	_, err := NewLive(10)
	require.ErrorIs(t, err, ErrRate)
	l, err := NewLive(8000)
	require.NoError(t, err)
	for _, f := range []media.Frame{
		{Codec: media.CodecSpeex, Payload: []byte{1, 2}},
		{Codec: media.CodecH264, Payload: []byte{1, 2}},
		{Codec: media.CodecOpus},
		{Codec: media.CodecOpus, Payload: []byte{0xff, 0xff, 0xff}},
		{Codec: media.CodecPCMA, ClockRate: 10, Payload: []byte{1}},
	} {
		require.ErrorIs(t, l.WriteFrame(&f), ErrCodec, "%v", f.Codec)
	}
	require.Equal(t, uint64(5), l.Stats().BadFrames)
	// Still usable.
	fr := pcmaFrames(2)
	require.NoError(t, l.WriteFrame(&fr[0]))
	require.NoError(t, l.WriteFrame(&fr[1]))
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.WriteFrame(&fr[0]), ErrLiveClosed)
	buf := make([]int16, 200)
	n, err := l.Read(buf)
	require.Equal(t, 200, n)
	require.NoError(t, err)
	n, err = l.Read(buf)
	require.Equal(t, 120, n)
	require.ErrorIs(t, err, io.EOF)
	n, err = l.Read(buf)
	require.Equal(t, 0, n)
	require.ErrorIs(t, err, io.EOF)
}

// TestLiveConcurrent: one goroutine writes 20 ms frames on a ticker while
// another reads 20 ms on its own (under -race: no data race); the reader
// gets the tone.
func TestLiveConcurrent(t *testing.T) {
	l, err := NewLive(8000)
	require.NoError(t, err)
	fr := pcmaFrames(50)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for i := range fr {
			<-tk.C
			_ = l.WriteFrame(&fr[i])
		}
		_ = l.Close()
	}()
	var out []int16
	buf := make([]int16, 160)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := l.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		time.Sleep(4 * time.Millisecond)
	}
	wg.Wait()
	require.Greater(t, len(out), 4000)
	require.Greater(t, testmedia.Goertzel(out, 8000, 1000), 0.9)
}
