package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/metrics"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sink/whep"
)

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The demo's RTMP server accepts the call's publication at the URL the form
// is prefilled with, and the banner tells how to watch exactly that stream.
func TestDemoRTMPServerAndBanner(t *testing.T) {
	d, err := startDemo(discardLog())
	require.NoError(t, err)
	defer d.close()

	def := d.defaults()
	require.Equal(t, d.peer.URI(), def["callee"])
	require.Equal(t, demoStream, def["rtmpStream"])
	require.Equal(t, demoStream, def["toStream"])
	rtmpURL, _ := def["rtmpUrl"].(string)
	require.True(t, strings.HasPrefix(rtmpURL, "rtmp://127.0.0.1:"), rtmpURL)
	require.True(t, strings.HasSuffix(rtmpURL, "/live"), rtmpURL)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub := d.rtmp.Subscribe("live", demoStream, 0)
	defer sub.Close()
	c, err := rtmp.Dial(ctx, rtmpURL+"/"+demoStream, rtmp.ClientConfig{})
	require.NoError(t, err)
	require.NoError(t, c.WriteG711(0, true, make([]byte, 160)))
	tag, err := sub.ReadTag(ctx)
	require.NoError(t, err)
	require.Equal(t, uint8(8), tag.Type, "the published audio tag reaches the demo server")
	require.NoError(t, c.Close())

	var b strings.Builder
	d.printBanner(&b, []string{"http://localhost:8081/", "https://localhost:8444/"}, login{off: true})
	out := b.String()
	require.Contains(t, out, "http://localhost:8081/")
	require.Contains(t, out, "https://localhost:8444/")
	require.Contains(t, out, "ffplay "+rtmpURL+"/"+demoStream)
	require.Contains(t, out, d.peer.URI())
}

func TestPageURL(t *testing.T) {
	for _, tc := range []struct{ scheme, addr, want string }{
		{"http", "0.0.0.0:8081", "http://localhost:8081/"},
		{"http", "[::]:8081", "http://localhost:8081/"},
		{"https", "127.0.0.1:8444", "https://127.0.0.1:8444/"},
		{"http", "[::1]:80", "http://[::1]:80/"},
		{"http", "example.com:8081", "http://example.com:8081/"},
	} {
		require.Equal(t, tc.want, pageURL(tc.scheme, tc.addr), tc.addr)
	}
}

// The handler serves the page, the player script, /defaults, /metrics
// (the API's, the calls' and the process's), the REST API and WHEP.
func TestPageAndPlayer(t *testing.T) {
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 25000, RTPPortMax: 25099, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	api, err := wcsapi.New(m, wcsapi.Config{Events: relay, NoAuth: true, WebRTC: &whep.Config{}, HLS: true})
	require.NoError(t, err)
	defer api.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(api, metrics.New(m))
	ts := httptest.NewServer(newHandler(api, reg, map[string]any{"callee": "sip:demo@x"}, nil))
	defer ts.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, js := get("/player/player.js")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, js, "function whepPlay")
	code, page := get("/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, `id="startForm"`)
	require.Contains(t, page, `src="player/player.js"`)
	code, defaults := get("/defaults")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"callee":"sip:demo@x"}`, defaults)
	code, metrics := get("/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, name := range []string{"sipstream_webrtc_streams 0", "sipstream_hls_streams 0", "sipstream_sse_subscribers 0", "sipstream_rtmp_connection_lost_total 0"} {
		require.Contains(t, metrics, name)
	}
	resp, err := http.Post(ts.URL+"/rest-api/call/find_all", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no calls")
	resp, err = http.Post(ts.URL+"/whep/nosuch", "application/sdp", strings.NewReader("v=0\r\n"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	code, _ = get("/hls/nosuch/index.m3u8")
	require.Equal(t, http.StatusNotFound, code)
}

// In -demo mode a listener left at its default address moves to a free port
// when the default is taken; one given on the command line or in the
// environment does not.
func TestDemoFallbackOnlyForDefaults(t *testing.T) {
	cfg, err := parseConfig([]string{"-demo", "-http", "127.0.0.1:9999"}, func(k string) string {
		if k == "SIPSTREAM_HTTPS" {
			return "127.0.0.1:9998"
		}
		return ""
	}, io.Discard)
	require.NoError(t, err)
	require.False(t, demoFallback(cfg, "http"), "given on the command line")
	require.False(t, demoFallback(cfg, "https"), "given in the environment")
	require.True(t, demoFallback(cfg, "sip"), "left at its default")

	cfg, err = parseConfig(nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.False(t, demoFallback(cfg, "sip"), "not in demo mode")

	require.Equal(t, "0.0.0.0:0", anyPort("0.0.0.0:5060"))
	require.Equal(t, ":0", anyPort(":8081"))
	require.Equal(t, "[::1]:0", anyPort("[::1]:8444"))
}
