//go:build interop && linux

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sip/siptest"
)

// TestInteropServerHLS runs the server binary with a siptest callee
// sending audio and video and a recorded call: ffmpeg reads the call's
// /hls/{toStream}/index.m3u8 with a viewer token (H.264 + AAC, no decode
// error), the playback start (the first request, which makes the muxer and
// asks the phone for a keyframe, to the first playlist answer) is measured,
// requests without a valid token are refused, and the call's recording is
// a playable MP4 whose path /call/find gave.
func TestInteropServerHLS(t *testing.T) {
	testenv.LookPath(t, "ffmpeg")
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	_, rtmpURL := startRTMPServer(t)
	recDir := t.TempDir()
	srv := startServerProcess(t, "-record-dir", recDir)
	plain := "http://" + srv.addr

	code, body := rest(t, srv.base, "/call/startup", map[string]any{
		"callId": "hls-1", "callee": peer.URI(), "rtmpUrl": rtmpURL, "rtmpStream": "main",
		"toStream": "hlsshow", "hasVideo": "true", "record": "true",
	})
	require.Equal(t, http.StatusOK, code, string(body))
	established := waitCall(t, srv.base, "hls-1", "ESTABLISHED", func(c callObject) bool { return c.Status == "ESTABLISHED" })
	establishedAt := time.Now()
	require.Equal(t, recDir, filepath.Dir(established.RecordPath), "recordPath %q", established.RecordPath)

	get := func(url string) (int, string, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), time.Since(start)
	}

	// Neither login nor token: 401. A token for another stream: 401.
	code, _, _ = get(plain + "/hls/hlsshow/index.m3u8")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body = rest(t, srv.base, "/viewer/token", map[string]any{"streamName": "hlsshow"})
	require.Equal(t, http.StatusOK, code, string(body))
	var tok viewerTokenResponse
	require.NoError(t, json.Unmarshal(body, &tok))
	require.Equal(t, "/hls/hlsshow/index.m3u8?token="+tok.Token, tok.HLSURL)
	code, _, _ = get(plain + "/hls/other/index.m3u8?token=" + tok.Token)
	require.Equal(t, http.StatusUnauthorized, code)

	// The first request makes the muxer: time to the first playlist.
	code, playlist, start := get(plain + tok.HLSURL)
	require.Equal(t, http.StatusOK, code, playlist)
	require.Contains(t, playlist, "#EXTM3U")
	require.Contains(t, playlist, "token="+tok.Token, "the token is carried into the media playlists' URLs")
	t.Logf("HLS playback start: first request to the first playlist answer %v", start.Round(time.Millisecond))
	assert.Less(t, start, 10*time.Second, "playback starts promptly (the phone is asked for a keyframe)")

	// ffmpeg reads it as a viewer does, with the token.
	rec := testenv.RecordStream(t, plain+tok.HLSURL, 6*time.Second)
	require.NoError(t, rec.Wait(60*time.Second))
	rep := testenv.AnalyseRecording(t, rec, 4*time.Second)
	t.Logf("HLS as ffmpeg read it: %s", rep)
	assert.Equal(t, "h264", rep.Video.Codec)
	assert.Equal(t, "aac", rep.Audio.Codec)
	assert.Empty(t, rep.DecodeErrors, "ffmpeg decodes the HLS stream cleanly")
	assert.Empty(t, testenv.DecodeErrors(t, rec.File), "the whole copy decodes cleanly")
	assert.Greater(t, rep.Video.DecodedFrames, 50, "about 25 fps over 4 s")
	assert.Greater(t, rep.Audio.Frames, 100, "AAC over 4 s (about 47 frames a second at 48 kHz)")

	// The muxer counts in the metrics while the call lives, not after.
	_, metrics, _ := get(srv.base + "/metrics")
	assert.Equal(t, 1.0, metricValue(t, metrics, "sipstream_hls_streams"))
	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "hls-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	callSecs := time.Since(establishedAt).Seconds()
	require.Eventually(t, func() bool {
		c, ok := findCall(t, srv.base, "hls-1")
		return !ok || finalStatus(c.Status)
	}, 15*time.Second, 100*time.Millisecond, "the call ends")
	require.Eventually(t, func() bool {
		_, metrics, _ := get(srv.base + "/metrics")
		return metricValue(t, metrics, "sipstream_hls_streams") == 0
	}, 10*time.Second, 100*time.Millisecond, "the muxer is released with the call")
	code, _, _ = get(plain + tok.HLSURL)
	require.Equal(t, http.StatusUnauthorized, code, "the token ends with its call")

	// The recording: MP4 (the default), H.264 + AAC, as long as the call
	// (closed for sure once the server has exited).
	srv.interrupt(t)
	path := established.RecordPath
	codecs, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	assert.Contains(t, string(codecs), "h264")
	assert.Contains(t, string(codecs), "aac")
	assert.Empty(t, testenv.DecodeErrors(t, path), "the MP4 recording decodes cleanly")
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	require.NoError(t, err)
	t.Logf("MP4 recording %s: %.2f s, call %.2f s", filepath.Base(path), d, callSecs)
	assert.InDelta(t, callSecs, d, 1.5, "the recording lasts the call")
}
