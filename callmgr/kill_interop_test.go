//go:build interop

package callmgr

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sip/siptest"
)

// TestHelperRecordingProcess is not a test: TestInteropRecordingSIGKILL
// runs it in a child process, which places a recorded call to a siptest
// peer, prints "RECORDING <path>" when the first frame is written and then
// waits to be killed.
func TestHelperRecordingProcess(t *testing.T) {
	dir := os.Getenv("CALLMGR_HELPER_DIR")
	if dir == "" {
		t.Skip("run by TestInteropRecordingSIGKILL only")
	}
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Audio: true, Video: true}})
	require.NoError(t, err)
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 23000, RTPPortMax: 23999, RecordDir: dir,
		RecordFormat: os.Getenv("CALLMGR_HELPER_FORMAT"),
		OnEvent: func(ev Event) {
			if ev.Type == EventSinkStatus && ev.Sink.Kind == SinkKindRecord && ev.Sink.Status == SinkActive {
				fmt.Printf("RECORDING %s\n", ev.Sink.Path)
			}
		}})
	require.NoError(t, err)
	_, err = m.StartCall(context.Background(), CallParams{CallID: "killed", Callee: peer.URI(), HasAudio: true, HasVideo: true, Record: true})
	require.NoError(t, err)
	time.Sleep(time.Minute)
}

// TestInteropRecordingSIGKILL kills a process in the middle of a recorded
// call (SIGKILL: no Close, no flush) and checks with ffprobe/ffmpeg that
// the file plays up to within about a second of the kill.
func TestInteropRecordingSIGKILL(t *testing.T) {
	for _, format := range []string{"mp4", "mkv", "flv"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRecordingProcess$")
			cmd.Env = append(os.Environ(), "CALLMGR_HELPER_DIR="+dir, "CALLMGR_HELPER_FORMAT="+format)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			killed := false
			t.Cleanup(func() {
				if !killed {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			})
			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			var path string
			deadline := time.After(30 * time.Second)
			for path == "" {
				select {
				case l, ok := <-lines:
					require.True(t, ok, "helper exited before recording")
					if p, found := strings.CutPrefix(l, "RECORDING "); found {
						path = p
					}
				case <-deadline:
					t.Fatal("helper never started recording")
				}
			}
			started := time.Now()
			time.Sleep(4 * time.Second)
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			elapsed := time.Since(started)
			_ = cmd.Wait()
			killed = true

			vpts := testenv.PacketTimes(t, path, "v")
			apts := testenv.PacketTimes(t, path, "a")
			require.NotEmpty(t, vpts, "video in the cut-short file")
			require.NotEmpty(t, apts, "audio in the cut-short file")
			last := vpts[len(vpts)-1]
			if a := apts[len(apts)-1]; a > last {
				last = a
			}
			lost := elapsed.Seconds() - last
			t.Logf("%s: killed %.2f s into the recording, file plays %.2f s (%.2f s lost)", format, elapsed.Seconds(), last, lost)
			assert.Less(t, lost, 2.0, "about a second lost at most (1 s flush interval; slack for a loaded CI machine)")
			assert.Equal(t, "h264", testenv.ProbeStreams(t, path)["video"].CodecName)
			dec, err := testenv.DecodeErrorsOf(t, path)
			require.NoError(t, err, "ffmpeg decodes the cut-short file: %s", dec)
		})
	}
}
