//go:build interop

package wcsapi

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/sip/siptest"
)

// A recording turned on and off over REST on a live call, downloaded
// through GET /recordings/{name}?download=1: ffprobe finds the clip's H.264
// video and the audio, ffmpeg decodes about as many frames as the
// recording lasted, and the tone is in the audio.
func TestInteropRecordOnOffDecodes(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true, Video: true, ToneHz: 1000})
	rig := newOperatorRig(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, body := rig.post(t, "/call/startup", `{"callId":"ri","callee":"`+peer.URI()+`","hasAudio":true,"hasVideo":true}`)
	require.Equal(t, http.StatusOK, code, body)
	c, ok := rig.m.Call("ri")
	require.True(t, ok)
	require.NoError(t, c.WaitEstablished(ctx))
	time.Sleep(500 * time.Millisecond) // the recording starts mid-call
	code, body = rig.post(t, "/call/record/startup", `{"callId":"ri"}`)
	require.Equal(t, http.StatusOK, code, body)
	var started recordStarted
	require.NoError(t, json.Unmarshal([]byte(body), &started))
	time.Sleep(3 * time.Second)
	code, body = rig.post(t, "/call/record/terminate", `{"callId":"ri"}`)
	require.Equal(t, http.StatusOK, code, body)

	code, file, h := do(t, http.MethodGet, rig.url+started.URL+"?download=1", "", "", map[string]string{"Host": "localhost"})
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, h.Get("Content-Disposition"), "attachment")
	path := filepath.Join(t.TempDir(), "download.mp4")
	require.NoError(t, os.WriteFile(path, []byte(file), 0o644))
	streams := testenv.ProbeStreams(t, path)
	require.Equal(t, "h264", streams["video"].CodecName)
	require.Equal(t, 320, streams["video"].Width)
	require.NotEmpty(t, streams["audio"].CodecName)
	frames := testenv.CountVideoFrames(t, path)
	require.InDelta(t, 75, frames, 30, "about 3 s of 25 fps decoded")
	pcm := testenv.DecodePCM(t, path, 8000)
	require.Greater(t, len(pcm), 8000*2)
	require.Greater(t, testmedia.Goertzel(pcm[4000:], 8000, 1000), 10*testmedia.Goertzel(pcm[4000:], 8000, 1500), "the 1 kHz tone")

	code, body = rig.post(t, "/recording/find_all", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	var recs []Recording
	require.NoError(t, json.Unmarshal([]byte(body), &recs))
	require.Len(t, recs, 1)
	require.InDelta(t, 3000, recs[0].DurationMs, 700)
	t.Logf("recording %s: %d bytes, durationMs %d, video %s %dx%d, audio %s, %d video frames decoded",
		recs[0].Name, len(file), recs[0].DurationMs, streams["video"].CodecName, streams["video"].Width, streams["video"].Height,
		streams["audio"].CodecName, frames)
}
