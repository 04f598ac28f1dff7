package main

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/sink/whep"
)

//go:embed web
var webFS embed.FS

// newHandler is the whole HTTP side. Every request passes the API's guard
// first (Host, Origin, body size); the REST API, the events, WHIP, the
// page, /defaults and /metrics need the admin's login; WHEP and HLS need the
// admin's login or a viewer token; the player page and script are public
// (they hold nothing). demoDialin, when set, is -demo's POST /demo/dialin
// (admin only).
func newHandler(api *wcsapi.Handler, reg *prometheus.Registry, defaults map[string]any, demoDialin http.Handler) http.Handler {
	mux := http.NewServeMux()
	if demoDialin != nil {
		mux.Handle("POST /demo/dialin", api.Admin(demoDialin))
	}
	mux.Handle("/rest-api/", api)
	mux.Handle("GET /events", api)
	mux.Handle("GET /defaults", api.Admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		b, _ := json.Marshal(defaults)
		_, _ = w.Write(append(b, '\n'))
	})))
	mux.Handle("GET /metrics", api.Admin(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	// The recordings of -record-dir (admin only; 404 when recording is off).
	mux.Handle("GET /recordings/", api.Recordings())
	if w := api.WHEP(); w != nil {
		mux.Handle("/whep/", api.Viewers("/whep/", w))
	}
	if w := api.WHIP(); w != nil {
		// Publishing into calls is the admin's.
		mux.Handle("/whip/", api.Admin(w))
	}
	if h := api.HLS(); h != nil {
		// GET and HEAD only: no viewer resources to DELETE or PATCH.
		mux.Handle("GET /hls/", api.Viewers("/hls/", h))
	}
	// The WHEP player script (and its stand-alone page: /player/?whep=URL).
	mux.Handle("GET /player/", http.StripPrefix("/player", whep.PlayerHandler()))
	web, _ := fs.Sub(webFS, "web")
	mux.Handle("/", api.Admin(http.FileServerFS(web)))
	return api.Guard(mux)
}

// randomPassword is a password for the demo's admin when it serves more
// than loopback without credentials: 18 random bytes, base64url.
func randomPassword() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// parseCredentials splits "user:pass" (surrounding white space and a final
// line break removed, as a file written by echo has).
func parseCredentials(s, from string) (user, pass string, err error) {
	s = strings.TrimSpace(s)
	u, p, ok := strings.Cut(s, ":")
	if !ok || u == "" || p == "" {
		return "", "", fmt.Errorf("%s must be USER:PASS", from)
	}
	return u, p, nil
}
