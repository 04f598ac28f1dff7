package wcsapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
)

// testHandler serves s as the example server does: everything behind the
// guard, the REST API and events, /metrics (the server's collectors and
// ws's) behind the admin's login, and /whep/ when ws is set.
func testHandler(s *server, ws *webrtcStreams) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.collectors()...)
	mux := http.NewServeMux()
	mux.Handle("/", s.handler())
	mux.Handle("GET /metrics", s.admin(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	if ws != nil {
		reg.MustRegister(ws)
		ws.authorize = s.authorizeViewer(ws.mux.Owner)
		mux.Handle("/whep/", ws.mux)
	}
	return s.guard(mux)
}

// scrape reads s's metrics as the admin.
func scrape(t *testing.T, s *server) string {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Host = "localhost"
	if s.admins.mode == authBasic {
		req.SetBasicAuth(string(s.admins.user), string(s.admins.pass))
	}
	rec := httptest.NewRecorder()
	testHandler(s, nil).ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// do sends method path with body (JSON) and the given headers to base.
func do(t *testing.T, method, url, ctype, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func withAuth(base, user, pass string) string {
	return strings.Replace(base, "://", "://"+user+":"+pass+"@", 1)
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
