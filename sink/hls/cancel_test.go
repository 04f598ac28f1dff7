package hls_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/sink/hls"
)

var (
	segNumRE = regexp.MustCompile(`_seg([0-9]+)\.mp4`)
	hintRE   = regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"`)
)

// TestCanceledWaitsReturn: the requests gohlslib makes wait (playlists
// before the first segment, a blocking playlist reload for a part to come,
// the part a playlist hints at) return as soon as the viewer goes away (the
// request's context ends), not when the stream moves on or the sink closes;
// nothing is written for them afterwards, and Close still ends what was
// left waiting inside gohlslib (goleak checks that no goroutine outlives
// the tests).
func TestCanceledWaitsReturn(t *testing.T) {
	s, err := hls.New(hls.Config{Video: true})
	require.NoError(t, err)
	defer s.Close(context.Background())

	var recs []*httptest.ResponseRecorder
	// waits starts a request of name, checks it is still waiting a while
	// later (the stream does not move meanwhile, so only its context can
	// end it), cancels it and checks that ServeHTTP returns.
	waits := func(name string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec := httptest.NewRecorder()
		recs = append(recs, rec)
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hls/call/"+name, nil).WithContext(ctx))
		}()
		select {
		case <-returned:
			t.Fatalf("%s: answered %d at once; it should wait", name, rec.Code)
		case <-time.After(200 * time.Millisecond):
		}
		cancel()
		select {
		case <-returned:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the handler still waits 10 s after the viewer went away", name)
		}
	}

	// Started (the first keyframe), no segment yet: the playlists wait
	// for one.
	frames := clipFrames(0)
	feed(t, s, frames[:3])
	waits("index.m3u8")
	waits("video1_stream.m3u8")

	// Three complete segments: a blocking reload for the first part of
	// the segment after the one being made, and the hinted part, wait.
	feed(t, s, frames[3:])
	code, body := get(t, s, "video1_stream.m3u8")
	require.Equal(t, http.StatusOK, code, string(body))
	segs := segNumRE.FindAllStringSubmatch(string(body), -1)
	require.NotEmpty(t, segs, string(body))
	last, err := strconv.Atoi(segs[len(segs)-1][1])
	require.NoError(t, err)
	waits(fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=0", last+2))
	hint := hintRE.FindStringSubmatch(string(body))
	require.NotNil(t, hint, string(body))
	waits(hint[1])

	// The stream still answers the others.
	code, _ = get(t, s, "video1_stream.m3u8")
	assert.Equal(t, http.StatusOK, code)

	// Close ends what the viewers left waiting inside gohlslib; none of
	// it reaches their writers.
	requireCloses(t, s)
	for i, rec := range recs {
		assert.Zero(t, rec.Body.Len(), "request %d", i)
		assert.Empty(t, rec.Header(), "request %d", i)
	}
}

// TestCloseWithHintedPartWaiting: a Low-Latency player waits for the hinted
// part and for the playlist that will list it at the same time; Close ends
// both (gohlslib alone returns from the first holding the muxer's lock,
// which left the second, and Close, blocked for good).
func TestCloseWithHintedPartWaiting(t *testing.T) {
	s, err := hls.New(hls.Config{Video: true})
	require.NoError(t, err)
	feed(t, s, clipFrames(0))
	code, body := get(t, s, "video1_stream.m3u8")
	require.Equal(t, http.StatusOK, code, string(body))
	segs := segNumRE.FindAllStringSubmatch(string(body), -1)
	require.NotEmpty(t, segs, string(body))
	last, err := strconv.Atoi(segs[len(segs)-1][1])
	require.NoError(t, err)
	hint := hintRE.FindStringSubmatch(string(body))
	require.NotNil(t, hint, string(body))

	names := []string{hint[1], hint[1], fmt.Sprintf("video1_stream.m3u8?_HLS_msn=%d&_HLS_part=0", last+2)}
	codes := make(chan int, len(names))
	for _, name := range names {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hls/call/"+name, nil).WithContext(ctx))
			codes <- rec.Code
		}()
	}
	time.Sleep(200 * time.Millisecond) // all waiting (the stream does not move)
	requireCloses(t, s)
	for range names {
		select {
		case c := <-codes:
			assert.GreaterOrEqual(t, c, 400)
		case <-time.After(10 * time.Second):
			t.Fatal("a request still waits after Close")
		}
	}
}

// requireCloses closes s and fails if Close errs or does not return
// within 10 s.
func requireCloses(t *testing.T, s *hls.Sink) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}
