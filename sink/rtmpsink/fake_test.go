package rtmpsink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/rtmp/flv"
)

// op is one call a fake connection received.
type op struct {
	conn     int
	kind     string // "meta", "h264", "aaccfg", "aac", "g711"
	pts, dts time.Duration
	key      bool
	alaw     bool
	payload  []byte
}

// fakeServer hands out fake connections; it can be taken down (dials fail,
// writes on the open connection fail) and brought back.
type fakeServer struct {
	mu      sync.Mutex
	up      bool
	conns   int
	ops     []op
	dials   int
	err     error // dial error while down
	keyReqs int
	changed chan struct{}
}

func newFakeServer() *fakeServer {
	return &fakeServer{up: true, changed: make(chan struct{}), err: errors.New("connection refused")}
}

func (s *fakeServer) notifyLocked() { close(s.changed); s.changed = make(chan struct{}) }

func (s *fakeServer) setUp(up bool) {
	s.mu.Lock()
	s.up = up
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *fakeServer) dial(ctx context.Context, c *cfgOK) (publisher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dials++
	if !s.up {
		return nil, fmt.Errorf("dial %s: %w", c.publishURL, s.err)
	}
	s.conns++
	return &fakeConn{s: s, id: s.conns}, nil
}

func (s *fakeServer) snapshot() []op {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]op(nil), s.ops...)
}

type fakeConn struct {
	s      *fakeServer
	id     int
	closed bool
}

func (c *fakeConn) add(o op) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if !c.s.up || c.closed || c.s.conns != c.id {
		return errors.New("write: broken pipe")
	}
	o.conn = c.id
	c.s.ops = append(c.s.ops, o)
	c.s.notifyLocked()
	return nil
}

func (c *fakeConn) WriteMetadata(md flv.Metadata) error { return c.add(op{kind: "meta"}) }
func (c *fakeConn) WriteH264(pts, dts time.Duration, avcc []byte, key bool) error {
	return c.add(op{kind: "h264", pts: pts, dts: dts, key: key, payload: avcc})
}
func (c *fakeConn) WriteAACConfig(asc []byte) error { return c.add(op{kind: "aaccfg", payload: asc}) }
func (c *fakeConn) WriteAAC(pts time.Duration, au []byte) error {
	return c.add(op{kind: "aac", pts: pts, payload: au})
}
func (c *fakeConn) WriteG711(pts time.Duration, alaw bool, p []byte) error {
	return c.add(op{kind: "g711", pts: pts, alaw: alaw, payload: p})
}
func (c *fakeConn) Close() error {
	c.s.mu.Lock()
	c.closed = true
	c.s.mu.Unlock()
	return nil
}

// statusLog collects OnStatus calls.
type statusLog struct {
	mu  sync.Mutex
	all []string // "status|reason"
	sts []Status
	ch  chan struct{}
}

func newStatusLog() *statusLog { return &statusLog{ch: make(chan struct{}, 100)} }

func (l *statusLog) on(s Status, reason string) {
	l.mu.Lock()
	l.all = append(l.all, s.String()+"|"+reason)
	l.sts = append(l.sts, s)
	l.mu.Unlock()
	l.ch <- struct{}{}
}

func (l *statusLog) statuses() []Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Status(nil), l.sts...)
}

func (l *statusLog) wait(t *testing.T, want Status) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		st := l.statuses()
		if len(st) > 0 && st[len(st)-1] == want {
			return
		}
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("status %s never came; got %v", want, st)
		}
	}
}

const testKey = "sk-live-SECRET123"

func testConfig(l *statusLog) Config {
	return Config{
		URL: "rtmp://127.0.0.1:1935/live", StreamName: testKey,
		Audio: true, Video: true, AudioMode: AudioPassthrough,
		OnStatus:   l.on,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		GiveUpAfter: 10 * time.Second,
	}
}

func vframe(i int, key bool) *media.Frame {
	ts := time.Duration(i) * 40 * time.Millisecond
	return &media.Frame{Codec: media.CodecH264, PTS: ts, DTS: ts, Keyframe: key, ClockRate: 90000,
		Payload: []byte{0, 0, 0, 2, 0x65, byte(i)}}
}

