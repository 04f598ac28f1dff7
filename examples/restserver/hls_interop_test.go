//go:build interop && linux

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
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
	// callmgr reports ESTABLISHED just before it starts the recording:
	// recordPath follows within moments.
	established := waitCall(t, srv.base, "hls-1", "ESTABLISHED with recordPath", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RecordPath != ""
	})
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
	var tok wcsapi.ViewerToken
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
		return !ok || callmgr.Status(c.Status).Final()
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
	streams := testenv.ProbeStreams(t, path)
	assert.Equal(t, "h264", streams["video"].CodecName)
	assert.Equal(t, "aac", streams["audio"].CodecName)
	assert.Empty(t, testenv.DecodeErrors(t, path), "the MP4 recording decodes cleanly")
	d := testenv.Duration(t, path)
	t.Logf("MP4 recording %s: %.2f s, call %.2f s", filepath.Base(path), d, callSecs)
	assert.InDelta(t, callSecs, d, 1.5, "the recording lasts the call")
}

// TestInteropServerHLSAVSync runs the server binary with a siptest callee
// playing marker media (testenv.MakeMarkerMedia: a white flash and a 1 kHz
// burst at every whole second) and measures two things on the call's
// /hls/{toStream}/ output:
//
//   - Playback start: the first request is made while the call rings, so
//     the muxer exists before any media and the stream starts at the call's
//     first keyframe. The muxer dates that keyframe (the first segment's
//     EXT-X-PROGRAM-DATE-TIME is the wall clock when it reached the muxer,
//     server and test sharing the clock); the playback start is from there
//     to the first playlist answer (gohlslib answers once the first segment
//     is complete) and to the first part listed being downloaded.
//   - A/V offset: ffmpeg reads index.m3u8 as a viewer does and each flash
//     onset in its copy is within 20 ms of its tone onset.
func TestInteropServerHLSAVSync(t *testing.T) {
	testenv.LookPath(t, "ffmpeg")
	const clipLen = 4 * time.Second
	video, pcm := markerClip(t, clipLen)
	peer := startPeer(t, siptest.Script{
		Ring: 3 * time.Second, Audio: true, Video: true, VideoClip: video, VideoFPS: markerFPS, AudioPCM: pcm,
		AudioCodecs: []media.Codec{media.CodecPCMA, media.CodecPCMU}, SendSR: true,
		// A keyframe request would make the clip jump to its next IDR
		// and the video leave the audio: the clip has one every second.
		IgnoreKeyframeRequests: true,
	})
	_, rtmpURL := startRTMPServer(t)
	srv := startServerProcess(t)
	plain := "http://" + srv.addr

	code, body := rest(t, srv.base, "/call/startup", map[string]any{
		"callId": "hls-av", "callee": peer.URI(), "rtmpUrl": rtmpURL, "rtmpStream": "av",
		"toStream": "hlsav", "hasVideo": "true",
	})
	require.Equal(t, http.StatusOK, code, string(body))
	waitCall(t, srv.base, "hls-av", "RING", func(c wcsapi.Call) bool { return c.Status == "RING" })
	code, body = rest(t, srv.base, "/viewer/token", map[string]any{"streamName": "hlsav"})
	require.Equal(t, http.StatusOK, code, string(body))
	var tok wcsapi.ViewerToken
	require.NoError(t, json.Unmarshal(body, &tok))

	type answer struct {
		code int
		body string
		at   time.Time
		err  error
	}
	get := func(url string) answer {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return answer{err: err, at: time.Now()}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return answer{code: resp.StatusCode, body: string(b), at: time.Now(), err: err}
	}

	// The first request, while the call rings: it makes the muxer, then
	// waits for the stream.
	first := make(chan answer, 1)
	requested := time.Now()
	go func() { first <- get(plain + tok.HLSURL) }()
	require.Eventually(t, func() bool {
		return metricValue(t, get(srv.base+"/metrics").body, "sipstream_hls_streams") == 1
	}, 15*time.Second, 50*time.Millisecond, "the first request makes the muxer")
	c, ok := findCall(t, srv.base, "hls-av")
	require.True(t, ok)
	require.Equal(t, "RING", c.Status, "the muxer is made before the call has media (Script.Ring)")
	waitCall(t, srv.base, "hls-av", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
	established := time.Now()

	var mv answer
	select {
	case mv = <-first:
	case <-time.After(40 * time.Second):
		t.Fatal("no answer to the first index.m3u8 request")
	}
	require.NoError(t, mv.err)
	require.Equal(t, http.StatusOK, mv.code, mv.body)
	mediaURI := firstURI(mv.body)
	require.NotEmpty(t, mediaURI, "multivariant playlist:\n%s", mv.body)
	dir := plain + "/hls/hlsav/"
	pl := get(dir + mediaURI)
	require.NoError(t, pl.err)
	require.Equal(t, http.StatusOK, pl.code, pl.body)
	keyframeAt, partURI := firstDateAndPart(t, pl.body)
	require.NotEmpty(t, partURI, "media playlist:\n%s", pl.body)
	part := get(dir + partURI)
	require.NoError(t, part.err)
	require.Equal(t, http.StatusOK, part.code)
	require.NotEmpty(t, part.body)

	toPlaylist := mv.at.Sub(keyframeAt)
	toPart := part.at.Sub(keyframeAt)
	t.Logf("HLS playback start from the call's first keyframe reaching the muxer (%s): first playlist answer %v, first part (%s, %d bytes) downloaded %v; "+
		"from ESTABLISHED seen by the test %v; from the first request %v",
		keyframeAt.Format("15:04:05.000"), toPlaylist.Round(time.Millisecond), partURI[:strings.IndexByte(partURI+"?", '?')], len(part.body),
		toPart.Round(time.Millisecond), mv.at.Sub(established).Round(time.Millisecond), mv.at.Sub(requested).Round(time.Millisecond))
	// The keyframe came after the muxer was made (the date is to the
	// millisecond) and before the playlist answered.
	assert.False(t, keyframeAt.Before(requested.Add(-time.Millisecond)), "first segment dated %v, before the first request %v", keyframeAt, requested)
	assert.Greater(t, toPlaylist, time.Duration(0))
	assert.Less(t, toPart, 10*time.Second, "playback starts promptly after the first keyframe")

	// ffmpeg reads the stream as a viewer does: the A/V offset of what it
	// got.
	rec := testenv.RecordStream(t, plain+tok.HLSURL, 10*time.Second)
	require.NoError(t, rec.Wait(60*time.Second))
	rep := testenv.AnalyseRecording(t, rec, 8*time.Second)
	t.Logf("HLS as ffmpeg read it: %s", rep)
	assert.Empty(t, rep.DecodeErrors, "ffmpeg decodes the HLS stream cleanly")
	av := testenv.MarkerOffsets(t, rec.File, markerFPS)
	t.Logf("HLS A/V offset (tone onset - flash onset, + = audio late): median/worst %v; all %v (flashes %d, skipped %d)",
		av, av.Offsets, av.Flashes, av.Skipped)
	require.GreaterOrEqual(t, len(av.Offsets), 5, "flashes measured in 10 s: %v", av)
	for _, o := range av.Offsets {
		assert.LessOrEqual(t, o.Abs(), 20*time.Millisecond, "A/V offset %v", av.Offsets)
	}

	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "hls-av"})
	require.Equal(t, http.StatusOK, code, string(body))
}

