package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

// /whep/{name} reaches the sink of the live call named so, its viewer
// resources too; other names are 404; a name is one live call's at a time.
func TestWebRTCRouting(t *testing.T) {
	ws := newWebRTCStreams(whep.Config{MediaWait: 50 * time.Millisecond}, discardLog())
	srv := newServer(&fakeCalls{}, serverOptions{WHEP: ws, NoAuth: true})
	ts := httptest.NewServer(srv.handler())
	defer ts.Close()
	defer srv.close()

	post := func(path, ctype, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+path, ctype, strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := post("/whep/nosuch", "application/sdp", "v=0\r\n")
	require.Equal(t, http.StatusNotFound, code)

	st, err := ws.reserve("my stream", "call1")
	require.NoError(t, err)
	_, err = ws.reserve("my stream", "call2")
	require.True(t, errors.Is(err, errConflict), "%v", err)
	// Reserved but not attached yet: still 404.
	code, _ = post("/whep/my%20stream", "application/sdp", "v=0\r\n")
	require.Equal(t, http.StatusNotFound, code)

	s, err := ws.newSink(true, nil)
	require.NoError(t, err)
	defer s.Close()
	ws.attach(st, s, "sink1")
	// The sink answers now (a malformed offer is its 400, not our 404).
	code, body := post("/whep/my%20stream", "application/sdp", "not sdp")
	require.NotEqual(t, http.StatusNotFound, code, body)
	require.GreaterOrEqual(t, code, 400, body)
	// A viewer resource that does not exist: the sink's 404 for DELETE.
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/whep/my%20stream/nope", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The sink's failure or the call's end frees the name.
	ws.sinkRemoved("sink1")
	require.Nil(t, ws.lookup("my stream"))
	st, err = ws.reserve("my stream", "call3")
	require.NoError(t, err)
	ws.attach(st, s, "sink3")
	require.NotNil(t, ws.lookup("my stream"))
	ws.callEnded("call3")
	require.Nil(t, ws.lookup("my stream"))
	// A release after the name was taken again does not free the new owner.
	st4, err := ws.reserve("my stream", "call4")
	require.NoError(t, err)
	ws.release(st)
	_, err = ws.reserve("my stream", "call5")
	require.Error(t, err)
	ws.release(st4)

	// The player script the page loads is served.
	resp, err = http.Get(ts.URL + "/player/player.js")
	require.NoError(t, err)
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(js), "function whepPlay")
	resp, err = http.Get(ts.URL + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(page), `src="player/player.js"`)
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
