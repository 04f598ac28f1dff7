//go:build interop

package main

import (
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInteropLoadtest runs the tool end to end: two calls through the
// in-process gateway and one ffmpeg per call for one call, all published
// to the embedded RTMP receiver in the callee child (this test binary
// re-executed, see TestMain).
func TestInteropLoadtest(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is required (installed in CI): %v", err)
	}
	var stdout, stderr strings.Builder
	code := run([]string{"-n", "2", "-ffmpeg-n", "1", "-duration", "4s", "-warmup", "2s"}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	require.Equal(t, 0, code)

	var sum summary
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &sum), "stdout is one JSON object:\n%s", stdout.String())
	require.Len(t, sum.Results, 2)
	modes := map[string]*result{}
	for _, r := range sum.Results {
		modes[r.Mode] = r
	}
	for _, mode := range []string{modeOurs, modeFFmpeg} {
		r := modes[mode]
		require.NotNil(t, r, mode)
		t.Run(mode, func(t *testing.T) {
			assert.Empty(t, r.Problems)
			assert.Equal(t, r.CallsPlaced, r.CallsOK, "every call established")
			assert.Zero(t, r.CallsFailed)
			assert.Greater(t, r.CPUS, 0.0)
			assert.Greater(t, r.CPUPerStreamSecond, 0.0)
			assert.Greater(t, r.CalleeCPUS, 0.0)
			assert.Greater(t, r.MemPerCallMB, 0.0)
			assert.Greater(t, r.WindowS, 3.9)
			rs := r.Receiver
			require.NotNil(t, rs)
			assert.Equal(t, r.N, rs.StreamsReceived, "video for every stream")
			assert.Greater(t, rs.MinVideoFrames, int64(80), "4 s at 25 fps for every stream")
			assert.Greater(t, rs.MinAudioFrames, int64(0), "audio for every stream")
			assert.Zero(t, rs.Unmarked, "every picture carried the marker")
			assert.Greater(t, rs.Latency.N, 80*r.N)
			for _, v := range []float64{rs.Latency.Median, rs.Latency.P99, rs.Latency.Max} {
				assert.False(t, math.IsNaN(v) || math.IsInf(v, 0))
				assert.Greater(t, v, 0.0)
				assert.Less(t, v, 5000.0)
			}
			assert.False(t, math.IsNaN(rs.AVOffset))
			assert.InDelta(t, 1000, rs.KeyInterval.Median, 1, "the clip's IDR every second")
		})
	}
	ours := modes[modeOurs]
	assert.Equal(t, 2, ours.StreamsActive, "both RTMP legs ACTIVE")
	require.NotNil(t, ours.PacketsLost)
	assert.Greater(t, ours.RSSAfterMB, 0.0)
	assert.Empty(t, sum.Ratios, "no ratio: the counts differ")
}

// TestInteropLoadtestRatio measures both modes at the same count so the
// ratio is printed.
func TestInteropLoadtestRatio(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is required (installed in CI): %v", err)
	}
	var stdout, stderr strings.Builder
	code := run([]string{"-n", "1", "-ffmpeg-n", "1", "-duration", "2s", "-warmup", "1s", "-webrtc", "-audio", "passthrough"}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	require.Equal(t, 0, code)
	var sum summary
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &sum))
	require.Len(t, sum.Ratios, 1)
	assert.Equal(t, 1, sum.Ratios[0].N)
	assert.Greater(t, sum.Ratios[0].CPU, 0.0)
	assert.Contains(t, stderr.String(), "ratio: at 1 calls")
	assert.True(t, sum.WebRTC)
	assert.Equal(t, "passthrough", sum.Audio)
	for _, r := range sum.Results {
		assert.Empty(t, r.Problems, r.Mode)
	}
}
