package whep_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sipstream/sipstream/sink/whep"
)

func TestPlayerHandler(t *testing.T) {
	ts := httptest.NewServer(http.StripPrefix("/player", whep.PlayerHandler()))
	defer ts.Close()
	for _, tc := range []struct{ path, ctype, want string }{
		{"/player/", "text/html", "<video"},
		{"/player/?whep=/whep/call1", "text/html", `src="player.js"`},
		{"/player/player.js", "text/javascript", "async function whepPlay"},
	} {
		resp, err := http.Get(ts.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %q, no %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.want)
		}
	}
	resp, err := http.Post(ts.URL+"/player/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// TestPlayerScript: PlayerScript is the script PlayerHandler serves.
func TestPlayerScript(t *testing.T) {
	rec := httptest.NewRecorder()
	whep.PlayerHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/player/player.js", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != whep.PlayerScript() {
		t.Fatalf("handler served %d, %d bytes; PlayerScript has %d", rec.Code, rec.Body.Len(), len(whep.PlayerScript()))
	}
	if !strings.Contains(whep.PlayerScript(), "function whepPlay") {
		t.Fatal("no whepPlay in the script")
	}
}