// markerFPS is the marker clip's frame rate.
const markerFPS = 25

// markerClip turns marker media (testenv.MakeMarkerMedia, 320x240 at
// markerFPS) into what a siptest peer plays: the video's access units
// (Script.VideoClip; libx264 with an IDR every second, at the flashes) and
// the tone bursts as 8 kHz PCM (Script.AudioPCM: MarkerToneHz for
// MarkerBurst at every whole second). Both last exactly d, so that the two
// loops stay together: flash and burst start at the same instant.
func markerClip(t *testing.T, d time.Duration) (video [][][]byte, pcm []int16) {
	t.Helper()
	m := testenv.MakeMarkerMedia(t, 320, 240, markerFPS, d)
	annexB, err := exec.Command(testenv.LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", m.Video, "-map", "0:v:0",
		"-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", "-").Output()
	require.NoError(t, err, "H.264 out of %s", m.Video)
	// One slice per picture (libx264 without sliced threads); parameter
	// sets and SEI belong to the picture that follows them.
	var au [][]byte
	for _, n := range testmedia.SplitAnnexB(annexB) {
		au = append(au, n)
		if typ := testmedia.NALType(n); typ == 1 || typ == 5 {
			video = append(video, au)
			au = nil
		}
	}
	require.Len(t, video, int(d.Seconds()*markerFPS), "pictures in the marker clip")
	require.Equal(t, uint8(5), testmedia.NALType(video[0][len(video[0])-1]), "the clip starts with an IDR")

	const rate = 8000
	n := int(d.Seconds() * rate)
	burst := int(testenv.MarkerBurst.Seconds() * rate)
	pcm = testmedia.Tone(testenv.MarkerToneHz, rate, 0, n, 0.5)
	for i := range pcm {
		if i%rate >= burst {
			pcm[i] = 0
		}
	}
	return video, pcm
}

// firstURI returns a playlist's first URI line.
func firstURI(playlist string) string {
	for _, l := range strings.Split(playlist, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

// firstDateAndPart returns a media playlist's first EXT-X-PROGRAM-DATE-TIME
// and the URI of its first EXT-X-PART.
func firstDateAndPart(t *testing.T, playlist string) (time.Time, string) {
	t.Helper()
	var date time.Time
	var part string
	for _, l := range strings.Split(playlist, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"); ok && date.IsZero() {
			var err error
			date, err = time.Parse(time.RFC3339Nano, v)
			require.NoError(t, err, "EXT-X-PROGRAM-DATE-TIME %q", v)
		}
		if v, ok := strings.CutPrefix(l, "#EXT-X-PART:"); ok && part == "" {
			if i := strings.Index(v, `URI="`); i >= 0 {
				part = v[i+len(`URI="`):]
				part = part[:strings.IndexByte(part, '"')]
			}
		}
	}
	require.False(t, date.IsZero(), "no EXT-X-PROGRAM-DATE-TIME in\n%s", playlist)
	return date, part
}
