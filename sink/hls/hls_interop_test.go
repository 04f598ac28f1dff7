//go:build interop

package hls_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/hls"
)

// TestInteropFFmpegReadsLLHLS feeds the sink the test clip (an IDR at
// every whole second) and G.711 tone bursts starting at every whole second,
// on the real clock as a call delivers them, serves it over HTTP and has
// ffmpeg read index.m3u8 like a viewer joining the live call. The copy
// ffmpeg makes decodes without errors, has H.264 and AAC, and each tone
// burst starts within 20 ms of its IDR. It also measures the playback
// start: from the first keyframe written to index.m3u8 answering and to
// the first part being available.
func TestInteropFFmpegReadsLLHLS(t *testing.T) {
	s, err := hls.New(hls.Config{Video: true, Audio: true})
	require.NoError(t, err)
	defer s.Close(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/hls/call/", s)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer s.Close(context.Background()) // before srv.Close: ends ffmpeg's blocked requests

	const total = 12 * time.Second
	var frames []*media.Frame
	for off := time.Duration(0); off < total; off += 4 * time.Second {
		frames = append(frames, clipFrames(off)...)
	}
	frames = interleave(frames, toneFrames(0, total, 200*time.Millisecond))

	// Time to availability, measured from the first keyframe written.
	type avail struct {
		what  string
		d     time.Duration
		code  int
		parts int
	}
	results := make(chan avail, 2)
	var first time.Time
	watch := func(what, path string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		d := time.Since(first)
		code, body := 0, []byte(nil)
		if err == nil {
			code = resp.StatusCode
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		results <- avail{what, d, code, strings.Count(string(body), "#EXT-X-PART:")}
	}

	var rec *testenv.Recording
	begin := time.Now()
	for i, f := range frames {
		if d := time.Until(begin.Add(f.PTS)); d > 0 {
			time.Sleep(d)
		}
		require.NoError(t, s.WriteFrame(f))
		if i == 0 {
			require.True(t, f.Keyframe)
			first = time.Now()
			go watch("index.m3u8", "/hls/call/index.m3u8")
			// The video playlist answers once it lists media (gohlslib
			// waits for it).
			go watch("video1_stream.m3u8", "/hls/call/video1_stream.m3u8")
		}
		// A viewer joins 3 s into the call.
		if rec == nil && f.PTS >= 3*time.Second {
			rec = testenv.RecordStream(t, srv.URL+"/hls/call/index.m3u8", 5*time.Second)
		}
	}
	for range 2 {
		r := <-results
		require.Equal(t, http.StatusOK, r.code, r.what)
		t.Logf("playback start: %s available %v after the first keyframe was written (%d parts listed)",
			r.what, r.d.Round(time.Millisecond), r.parts)
	}
	require.NoError(t, rec.Wait(30*time.Second))
	t.Logf("ffmpeg log: %q", rec.Log())

	rep := testenv.AnalyseFile(t, rec.File, 4*time.Second)
	t.Logf("report: %v", rep)
	assert.Empty(t, testenv.DecodeErrors(t, rec.File), "decode errors")
	assert.Empty(t, rep.DecodeErrors)
	assert.Zero(t, rep.DTSErrors())
	assert.Equal(t, "h264", rep.Video.Codec)
	assert.Equal(t, "aac", rep.Audio.Codec)
	assert.GreaterOrEqual(t, rep.Video.Frames, 95, "4 s of 25 fps video")
	assert.GreaterOrEqual(t, rep.Audio.Frames, 180, "4 s of 48 kHz AAC")

	// A/V offset: each tone onset against the nearest IDR (both at whole
	// seconds of the source).
	tones := testenv.ToneOnsets(t, rec.File)
	var offsets []time.Duration
	for _, on := range tones {
		best := math.Inf(1)
		for _, k := range rep.Video.KeyframeTimes {
			if d := on - (rep.Start + k); math.Abs(d) < math.Abs(best) {
				best = d
			}
		}
		if math.Abs(best) < 0.5 {
			offsets = append(offsets, time.Duration(best*float64(time.Second)).Round(100*time.Microsecond))
		}
	}
	require.GreaterOrEqual(t, len(offsets), 3, "tone onsets %v keyframes %v", tones, rep.Video.KeyframeTimes)
	sorted := append([]time.Duration(nil), offsets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Abs() < sorted[j].Abs() })
	t.Logf("A/V offsets (tone onset - IDR, + = audio late): %v (worst %v)", offsets, sorted[len(sorted)-1])
	for _, o := range offsets {
		assert.LessOrEqual(t, o.Abs(), 20*time.Millisecond, fmt.Sprint(offsets))
	}
}
