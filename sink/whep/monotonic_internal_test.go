package whep

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
)

// randomSchedule interleaves the test clip's video and PCMA audio with
// timestamps that misbehave the ways a lossy network and a restarting peer
// make them: duplicates, backward steps (below zero too), big forward
// jumps, gaps shorter than one RTP tick.
func randomSchedule(rng *rand.Rand, n int) []media.Frame {
	var out []media.Frame
	var clk [2]time.Duration
	for i := range n {
		k := rng.Intn(2)
		op := rng.Intn(8)
		if i == 0 {
			k, op = 1, 0 // a keyframe first, for viewers
		}
		switch op {
		case 0: // duplicate
		case 1:
			clk[k] -= time.Duration(rng.Intn(500)) * time.Millisecond
		case 2:
			clk[k] += time.Duration(rng.Intn(20000)) * time.Millisecond
		case 3:
			clk[k] += time.Duration(rng.Intn(20000)) * time.Nanosecond
		default:
			clk[k] += 20 * time.Millisecond
		}
		var f media.Frame
		if k == 1 {
			f = h264Frame(i % 50)
			if i == 0 {
				f = h264Frame(0)
			}
		} else {
			f = media.Frame{Codec: media.CodecPCMA, Keyframe: true, ClockRate: 8000, Channels: 1,
				Duration: 20 * time.Millisecond, Payload: make([]byte, 160)}
		}
		f.PTS, f.DTS = clk[k], clk[k]
		out = append(out, f)
	}
	return out
}

// monotonic checks that RTP timestamps of successive frames of one track
// strictly increase (modulo 2^32, as RTP compares them).
type monotonic struct {
	last    map[media.Kind]uint32
	started map[media.Kind]bool
}

func (m *monotonic) check(t *testing.T, kind media.Kind, ts uint32, what string) {
	t.Helper()
	if m.last == nil {
		m.last, m.started = map[media.Kind]uint32{}, map[media.Kind]bool{}
	}
	if m.started[kind] && int32(ts-m.last[kind]) <= 0 {
		t.Fatalf("%s: %v RTP timestamp %d after %d", what, kind, ts, m.last[kind])
	}
	m.last[kind], m.started[kind] = ts, true
}

func TestPacketizeMonotonic(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		p, err := newPacketizer(1200, rng.Uint32(), rng.Uint32())
		if err != nil {
			t.Fatal(err)
		}
		var m monotonic
		for i, f := range randomSchedule(rng, 500) {
			u, err := p.packetize(&f)
			if err != nil {
				t.Fatal(err)
			}
			m.check(t, u.kind, u.ts, fmt.Sprintf("seed %d frame %d", seed, i))
		}
	}
}

// RandomScheduleForTest lets the external tests use randomSchedule.
var RandomScheduleForTest = randomSchedule
