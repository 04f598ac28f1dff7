package media_test

import (
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

func TestDTSGuardUnits(t *testing.T) {
	var g media.DTSGuard
	require.EqualValues(t, 1, g.Units(1999*time.Microsecond))
	require.EqualValues(t, -1, g.Units(-time.Microsecond))
	require.EqualValues(t, 0, g.Units(0))
	g90 := media.DTSGuard{Rate: 90000}
	require.EqualValues(t, 90000*3, g90.Units(3*time.Second))
	require.EqualValues(t, 2, g90.Units(25*time.Microsecond))
	// No overflow at the extremes.
	require.Greater(t, g90.Units(time.Duration(1<<62)), int64(0))
}

func TestDTSGuardCases(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want []int64
	}{
		{"increasing", []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond}, []int64{0, 20, 40}},
		{"equal", []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond}, []int64{10, 11, 30}},
		{"sub-millisecond", []time.Duration{10100 * time.Microsecond, 10900 * time.Microsecond, 11 * time.Millisecond}, []int64{10, 11, 12}},
		{"backwards then catch up", []time.Duration{100 * time.Millisecond, 60 * time.Millisecond, 80 * time.Millisecond, 120 * time.Millisecond}, []int64{100, 101, 102, 120}},
		{"negative", []time.Duration{-5 * time.Millisecond, -5 * time.Millisecond, 0}, []int64{-5, -4, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g media.DTSGuard
			var got []int64
			for _, d := range tc.in {
				got = append(got, g.Next(d))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestDTSGuardProperty feeds random schedules (equal timestamps, backward
// steps, big jumps, sub-unit gaps) and checks strict increase, that no
// output is ever behind its input, and that the output catches up with the
// input once the input is ahead again.
func TestDTSGuardProperty(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		g := media.DTSGuard{Rate: []int64{1000, 90000, 8000, 48000}[seed%4]}
		var d time.Duration
		prev, started := int64(0), false
		for i := 0; i < 500; i++ {
			switch rng.Intn(6) {
			case 0: // equal
			case 1:
				d -= time.Duration(rng.Intn(200)) * time.Millisecond
			case 2:
				d += time.Duration(rng.Intn(10)) * time.Second
			case 3:
				d += time.Duration(rng.Intn(1000)) * time.Microsecond
			default:
				d += 20 * time.Millisecond
			}
			pts := d + time.Duration(rng.Intn(3))*40*time.Millisecond
			p, u := g.Stamp(pts, d)
			in := g.Units(d)
			require.GreaterOrEqual(t, u, in, "seed %d", seed)
			require.GreaterOrEqual(t, p, u, "seed %d", seed)
			if started {
				require.Greater(t, u, prev, "seed %d step %d", seed, i)
				if in > prev {
					require.Equal(t, in, u, "an input ahead of the output passes unchanged")
				}
			}
			prev, started = u, true
		}
	}
}

func TestDTSGuardReset(t *testing.T) {
	var g media.DTSGuard
	require.EqualValues(t, 50, g.Next(50*time.Millisecond))
	require.EqualValues(t, 51, g.Next(50*time.Millisecond))
	require.EqualValues(t, 1, g.Nudged())
	g.Reset()
	_, ok := g.Last()
	require.False(t, ok)
	require.EqualValues(t, 10, g.Next(10*time.Millisecond))
}

func BenchmarkDTSGuard(b *testing.B) {
	var g media.DTSGuard
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		g.Stamp(time.Duration(i)*time.Millisecond, time.Duration(i&^1)*time.Millisecond)
	}
}
