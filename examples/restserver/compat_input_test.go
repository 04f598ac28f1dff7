package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sip/siptest"
	"github.com/stretchr/testify/require"
)

// The product's rtmpUrl forms, end to end (issue 16): an application URL
// with a query ("rtmp://host:1935/live/_definst_?param1=value1", wcs-docs
// 001, Parameters) and a separate rtmpStream publishes that stream name
// with the query in the connect's app and tcUrl; the documentation's
// "rtmp://localhost:1935/live /" (trailing blank and slash) pushes to app
// "live"; the same push again is 409 and /push/find finds it by the URL
// sent.
func TestCompatRTMPURLForms(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	published := make(chan rtmp.StreamInfo, 8)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rs, err := rtmp.NewServer(rtmp.ServerConfig{OnPublish: func(i rtmp.StreamInfo) error {
		select {
		case published <- i:
		default:
		}
		return nil
	}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := rs.Serve(l); err != nil && !errors.Is(err, rtmp.ErrServerClosed) {
			t.Errorf("rtmp server: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = rs.Close()
		wg.Wait()
	})
	addr := l.Addr().String()
	srv := startRun(t)

	code, body := rest(t, srv.base, "/call/startup", map[string]any{
		"callId": "q-1", "callee": peer.URI(), "toStream": "q-view",
		"rtmpUrl": "rtmp://" + addr + "/live?token=abc", "rtmpStream": "qkey",
	})
	require.Equal(t, http.StatusOK, code, string(body))
	waitCall(t, srv.base, "q-1", "ESTABLISHED + RTMP_STREAM_ACTIVE", func(c wcsapi.Call) bool {
		return c.Status == "ESTABLISHED" && c.RTMPStreamStatus == "RTMP_STREAM_ACTIVE"
	})
	info := nextPublish(t, published)
	require.Equal(t, "live", info.App)
	require.Equal(t, "token=abc", info.AppQuery)
	require.Equal(t, "qkey", info.Name)
	require.Empty(t, info.Query)
	require.Equal(t, "rtmp://"+addr+"/live?token=abc", info.TcURL)

	docURL := "rtmp://" + addr + "/live /"
	code, body = rest(t, srv.base, "/push/startup", map[string]any{"streamName": "q-view", "rtmpUrl": docURL})
	require.Equal(t, http.StatusOK, code, string(body))
	info = nextPublish(t, published)
	require.Equal(t, "live", info.App)
	require.Equal(t, "rtmp_q-view", info.Name)

	code, body = rest(t, srv.base, "/push/startup", map[string]any{"streamName": "q-view", "rtmpUrl": "rtmp://" + addr + "/live"})
	require.Equal(t, http.StatusConflict, code, string(body))
	code, body = rest(t, srv.base, "/push/find", map[string]any{"rtmpUrl": "rtmp://" + addr + "/live"})
	require.Equal(t, http.StatusOK, code, string(body))
	var pushes []wcsapi.Push
	require.NoError(t, json.Unmarshal(body, &pushes))
	require.Len(t, pushes, 1)

	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "q-1"})
	require.Equal(t, http.StatusOK, code, string(body))
}

func nextPublish(t *testing.T, ch <-chan rtmp.StreamInfo) rtmp.StreamInfo {
	t.Helper()
	select {
	case i := <-ch:
		return i
	case <-time.After(30 * time.Second):
		t.Fatal("nothing was published within 30 s")
		return rtmp.StreamInfo{}
	}
}
