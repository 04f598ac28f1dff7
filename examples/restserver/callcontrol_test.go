package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/sip/siptest"
)

// TestInjectSoundOverREST: a WAV file from -sound-dir, played looped into
// a call with /call/inject_sound, reaches the siptest callee as RTP whose
// 1 kHz tone it decodes; /call/inject_sound/terminate stops it. Names
// outside the folder and missing files are refused.
func TestInjectSoundOverREST(t *testing.T) {
	dir := t.TempDir()
	// A 1 kHz tone, 0.25 s, at half scale (looped by the tests).
	wav := testmedia.WAV(testmedia.Tone(1000, 16000, 0, 4000, 0.5), 16000)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tone.wav"), wav, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a sound"), 0o644))
	peer := startPeer(t, siptest.Script{})
	srv := startRun(t, "-sound-dir", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	code, body := rest(t, srv.base, "/call/startup", map[string]any{"callId": "inj", "callee": peer.URI(), "hasAudio": true, "hasVideo": false})
	require.Equal(t, http.StatusOK, code, string(body))
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	waitCall(t, srv.base, "inj", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })

	for _, c := range []struct {
		file string
		want int
	}{{"../tone.wav", 400}, {"/etc/passwd", 400}, {"missing.wav", 404}, {"notes.txt", 400}} {
		code, body := rest(t, srv.base, "/call/inject_sound", map[string]any{"callId": "inj", "fileName": c.file})
		assert.Equal(t, c.want, code, "%s: %s", c.file, body)
	}
	code, _ = rest(t, srv.base, "/call/inject_sound", map[string]any{"callId": "nope", "fileName": "tone.wav"})
	assert.Equal(t, http.StatusNotFound, code)

	heardBefore := len(pc.ReceivedAudio())
	code, body = rest(t, srv.base, "/call/inject_sound", map[string]any{"callId": "inj", "fileName": "tone.wav", "loop": true})
	require.Equal(t, http.StatusOK, code, string(body))
	time.Sleep(2 * time.Second)
	code, body = rest(t, srv.base, "/call/inject_sound/terminate", map[string]any{"callId": "inj"})
	require.Equal(t, http.StatusOK, code, string(body))
	stopped := len(pc.ReceivedAudio())
	time.Sleep(time.Second)
	pcm := pc.ReceivedAudio()
	played := pcm[heardBefore:stopped]
	require.Greater(t, len(played), 8000, "about 2 s of audio while the sound played")
	mid := played[len(played)/4 : len(played)*3/4]
	assert.Greater(t, testmedia.Goertzel(mid, 8000, 1000), 0.8, "the file's 1 kHz tone reached the callee (looped past its end)")
	after := pcm[stopped+1600:]
	assert.Less(t, testmedia.Goertzel(after, 8000, 1000), 0.1, "silence after inject_sound/terminate")

	code, _ = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "inj"})
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, pc.WaitBye(ctx))
}
