package testenv

import (
	"math"
	"testing"
	"time"
)

// KeyframeToneOffsets measures the A/V offset of file, a stream made from
// media whose every video keyframe and the onset of a tone burst share a
// capture instant (testmedia.Replayer with Burst: the clip's IDR each
// second, a tone for the first Burst of each second): for each keyframe,
// the nearest tone onset (ToneOnsets) minus the keyframe's time, both on
// the file's own timestamps (positive: audio late). Flashes counts the
// keyframes; a keyframe with no onset within 0.5 s (the start or end of
// the file) is left out and counted in Skipped.
func KeyframeToneOffsets(t testing.TB, file string) AVReport {
	t.Helper()
	onsets := ToneOnsets(t, file)
	var r AVReport
	for _, f := range VideoFrames(t, file) {
		if !f.Keyframe {
			continue
		}
		r.Flashes++
		best := math.Inf(1)
		for _, o := range onsets {
			if math.Abs(o-f.PTS) < math.Abs(best) {
				best = o - f.PTS
			}
		}
		if math.Abs(best) > 0.5 {
			r.Skipped++
			continue
		}
		r.Offsets = append(r.Offsets, time.Duration(best*float64(time.Second)).Round(100*time.Microsecond))
	}
	return r
}
