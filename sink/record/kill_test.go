package record_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// killedRecording starts this test binary as a recording process (see
// runChild), waits until it reports having written at least minMs of media,
// kills it with SIGKILL and returns the file and the PTS (ms) of the last
// frame the child reported written before the kill.
func killedRecording(t *testing.T, kind string, minMs int64) (path string, lastMs int64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "killed."+kind)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+kind+":"+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		ms, err := strconv.ParseInt(sc.Text(), 10, 64)
		require.NoError(t, err)
		lastMs = max(lastMs, ms)
		if lastMs >= minMs {
			break
		}
	}
	require.GreaterOrEqual(t, lastMs, minMs, "child stopped early")
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no Close, no flush
	_ = cmd.Wait()
	return path, lastMs
}

func TestMKVSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path, lastMs := killedRecording(t, "mkv", 3500)
	_, blocks := readBackOpt(t, path, true)
	require.NotEmpty(t, blocks)
	var end int64
	for _, b := range blocks {
		end = max(end, b.ms)
	}
	// The clip is written from PTS 0, so file time equals frame PTS.
	require.GreaterOrEqual(t, end, lastMs-1100, "more than ~1 s lost (last written %d ms)", lastMs)
	t.Logf("killed after %d ms written; file plays to %d ms", lastMs, end)
}
