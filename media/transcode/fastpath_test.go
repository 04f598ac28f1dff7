package transcode

import (
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtpaudio"
)

// G.711 takes the encoder's band-limited fast path (12 kHz input, 4 kHz
// bandwidth at 48 kHz, 11025 Hz at 44.1 kHz); Opus arriving in that stream
// restarts it with a full-band encoder, and the stream stays well formed.
func TestG711FastPathThenOpus(t *testing.T) {
	for _, c := range []struct{ rate, in int }{{48000, 12000}, {44100, 11025}} {
		tr, err := NewToAAC(AACConfig{SampleRate: c.rate})
		if err != nil {
			t.Fatal(err)
		}
		col := &collector{}
		for _, f := range pcmaFrames(testmedia.Tone(1000, 8000, 0, 8000, 0.5), 0) {
			if err := tr.Write(f, col.emit); err != nil {
				t.Fatal(err)
			}
		}
		if want := (encMode{inRate: c.in, bw: 4000}); tr.encMode != want {
			t.Fatalf("%d Hz: G.711 encoder %+v, want %+v", c.rate, tr.encMode, want)
		}
		sil, err := rtpaudio.Silence(rtpaudio.Format{Codec: media.CodecOpus}, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 25; i++ {
			fr := &media.Frame{Codec: media.CodecOpus, PTS: time.Second + time.Duration(i)*20*time.Millisecond,
				Payload: sil, ClockRate: 48000, Channels: 1}
			if err := tr.Write(fr, col.emit); err != nil {
				t.Fatal(err)
			}
		}
		tr.Flush(col.emit)
		if want := (encMode{inRate: c.rate}); tr.encMode != want {
			t.Fatalf("%d Hz: Opus encoder %+v, want %+v", c.rate, tr.encMode, want)
		}
		for i := 1; i < len(col.frames); i++ {
			if col.frames[i].PTS <= col.frames[i-1].PTS {
				t.Fatalf("%d Hz: PTS %v after %v", c.rate, col.frames[i].PTS, col.frames[i-1].PTS)
			}
		}
		// The first stream (G.711) decodes to the tone.
		first := &collector{}
		for _, f := range col.frames {
			if f.PTS >= time.Second-50*time.Millisecond {
				break
			}
			first.frames = append(first.frames, f)
		}
		out, _ := decode(t, first, c.rate, 1)
		if g := testmedia.Goertzel(out[c.rate/4:c.rate*3/4], c.rate, 1000); g < 0.98 {
			t.Fatalf("%d Hz: Goertzel %.3f", c.rate, g)
		}
	}
}
