package wcsapi

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testmedia"
)

func TestCallControlEndpoints(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup", `{"callId":"c1","callee":"sip:bob@127.0.0.1:5090"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)

	ok := []struct{ path, body, want string }{
		{"/call/hold", `{"callId":"c1"}`, "hold c1 true"},
		{"/call/unhold", `{"callId":"c1"}`, "hold c1 false"},
		{"/call/transfer", `{"callId":"c1","target":"sip:carol@127.0.0.1"}`, "transfer c1 sip:carol@127.0.0.1 "},
		{"/call/transfer", `{"callId":"c1","replacesCallId":"c2"}`, "transfer c1  c2"},
		{"/call/inject_sound", `{"callId":"c1","fileName":"moh.wav","loop":"true"}`, "sound c1 moh.wav true"},
		{"/call/inject_sound", `{"callId":"c1","fileName":"hello.mp3"}`, "sound c1 hello.mp3 false"},
		{"/call/inject_sound/terminate", `{"callId":"c1"}`, "sound c1  false"},
		{"/call/inject_stream/startup", `{"callId":"c1","streamName":"other"}`, "stream c1 other"},
		{"/call/inject_stream", `{"callId":"c1","streamName":"other"}`, "stream c1 other"},
		{"/call/inject_stream/terminate", `{"callId":"c1"}`, "stream c1 "},
		{"/push/sound_on", `{"mediaSessionId":"m1","soundFile":"s.wav","loop":true}`, "pushsound m1 s.wav true"},
		{"/push/sound_off", `{"mediaSessionId":"m1"}`, "pushsound m1  false"},
	}
	for _, c := range ok {
		r := call(t, ts, "/rest-api"+c.path, c.body)
		require.Equal(t, http.StatusOK, r.status, "%s %s: %s", c.path, c.body, r.body)
		assert.JSONEq(t, `{}`, r.body)
		f.mu.Lock()
		last := f.controls[len(f.controls)-1]
		f.mu.Unlock()
		assert.Equal(t, c.want, last, c.path)
	}

	bad := []struct {
		path, body string
		status     int
		field      string
	}{
		{"/call/hold", `{}`, 400, "callId"},
		{"/call/hold", `{"callId":"nope"}`, 404, ""},
		{"/call/transfer", `{"callId":"c1"}`, 400, "target"},
		{"/call/transfer", `{"callId":"c1","target":"<sip:x@y>"}`, 400, "target"},
		{"/call/inject_sound", `{"callId":"c1"}`, 400, "fileName"},
		{"/call/inject_stream/startup", `{"callId":"c1"}`, 400, "streamName"},
		{"/push/sound_on", `{"mediaSessionId":"m1"}`, 400, "soundFile"},
		{"/call/unhold", `{"callId":`, 400, ""},
	}
	for _, c := range bad {
		r := call(t, ts, "/rest-api"+c.path, c.body)
		assert.Equal(t, c.status, r.status, "%s %s: %s", c.path, c.body, r.body)
		if c.field != "" {
			assert.Contains(t, r.body, c.field, c.path)
		}
	}
}

func TestTransferTargetAllowList(t *testing.T) {
	al, err := newAllowList([]string{"*.example.com"})
	require.NoError(t, err)
	_, _, ts := newTestServer(t, serverOptions{AllowCallees: al})
	r := call(t, ts, "/rest-api/call/startup", `{"callId":"c1","callee":"sip:bob@pbx.example.com"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = call(t, ts, "/rest-api/call/transfer", `{"callId":"c1","target":"sip:carol@evil.test"}`)
	assert.Equal(t, http.StatusBadRequest, r.status, r.body)
	r = call(t, ts, "/rest-api/call/transfer", `{"callId":"c1","target":"sip:carol@pbx.example.com"}`)
	assert.Equal(t, http.StatusOK, r.status, r.body)
}

func TestPushStartupOptions(t *testing.T) {
	f, _, ts := newTestServer(t, serverOptions{})
	r := call(t, ts, "/rest-api/call/startup", `{"callId":"c1","callee":"sip:bob@127.0.0.1:5090","toStream":"s1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)

	r = call(t, ts, "/rest-api/push/startup", `{"streamName":"s1","rtmpUrl":"rtmp://h/live","options":{"action":"sound_on","soundFile":"sample.wav"}}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, `"soundEnabled":true`)
	assert.Contains(t, r.body, `"options":{"action":"sound_on","soundFile":"sample.wav"}`)
	f.mu.Lock()
	assert.Equal(t, "pushsound push-1 sample.wav false", f.controls[len(f.controls)-1])
	f.mu.Unlock()

	r = call(t, ts, "/rest-api/push/startup", `{"streamName":"s1","rtmpUrl":"rtmp://h2/live","options":{"action":"mute"}}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Contains(t, r.body, `"muted":true`)
	assert.Contains(t, r.body, `"options":{"action":"mute"}`)

	for _, body := range []string{
		`{"streamName":"s1","rtmpUrl":"rtmp://h3/live","options":{"action":"dance"}}`,
		`{"streamName":"s1","rtmpUrl":"rtmp://h3/live","options":{"action":"sound_on"}}`,
		`{"streamName":"s1","rtmpUrl":"rtmp://h3/live","options":[1]}`,
	} {
		r = call(t, ts, "/rest-api/push/startup", body)
		assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", body, r.body)
		assert.Contains(t, r.body, "options")
	}
}

func TestClipCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.wav")
	require.NoError(t, os.WriteFile(path, testmedia.WAV(testmedia.Tone(1000, 8000, 0, 800, 0.5), 8000), 0o644))
	var c clipCache
	a, err := c.load(path)
	require.NoError(t, err)
	b, err := c.load(path)
	require.NoError(t, err)
	assert.Same(t, a, b, "decoded once, shared")
	// A changed file is decoded again.
	require.NoError(t, os.WriteFile(path, testmedia.WAV(testmedia.Tone(1000, 8000, 0, 1600, 0.5), 8000), 0o644))
	require.NoError(t, os.Chtimes(path, time.Now().Add(time.Minute), time.Now().Add(time.Minute)))
	b, err = c.load(path)
	require.NoError(t, err)
	assert.Len(t, b.Samples, 1600)
	assert.Equal(t, 1600, c.samples)
	_, err = c.load(filepath.Join(dir, "missing.wav"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = c.load(dir)
	assert.Error(t, err, "a directory is not a sound")
}

func TestCallObjectCallControlMembers(t *testing.T) {
	ci := callmgr.CallInfo{CallID: "c1", Status: callmgr.StatusHold, Held: true, InjectedSound: "moh.wav",
		Transfer: &callmgr.TransferInfo{Target: "sip:carol@pbx", Code: 486, Reason: "Busy Here", Done: true}}
	b, err := json.Marshal(callObjectOf(ci, "n1", time.Now))
	require.NoError(t, err)
	s := string(b)
	assert.Contains(t, s, `"status":"HOLD"`)
	assert.Contains(t, s, `"held":true,"injectedSound":"moh.wav","transfer":{"target":"sip:carol@pbx","sipStatus":486,"reason":"Busy Here","done":true,"succeeded":false}`)
	assert.Less(t, strings.Index(s, `"holdForTransfer"`), strings.Index(s, `"held"`), "sipstream's members after the product's")
	b, err = json.Marshal(callObjectOf(callmgr.CallInfo{CallID: "c2"}, "n1", time.Now))
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"held"`)
	assert.NotContains(t, string(b), `"transfer"`)
}
