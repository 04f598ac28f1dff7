package wcsapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sink/whep"
)

// The Handler guards what it serves, once even behind its own Guard; Admin
// and the WHEP and HLS muxes ask for the admin's login; New checks the
// allow lists and needs the Relay.
func TestHandler(t *testing.T) {
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 27000, RTPPortMax: 27099, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	_, err = New(m, Config{})
	require.ErrorContains(t, err, "Events")
	_, err = New(m, Config{Events: relay, AllowCallees: []string{"[bad"}})
	require.ErrorContains(t, err, "AllowCallees")
	_, err = New(m, Config{Events: relay, Webhook: "ftp://x"})
	require.ErrorContains(t, err, "Webhook")

	api, err := New(m, Config{Events: relay, User: "admin", Password: "pw-123456", CORSOrigins: []string{"https://app.example"},
		WebRTC: &whep.Config{}, HLS: true})
	require.NoError(t, err)
	defer api.Close()
	mux := http.NewServeMux()
	mux.Handle("/rest-api/", api)
	mux.Handle("/whep/", api.WHEP())
	mux.Handle("GET /hls/", api.HLS())
	mux.Handle("/page", api.Admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	for name, h := range map[string]http.Handler{"bare": api, "guarded": api.Guard(mux)} {
		ts := httptest.NewServer(h)
		hdr := map[string]string{"Origin": "https://app.example"}
		code, _, got := do(t, "POST", withAuth(ts.URL, "admin", "pw-123456")+"/rest-api/call/find_all", "application/json", "{}", hdr)
		require.Equal(t, http.StatusNotFound, code, name)
		require.Equal(t, []string{"Origin"}, got.Values("Vary"), "%s: guarded once", name)
		code, _, _ = do(t, "POST", ts.URL+"/rest-api/call/find_all", "application/json", "{}", map[string]string{"Host": "evil.example"})
		require.Equal(t, http.StatusMisdirectedRequest, code, name)
		code, _, _ = do(t, "POST", ts.URL+"/rest-api/call/find_all", "application/json", "{}", nil)
		require.Equal(t, http.StatusUnauthorized, code, name)
		ts.Close()
	}
	ts := httptest.NewServer(api.Guard(mux))
	defer ts.Close()
	for _, p := range []string{"/page", "/whep/x", "/hls/x/index.m3u8"} {
		method := "GET"
		if strings.HasPrefix(p, "/whep") {
			method = "POST"
		}
		code, _, _ := do(t, method, ts.URL+p, "application/sdp", "", nil)
		require.Equal(t, http.StatusUnauthorized, code, p)
		code, _, _ = do(t, method, withAuth(ts.URL, "admin", "pw-123456")+p, "application/sdp", "", nil)
		require.NotEqual(t, http.StatusUnauthorized, code, p)
	}
	require.NoError(t, api.Close())
	require.NoError(t, api.Close(), "idempotent")
}

// Shutdown waits for the webhook's last deliveries until its context ends.
func TestShutdownDeadline(t *testing.T) {
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hook.Close()
	defer close(release)
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 27100, RTPPortMax: 27199, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	api, err := New(m, Config{Events: relay, NoAuth: true, Webhook: hook.URL})
	require.NoError(t, err)
	api.srv.notify(StatusEvent{Type: "CallStatusEvent", CallID: "c1", Status: "FINISH"}, Call{CallID: "c1"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, api.Shutdown(ctx), context.DeadlineExceeded, "the receiver hangs")
	release <- struct{}{}
	require.NoError(t, api.Close(), "delivered once the receiver answers")
}
