package whep_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/sink/whep"
)

// /whep/{name} reaches the sink registered as name, its viewer resources
// too; other names are 404; a name is one owner's at a time; Authorize
// is asked for everything but a viewer's own resource.
func TestMuxRouting(t *testing.T) {
	var asked []string
	mux := whep.NewMux(whep.MuxConfig{Authorize: func(w http.ResponseWriter, r *http.Request, name string) bool {
		asked = append(asked, r.Method+" "+name)
		if r.URL.Query().Get("deny") != "" {
			http.Error(w, "no", http.StatusUnauthorized)
			return false
		}
		return true
	}})
	ts := httptest.NewServer(mux)
	defer ts.Close()

	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+path, "application/sdp", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := post("/whep/nosuch", "v=0\r\n")
	require.Equal(t, http.StatusNotFound, code)

	require.NoError(t, mux.Reserve("my stream", "call1"))
	err := mux.Reserve("my stream", "call2")
	require.True(t, errors.Is(err, whep.ErrNameInUse), "%v", err)
	var ue *whep.NameInUseError
	require.True(t, errors.As(err, &ue))
	require.Equal(t, "call1", ue.Owner)
	// Reserved but not attached yet: still 404.
	code, _ = post("/whep/my%20stream", "v=0\r\n")
	require.Equal(t, http.StatusNotFound, code)
	_, ok := mux.Owner("my stream")
	require.False(t, ok)

	s, err := whep.New(whep.Config{MediaWait: 50 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close(context.Background())
	require.True(t, mux.Attach("my stream", "call1", s, "sink1"))
	owner, ok := mux.Owner("my stream")
	require.True(t, ok)
	require.Equal(t, "call1", owner)
	require.Equal(t, whep.MuxStats{Streams: 1}, mux.Stats())
	// The sink answers now (a malformed offer is its 400, not our 404).
	code, body := post("/whep/my%20stream", "not sdp")
	require.NotEqual(t, http.StatusNotFound, code, body)
	require.GreaterOrEqual(t, code, 400, body)
	code, _ = post("/whep/my%20stream?deny=1", "v=0\r\n")
	require.Equal(t, http.StatusUnauthorized, code)
	// A viewer resource that does not exist: the sink's 404 for DELETE,
	// without asking Authorize.
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/whep/my%20stream/nope?deny=1", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, []string{"POST nosuch", "POST my stream", "POST my stream", "POST my stream"}, asked)

	// The sink's failure or the owner's end frees the name.
	mux.ReleaseID("sink1")
	_, ok = mux.Owner("my stream")
	require.False(t, ok)
	require.NoError(t, mux.Reserve("my stream", "call3"))
	require.True(t, mux.Attach("my stream", "call3", s, "sink3"))
	mux.ReleaseOwner("call3")
	_, ok = mux.Owner("my stream")
	require.False(t, ok)
	require.False(t, mux.Attach("my stream", "call3", s, "sink3"), "released: not attached")
	// A release by an earlier owner does not free the new owner's name.
	require.NoError(t, mux.Reserve("my stream", "call4"))
	mux.Release("my stream", "call3")
	require.Error(t, mux.Reserve("my stream", "call5"))
	mux.Release("my stream", "call4")
	require.NoError(t, mux.Reserve("my stream", "call5"))
}