func aframe(i int) *media.Frame {
	ts := time.Duration(i) * 20 * time.Millisecond
	return &media.Frame{Codec: media.CodecPCMA, PTS: ts, DTS: ts, Keyframe: true, ClockRate: 8000, Channels: 1,
		Duration: 20 * time.Millisecond, Payload: []byte{0xd5, byte(i)}}
}

// feed writes video frames from..to (keyframe every 25) with two audio
// frames each, in timeline order.
func feed(t *testing.T, s *Sink, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		require.NoError(t, s.WriteFrame(vframe(i, i%25 == 0)))
		require.NoError(t, s.WriteFrame(aframe(2*i)))
		require.NoError(t, s.WriteFrame(aframe(2*i+1)))
	}
}

func waitOps(t *testing.T, srv *fakeServer, cond func([]op) bool) []op {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		srv.mu.Lock()
		ops := append([]op(nil), srv.ops...)
		ch := srv.changed
		srv.mu.Unlock()
		if cond(ops) {
			return ops
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("condition not met; %d ops", len(ops))
		}
	}
}

func TestStartsOnKeyframe(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	var mu sync.Mutex
	keyReqs := 0
	cfg := testConfig(l)
	cfg.RequestKeyframe = func() { mu.Lock(); keyReqs++; mu.Unlock() }
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	defer s.Close(context.Background())
	l.wait(t, StatusActive)

	feed(t, s, 10, 60) // joins mid-GOP: frames 10..24 and their audio are dropped
	require.NoError(t, s.Close(context.Background()))
	ops := srv.snapshot()
	require.NotEmpty(t, ops)
	assert.Equal(t, "meta", ops[0].kind)
	assert.Equal(t, "h264", ops[1].kind)
	assert.True(t, ops[1].key)
	assert.Equal(t, time.Duration(0), ops[1].pts, "timeline starts at the first published frame")
	assert.Equal(t, []byte{0, 0, 0, 2, 0x65, 25}, ops[1].payload)
	var video, audio int
	for _, o := range ops {
		switch o.kind {
		case "h264":
			assert.Equal(t, time.Duration(video)*40*time.Millisecond, o.pts)
			video++
		case "g711":
			assert.True(t, o.alaw)
			audio++
		}
	}
	assert.Equal(t, 35, video)
	assert.Equal(t, 70, audio)
	st := s.Stats()
	assert.Equal(t, uint64(105), st.FramesSent)
	assert.Equal(t, uint64(45), st.FramesDropped)
	assert.Equal(t, []Status{StatusWait, StatusActive}, l.statuses())
	mu.Lock()
	assert.GreaterOrEqual(t, keyReqs, 1)
	mu.Unlock()
}

func TestReconnectKeepsTimelineAndResendsHeaders(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	s, err := newSink(testConfig(l), srv.dial, realClock{})
	require.NoError(t, err)
	defer s.Close(context.Background())
	l.wait(t, StatusActive)
	feed(t, s, 0, 30)

	srv.setUp(false)
	feed(t, s, 30, 40) // the first write fails: LOST; the rest is dropped
	l.wait(t, StatusLost)
	srv.setUp(true)
	l.wait(t, StatusActive)
	feed(t, s, 40, 80) // resumes at keyframe 50
	require.NoError(t, s.Close(context.Background()))

	assert.Equal(t, []Status{StatusWait, StatusActive, StatusLost, StatusActive}, l.statuses())
	for _, r := range l.all {
		assert.NotContains(t, r, testKey)
	}
	ops := srv.snapshot()
	var second []op
	var lastPTS time.Duration = -1
	for _, o := range ops {
		if o.conn == 2 {
			second = append(second, o)
		}
		if o.kind == "h264" {
			require.Greater(t, o.pts, lastPTS, "video timestamps never go back")
			lastPTS = o.pts
		}
	}
	require.NotEmpty(t, second)
	assert.Equal(t, "meta", second[0].kind, "metadata resent")
	assert.Equal(t, "h264", second[1].kind)
	assert.True(t, second[1].key, "resumes on a keyframe")
	assert.Equal(t, 50*40*time.Millisecond, second[1].pts, "timeline continues, not restarted")
	assert.Equal(t, uint64(2), s.Stats().Connects)
}

