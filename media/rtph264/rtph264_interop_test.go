//go:build interop

package rtph264_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media/rtph264"
)

// frameMD5s decodes an H.264 file with ffmpeg and returns each picture's
// MD5 in output order.
func frameMD5s(t *testing.T, ffmpeg, file string) []string {
	t.Helper()
	out, err := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-xerror", "-i", file, "-f", "framemd5", "-").Output()
	require.NoError(t, err)
	var sums []string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		sums = append(sums, strings.TrimSpace(f[len(f)-1]))
	}
	return sums
}

// TestInteropLossyDecodesWithFFmpeg runs the clip through 5 % loss, 30 ms
// jitter and 2 % reordering, the jitter buffer and the decoder (Annex-B
// output), writes every emitted access unit to an .h264 file and has ffmpeg
// decode it with -xerror: a single broken picture fails the test. ffprobe
// must count exactly the pictures emitted. ffmpeg does not complain about a
// missing reference picture, so each decoded picture's MD5 is also compared
// with that of the same picture decoded from the undamaged stream: a
// picture decoded against a wrong reference would differ.
func TestInteropLossyDecodesWithFFmpeg(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	ffprobe := testenv.LookPath(t, "ffprobe")
	aus, pkts := clipPackets(t, 3)

	var clean bytes.Buffer
	byTS := map[uint32]int{}
	for i, au := range aus {
		clean.Write(rtph264.JoinAnnexB(au.nalus))
		byTS[au.ts] = i
	}
	cleanFile := filepath.Join(t.TempDir(), "clean.h264")
	require.NoError(t, os.WriteFile(cleanFile, clean.Bytes(), 0o644))
	cleanMD5 := frameMD5s(t, ffmpeg, cleanFile)
	require.Len(t, cleanMD5, len(aus))
	for _, seed := range []uint64{2, 3} {
		arrivals, _, err := netsim.Schedule(lossyConfig(seed), pkts)
		require.NoError(t, err)
		out, _, _ := runPipeline(t, arrivals, true)
		dropped := checkLossy(t, aus, out, true)
		require.NotZero(t, dropped)

		var stream bytes.Buffer
		for _, e := range out {
			stream.Write(e.payload)
		}
		f := filepath.Join(t.TempDir(), "lossy.h264")
		require.NoError(t, os.WriteFile(f, stream.Bytes(), 0o644))

		cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-xerror", "-i", f, "-f", "null", "-")
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "ffmpeg: %s", msg)
		require.Empty(t, strings.TrimSpace(string(msg)), "ffmpeg reported errors")

		cmd = exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
			"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", f)
		msg, err = cmd.Output()
		require.NoError(t, err)
		n, err := strconv.Atoi(strings.TrimSpace(string(msg)))
		require.NoError(t, err, "ffprobe output %q", msg)
		require.Equal(t, len(out), n, "seed %d: ffprobe frame count", seed)

		got := frameMD5s(t, ffmpeg, f)
		require.Len(t, got, len(out))
		for k, e := range out {
			require.Equal(t, cleanMD5[byTS[e.ts]], got[k], "seed %d: picture %d decodes differently", seed, byTS[e.ts])
		}
		t.Logf("seed %d: %d access units emitted and decoded by ffmpeg, %d dropped", seed, n, dropped)
	}
}
