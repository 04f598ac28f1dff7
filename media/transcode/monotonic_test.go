package transcode

import (
	"math/rand"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/aac"
)

// TestOutputStrictlyIncreasing drives ToAAC with random schedules:
// duplicates, backward steps, negative times, gaps longer than MaxGap
// (restarts), explicit Flush and Silence calls, G.711 and Opus mixed. The
// AAC frames must come out with strictly increasing PTS (DTS = PTS), at
// least a millisecond apart, and decodable.
func TestOutputStrictlyIncreasing(t *testing.T) {
	opusSilence := []byte{0xf8, 0xff, 0xfe} // 20 ms CELT silence
	for seed := int64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewSource(seed))
		tr, err := NewToAAC(AACConfig{MaxGap: time.Duration(50+rng.Intn(500)) * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := aac.NewDecoder(48000, 1)
		var prev time.Duration
		n := 0
		emit := func(f *media.Frame) {
			if f.DTS != f.PTS {
				t.Fatalf("seed %d: DTS %v != PTS %v", seed, f.DTS, f.PTS)
			}
			if n > 0 && f.PTS < prev+time.Millisecond {
				t.Fatalf("seed %d frame %d: PTS %v after %v", seed, n, f.PTS, prev)
			}
			if _, err := dec.Decode(nil, f.Payload); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			prev = f.PTS
			n++
		}
		pts := time.Duration(rng.Intn(3)) * 10 * time.Millisecond
		for i := 0; i < 400; i++ {
			switch rng.Intn(12) {
			case 0: // duplicate
			case 1:
				pts -= time.Duration(rng.Intn(300)) * time.Millisecond
			case 2:
				pts += time.Duration(rng.Intn(3000)) * time.Millisecond
			case 3:
				tr.Flush(emit)
			case 4:
				tr.Silence(pts+time.Duration(rng.Intn(100))*time.Millisecond, emit)
			default:
				pts += 20 * time.Millisecond
			}
			f := media.Frame{Codec: media.CodecPCMA, PTS: pts, DTS: pts, ClockRate: 8000, Channels: 1,
				Payload: make([]byte, 160)}
			if rng.Intn(3) == 0 {
				f = media.Frame{Codec: media.CodecOpus, PTS: pts, DTS: pts, ClockRate: 48000, Channels: 1, Payload: opusSilence}
			}
			if err := tr.Write(&f, emit); err != nil {
				t.Fatal(err)
			}
		}
		tr.Flush(emit)
		if n < 100 {
			t.Fatalf("seed %d: only %d frames", seed, n)
		}
	}
}

// A stream that starts at zero has no room for its priming frame: it is
// left out rather than stamped on top of the first frame.
func TestStreamAtZero(t *testing.T) {
	tr, _ := NewToAAC(AACConfig{})
	c := &collector{}
	for _, f := range pcmaFrames(testmedia.Tone(440, 8000, 0, 8000, 0.5), 0) {
		if err := tr.Write(f, c.emit); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.frames) == 0 || c.frames[0].PTS != 0 || c.frames[1].PTS <= c.frames[0].PTS {
		t.Fatalf("first frames at %v, %v", c.frames[0].PTS, c.frames[1].PTS)
	}
}
