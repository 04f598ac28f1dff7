package hls_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/hls"
)

// get fetches name from s as a server mounted at /hls/call/ would.
func get(t *testing.T, s http.Handler, name string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/hls/call/"+name, nil).WithContext(ctx)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

var (
	uriRE  = regexp.MustCompile(`URI="([^"]+)"`)
	partRE = regexp.MustCompile(`#EXT-X-PART:DURATION=([0-9.]+)`)
	infRE  = regexp.MustCompile(`#EXTINF:([0-9.]+)`)
)

// playlist is what the tests read from a media playlist.
type playlist struct {
	init     string
	segments []string
	segDur   []float64
	partDur  []float64
}

func mediaPlaylist(t *testing.T, s http.Handler, name string) playlist {
	t.Helper()
	code, body := get(t, s, name)
	require.Equal(t, http.StatusOK, code, "%s: %s", name, body)
	var p playlist
	lines := strings.Split(string(body), "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			p.init = uriRE.FindStringSubmatch(l)[1]
		case strings.HasPrefix(l, "#EXTINF:") && i+1 < len(lines) && !strings.Contains(lines[i+1], "gap"):
			d, _ := strconv.ParseFloat(infRE.FindStringSubmatch(l)[1], 64)
			p.segDur = append(p.segDur, d)
			p.segments = append(p.segments, strings.TrimSpace(lines[i+1]))
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			d, _ := strconv.ParseFloat(partRE.FindStringSubmatch(l)[1], 64)
			p.partDur = append(p.partDur, d)
		}
	}
	return p
}

// sample is one sample read back from the served fMP4.
type sample struct {
	dts  uint64
	sync bool
}

// readTrack fetches init and segments of a media playlist and returns the
// samples of its only track, with the track's time scale.
func readTrack(t *testing.T, s http.Handler, p playlist) ([]sample, uint32) {
	t.Helper()
	code, initB := get(t, s, p.init)
	require.Equal(t, http.StatusOK, code)
	var ini fmp4.Init
	require.NoError(t, ini.Unmarshal(bytes.NewReader(initB)))
	require.Len(t, ini.Tracks, 1)
	var out []sample
	for _, seg := range p.segments {
		code, b := get(t, s, seg)
		require.Equal(t, http.StatusOK, code, seg)
		var parts fmp4.Parts
		require.NoError(t, parts.Unmarshal(b))
		for _, part := range parts {
			for _, tr := range part.Tracks {
				dts := tr.BaseTime
				for _, smp := range tr.Samples {
					out = append(out, sample{dts: dts, sync: !smp.IsNonSyncSample})
					dts += uint64(smp.Duration)
				}
			}
		}
	}
	return out, ini.Tracks[0].TimeScale
}

// feed writes frames to s, failing on any error.
func feed(t *testing.T, s *hls.Sink, frames []*media.Frame) {
	t.Helper()
	for _, f := range frames {
		require.NoError(t, s.WriteFrame(f))
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]hls.Config{
		"no tracks":     {},
		"few segments":  {Video: true, SegmentCount: 3},
		"negative":      {Video: true, PartDuration: -1},
		"part>segment":  {Video: true, PartDuration: 2 * time.Second},
		"bad ASC":       {Audio: true, AudioSpecificConfig: []byte{0xff}},
		"bad AAC rate":  {Audio: true, AAC: transcodeBadRate()},
		"negative segs": {Video: true, SegmentCount: -1},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := hls.New(cfg)
			if name == "bad AAC rate" {
				// The transcoder is created at the stream's start: the
				// error comes from the first frame.
				require.NoError(t, err)
				err = s.WriteFrame(toneFrames(0, 20*time.Millisecond, 0)[0])
				require.ErrorIs(t, err, hls.ErrMuxer)
				require.NoError(t, s.Close(context.Background()))
				return
			}
			require.Error(t, err)
		})
	}
}