func TestGivesUpAfterDeadline(t *testing.T) {
	srv := newFakeServer()
	srv.err = errors.New("connection refused")
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.GiveUpAfter = 300 * time.Millisecond
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	defer s.Close(context.Background())
	l.wait(t, StatusActive)
	feed(t, s, 0, 5)
	srv.setUp(false)
	feed(t, s, 5, 6)
	l.wait(t, StatusFailed)
	err = s.WriteFrame(aframe(100))
	require.ErrorIs(t, err, ErrFailed)
	assert.NotContains(t, err.Error(), testKey)
	assert.Contains(t, err.Error(), "connection refused")
	assert.Equal(t, []Status{StatusWait, StatusActive, StatusLost, StatusFailed}, l.statuses())
	l.mu.Lock()
	last := l.all[len(l.all)-1]
	l.mu.Unlock()
	assert.Contains(t, last, "could not reconnect")
	assert.Contains(t, last, "***")
	assert.NotContains(t, last, testKey)
	srv.mu.Lock()
	assert.Greater(t, srv.dials, 2, "retried with backoff")
	srv.mu.Unlock()
}

func TestInitialConnectFails(t *testing.T) {
	srv := newFakeServer()
	srv.up = false
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.GiveUpAfter = 200 * time.Millisecond
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	feed(t, s, 0, 3) // dropped, no error yet
	l.wait(t, StatusFailed)
	assert.Equal(t, []Status{StatusWait, StatusFailed}, l.statuses())
	require.ErrorIs(t, s.WriteFrame(vframe(0, true)), ErrFailed)
	require.NoError(t, s.Close(context.Background()))
	require.NoError(t, s.Close(context.Background()))
	require.ErrorIs(t, s.WriteFrame(vframe(0, true)), ErrClosed)
}

func TestAudioOnlyPassthrough(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.Video = false
	cfg.NoGeneratedVideo = true
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	l.wait(t, StatusActive)
	for i := 0; i < 10; i++ {
		f := aframe(i)
		f.Codec = media.CodecPCMU
		require.NoError(t, s.WriteFrame(f))
	}
	require.NoError(t, s.WriteFrame(vframe(0, true))) // video not configured: dropped
	require.NoError(t, s.Close(context.Background()))
	ops := srv.snapshot()
	require.Len(t, ops, 11)
	assert.Equal(t, uint64(1), s.Stats().FramesDropped)
	assert.Equal(t, "meta", ops[0].kind)
	for i, o := range ops[1:11] {
		assert.Equal(t, "g711", o.kind)
		assert.False(t, o.alaw)
		assert.Equal(t, time.Duration(i)*20*time.Millisecond, o.pts)
	}
}

// fakeAAC "converts" each input frame to one AAC frame holding its first
// byte, and makes silence frames of 1024 samples at 48 kHz.
type fakeAAC struct {
	next time.Duration
}

func (f *fakeAAC) AudioSpecificConfig() []byte { return []byte{0x11, 0x88} }
func (f *fakeAAC) Write(in *media.Frame, emit func(*media.Frame)) error {
	emit(&media.Frame{Codec: media.CodecAAC, PTS: in.PTS, DTS: in.PTS, Payload: []byte{0xaa, in.Payload[1]}})
	return nil
}
func (f *fakeAAC) Flush(func(*media.Frame)) {}
func (f *fakeAAC) Silence(until time.Duration, emit func(*media.Frame)) {
	for f.next <= until {
		emit(&media.Frame{Codec: media.CodecAAC, PTS: f.next, DTS: f.next, Payload: []byte{0}})
		f.next += 1024 * time.Second / 48000
	}
}

func TestAACModeConvertsAndSendsConfig(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.AudioMode = AudioAAC
	cfg.NewAAC = func() (AudioConverter, error) { return &fakeAAC{}, nil }
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	l.wait(t, StatusActive)
	feed(t, s, 0, 5)
	require.NoError(t, s.Close(context.Background()))
	ops := srv.snapshot()
	assert.Equal(t, "meta", ops[0].kind)
	assert.Equal(t, "aaccfg", ops[1].kind)
	assert.Equal(t, []byte{0x11, 0x88}, ops[1].payload)
	n := 0
	for _, o := range ops {
		if o.kind == "aac" {
			assert.Equal(t, byte(0xaa), o.payload[0])
			n++
		}
		assert.NotEqual(t, "g711", o.kind)
	}
	assert.Equal(t, 10, n)
}

