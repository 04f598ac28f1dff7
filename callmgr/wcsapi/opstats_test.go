package wcsapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/sip/siptest"
)

// sseEvent is one event read from GET /events.
type sseEvent struct {
	name string
	data []byte
}

// sseCollector reads an event stream and keeps its events.
type sseCollector struct {
	mu     sync.Mutex
	events []sseEvent
	done   chan struct{}
}

func collectEvents(t *testing.T, ctx context.Context, url string) *sseCollector {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c := &sseCollector{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		var name string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				c.mu.Lock()
				c.events = append(c.events, sseEvent{name: name, data: []byte(strings.TrimPrefix(line, "data: "))})
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// of returns the data of the events named name.
func (c *sseCollector) names() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, e := range c.events {
		b.WriteString(e.name[:1])
	}
	return b.String()
}

func (c *sseCollector) of(name string) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for _, e := range c.events {
		if e.name == name {
			out = append(out, e.data)
		}
	}
	return out
}

// lastStats is the last "stats" event of callID.
func (c *sseCollector) lastStats(t *testing.T, callID string) (CallStats, bool) {
	evs := c.of("stats")
	for i := len(evs) - 1; i >= 0; i-- {
		var st CallStats
		require.NoError(t, json.Unmarshal(evs[i], &st))
		if st.CallID == callID {
			return st, true
		}
	}
	return CallStats{}, false
}

// logTexts are the texts of the "log" events of callID.
func (c *sseCollector) logTexts(t *testing.T, callID string) []string {
	var out []string
	for _, b := range c.of("log") {
		var ev logEvent
		require.NoError(t, json.Unmarshal(b, &ev))
		if ev.CallID == callID {
			out = append(out, ev.Entry.Text)
		}
	}
	return out
}

func hasText(texts []string, sub string) bool {
	for _, s := range texts {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// operatorRig is a Manager and a Handler with recordings and sounds on,
// served as the example server serves them.
type operatorRig struct {
	m         *callmgr.Manager
	api       *Handler
	url       string
	recordDir string
}

func newOperatorRig(t *testing.T, record bool) *operatorRig {
	t.Helper()
	rig := &operatorRig{}
	soundDir := t.TempDir()
	if record {
		rig.recordDir = t.TempDir()
	}
	require.NoError(t, os.WriteFile(filepath.Join(soundDir, "beep.wav"), testmedia.WAV(testmedia.Tone(440, 8000, 0, 4000, 0.5), 8000), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(soundDir, "moh"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(soundDir, "moh", "tune.wav"), testmedia.WAV(testmedia.Tone(300, 8000, 0, 800, 0.5), 8000), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(soundDir, "notes.txt"), []byte("not a sound"), 0o644))
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 25000, RTPPortMax: 25999,
		OnEvent: relay.OnEvent, RecordDir: rig.recordDir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	api, err := New(m, Config{Events: relay, NoAuth: true, Record: record, SoundDir: soundDir})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/rest-api/", api)
	mux.Handle("GET /events", api)
	mux.Handle("GET /recordings/", api.Recordings())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		api.EndStreams()
		srv.Close()
		_ = api.Close()
	})
	rig.m, rig.api, rig.url = m, api, srv.URL
	return rig
}

func (rig *operatorRig) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	code, b, _ := do(t, http.MethodPost, rig.url+"/rest-api"+path, "application/json", body, map[string]string{"Host": "localhost"})
	return code, b
}