func TestVideoAndAudioServed(t *testing.T) {
	s, err := hls.New(hls.Config{Video: true, Audio: true})
	require.NoError(t, err)
	defer s.Close(context.Background())

	// Nothing is served before the start: names 404 at once, index.m3u8
	// waits for the start (here: the request's deadline).
	code, _ := get(t, s, "video1_stream.m3u8")
	assert.Equal(t, http.StatusNotFound, code)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/index.m3u8", nil).WithContext(ctx))
	cancel()
	assert.Empty(t, rec.Body.Bytes())

	// The clip starts at 0.5 s with a P-frame's worth of the tail of a GOP:
	// its first 5 frames are dropped so that video starts mid-GOP.
	frames := clipFrames(500 * time.Millisecond)[5:]
	all := interleave(frames, toneFrames(0, 4500*time.Millisecond, 100*time.Millisecond))
	feed(t, s, all)
	st := s.Stats()
	assert.False(t, st.Started.IsZero())
	// Audio before the first keyframe (at 1.5 s) and the video before it
	// are ignored.
	assert.GreaterOrEqual(t, st.FramesIgnored, uint64(20+75))

	code, index := get(t, s, "index.m3u8")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(index), "avc1.42c01e")
	assert.Contains(t, string(index), "mp4a.40.2")
	assert.Contains(t, string(index), "RESOLUTION=320x240")

	v := mediaPlaylist(t, s, "video1_stream.m3u8")
	a := mediaPlaylist(t, s, "audio2_stream.m3u8")
	require.NotEmpty(t, v.segments)
	require.NotEmpty(t, v.partDur)
	for _, d := range v.segDur {
		assert.InDelta(t, 1.0, d, 0.05, "segment duration")
	}
	for _, d := range v.partDur[:len(v.partDur)-1] {
		assert.InDelta(t, 0.2, d, 0.045, "part duration")
	}

	vs, vscale := readTrack(t, s, v)
	as, ascale := readTrack(t, s, a)
	require.NotEmpty(t, vs)
	require.NotEmpty(t, as)
	assert.True(t, vs[0].sync, "video starts with a keyframe")
	assert.Equal(t, uint32(90000), vscale)
	assert.Equal(t, uint32(48000), ascale)
	for _, tr := range [][]sample{vs, as} {
		for i := 1; i < len(tr); i++ {
			require.Greater(t, tr[i].dts, tr[i-1].dts, "sample %d", i)
		}
	}
	// Both tracks share the timeline: audio starts within an AAC frame of
	// the video (its first frame is the encoder's priming).
	vStart := time.Duration(vs[0].dts) * time.Second / time.Duration(vscale)
	aStart := time.Duration(as[0].dts) * time.Second / time.Duration(ascale)
	assert.InDelta(t, 0, (aStart - vStart).Seconds(), 0.050, "video %v audio %v", vStart, aStart)
	// Keyframes at every whole second of the clip, i.e. every 25 frames.
	for i, smp := range vs {
		assert.Equal(t, i%25 == 0, smp.sync, "frame %d", i)
	}
}

func TestAudioOnlyAAC(t *testing.T) {
	asc := []byte{0x11, 0x90} // AAC-LC, 48 kHz, stereo
	s, err := hls.New(hls.Config{Audio: true, AudioSpecificConfig: asc})
	require.NoError(t, err)
	defer s.Close(context.Background())
	for i := 0; i < 200; i++ {
		ts := time.Duration(i) * 1024 * time.Second / 48000
		// Not decodable, but the muxer does not decode: it stores.
		require.NoError(t, s.WriteFrame(&media.Frame{Codec: media.CodecAAC, PTS: ts, DTS: ts, Keyframe: true,
			ClockRate: 48000, Channels: 2, Payload: []byte{0x21, 0x00, 0x49, 0x90}}))
	}
	// G.711 is not what the config announces: ignored.
	require.NoError(t, s.WriteFrame(toneFrames(5*time.Second, 20*time.Millisecond, 0)[0]))
	assert.Equal(t, uint64(1), s.Stats().FramesIgnored)
	code, index := get(t, s, "index.m3u8")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(index), "mp4a.40.2")
	assert.NotContains(t, string(index), "avc1")
}

