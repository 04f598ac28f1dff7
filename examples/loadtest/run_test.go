package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runTool runs the tool with args, requires it to succeed and returns its
// JSON summary and its stderr (logged).
func runTool(t *testing.T, args ...string) (*summary, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(args, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	require.Equal(t, 0, code)
	var sum summary
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &sum), "stdout is one JSON object:\n%s", stdout.String())
	return &sum, stderr.String()
}

// TestRunBothDirectionsWithFlood runs the tool small and in-process: two
// calls placed by the gateway, then two placed by the load caller (this
// test binary re-executed as "-role caller", see TestMain) to the gateway,
// each round with a slow flood of 100 INVITEs from a third process. The
// gateway answers its two callers (127.0.0.1) and challenges the flood
// (127.x.y.z); both rounds' streams reach the embedded receiver.
func TestRunBothDirectionsWithFlood(t *testing.T) {
	sum, stderr := runTool(t, "-direction", "both", "-n", "2", "-duration", "2s", "-warmup", "500ms",
		"-flood", "100", "-flood-rate", "100", "-flood-before", "1s", "-flood-sources", "30", "-settle", "6s")
	assert.Equal(t, []string{dirOut, dirIn}, sum.Directions)
	require.Len(t, sum.Results, 2)
	for i, dir := range []string{dirOut, dirIn} {
		r := sum.Results[i]
		assert.Equal(t, dir, r.Direction)
		assert.Empty(t, r.Problems, dir)
		assert.Equal(t, 2, r.CallsOK, dir)
		assert.Equal(t, 2, r.StreamsActive, dir)
		require.NotNil(t, r.Receiver, dir)
		assert.Equal(t, 2, r.Receiver.StreamsReceived, dir)
		assert.Greater(t, r.Receiver.MinVideoFrames, int64(35), "%s: 2 s at 25 fps", dir)
		assert.Positive(t, r.CPUPerStreamSecond, dir)
		f := r.Flood
		require.NotNil(t, f, dir)
		require.NotNil(t, f.Result, dir)
		assert.Equal(t, 100, f.Result.Sent, dir)
		assert.Equal(t, 30, f.Result.Sources, dir)
		assert.Equal(t, map[string]int{"401": 100}, f.Result.ByStatus, "%s: strangers are challenged", dir)
		assert.Equal(t, uint64(100), f.Gateway["unauthorized"], dir)
		assert.Zero(t, f.Gateway["answered"], dir)
		require.NotNil(t, f.During, dir)
		assert.Equal(t, 2, f.During.Streams, dir)
		assert.False(t, f.Harmed, dir)
		assert.Positive(t, f.GoroutinesBefore, dir)
		assert.Positive(t, f.FDsBefore, dir)
		assert.Positive(t, f.GatewayStallMs, "%s: the gateway's scheduling delay measured", dir)
		assert.Less(t, f.GatewayStallMs, 500.0, dir)
	}
	assert.Contains(t, stderr, "sip-in ")
	assert.Contains(t, stderr, "flood during 2 in calls: flood 100 INVITEs")
}