func TestVideoOnlyGetsSilentAAC(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.Audio = false
	cfg.AudioMode = AudioAAC
	cfg.NewAAC = func() (AudioConverter, error) { return &fakeAAC{}, nil }
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	l.wait(t, StatusActive)
	for i := 0; i < 25; i++ { // one second of video
		require.NoError(t, s.WriteFrame(vframe(i, i == 0)))
	}
	require.NoError(t, s.Close(context.Background()))
	n := 0
	for _, o := range srv.snapshot() {
		if o.kind == "aac" {
			n++
		}
	}
	assert.InDelta(t, 45, n, 2, "about 960 ms of 21.3 ms silent frames")
}

func TestRedaction(t *testing.T) {
	for _, c := range []Config{
		{URL: "rtmp://user:pa55word@host/app/" + testKey, Audio: true},
		{URL: "rtmps://live-api-s.facebook.com:443/rtmp/", StreamName: "FB-1-0-" + testKey + "?s_bl=1&s_sc=2&a=Abc123", Audio: true},
		{URL: "rtmp://a.rtmp.youtube.com/live2", StreamName: testKey, Audio: true},
	} {
		ok, err := c.validate()
		require.NoError(t, err)
		msg := ok.redactor.Replace(fmt.Sprintf("dial %s: refused (%s)", ok.publishURL, c.URL))
		assert.NotContains(t, msg, testKey)
		assert.NotContains(t, msg, "pa55word")
		assert.NotContains(t, msg, "Abc123")
		assert.NotContains(t, c.String(), testKey)
		assert.NotContains(t, c.String(), "pa55word")
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, c)
			assert.NotContains(t, out, testKey, verb)
			assert.NotContains(t, out, "pa55word", verb)
		}
		// Nested in a caller's struct (a call's parameters logged whole).
		out := fmt.Sprintf("%#v", struct{ Sink Config }{c})
		assert.NotContains(t, out, testKey)
		assert.NotContains(t, out, "pa55word")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{URL: "rtmp://h/app/key"},              // no tracks
		{Audio: true},                          // no URL
		{URL: "http://h/app/key", Audio: true}, // scheme
		{URL: "rtmp:///app/key", Audio: true},  // host
		{URL: "rtmp://h/app", Audio: true},     // no stream
		{URL: "rtmp://h/app/k", Audio: true, AudioMode: 9},
	} {
		_, err := New(c)
		require.ErrorIs(t, err, ErrConfig, "%v", c)
		assert.NotContains(t, err.Error(), "/key")
	}
}

func TestRequestsKeyframesWhenGOPTooLong(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	var mu sync.Mutex
	reqs := 0
	cfg := testConfig(l)
	cfg.Audio = false
	cfg.RequestKeyframe = func() { mu.Lock(); reqs++; mu.Unlock() }
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	l.wait(t, StatusActive)
	mu.Lock()
	reqs = 0 // the one every publish start makes
	mu.Unlock()
	require.NoError(t, s.WriteFrame(vframe(0, true)))
	for i := 1; i < 60; i++ { // 2.4 s without a keyframe
		require.NoError(t, s.WriteFrame(vframe(i, false)))
		if i == 49 {
			mu.Lock()
			assert.Zero(t, reqs, "no request within 2 s of the keyframe")
			mu.Unlock()
			// maybeRequestKeyframe is rate limited on wall time; let the
			// second since the publish start pass.
			s.writeMu.Lock()
			s.w.lastKeyReq = time.Time{}
			s.writeMu.Unlock()
		}
	}
	require.NoError(t, s.Close(context.Background()))
	mu.Lock()
	assert.Equal(t, 1, reqs, "one request, rate limited")
	mu.Unlock()
}