func TestBadInput(t *testing.T) {
	s, err := hls.New(hls.Config{Video: true, Audio: true})
	require.NoError(t, err)
	defer s.Close(context.Background())
	bad := []*media.Frame{
		{Codec: media.CodecH264, Keyframe: true},
		{Codec: media.CodecH264, Keyframe: true, Payload: []byte{0, 0, 0}},
		{Codec: media.CodecH264, Keyframe: true, Payload: []byte{0, 0, 0, 9, 1}},
		{Codec: media.CodecH264, Keyframe: true, Payload: []byte{0, 0, 0, 0}},
		// An "SPS" that does not parse, and a PPS.
		{Codec: media.CodecH264, Keyframe: true, Payload: []byte{0, 0, 0, 2, 0x67, 0xff, 0, 0, 0, 2, 0x68, 0xce, 0, 0, 0, 2, 0x65, 0x88}},
		// A keyframe without SPS/PPS.
		{Codec: media.CodecH264, Keyframe: true, Payload: []byte{0, 0, 0, 2, 0x65, 0x88}},
		{Codec: media.CodecVP8, Keyframe: true, Payload: []byte{1, 2, 3}},
		{Codec: media.CodecTelephoneEvent, Payload: []byte{1, 2, 3, 4}},
	}
	for _, f := range bad {
		require.NoError(t, s.WriteFrame(f))
	}
	assert.Equal(t, uint64(len(bad)), s.Stats().FramesIgnored)
	assert.True(t, s.Stats().Started.IsZero())

	// Start properly, then garbage inside the stream: truncated slices,
	// empty audio, Opus garbage, timestamps going backwards.
	clip := clipFrames(0)
	feed(t, s, clip[:10])
	garbage := []*media.Frame{
		{Codec: media.CodecH264, PTS: 100 * time.Millisecond, Payload: []byte{0, 0, 0, 1, 0x41}},
		{Codec: media.CodecH264, PTS: 50 * time.Millisecond, Payload: []byte{0, 0, 0, 3, 0x41, 0xff, 0xff}},
		{Codec: media.CodecH264, Keyframe: true, PTS: 420 * time.Millisecond, Payload: []byte{0, 0, 0, 2, 0x65, 0xff}},
		{Codec: media.CodecPCMA, PTS: 400 * time.Millisecond, ClockRate: 8000, Channels: 1},
		{Codec: media.CodecOpus, PTS: 400 * time.Millisecond, ClockRate: 48000, Channels: 2, Payload: []byte{0xff, 0xff, 0xff}},
		{Codec: media.CodecSpeex, PTS: 400 * time.Millisecond, ClockRate: 16000, Payload: []byte{1}},
	}
	for _, f := range garbage {
		require.NoError(t, s.WriteFrame(f))
	}
	feed(t, s, clip[10:])
	code, _ := get(t, s, "index.m3u8")
	assert.Equal(t, http.StatusOK, code)
	v := mediaPlaylist(t, s, "video1_stream.m3u8")
	vs, _ := readTrack(t, s, v)
	for i := 1; i < len(vs); i++ {
		require.Greater(t, vs[i].dts, vs[i-1].dts, "sample %d", i)
	}
}

func TestCloseEndsRequests(t *testing.T) {
	s, err := hls.New(hls.Config{Video: true})
	require.NoError(t, err)
	// One request waits for the start, one (after the start) for the
	// first segment inside gohlslib.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		codes[0], _ = get(t, s, "index.m3u8")
	}()
	feed(t, s, clipFrames(0)[:3])
	wg.Add(1)
	go func() {
		defer wg.Done()
		codes[1], _ = get(t, s, "video1_stream.m3u8")
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, s.Close(context.Background()))
	wg.Wait()
	for _, c := range codes {
		assert.GreaterOrEqual(t, c, 400)
	}
	require.NoError(t, s.Close(context.Background()))
	require.ErrorIs(t, s.WriteFrame(clipFrames(0)[0]), hls.ErrClosed)
	code, _ := get(t, s, "index.m3u8")
	assert.Equal(t, http.StatusNotFound, code)
}

func TestMethodNotAllowed(t *testing.T) {
	s, err := hls.New(hls.Config{Video: true})
	require.NoError(t, err)
	defer s.Close(context.Background())
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/index.m3u8", io.NopCloser(strings.NewReader("x"))))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

var _ = errors.Is

// TestManySlicesPerPicture feeds keyframes of more than 50 NAL units, what a
// phone in packetization-mode 0 sends (one slice per packet, 30 to 60 for a
// 720p IDR): mediacommon's h264.AVCC parser refuses them
// (h264.MaxNALUsPerAccessUnit), the sink must not.
func TestManySlicesPerPicture(t *testing.T) {
	s, err := hls.New(hls.Config{Video: true})
	require.NoError(t, err)
	defer s.Close(context.Background())
	frames := clipFrames(0)
	for _, f := range frames {
		if f.Keyframe {
			for range 60 { // filler data NAL units (type 12)
				f.Payload = append(f.Payload, 0, 0, 0, 3, 0x0c, 0xff, 0x80)
			}
		}
	}
	feed(t, s, frames)
	st := s.Stats()
	assert.False(t, st.Started.IsZero(), "never started")
	assert.Zero(t, st.FramesIgnored)
}
