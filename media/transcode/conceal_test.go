package transcode

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// toneEnergy is the energy at freq per sample.
func toneEnergy(s []int16, freq float64) float64 {
	r := rms(s)
	return testmedia.Goertzel(s, 48000, freq) * r * r
}

// maxStep is the largest sample-to-sample jump in s.
func maxStep(s []int16) int {
	m := 0
	for i := 1; i < len(s); i++ {
		d := int(s[i]) - int(s[i-1])
		if d < 0 {
			d = -d
		}
		m = max(m, d)
	}
	return m
}

// concealRun sends 2 s of a tone as 20 ms PCMA packets from PTS 1 s with
// packets [from, from+lost) missing, and returns the decoded AAC (48 kHz)
// aligned with the input: sample 0 is PTS 1 s.
func concealRun(t *testing.T, freq float64, from, lost int) []int16 {
	t.Helper()
	tr, err := NewToAAC(AACConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	for i, f := range pcmaFrames(testmedia.Tone(freq, 8000, 0, 16000, 0.5), time.Second) {
		if i >= from && i < from+lost {
			continue
		}
		if err := tr.Write(f, c.emit); err != nil {
			t.Fatal(err)
		}
	}
	tr.Flush(c.emit)
	out, pts := decode(t, c, 48000, 1) // also checks PTS continuity
	if pts != time.Second {
		t.Fatalf("stream starts at %v", pts)
	}
	if got := time.Duration(len(out)) * time.Second / 48000; got < 2*time.Second {
		t.Fatalf("decoded %v, want 2 s: the timeline moved", got)
	}
	return out
}

// TestConcealShortGaps removes 1, 2 and 3 consecutive 20 ms packets from a
// 440 Hz and a 1 kHz tone: the tone must carry on through the hole (for
// one lost packet at least half its energy, as G.711 Appendix I's full
// level for 10 ms then fading gives) and neither splice may click (no
// sample-to-sample jump much larger than the tone's own).
func TestConcealShortGaps(t *testing.T) {
	const from = 50 // the hole starts 1 s into the stream
	for _, freq := range []float64{440, 1000} {
		for lost := 1; lost <= 3; lost++ {
			t.Run(fmt.Sprintf("%.0fHz/%d lost", freq, lost), func(t *testing.T) {
				out := concealRun(t, freq, from, lost)
				at := func(d time.Duration) int { return int(d * 48000 / time.Second) }
				g0, g1 := at(time.Second), at(time.Second+time.Duration(lost)*20*time.Millisecond)
				ref := toneEnergy(out[at(500*time.Millisecond):at(900*time.Millisecond)], freq)
				gap := toneEnergy(out[g0:g1], freq)
				ratio := gap / ref
				t.Logf("tone energy in the hole: %.0f %% of the surrounding level", 100*ratio)
				want := 0.5
				if lost > 1 {
					want = 0.3 // fading from 10 ms on
				}
				if ratio < want {
					t.Fatalf("tone energy in the hole %.2f of the surrounding level, want ≥ %.2f", ratio, want)
				}
				clean := maxStep(out[at(500*time.Millisecond):at(900*time.Millisecond)])
				w := at(3 * time.Millisecond)
				for _, s := range []int{g0, g1} {
					if j := maxStep(out[s-w : s+w]); float64(j) > 1.5*float64(clean) {
						t.Fatalf("click at sample %d: jump %d, the tone's own steps reach %d", s, j, clean)
					}
				}
				after := toneEnergy(out[g1+at(10*time.Millisecond):g1+at(200*time.Millisecond)], freq)
				if after/ref < 0.9 {
					t.Fatalf("tone after the hole at %.2f of its level", after/ref)
				}
			})
		}
	}
}

// TestConcealLongGapEndsInSilence: a 500 ms hole fades out within 60 ms and
// stays silent, the tone comes back where it belongs on the timeline.
func TestConcealLongGapEndsInSilence(t *testing.T) {
	out := concealRun(t, 1000, 50, 25)
	at := func(d time.Duration) int { return int(d * 48000 / time.Second) }
	if g := testmedia.Goertzel(out[at(1000*time.Millisecond):at(1010*time.Millisecond)], 48000, 1000); g < 0.9 {
		t.Fatalf("start of the hole not concealed: Goertzel %.2f", g)
	}
	if e := rms(out[at(1065*time.Millisecond):at(1495*time.Millisecond)]); e > 50 {
		t.Fatalf("long hole not silent after the fade: rms %.0f", e)
	}
	// The tone resumes at 1.5 s, not earlier or later.
	if e := rms(out[at(1490*time.Millisecond):at(1498*time.Millisecond)]); e > 300 {
		t.Fatalf("tone before its time: rms %.0f", e)
	}
	if g := testmedia.Goertzel(out[at(1510*time.Millisecond):at(1900*time.Millisecond)], 48000, 1000); g < 0.95 {
		t.Fatalf("tone after the hole: Goertzel %.2f", g)
	}
}

// TestConcealOpusPath checks concealment on the Opus path's PCM (48 kHz,
// stereo input downmixed): the concealer is fed directly, as the Opus
// decoder's output would be.
func TestConcealOpusPath(t *testing.T) {
	var c concealer
	c.reset(48000, 2)
	tone := testmedia.Tone(440, 48000, 0, 48000/10, 0.5)
	st := make([]int16, 0, 2*len(tone))
	for _, v := range tone {
		st = append(st, v, v)
	}
	c.record(st)
	if !c.begin() {
		t.Fatal("no concealment from a tone")
	}
	out := make([]int16, 2*960)
	n := c.fill(out)
	if n != 960 {
		t.Fatalf("filled %d frames", n)
	}
	mono := make([]int16, n)
	for i := range mono {
		mono[i] = out[2*i]
	}
	if g := testmedia.Goertzel(mono[:480], 48000, 440); g < 0.9 {
		t.Fatalf("concealed audio is not the tone: Goertzel %.2f", g)
	}
	// Continuous with the history: the first concealed sample follows the
	// last real one as the tone would.
	next := float64(testmedia.Tone(440, 48000, len(tone), 1, 0.5)[0])
	if d := math.Abs(float64(mono[0]) - next); d > 0.05*16384 {
		t.Fatalf("splice off by %.0f", d)
	}
}

var _ = media.CodecPCMA
