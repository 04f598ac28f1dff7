//go:build interop

package rtpvp8_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/internal/testenv"
)

// TestInteropLossyVP8DecodesWithFFmpeg runs the VP8 clip through 5 % loss,
// 30 ms jitter and 2 % reordering, writes the emitted frames to an IVF file
// and has ffmpeg decode it with -xerror; each picture's MD5 must equal the
// same picture's from the undamaged stream (a frame decoded against a
// missing reference would differ).
func TestInteropLossyVP8DecodesWithFFmpeg(t *testing.T) {
	testenv.LookPath(t, "ffmpeg")
	frames, pkts := clipPackets(t, 3)
	var clean [][]byte
	byTS := map[uint32]int{}
	for i, f := range frames {
		clean = append(clean, f.frame)
		byTS[f.ts] = i
	}
	dir := t.TempDir()
	cleanFile := filepath.Join(dir, "clean.ivf")
	require.NoError(t, os.WriteFile(cleanFile, writeIVF(clean, 176, 144), 0o644))
	cleanMD5 := testenv.FrameMD5s(t, cleanFile)
	require.Len(t, cleanMD5, len(frames))

	arr, _, err := netsim.Schedule(netsim.Config{Seed: 7, Loss: 0.05, Jitter: 30 * time.Millisecond, Reorder: 0.02}, pkts)
	require.NoError(t, err)
	out, _ := runPipeline(t, arr)
	require.NotEmpty(t, out)
	var got [][]byte
	for _, e := range out {
		got = append(got, e.frame)
	}
	lossyFile := filepath.Join(dir, "lossy.ivf")
	require.NoError(t, os.WriteFile(lossyFile, writeIVF(got, 176, 144), 0o644))
	lossyMD5 := testenv.FrameMD5s(t, lossyFile)
	require.Len(t, lossyMD5, len(out))
	for k, e := range out {
		require.Equal(t, cleanMD5[byTS[e.ts]], lossyMD5[k], "picture %d (clip frame %d)", k, byTS[e.ts])
	}
	t.Logf("%d of %d frames emitted and decoded identically", len(out), len(frames))
}
