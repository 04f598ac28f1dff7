package rtmpsink_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/rtmp/flv"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

const streamKey = "live-KEY-0123456789"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// server is our own rtmp.Server on a fixed loopback address that the test
// can kill and restart.
type server struct {
	t    *testing.T
	addr string
	srv  *rtmp.Server
	done chan error
}

func startServer(t *testing.T, addr string) *server {
	t.Helper()
	s, err := rtmp.NewServer(rtmp.ServerConfig{})
	require.NoError(t, err)
	var l net.Listener
	require.Eventually(t, func() bool {
		l, err = net.Listen("tcp", addr)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "listen %s", addr)
	sv := &server{t: t, addr: l.Addr().String(), srv: s, done: make(chan error, 1)}
	go func() { sv.done <- s.Serve(l) }()
	t.Cleanup(sv.stop)
	return sv
}

func (s *server) stop() {
	if s.srv == nil {
		return
	}
	_ = s.srv.Close()
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.t.Error("Serve did not return")
	}
	s.srv = nil
}

// statuses records OnStatus calls.
type statuses struct {
	mu      sync.Mutex
	list    []rtmpsink.Status
	reasons []string
	changed chan struct{}
}

func newStatuses() *statuses { return &statuses{changed: make(chan struct{}, 64)} }

func (s *statuses) on(st rtmpsink.Status, reason string) {
	s.mu.Lock()
	s.list = append(s.list, st)
	s.reasons = append(s.reasons, reason)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *statuses) get() []rtmpsink.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rtmpsink.Status(nil), s.list...)
}

func (s *statuses) count(st rtmpsink.Status) int {
	n := 0
	for _, x := range s.get() {
		if x == st {
			n++
		}
	}
	return n
}

// source produces the test clip (looped) with a 1 kHz PCMA tone, as frames
// on a call's timeline.
type source struct {
	aus  []testmedia.AccessUnit
	v, a int // next video frame, next audio frame
}

func (s *source) next() *media.Frame {
	if s.aus == nil {
		s.aus = testmedia.ClipAccessUnits()
	}
	vts := time.Duration(s.v) * 40 * time.Millisecond
	ats := time.Duration(s.a) * 20 * time.Millisecond
	if ats < vts {
		pcm := testmedia.Tone(1000, 8000, s.a*160, 160, 0.5)
		s.a++
		return &media.Frame{Codec: media.CodecPCMA, PTS: ats, DTS: ats, Keyframe: true, ClockRate: 8000, Channels: 1,
			Duration: 20 * time.Millisecond, Payload: g711.EncodeALaw(nil, pcm)}
	}
	au := s.aus[s.v%len(s.aus)]
	s.v++
	var p []byte
	for _, n := range au.NALUs {
		p = binary.BigEndian.AppendUint32(p, uint32(len(n)))
		p = append(p, n...)
	}
	return &media.Frame{Codec: media.CodecH264, PTS: vts, DTS: vts, Keyframe: au.Keyframe, ClockRate: 90000, Payload: p}
}

// pump feeds frames to w, one every tick, until stop is closed.
func pump(w sink.Sink, src interface{ next() *media.Frame }, tick time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if w.WriteFrame(src.next()) != nil {
					return
				}
			}
		}
	}()
	return done
}

// collect reads tags from sub until n video frames (not sequence headers)
// arrived.
func collect(t *testing.T, sub *rtmp.Subscription, n int) []flv.Tag {
	t.Helper()
	ctx := testCtx(t)
	var tags []flv.Tag
	frames := 0
	for frames < n {
		tag, err := sub.ReadTag(ctx)
		require.NoError(t, err, "after %d video frames", frames)
		tags = append(tags, tag)
		if tag.Type == flv.TagVideo {
			v, err := flv.ParseVideo(tag.Data)
			require.NoError(t, err)
			if !v.SequenceHeader() {
				frames++
			}
		}
	}
	return tags
}

// checkStart checks a publication starts with a video sequence header and
// a keyframe, and has AAC audio with its sequence header.
func checkStart(t *testing.T, tags []flv.Tag) (firstVideoTS uint32) {
	t.Helper()
	sawSeq, sawKey, sawAACSeq, aacFrames := false, false, false, 0
	for _, tag := range tags {
		switch tag.Type {
		case flv.TagVideo:
			v, err := flv.ParseVideo(tag.Data)
			require.NoError(t, err)
			if v.SequenceHeader() {
				sawSeq = true
				continue
			}
			if !sawKey {
				require.True(t, sawSeq, "sequence header before the first frame")
				require.True(t, v.Keyframe(), "publication starts on a keyframe")
				sawKey = true
				firstVideoTS = tag.Timestamp
			}
		case flv.TagAudio:
			a, err := flv.ParseAudio(tag.Data)
			require.NoError(t, err)
			require.Equal(t, uint8(flv.SoundAAC), a.Format)
			if a.SequenceHeader() {
				sawAACSeq = true
			} else {
				require.True(t, sawAACSeq, "AAC sequence header first")
				aacFrames++
			}
		}
	}
	require.True(t, sawKey)
	require.NotZero(t, aacFrames, "AAC audio published")
	return firstVideoTS
}

