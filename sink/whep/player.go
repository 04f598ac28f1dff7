package whep

import (
	_ "embed"
	"net/http"
	"path"
	"strings"
)

// playerHTML is a self-contained player page: it loads "player.js" from next
// to itself and plays the WHEP URL given as its "whep" query parameter
// (default "whep", relative to the page), muted until the user unmutes.
//
//go:embed assets/player.html
var playerHTML string

//go:embed assets/player.js
var playerJS string

// PlayerScript returns the player's script, for pages of your own. It
// defines one function,
//
//	whepPlay(url, videoElement, {iceServers, token}) -> Promise<{pc, resource, audioOnly, stop()}>
//
// which negotiates a receive-only WHEP session and attaches it to the
// element. Vanilla JavaScript, no dependencies.
func PlayerScript() string { return playerJS }

// PlayerHandler serves the player page for any path not ending in
// "player.js" and the player's script (PlayerScript) for paths that do,
// e.g. mux.Handle("/player/", PlayerHandler()) makes
// /player/?whep=/whep/call1 play that call. The page loads "player.js"
// from next to itself and plays the WHEP URL given as its "whep" query
// parameter (default "whep", relative to the page), muted until the user
// unmutes.
func PlayerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		body := playerHTML
		h.Set("Content-Type", "text/html; charset=utf-8")
		if path.Base(r.URL.Path) == "player.js" {
			body = playerJS
			h.Set("Content-Type", "text/javascript; charset=utf-8")
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = strings.NewReader(body).WriteTo(w)
	})
}