// The operator's page API against a real call (a siptest peer streaming a
// tone and the H.264 clip, an IDR every second): stats events every second
// with the call's rates, /call/stats, the call's log over REST and as
// events (INVITE and its 200, hold and unhold re-INVITEs, DTMF, the
// recording, BYE), a recording started and stopped on the live call and
// served with Range requests, the sounds listed.
func TestOperatorAPI(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	rig := newOperatorRig(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	evs := collectEvents(t, ctx, rig.url)

	code, body := rig.post(t, "/call/startup", `{"callId":"op1","callee":"`+peer.URI()+`","toStream":"op1s","hasAudio":true,"hasVideo":true}`)
	require.Equal(t, http.StatusOK, code, body)
	c, ok := rig.m.Call("op1")
	require.True(t, ok)
	require.NoError(t, c.WaitEstablished(ctx))

	// Stats: a second of the tone (G.711: 64 kbit/s of payload) and the
	// 25 fps clip with an IDR every second.
	var st CallStats
	require.Eventually(t, func() bool {
		var ok bool
		st, ok = evs.lastStats(t, "op1")
		return ok && st.Audio.Kbps > 50 && st.Video.Fps > 15 && st.Video.KeyframeIntervalMs > 0
	}, 10*time.Second, 100*time.Millisecond, "stats events with the call's rates: %+v", st)
	if b, err := json.Marshal(st); err == nil {
		t.Logf("stats event: %s", b)
	}
	require.InDelta(t, 68.8, st.Audio.Kbps, 8, "G.711: 160 bytes and a 12-byte RTP header 50 times a second")
	require.InDelta(t, 25, st.Video.Fps, 6)
	require.InDelta(t, 1000, st.Video.KeyframeIntervalMs, 150, "an IDR every second")
	require.Greater(t, st.Video.Kbps, 10.0)
	require.NotZero(t, st.Audio.PacketsReceived)
	require.Zero(t, st.Audio.LossPct, "loopback loses nothing")
	require.Less(t, st.AVOffsetMs, int64(1000))
	require.Greater(t, st.AVOffsetMs, int64(-1000))
	require.NotNil(t, st.Outputs)
	require.Positive(t, st.T)

	code, body = rig.post(t, "/call/stats", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	var polled CallStats
	require.NoError(t, json.Unmarshal([]byte(body), &polled))
	require.Equal(t, "op1", polled.CallID)
	require.Greater(t, polled.Audio.Kbps, 50.0)
	require.GreaterOrEqual(t, polled.Audio.PacketsReceived, st.Audio.PacketsReceived)
	code, _ = rig.post(t, "/call/stats", `{"callId":"nope"}`)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = rig.post(t, "/call/stats", `{}`)
	require.Equal(t, http.StatusBadRequest, code)

	// Hold, unhold, DTMF: each in the log.
	code, body = rig.post(t, "/call/hold", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = rig.post(t, "/call/unhold", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = rig.post(t, "/call/send_dtmf", `{"callId":"op1","dtmf":"12","type":"RFC2833"}`)
	require.Equal(t, http.StatusOK, code, body)

	// Record on, then off: a playable file, listed with its call and
	// duration.
	code, body = rig.post(t, "/call/record/startup", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	var started recordStarted
	require.NoError(t, json.Unmarshal([]byte(body), &started))
	require.Equal(t, "op1/record", started.MediaSessionID)
	require.True(t, strings.HasSuffix(started.Name, ".mp4"), started.Name)
	code, body = rig.post(t, "/call/record/startup", `{"callId":"op1"}`)
	require.Equal(t, http.StatusConflict, code, body)
	code, body = rig.post(t, "/call/find", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"recording":true`)
	require.Eventually(t, func() bool {
		st, _ := evs.lastStats(t, "op1")
		for _, o := range st.Outputs {
			if o.Kind == "record" && o.Kbps > 10 && o.Status == "RTMP_STREAM_ACTIVE" {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond, "the recording in the stats' outputs")
	code, body = rig.post(t, "/recording/find_all", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"recording":true`)
	time.Sleep(1500 * time.Millisecond)
	code, body = rig.post(t, "/call/record/terminate", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = rig.post(t, "/call/record/terminate", `{"callId":"op1"}`)
	require.Equal(t, http.StatusNotFound, code, body)
	code, body = rig.post(t, "/call/find", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, `"recording":true`)

	code, body = rig.post(t, "/recording/find_all", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	var recs []Recording
	require.NoError(t, json.Unmarshal([]byte(body), &recs))
	require.Len(t, recs, 1)
	rec := recs[0]
	require.Equal(t, started.Name, rec.Name)
	require.Equal(t, "op1", rec.CallID)
	require.Equal(t, "mp4", rec.Format)
	require.False(t, rec.Recording)
	require.Equal(t, started.URL, rec.URL)
	require.InDelta(t, 2500, rec.DurationMs, 1500, "recorded for about 2.5 s")
	fi, err := os.Stat(filepath.Join(rig.recordDir, rec.Name))
	require.NoError(t, err)
	require.Equal(t, fi.Size(), rec.Size)
	requireMP4(t, filepath.Join(rig.recordDir, rec.Name))

	// Served whole, by range, as a download; nothing outside the folder.
	get := func(path string, hdr map[string]string) (int, string, http.Header) {
		if hdr == nil {
			hdr = map[string]string{}
		}
		hdr["Host"] = "localhost"
		return do(t, http.MethodGet, rig.url+path, "", "", hdr)
	}
	code, whole, h := get(rec.URL, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, int(rec.Size), len(whole))
	require.Equal(t, "video/mp4", h.Get("Content-Type"))
	require.Empty(t, h.Get("Content-Disposition"))
	code, part, h := get(rec.URL, map[string]string{"Range": "bytes=100-199"})
	require.Equal(t, http.StatusPartialContent, code)
	require.Equal(t, whole[100:200], part)
	require.Equal(t, "bytes", h.Get("Accept-Ranges"))
	code, _, h = get(rec.URL+"?download=1", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, `attachment; filename="`+rec.Name+`"`, h.Get("Content-Disposition"))
	outside := filepath.Join(filepath.Dir(rig.recordDir), "secret.mp4")
	require.NoError(t, os.WriteFile(outside, []byte("TOPSECRETCONTENT"), 0o644))
	defer os.Remove(outside)
	for _, p := range []string{"/recordings/..%2fsecret.mp4", "/recordings/%2e%2e/secret.mp4", "/recordings/nope.mp4",
		"/recordings/" + rec.Name + ".json", "/recordings/", "/recordings/.hidden.mp4"} {
		code, body, _ := get(p, nil)
		require.Contains(t, []int{http.StatusNotFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect}, code, "%s: %s", p, body)
		require.NotContains(t, body, "TOPSECRETCONTENT", p)
	}

	// Sounds.
	code, body = rig.post(t, "/sound/find_all", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	var sounds []Sound
	require.NoError(t, json.Unmarshal([]byte(body), &sounds))
	require.Equal(t, []Sound{{Name: "beep.wav", Size: sounds[0].Size}, {Name: "moh/tune.wav", Size: sounds[1].Size}}, sounds)
	require.Positive(t, sounds[0].Size)
	code, body = rig.post(t, "/call/inject_sound", `{"callId":"op1","fileName":"beep.wav"}`)
	require.Equal(t, http.StatusOK, code, body)

	// A push to a port nobody listens on (it keeps trying), its password
	// and a key in the URL: in the outputs (nothing published: 0 kbps) and
	// the log, never its secrets.
	dead, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := dead.Addr().String()
	require.NoError(t, dead.Close())
	code, body = rig.post(t, "/push/startup", `{"streamName":"op1s","rtmpUrl":"rtmp://user:PASSWORD@`+deadAddr+`/live/SECRETKEY"}`)
	require.Equal(t, http.StatusOK, code, body)
	var pushOut []OutputRates
	defer func() { t.Logf("push outputs %+v", pushOut) }()
	require.Eventually(t, func() bool {
		st, _ := evs.lastStats(t, "op1")
		pushOut = st.Outputs
		for _, o := range st.Outputs {
			if o.Kind == "rtmp" && !o.Primary && o.Status != "" && o.Kbps == 0 {
				return true
			}
		}
		return false
	}, 5*time.Second, 100*time.Millisecond, "the push in the stats' outputs")

	// The peer hangs up... here we do: the log says so, and is kept.
	code, body = rig.post(t, "/call/terminate", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	<-c.Done()
	code, body = rig.post(t, "/call/log", `{"callId":"op1"}`)
	require.Equal(t, http.StatusOK, code, body)
	var log CallLog
	require.NoError(t, json.Unmarshal([]byte(body), &log))
	require.Equal(t, "op1", log.CallID)
	var texts []string
	for _, e := range log.Entries {
		require.Contains(t, []string{"sip", "media", "output", "dtmf", "call"}, e.Kind)
		require.Contains(t, []string{"info", "warn", "error"}, e.Level)
		require.Positive(t, e.T)
		texts = append(texts, e.Text)
	}
	for _, want := range []string{"→ INVITE", "← 200 OK (INVITE)", "→ re-INVITE (hold", "← 200 OK (re-INVITE, hold)",
		"→ re-INVITE (unhold", "→ DTMF 12", "recording op1/record started", "recording op1/record stopped",
		"sound beep.wav injected", "→ BYE", "call ended: FINISH", "keyframe"} {
		require.True(t, hasText(texts, want), "log has %q: %q", want, texts)
	}
	require.Eventually(t, func() bool { return hasText(evs.logTexts(t, "op1"), "call ended") }, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, texts, evs.logTexts(t, "op1"), "the log events are the log")
	require.True(t, hasText(texts, "rtmp output "), "%q", texts)
	require.True(t, hasText(texts, "added: rtmp://"+deadAddr+"/live"), "%q", texts)
	for _, secret := range []string{"SECRETKEY", "PASSWORD", "user:"} {
		require.NotContains(t, body, secret)
		for _, b := range evs.of("log") {
			require.NotContains(t, string(b), secret)
		}
		for _, b := range evs.of("stats") {
			require.NotContains(t, string(b), secret)
		}
	}
	code, _ = rig.post(t, "/call/stats", `{"callId":"op1"}`)
	require.Equal(t, http.StatusNotFound, code, "an ended call has no stats")
	code, _ = rig.post(t, "/call/log", `{"callId":"nope"}`)
	require.Equal(t, http.StatusNotFound, code)
	n := len(evs.of("stats"))
	time.Sleep(1200 * time.Millisecond)
	for _, b := range evs.of("stats")[n:] {
		require.NotContains(t, string(b), `"op1"`, "no stats after the end")
	}
}

// requireMP4 checks the file is a finalized MP4: ftyp, moov and media.
func requireMP4(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	var boxes []string
	for off := 0; off+8 <= len(b); {
		size := int(uint32(b[off])<<24 | uint32(b[off+1])<<16 | uint32(b[off+2])<<8 | uint32(b[off+3]))
		boxes = append(boxes, string(b[off+4:off+8]))
		if size < 8 {
			break
		}
		off += size
	}
	require.Contains(t, boxes, "ftyp")
	require.Contains(t, boxes, "moov")
	require.Contains(t, boxes, "mdat")
}

// Without -record-dir and -sound-dir the endpoints say so (400); with no
// recording yet, find_all answers 404 as find_all of calls does.
func TestOperatorAPIOff(t *testing.T) {
	rig := newOperatorRig(t, false)
	// No sound folder either.
	api, err := New(rig.m, Config{Events: new(callmgr.Relay), NoAuth: true})
	require.NoError(t, err)
	defer api.Close()
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, p := range []string{"/recording/find_all", "/sound/find_all"} {
		code, body, _ := do(t, http.MethodPost, srv.URL+"/rest-api"+p, "application/json", `{}`, map[string]string{"Host": "localhost"})
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "-")
	}
	code, body, _ := do(t, http.MethodPost, srv.URL+"/rest-api/call/record/startup", "application/json", `{"callId":"x"}`, map[string]string{"Host": "localhost"})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "recording is off")

	on := newOperatorRig(t, true)
	code, body = on.post(t, "/recording/find_all", `{}`)
	require.Equal(t, http.StatusNotFound, code, body)
	code, body = on.post(t, "/call/record/startup", `{"callId":"nope"}`)
	require.Equal(t, http.StatusNotFound, code, body)
	code, body = on.post(t, "/recording/delete", `{"name":"../x.mp4"}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = on.post(t, "/recording/delete", `{"name":"x.mp4"}`)
	require.Equal(t, http.StatusNotFound, code, body)
	require.NoError(t, os.WriteFile(filepath.Join(on.recordDir, "old.mp4"), []byte("x"), 0o644))
	code, body = on.post(t, "/recording/find_all", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"name":"old.mp4"`)
	require.Contains(t, body, `"durationMs":0`)
	code, body = on.post(t, "/recording/delete", `{"name":"old.mp4"}`)
	require.Equal(t, http.StatusOK, code, body)
	_, err = os.Stat(filepath.Join(on.recordDir, "old.mp4"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// GET /recordings/ needs the admin's login as the REST API does.
func TestRecordingsNeedLogin(t *testing.T) {
	rig := newOperatorRig(t, true)
	api, err := New(rig.m, Config{Events: new(callmgr.Relay), User: "admin", Password: "pw", Record: true})
	require.NoError(t, err)
	defer api.Close()
	srv := httptest.NewServer(api.Recordings())
	defer srv.Close()
	require.NoError(t, os.WriteFile(filepath.Join(rig.recordDir, "a.mp4"), []byte("0123456789"), 0o644))
	code, _, _ := do(t, http.MethodGet, srv.URL+"/recordings/a.mp4", "", "", map[string]string{"Host": "localhost"})
	require.Equal(t, http.StatusUnauthorized, code)
	code, body, _ := do(t, http.MethodGet, withAuth(srv.URL, "admin", "pw")+"/recordings/a.mp4", "", "", map[string]string{"Host": "localhost"})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "0123456789", body)
	code, _, _ = do(t, http.MethodGet, withAuth(srv.URL, "admin", "pw")+"/recordings/a.mp4", "", "", map[string]string{"Host": "evil.example"})
	require.Equal(t, http.StatusMisdirectedRequest, code, "behind the guard")
	code, _, _ = do(t, http.MethodPost, withAuth(srv.URL, "admin", "pw")+"/recordings/a.mp4", "", "", map[string]string{"Host": "localhost"})
	require.Equal(t, http.StatusMethodNotAllowed, code)
}

// statsOf: rates over the interval between two samples (loss of that
// interval only), none without a previous sample; outputs are the RTMP
// pushes and recordings, not the other sinks.
func TestStatsOf(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := &statsSample{at: t0, aBytes: 1000, vBytes: 10000, aRecv: 100, aLost: 5, vRecv: 1000, vLost: 10, vFrames: 100,
		sinkBytes: map[string]uint64{"c/rtmp": 5000}}
	next := &statsSample{at: t0.Add(2 * time.Second), aBytes: 17000, vBytes: 210000, aRecv: 200, aLost: 5, vRecv: 1098, vLost: 12,
		vFrames: 150, sinkBytes: map[string]uint64{"c/rtmp": 205000}}
	ci := callmgr.CallInfo{CallID: "c", Sinks: []callmgr.SinkInfo{
		{ID: "c/rtmp", Kind: callmgr.SinkKindRTMP, Primary: true, Status: callmgr.SinkLost},
		{ID: "w", Kind: callmgr.SinkKindCustom, Status: callmgr.SinkActive},
	}}
	cs := callmgr.CallStats{CallID: "c", AVOffset: -35 * time.Millisecond,
		Audio: callmgr.MediaStats{PacketsReceived: 200, PacketsLost: 5, Jitter: 3 * time.Millisecond, RTT: 12 * time.Millisecond},
		Video: callmgr.MediaStats{PacketsReceived: 1098, PacketsLost: 12, Freezes: 1, FrozenTime: 420 * time.Millisecond,
			KeyframeInterval: time.Second, KeyframeRequests: 3, NACKsSent: 4, PacketsRecovered: 3},
		Sinks: []callmgr.SinkStats{{ID: "c/rtmp", BytesWritten: 205000, Queued: 7, FramesDropped: 2, Reconnects: 1}, {ID: "w"}}}
	st := statsOf(ci, cs, prev, next, "n1")
	require.Equal(t, CallStats{
		CallID: "c", NodeID: "n1", T: next.at.UnixMilli(),
		Audio: StreamRates{Kbps: 64, PacketsReceived: 200, PacketsLost: 5, LossPct: 0, JitterMs: 3, RTTMs: 12},
		Video: VideoStreamRate{
			StreamRates: StreamRates{Kbps: 800, PacketsReceived: 1098, PacketsLost: 12, LossPct: 2, JitterMs: 0, RTTMs: 0},
			Fps:         25, Freezes: 1, FrozenMs: 420, KeyframeIntervalMs: 1000, KeyframeRequests: 3, NACKsSent: 4, PacketsRecovered: 3,
		},
		AVOffsetMs: -35,
		Outputs: []OutputRates{{MediaSessionID: "c/rtmp", Kind: "rtmp", Primary: true, Status: "RTMP_CONNECTION_LOST",
			Kbps: 800, Queued: 7, Dropped: 2, Reconnects: 1}},
	}, st)

	first := statsOf(ci, cs, nil, next, "")
	require.Zero(t, first.Audio.Kbps)
	require.Zero(t, first.Video.LossPct)
	require.Zero(t, first.Video.Fps)
	require.Equal(t, uint64(1098), first.Video.PacketsReceived, "counters without a previous sample")
	b, err := json.Marshal(first)
	require.NoError(t, err)
	for _, k := range []string{`"callId"`, `"t"`, `"kbps"`, `"packetsReceived"`, `"packetsLost"`, `"lossPct"`, `"jitterMs"`, `"rttMs"`,
		`"fps"`, `"freezes"`, `"frozenMs"`, `"keyframeIntervalMs"`, `"keyframeRequests"`, `"nacksSent"`, `"packetsRecovered"`,
		`"avOffsetMs"`, `"outputs"`, `"mediaSessionId"`, `"kind"`, `"primary"`, `"status"`, `"queued"`, `"dropped"`, `"reconnects"`} {
		require.Contains(t, string(b), k)
	}
}