func TestPublishToServer(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	sub := srv.srv.Subscribe("live", streamKey, 4096)
	defer sub.Close()
	st := newStatuses()
	var keyReqs sync.WaitGroup
	keyReqs.Add(1)
	var once sync.Once
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmp://" + srv.addr + "/live", StreamName: streamKey,
		Audio: true, Video: true,
		RequestKeyframe: func() { once.Do(keyReqs.Done) },
		OnStatus:        st.on,
	})
	require.NoError(t, err)
	assert.NotContains(t, s.String(), streamKey)

	// Start mid-GOP: frames before the next keyframe are not published.
	src := &source{}
	for i := 0; i < 30; i++ {
		src.next()
	}
	f := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, f.Add("rtmp", s, 1<<16))
	stop := make(chan struct{})
	done := pump(f, src, time.Millisecond, stop)
	tags := collect(t, sub, 60)
	close(stop)
	<-done
	require.NoError(t, f.Close(context.Background()))
	keyReqs.Wait()

	checkStart(t, tags)
	// Video timestamps advance 40 ms a frame from the first keyframe.
	var prev int64 = -1
	for _, tag := range tags {
		if tag.Type != flv.TagVideo {
			continue
		}
		v, _ := flv.ParseVideo(tag.Data)
		if v.SequenceHeader() {
			continue
		}
		if prev >= 0 {
			assert.Equal(t, prev+40, int64(tag.Timestamp))
		}
		prev = int64(tag.Timestamp)
	}
	assert.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive}, st.get())
}

func TestReconnectAfterServerRestart(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	addr := srv.addr
	sub := srv.srv.Subscribe("live", streamKey, 4096)
	st := newStatuses()
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmp://" + addr + "/live/" + streamKey, Audio: true, Video: true,
		OnStatus:   st.on,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		GiveUpAfter: 20 * time.Second,
	})
	require.NoError(t, err)
	f := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, f.Add("rtmp", s, 1<<16))
	stop := make(chan struct{})
	done := pump(f, &source{}, time.Millisecond, stop)
	defer func() {
		close(stop)
		<-done
		require.NoError(t, f.Close(context.Background()))
	}()

	before := collect(t, sub, 40)
	checkStart(t, before)
	lastBefore := before[len(before)-1].Timestamp
	sub.Close()

	srv.stop() // the server goes away: LOST
	require.Eventually(t, func() bool { return st.count(rtmpsink.StatusLost) == 1 }, 20*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // a few failed attempts
	srv2 := startServer(t, addr)       // back on the same address
	sub2 := srv2.srv.Subscribe("live", streamKey, 4096)
	defer sub2.Close()
	after := collect(t, sub2, 40)
	first := checkStart(t, after) // metadata and sequence headers resent, keyframe first
	assert.Greater(t, first, lastBefore, "timestamps continue, the platform sees one broadcast")
	// Frames may flow on the new connection before the sink's goroutine
	// has reported ACTIVE: wait for the report rather than race it.
	require.Eventually(t, func() bool { return st.count(rtmpsink.StatusActive) == 2 }, 20*time.Second, 5*time.Millisecond)
	assert.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive, rtmpsink.StatusLost, rtmpsink.StatusActive}, st.get())
	for _, r := range st.reasons {
		assert.NotContains(t, r, streamKey)
	}
	assert.Equal(t, uint64(2), s.Stats().Connects)
}

func TestGivesUpWhenServerStaysDown(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	sub := srv.srv.Subscribe("live", streamKey, 4096)
	st := newStatuses()
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmp://" + srv.addr + "/live", StreamName: streamKey, Audio: true, Video: true,
		AudioMode: rtmpsink.AudioPassthrough, OnStatus: st.on,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		GiveUpAfter: time.Second,
	})
	require.NoError(t, err)
	var detachErr error
	detached := make(chan struct{})
	f := sink.NewFanout(sink.FanoutConfig{OnDetach: func(name string, err error) {
		detachErr = err
		close(detached)
	}})
	require.NoError(t, f.Add("rtmp", s, 1<<16))
	stop := make(chan struct{})
	done := pump(f, &source{}, time.Millisecond, stop)
	collect(t, sub, 10)
	sub.Close()
	srv.stop()
	select {
	case <-detached: // FAILED makes WriteFrame fail: the fanout detaches the sink
	case <-testCtx(t).Done():
		t.Fatal("sink never gave up")
	}
	close(stop)
	<-done
	require.NoError(t, f.Close(context.Background()))
	require.ErrorIs(t, detachErr, rtmpsink.ErrFailed)
	assert.NotContains(t, detachErr.Error(), streamKey)
	got := st.get()
	assert.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive, rtmpsink.StatusLost, rtmpsink.StatusFailed}, got)
	st.mu.Lock()
	reason := st.reasons[len(st.reasons)-1]
	st.mu.Unlock()
	assert.True(t, strings.Contains(reason, "could not reconnect"), reason)
	assert.NotContains(t, reason, streamKey)
	assert.False(t, errors.Is(detachErr, rtmpsink.ErrClosed))
}

