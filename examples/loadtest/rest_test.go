package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
)

// fakeREST is a REST server that answers like examples/restserver: calls
// become ESTABLISHED and ACTIVE on the second find_all after startup, and
// disappear on terminate. Callee "busy" is refused with 503.
type fakeREST struct {
	mu     sync.Mutex
	calls  map[string]int // callId -> find_all polls seen
	bodies []map[string]any
	auth   bool
}

func (f *fakeREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "secret" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.auth = true
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	switch r.URL.Path {
	case "/rest-api/call/startup":
		f.bodies = append(f.bodies, body)
		if body["callId"] == "refused" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":503,"error":"Service Unavailable","message":"too many calls"}`))
			return
		}
		f.calls[body["callId"].(string)] = 0
		_, _ = w.Write([]byte("{}"))
	case "/rest-api/call/find_all":
		if len(f.calls) == 0 {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var out []restCall
		for id, n := range f.calls {
			c := restCall{CallID: id, Status: "TRYING", RTMPStatus: "RTMP_STREAM_WAIT"}
			if n >= 1 {
				c.Status, c.RTMPStatus = "ESTABLISHED", "RTMP_STREAM_ACTIVE"
			}
			f.calls[id] = n + 1
			out = append(out, c)
		}
		_ = json.NewEncoder(w).Encode(out)
	case "/rest-api/call/terminate":
		delete(f.calls, body["callId"].(string))
		_, _ = w.Write([]byte("{}"))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestRESTGateway(t *testing.T) {
	f := &fakeREST{calls: map[string]int{}}
	srv := httptest.NewServer(f)
	defer srv.Close()

	_, err := newREST(&options{rest: srv.URL}, "127.0.0.1:5070", "rtmp://127.0.0.1/live")
	require.Error(t, err, "-gateway-pid is required")
	g, err := newREST(&options{rest: srv.URL + "/", restAuth: "admin:secret", gatewayPID: os.Getpid()}, "127.0.0.1:5070", "rtmp://127.0.0.1/live")
	require.NoError(t, err)
	defer g.close()
	ctx := context.Background()

	require.NoError(t, g.start(ctx, "c1"))
	assert.True(t, f.auth)
	require.Len(t, f.bodies, 1)
	assert.Equal(t, map[string]any{"callId": "c1", "callee": "sip:load@127.0.0.1:5070", "rtmpUrl": "rtmp://127.0.0.1/live",
		"rtmpStream": "c1", "hasAudio": true, "hasVideo": true}, f.bodies[0])
	assert.Equal(t, 1, g.active([]string{"c1", "gone"}))
	_, _, ok := g.stats([]string{"c1"})
	assert.False(t, ok)

	err = g.start(ctx, "refused")
	require.Error(t, err)
	var r result
	r.countErr("refused", err)
	assert.Equal(t, 1, r.RefusedOverload)
	assert.Equal(t, "/call/startup: HTTP 503: too many calls", r.RefusedReason)
	assert.Zero(t, r.CallsFailed)

	require.NoError(t, g.stop(ctx, "c1"))
	g.snapshot = nil // forget the cached list
	st, _, err := g.status(ctx, "c1")
	require.NoError(t, err)
	assert.Empty(t, st)

	// A list cached from before the call existed does not fail it.
	g.pollMu.Lock()
	g.snapshot, g.polled = map[string]restCall{}, time.Now()
	g.pollMu.Unlock()
	require.NoError(t, g.start(ctx, "c2"), "not listed in a list older than the call: wait for the next")

	// An incoming call: the load caller made it, the server lists it.
	f.mu.Lock()
	f.calls["in1"] = 0
	f.mu.Unlock()
	require.NoError(t, g.adopt(ctx, "in1"))
	f.mu.Lock()
	delete(f.calls, "in1") // the caller hung up
	f.mu.Unlock()
	require.NoError(t, g.awaitEnd(ctx, "in1"))
	g.snapshot = nil
	require.Error(t, g.adopt(ctx, "never"), "not listed in a list newer than the call: gone")
	assert.Equal(t, "", g.sipAddr())

	cpu, err := g.cpu()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cpu, 0.0)
	rss, err := g.rss()
	require.NoError(t, err)
	assert.Positive(t, rss)
}

func TestCountErr(t *testing.T) {
	var r result
	r.countErr("lt1-5-3", errors.New(`call "lt1-5-3": 486 Busy Here`))
	r.countErr("lt1-5-4", errors.New(`call "lt1-5-4": 486 Busy Here`))
	r.countErr("x", callmgr.ErrTooManyCalls)
	assert.Equal(t, 2, r.CallsFailed, "a refusal is not a failure")
	assert.Equal(t, 1, r.RefusedOverload)
	assert.Equal(t, 2, r.Errors[`call "<id>": 486 Busy Here`])
}
