package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media/aac"
	"github.com/sipstream/sipstream/media/g711"
)

// markedTone returns d ms of the callee's tone at rate Hz with a markGap
// ms silence starting at each of gaps (ms).
func markedTone(rate int, d float64, gaps []float64) []int16 {
	pcm := make([]int16, int(d*float64(rate)/1000))
	for i := range pcm {
		t := float64(i) * 1000 / float64(rate)
		silent := false
		for _, g := range gaps {
			silent = silent || (t >= g && t < g+markGap)
		}
		if !silent {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*float64(i)*1000/float64(rate)))
		}
	}
	return pcm
}

func TestFindGaps(t *testing.T) {
	gaps := []float64{100, 1100, 2100.5}
	for _, rate := range []int{8000, 48000} {
		got := findGaps(markedTone(rate, 3000, gaps), rate)
		require.Len(t, got, len(gaps), "%d Hz", rate)
		for i, g := range got {
			assert.InDelta(t, gaps[i], g*1000/float64(rate), 1000/float64(rate), "%d Hz gap %d", rate, i)
		}
	}
	// Not markers: the tone alone, a gap cut by the end, a too short and
	// a too long silence.
	assert.Empty(t, findGaps(markedTone(8000, 1000, nil), 8000))
	assert.Empty(t, findGaps(markedTone(8000, 1000, []float64{990}), 8000))
	short := markedTone(8000, 1000, nil)
	clear(short[800:840]) // 5 ms
	long := markedTone(8000, 1000, nil)
	clear(long[800:1200]) // 50 ms
	assert.Empty(t, findGaps(short, 8000))
	assert.Empty(t, findGaps(long, 8000))
	assert.Empty(t, findGaps(make([]int16, 8000), 8000), "silence only")
}

// TestSyncThroughG711 is the passthrough path: A-law tags of 20 ms
// stamped with their media time, pictures stamped 7 ms later than theirs:
// audio 7 ms early.
func TestSyncThroughG711(t *testing.T) {
	pcm := markedTone(8000, 4000, []float64{1000, 2000, 3000})
	tr := &avTrack{codec: 7, pics: []float64{1007, 2007, 3007, 4007}}
	for k := 0; k+160 <= len(pcm); k += 160 {
		tr.audio = append(tr.audio, audioTag{ts: float64(k / 8), data: g711.EncodeALaw(nil, pcm[k:k+160])})
	}
	s := measureSync([]*avTrack{tr})
	require.NotNil(t, s)
	assert.Empty(t, s.Errors)
	assert.Equal(t, "media/g711", s.Decoder)
	assert.Equal(t, 3, s.Markers)
	assert.InDelta(t, -7, s.Median, 0.2, "audio 7 ms before its picture")
	assert.InDelta(t, 7, s.MaxAbs, 0.2)
}

// TestSyncThroughAAC encodes the marked tone with media/aac at 48 kHz and
// stamps access units as sipstream does (shifted by the encoder's delay,
// so that the priming frame sits one frame before media time zero): the
// decoded markers land on their pictures within a millisecond or two.
func TestSyncThroughAAC(t *testing.T) {
	const rate = 48000
	enc, err := aac.NewEncoder(aac.EncoderConfig{SampleRate: rate})
	require.NoError(t, err)
	gaps := []float64{500, 1500, 2500, 3500}
	pcm := markedTone(rate, 4500, gaps)
	aus, err := enc.Encode(pcm)
	require.NoError(t, err)
	tr := &avTrack{codec: 10, asc: enc.AudioSpecificConfig()}
	delay := float64(enc.Delay().Microseconds()) / 1000
	for k, au := range aus {
		tr.audio = append(tr.audio, audioTag{ts: float64(k*aac.FrameSamples)*1000/rate - delay, data: au})
	}
	tr.pics = gaps
	s := measureSync([]*avTrack{tr})
	require.NotNil(t, s)
	assert.Empty(t, s.Errors)
	assert.Equal(t, "media/aac", s.Decoder)
	assert.GreaterOrEqual(t, s.Markers, 3, "the markers the encoded stream holds")
	assert.Less(t, s.MaxAbs, 2.0, "median %.2f ms", s.Median)

	// The same stream stamped without the shift: audio one frame late.
	for k := range tr.audio {
		tr.audio[k].ts += delay
	}
	s = measureSync([]*avTrack{tr})
	assert.InDelta(t, delay, s.Median, 2)
}

func TestSyncOffsets(t *testing.T) {
	pics := []float64{3000, 1000, 2000}
	got := syncOffsets([]float64{1010, 1995, 2500, 5000}, pics)
	assert.Equal(t, []float64{10, -5}, got, "2500 and 5000 pair with no picture")
	assert.Empty(t, syncOffsets([]float64{1}, nil))
}

func TestTimelineTimeAt(t *testing.T) {
	tl := &pcmTimeline{rate: 8000, starts: []int{0, 160, 320}, ts: []float64{100, 120, 150}}
	assert.Equal(t, 100.0, tl.timeAt(0))
	assert.Equal(t, 110.0, tl.timeAt(80))
	assert.Equal(t, 120.0, tl.timeAt(160))
	assert.Equal(t, 155.0, tl.timeAt(360), "a timestamp jump is followed")
}