// TestTwoSinksOneServerDies publishes one call to two servers through one
// fanout; the second server dies and the first publication goes on without
// a gap.
func TestTwoSinksOneServerDies(t *testing.T) {
	a, b := startServer(t, "127.0.0.1:0"), startServer(t, "127.0.0.1:0")
	subA := a.srv.Subscribe("live", streamKey, 1<<14)
	defer subA.Close()
	subB := b.srv.Subscribe("live", streamKey, 1<<14)
	stA, stB := newStatuses(), newStatuses()
	f := sink.NewFanout(sink.FanoutConfig{})
	for _, x := range []struct {
		srv *server
		st  *statuses
	}{{a, stA}, {b, stB}} {
		s, err := rtmpsink.New(rtmpsink.Config{URL: "rtmp://" + x.srv.addr + "/live", StreamName: streamKey,
			Audio: true, Video: true, OnStatus: x.st.on, BackoffMin: 20 * time.Millisecond, GiveUpAfter: 20 * time.Second})
		require.NoError(t, err)
		require.NoError(t, f.Add(x.srv.addr, s, 1<<16))
	}
	stop := make(chan struct{})
	done := pump(f, &source{}, time.Millisecond, stop)
	defer func() {
		close(stop)
		<-done
		require.NoError(t, f.Close(context.Background()))
	}()
	first := collect(t, subA, 20)
	collect(t, subB, 20)
	subB.Close()
	b.stop()
	require.Eventually(t, func() bool { return stB.count(rtmpsink.StatusLost) == 1 }, 20*time.Second, 5*time.Millisecond)
	more := collect(t, subA, 60)
	var prev int64 = -1
	for _, tag := range append(first, more...) {
		if tag.Type != flv.TagVideo {
			continue
		}
		v, _ := flv.ParseVideo(tag.Data)
		if v.SequenceHeader() {
			continue
		}
		if prev >= 0 {
			require.Equal(t, prev+40, int64(tag.Timestamp), "a gap in the healthy publication")
		}
		prev = int64(tag.Timestamp)
	}
	assert.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive}, stA.get())
}

// TestMalformedKeyframeKeepsConnection: a keyframe the phone sent broken
// (a NAL length past the end) is dropped and a keyframe is asked for; the
// connection stays up (no reconnect loop a bad peer could drive) and the
// frames after it are published.
func TestMalformedKeyframeKeepsConnection(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	sub := srv.srv.Subscribe("live", streamKey, 4096)
	defer sub.Close()
	st := newStatuses()
	var keyReqs atomic.Int32
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmp://" + srv.addr + "/live", StreamName: streamKey,
		Audio: true, Video: true, RequestKeyframe: func() { keyReqs.Add(1) }, OnStatus: st.on,
	})
	require.NoError(t, err)
	src := &source{}
	write := func(n int) {
		for range n {
			require.NoError(t, s.WriteFrame(src.next()))
		}
	}
	require.Eventually(t, func() bool { return s.Stats().Status == rtmpsink.StatusActive }, 10*time.Second, time.Millisecond)
	write(90) // through two keyframes
	before := s.Stats()
	require.Equal(t, uint64(1), before.Connects)
	bad := &media.Frame{Codec: media.CodecH264, PTS: time.Duration(src.v) * 40 * time.Millisecond, Keyframe: true,
		ClockRate: 90000, Payload: []byte{0, 0, 0, 99, 0x65, 1, 2}}
	bad.DTS = bad.PTS
	require.NoError(t, s.WriteFrame(bad))
	reqs := keyReqs.Load()
	write(90)
	tags := collect(t, sub, 40)
	require.NotEmpty(t, tags)
	after := s.Stats()
	require.NoError(t, s.Close(context.Background()))
	assert.Equal(t, uint64(1), after.Connects, "no reconnect")
	assert.Greater(t, after.FramesDropped, before.FramesDropped, "the bad frame is counted dropped")
	assert.GreaterOrEqual(t, reqs, int32(1), "a keyframe asked for")
	assert.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive}, st.get())
}
