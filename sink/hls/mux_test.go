package hls_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/sink/hls"
)

// fakeSource publishes "live" (owner "call1"); Attach fails with err.
type fakeSource struct {
	mu       sync.Mutex
	err      error
	attached int
}

func (f *fakeSource) Lookup(name string) (hls.Stream, bool) {
	if name != "live" {
		return hls.Stream{}, false
	}
	return hls.Stream{Owner: "call1", Audio: true}, true
}

func (f *fakeSource) Attach(ctx context.Context, st hls.Stream, s *hls.Sink) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached++
	return "sink1", f.err
}

func (f *fakeSource) Detach(ctx context.Context, id string) {}

func (f *fakeSource) RequestKeyframe(owner string) {}

// The Mux asks Authorize first, serves GET and HEAD only, answers 404 for a
// name its Source does not publish and 503 when attaching fails (and tries
// again on the next request).
func TestMuxRouting(t *testing.T) {
	src := &fakeSource{err: errors.New("no such call")}
	var asked []string
	mux := hls.NewMux(src, hls.MuxConfig{Authorize: func(w http.ResponseWriter, r *http.Request, name string) bool {
		asked = append(asked, name)
		if r.URL.Query().Get("deny") != "" {
			http.Error(w, "no", http.StatusUnauthorized)
			return false
		}
		return true
	}})
	defer mux.Close()
	ts := httptest.NewServer(mux)
	defer ts.Close()
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := get("GET", "/hls/live/index.m3u8?deny=1")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = get("POST", "/hls/live/index.m3u8")
	require.Equal(t, http.StatusMethodNotAllowed, code)
	code, _ = get("GET", "/hls/other/index.m3u8")
	require.Equal(t, http.StatusNotFound, code)
	code, body := get("GET", "/hls/live/index.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no such call")
	code, _ = get("GET", "/hls/live/index.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, 2, src.attached, "a failed attach is not kept")
	require.Equal(t, []string{"live", "live", "other", "live", "live"}, asked)
	require.Zero(t, mux.Streams())
	owner, ok := mux.Owner("live")
	require.True(t, ok)
	require.Equal(t, "call1", owner)

	mux.Close()
	code, _ = get("GET", "/hls/live/index.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, code, "closed")
}