func TestAudioOnlyGetsGeneratedVideo(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.Video = false
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	l.wait(t, StatusActive)
	start := 30 * time.Second  // the sink joins late in the call
	for i := 0; i < 150; i++ { // 3 s of audio
		f := aframe(i)
		f.PTS += start
		f.DTS += start
		require.NoError(t, s.WriteFrame(f))
	}
	require.NoError(t, s.Close(context.Background()))
	var video []op
	for _, o := range srv.snapshot() {
		if o.kind == "h264" {
			video = append(video, o)
		}
	}
	require.NotEmpty(t, video)
	assert.True(t, video[0].key, "generated track starts with an IDR")
	assert.Less(t, video[0].pts, 200*time.Millisecond, "starts where the audio starts, not at the call's zero")
	var lastKey time.Duration
	for _, v := range video {
		if v.key {
			assert.LessOrEqual(t, v.pts-lastKey, 2*time.Second)
			lastKey = v.pts
		}
	}
	assert.InDelta(t, 30, len(video), 2, "10 fps for 3 s")
}

func TestAACModeTranscodesG711(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.AudioMode = AudioAAC // the real media/transcode ToAAC
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	l.wait(t, StatusActive)
	feed(t, s, 0, 50) // 2 s
	require.NoError(t, s.Close(context.Background()))
	ops := srv.snapshot()
	require.Equal(t, "aaccfg", ops[1].kind)
	rate, ch, ok := ascRate(ops[1].payload)
	require.True(t, ok)
	assert.Equal(t, 48000, rate)
	assert.Equal(t, 1, ch)
	var n int
	var last time.Duration = -1
	for _, o := range ops {
		assert.NotEqual(t, "g711", o.kind)
		if o.kind == "aac" {
			n++
			assert.GreaterOrEqual(t, o.pts, last)
			last = o.pts
		}
	}
	assert.InDelta(t, 2*48000/1024, n, 3, "about 2 s of AAC frames")
}

func TestVideoOnlySilenceStartsAtVideo(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.Audio = false
	cfg.AudioMode = AudioAAC
	s, err := newSink(cfg, srv.dial, realClock{})
	require.NoError(t, err)
	l.wait(t, StatusActive)
	for i := 0; i < 50; i++ { // 2 s of video, 60 s into the call
		f := vframe(i, i%25 == 0)
		f.PTS += time.Minute
		f.DTS += time.Minute
		require.NoError(t, s.WriteFrame(f))
	}
	require.NoError(t, s.Close(context.Background()))
	var aac []op
	for _, o := range srv.snapshot() {
		if o.kind == "aac" {
			aac = append(aac, o)
		}
	}
	assert.InDelta(t, 2*48000/1024, len(aac), 4, "about 2 s of silence, no burst from the call's zero")
}

// TestStaleLossKeepsNewConnection: a connection's loss reported again
// after the sink reconnected (a batch's Flush failing on the connection
// one of its frames already retired) must not retire the new connection.
// It did: the manager took the stale signal for the new connection's loss
// and dialled again while the new one, never closed, still held the
// stream name, which the server then refused (nginx-rtmp: BadName).
func TestStaleLossKeepsNewConnection(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	s, err := newSink(testConfig(l), srv.dial, realClock{})
	require.NoError(t, err)
	defer s.Close(context.Background())
	l.wait(t, StatusActive)
	s.mu.Lock()
	first := s.conn
	s.mu.Unlock()
	s.connLost(first, errors.New("write: broken pipe"))
	require.Eventually(t, func() bool { return s.Stats().Connects == 2 && s.Stats().Status == StatusActive },
		10*time.Second, time.Millisecond, "reconnected")
	s.mu.Lock()
	second := s.conn
	s.mu.Unlock()
	require.NotNil(t, second)

	s.connLost(first, errors.New("flush: broken pipe")) // stale
	// Give the manager time to act on a signal it should not get.
	time.Sleep(200 * time.Millisecond)
	st := s.Stats()
	assert.Equal(t, uint64(2), st.Connects, "no reconnect for a stale loss")
	assert.Equal(t, StatusActive, st.Status)
	s.mu.Lock()
	assert.Same(t, second, s.conn, "the new connection is kept")
	s.mu.Unlock()
	srv.mu.Lock()
	assert.False(t, second.(*fakeConn).closed, "and not closed")
	srv.mu.Unlock()
}
