package wcsapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sip/siptest"
)

// The HLS muxer of a call is made on the first request, released when no
// request came for the idle time (and made again on the next one), and
// forgotten when the call ends.
func TestHLSMuxerLifetime(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 24000, RTPPortMax: 24999, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	const idle = 300 * time.Millisecond
	api, err := New(m, Config{Events: relay, NoAuth: true, HLS: true, HLSIdle: idle})
	require.NoError(t, err)
	defer api.Close()
	h := api.HLS()
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close() // before srv.Close: ends requests still waiting

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := m.StartCall(ctx, callmgr.CallParams{CallID: "h1", Callee: peer.URI(), ToStream: "s1", HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))

	get := func(method, path string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	muxers := func() int { return len(m.FindSinks(callmgr.SinkFilter{CallID: "h1", Kind: callmgr.SinkKindCustom})) }

	code, _ := get(http.MethodGet, "/hls/nope/index.m3u8")
	require.Equal(t, http.StatusNotFound, code, "no such stream")
	code, _ = get(http.MethodPost, "/hls/s1/index.m3u8")
	require.Equal(t, http.StatusMethodNotAllowed, code)
	require.Zero(t, muxers(), "no muxer before a GET")

	code, body := get(http.MethodGet, "/hls/s1/index.m3u8")
	require.Equal(t, http.StatusOK, code, "%q", body)
	require.True(t, strings.HasPrefix(body, "#EXTM3U"), body)
	require.Equal(t, 1, muxers(), "one muxer attached")
	code, _ = get(http.MethodGet, "/hls/s1/index.m3u8")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, muxers(), "still one muxer")

	require.Eventually(t, func() bool { return muxers() == 0 }, 10*idle, 20*time.Millisecond, "released when idle")

	code, _ = get(http.MethodGet, "/hls/s1/index.m3u8")
	require.Equal(t, http.StatusOK, code, "made again")
	require.Equal(t, 1, muxers())

	require.NoError(t, c.Terminate(ctx))
	<-c.Done()
	require.Eventually(t, func() bool { return h.Streams() == 0 }, 5*time.Second, 20*time.Millisecond, "forgotten with the call")
	code, _ = get(http.MethodGet, "/hls/s1/index.m3u8")
	require.Equal(t, http.StatusNotFound, code, "the call ended")
}

func startPeer(t *testing.T, script siptest.Script) *siptest.Peer {
	t.Helper()
	p, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Script: script})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}
