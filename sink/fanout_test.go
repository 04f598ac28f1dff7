package sink_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func audio(i int) *media.Frame {
	return &media.Frame{Codec: media.CodecPCMA, PTS: time.Duration(i) * 20 * time.Millisecond,
		DTS: time.Duration(i) * 20 * time.Millisecond, Keyframe: true, ClockRate: 8000, Channels: 1,
		Duration: 20 * time.Millisecond, Payload: []byte{byte(i), 0xd5, 0xd5}}
}

func video(i int, key bool) *media.Frame {
	return &media.Frame{Codec: media.CodecH264, PTS: time.Duration(i) * 40 * time.Millisecond,
		DTS: time.Duration(i) * 40 * time.Millisecond, Keyframe: key, ClockRate: 90000,
		Payload: []byte{0, 0, 0, 2, 0x65, byte(i)}}
}

func TestFanoutDeliversCopiesToEverySink(t *testing.T) {
	f := sink.NewFanout(sink.FanoutConfig{})
	a, b := sinktest.New(), sinktest.New()
	require.NoError(t, f.Add("a", a, 0))
	require.NoError(t, f.Add("b", b, 0))
	require.ErrorIs(t, f.Add("a", sinktest.New(), 0), sink.ErrDuplicateName)

	buf := []byte{1, 2, 3}
	in := &media.Frame{Codec: media.CodecPCMU, PTS: time.Second, Keyframe: true, ClockRate: 8000, Payload: buf}
	require.NoError(t, f.WriteFrame(in))
	buf[0] = 99 // the caller reuses its buffer at once
	require.NoError(t, f.WriteFrame(video(1, true)))

	for _, r := range []*sinktest.Recorder{a, b} {
		fs, err := r.WaitN(ctxT(t), 2)
		require.NoError(t, err)
		assert.Equal(t, []byte{1, 2, 3}, fs[0].Payload)
		assert.Equal(t, time.Second, fs[0].PTS)
		assert.Equal(t, media.CodecH264, fs[1].Codec)
	}
	require.NoError(t, f.Close(context.Background()))
	assert.True(t, a.Closed())
	assert.True(t, b.Closed())
	assert.Equal(t, 1, a.CloseCount())
	require.NoError(t, f.Close(context.Background()))
	assert.Equal(t, 1, a.CloseCount(), "second Close must not close sinks again")
	require.ErrorIs(t, f.WriteFrame(audio(0)), sink.ErrClosed)
	require.ErrorIs(t, f.Add("c", sinktest.New(), 0), sink.ErrClosed)
}

// sharedCheck records the payload pointer each sink saw, to prove that the
// fanout copies a frame once, not once per sink.
type sharedCheck struct {
	mu   sync.Mutex
	seen []*byte
}

func (s *sharedCheck) WriteFrame(f *media.Frame) error {
	s.mu.Lock()
	s.seen = append(s.seen, &f.Payload[0])
	s.mu.Unlock()
	return nil
}
func (s *sharedCheck) Close(context.Context) error { return nil }

func TestFanoutCopiesOncePerFrame(t *testing.T) {
	f := sink.NewFanout(sink.FanoutConfig{})
	a, b := &sharedCheck{}, &sharedCheck{}
	require.NoError(t, f.Add("a", a, 0))
	require.NoError(t, f.Add("b", b, 0))
	in := audio(1)
	require.NoError(t, f.WriteFrame(in))
	require.NoError(t, f.Close(context.Background()))
	require.Len(t, a.seen, 1)
	require.Len(t, b.seen, 1)
	assert.Same(t, a.seen[0], b.seen[0], "sinks share one copy")
	assert.NotSame(t, &in.Payload[0], a.seen[0], "the caller's buffer is not retained")
}

func TestFanoutSlowSinkDoesNotSlowFastOne(t *testing.T) {
	keyReqs := 0
	var mu sync.Mutex
	f := sink.NewFanout(sink.FanoutConfig{OnKeyframeNeeded: func() { mu.Lock(); keyReqs++; mu.Unlock() }})
	fast, slow := sinktest.New(), sinktest.New()
	release := slow.Hold() // stuck until released
	require.NoError(t, f.Add("fast", fast, 0))
	require.NoError(t, f.Add("slow", slow, 4))

	const n = 100
	require.NoError(t, f.WriteFrame(video(0, true)))
	// Wait until the slow sink's goroutine holds frame 0 (stuck in WriteFrame).
	require.Eventually(t, func() bool { return f.Stats()[1].Queued == 0 }, 10*time.Second, time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < n; i++ {
			_ = f.WriteFrame(video(i, i%25 == 0))
		}
	}()
	select {
	case <-done: // WriteFrame never blocked on the stuck sink
	case <-time.After(20 * time.Second):
		t.Fatal("WriteFrame blocked behind a stuck sink")
	}
	fs, err := fast.WaitN(ctxT(t), n)
	require.NoError(t, err)
	require.Len(t, fs, n)

	st := f.Stats()
	require.Len(t, st, 2)
	assert.Equal(t, "fast", st[0].Name)
	assert.Zero(t, st[0].FramesDropped)
	assert.Equal(t, uint64(n), st[0].FramesWritten)
	assert.Equal(t, "slow", st[1].Name)
	// Frame 0 is stuck in WriteFrame, 1-4 fill the queue, 5 is dropped and
	// 6-24 skipped; the keyframes 25, 50 and 75 find the queue full (dropped)
	// and the frames after each are skipped.
	assert.Equal(t, 4, st[1].Queued)
	assert.Equal(t, uint64(4), st[1].FramesDropped)
	assert.Equal(t, uint64(19+3*24), st[1].FramesSkipped)
	assert.Zero(t, st[1].FramesWritten)

	reqs := func() int {
		mu.Lock()
		defer mu.Unlock()
		return keyReqs
	}
	assert.Equal(t, 2, reqs(), "one per Add: a sink that stays stuck asks for no keyframes")

	// Unstuck and drained, the slow sink waits for a keyframe: the next
	// frame makes the one request of this episode.
	release()
	require.Eventually(t, func() bool { return f.Stats()[1].Queued == 0 }, 10*time.Second, time.Millisecond)
	require.NoError(t, f.WriteFrame(video(n, false)))
	assert.Equal(t, 3, reqs(), "a request once the sink has room again")
	require.NoError(t, f.WriteFrame(video(n+1, false)))
	assert.Equal(t, 3, reqs(), "only one request per episode")

	require.NoError(t, f.Close(context.Background()))
	got := slow.Frames()
	require.Len(t, got, 5)
	assertWholeGOPs(t, got)
}

// assertWholeGOPs checks that the video frames a sink saw start at a
// keyframe and only continue a group of pictures without gaps.
func assertWholeGOPs(t *testing.T, fs []media.Frame) {
	t.Helper()
	require.NotEmpty(t, fs)
	require.True(t, fs[0].Keyframe, "first video frame must be a keyframe")
	for i := 1; i < len(fs); i++ {
		if fs[i].Keyframe {
			continue
		}
		prev, cur := fs[i-1].Payload[5], fs[i].Payload[5]
		require.Equal(t, prev+1, cur, "gap inside a GOP before frame %d", cur)
	}
}

func TestFanoutNewSinkWaitsForKeyframe(t *testing.T) {
	f := sink.NewFanout(sink.FanoutConfig{})
	early := sinktest.New()
	require.NoError(t, f.Add("early", early, 0))
	for i := 0; i < 30; i++ {
		if i == 10 {
			late := sinktest.New()
			require.NoError(t, f.Add("late", late, 0))
			defer func() {
				vs := late.FramesOf(media.KindVideo)
				require.Len(t, vs, 5) // 25..29
				assert.True(t, vs[0].Keyframe)
				as := late.FramesOf(media.KindAudio)
				assert.Len(t, as, 20, "audio flows at once")
			}()
		}
		require.NoError(t, f.WriteFrame(video(i, i%25 == 0)))
		require.NoError(t, f.WriteFrame(audio(i)))
	}
	require.NoError(t, f.Close(context.Background()))
	assert.Len(t, early.Frames(), 60)
}

func TestFanoutDetachesFailingSink(t *testing.T) {
	type ev struct {
		name string
		err  error
	}
	evs := make(chan ev, 10)
	f := sink.NewFanout(sink.FanoutConfig{OnDetach: func(name string, err error) { evs <- ev{name, err} }})
	good, bad := sinktest.New(), sinktest.New()
	boom := errors.New("disk full")
	bad.FailAfter(3, boom)
	require.NoError(t, f.Add("good", good, 0))
	require.NoError(t, f.Add("bad", bad, 0))
	for i := 0; i < 10; i++ {
		require.NoError(t, f.WriteFrame(audio(i)))
	}
	select {
	case e := <-evs:
		assert.Equal(t, "bad", e.name)
		require.ErrorIs(t, e.err, boom)
	case <-ctxT(t).Done():
		t.Fatal("no detach event")
	}
	require.NoError(t, bad.WaitClosed(ctxT(t)))
	assert.Len(t, bad.Frames(), 3)
	require.ErrorIs(t, f.Remove(context.Background(), "bad"), sink.ErrNotFound)
	_, err := good.WaitN(ctxT(t), 10)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.Len() == 1 }, 10*time.Second, time.Millisecond)
	for i := 10; i < 20; i++ {
		require.NoError(t, f.WriteFrame(audio(i)))
	}
	_, err = good.WaitN(ctxT(t), 20)
	require.NoError(t, err)
	require.NoError(t, f.Close(context.Background()))
	assert.Len(t, bad.Frames(), 3)
	select {
	case e := <-evs:
		t.Fatalf("unexpected second event %v", e)
	default:
	}
}

func TestFanoutDetachEventsInOrder(t *testing.T) {
	var mu sync.Mutex
	var names []string
	f := sink.NewFanout(sink.FanoutConfig{OnDetach: func(name string, err error) {
		mu.Lock()
		names = append(names, name)
		mu.Unlock()
	}})
	recs := map[string]*sinktest.Recorder{}
	for _, n := range []string{"s1", "s2", "s3"} {
		r := sinktest.New()
		r.FailAfter(0, errors.New("fail "+n))
		recs[n] = r
		require.NoError(t, f.Add(n, r, 0))
	}
	// Fail them one after another: each write reaches only the sinks still attached.
	for _, n := range []string{"s2", "s3", "s1"} {
		for k, r := range recs {
			if k != n {
				r.FailAfter(1<<30, errors.New("not yet"))
			} else {
				r.FailAfter(0, errors.New("fail "+n))
			}
		}
		require.NoError(t, f.WriteFrame(audio(0)))
		require.NoError(t, recs[n].WaitClosed(ctxT(t)))
		delete(recs, n)
	}
	require.NoError(t, f.Close(context.Background())) // delivers pending events before returning
	assert.Equal(t, []string{"s2", "s3", "s1"}, names)
}

func TestFanoutRemoveFlushesAndCloses(t *testing.T) {
	f := sink.NewFanout(sink.FanoutConfig{OnDetach: func(string, error) { t.Error("OnDetach on Remove") }})
	r := sinktest.New()
	r.SetDelay(time.Millisecond)
	require.NoError(t, f.Add("r", r, 50))
	for i := 0; i < 20; i++ {
		require.NoError(t, f.WriteFrame(audio(i)))
	}
	require.NoError(t, f.Remove(context.Background(), "r"))
	assert.True(t, r.Closed())
	assert.Len(t, r.Frames(), 20, "queued frames are written before Close")
	require.ErrorIs(t, f.Remove(context.Background(), "r"), sink.ErrNotFound)
	require.NoError(t, f.WriteFrame(audio(21)))
	assert.Len(t, r.Frames(), 20)
	require.NoError(t, f.Close(context.Background()))
	require.ErrorIs(t, f.Remove(context.Background(), "r"), sink.ErrClosed)
}

type closeErrSink struct{ *sinktest.Recorder }

func (c *closeErrSink) Close(context.Context) error { return errors.New("close failed") }

func TestFanoutCloseReturnsSinkErrors(t *testing.T) {
	f := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, f.Add("x", &closeErrSink{Recorder: sinktest.New()}, 0))
	err := f.Close(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"x"`)
}

func TestFanoutConcurrentAddRemoveWrite(t *testing.T) {
	f := sink.NewFanout(sink.FanoutConfig{OnDetach: func(string, error) {}})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if w == 0 {
					_ = f.WriteFrame(audio(i))
				} else {
					_ = f.WriteFrame(video(i, i%10 == 0))
				}
			}
		}(w)
	}
	for i := 0; i < 50; i++ {
		r := sinktest.New()
		if i%3 == 0 {
			r.FailAfter(2, errors.New("x"))
		}
		name := string(rune('a' + i%5))
		if err := f.Add(name, r, 8); err == nil && i%2 == 0 {
			_ = f.Remove(context.Background(), name)
		}
		_ = f.Stats()
	}
	close(stop)
	wg.Wait()
	_ = f.Close(context.Background())
}

func ExampleFanout() {
	f := sink.NewFanout(sink.FanoutConfig{
		OnDetach: func(name string, err error) { /* report: the call goes on */ },
	})
	rec := sinktest.New()
	_ = f.Add("recording", rec, 0) // 0: DefaultQueue
	_ = f.WriteFrame(&media.Frame{Codec: media.CodecPCMA, Keyframe: true, ClockRate: 8000, Payload: []byte{0xd5}})
	_ = f.Close(context.Background()) // flushes the queues and closes the sinks
	// Output:
}

// A stuck sink's queue is bounded in bytes too, not only in frames: a peer
// sending multi-megabyte access units must not make the fanout hold
// hundreds of them.
func TestFanoutQueueBoundedInBytes(t *testing.T) {
	f := sink.NewFanout(sink.FanoutConfig{MaxQueueBytes: 10 << 20})
	stuck := sinktest.New()
	release := stuck.Hold()
	require.NoError(t, f.Add("stuck", stuck, 0)) // 200 frames
	big := func(i int, key bool) *media.Frame {
		fr := video(i, key)
		fr.Payload = make([]byte, 4<<20)
		fr.Payload[5] = byte(i)
		return fr
	}
	require.NoError(t, f.WriteFrame(big(0, true)))
	// The sink's goroutine holds frame 0 (stuck in WriteFrame).
	require.Eventually(t, func() bool { return f.Stats()[0].Queued == 0 }, 10*time.Second, time.Millisecond)
	for i := 1; i < 50; i++ {
		require.NoError(t, f.WriteFrame(big(i, true)))
	}
	st := f.Stats()[0]
	assert.Equal(t, 2, st.Queued, "two 4 MiB frames fit in 10 MiB")
	assert.Equal(t, int64(8<<20), st.QueuedBytes)
	assert.Equal(t, uint64(47), st.FramesDropped)
	// Small frames still fit beside them.
	require.NoError(t, f.WriteFrame(audio(1)))
	assert.Equal(t, 3, f.Stats()[0].Queued)

	release()
	_, err := stuck.WaitN(ctxT(t), 4)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.Stats()[0].QueuedBytes == 0 }, 10*time.Second, time.Millisecond)
	require.NoError(t, f.Close(context.Background()))
	got := stuck.Frames()
	require.Len(t, got, 4)
	assert.Equal(t, []byte{0, 1, 2}, []byte{got[0].Payload[5], got[1].Payload[5], got[2].Payload[5]})

	// One frame larger than the whole budget still reaches an idle sink.
	f2 := sink.NewFanout(sink.FanoutConfig{MaxQueueBytes: 1 << 20})
	r := sinktest.New()
	require.NoError(t, f2.Add("r", r, 0))
	require.NoError(t, f2.WriteFrame(big(0, true)))
	_, err = r.WaitN(ctxT(t), 1)
	require.NoError(t, err)
	require.NoError(t, f2.Close(context.Background()))
}

// Close racing WriteFrame, Add, Remove, Stats and itself: every call
// returns, each added sink is closed exactly once (by Close, Remove, or
// left to the caller when Add failed), and goleak finds nothing.
func TestFanoutCloseRacesCalls(t *testing.T) {
	for i := 0; i < 50; i++ {
		f := sink.NewFanout(sink.FanoutConfig{OnDetach: func(string, error) {}, OnKeyframeNeeded: func() {}})
		first := sinktest.New()
		require.NoError(t, f.Add("first", first, 0))
		late := sinktest.New()
		var wg sync.WaitGroup
		var addErr error
		run := func(fn func()) {
			wg.Add(1)
			go func() { defer wg.Done(); fn() }()
		}
		run(func() {
			for j := 0; j < 20; j++ {
				_ = f.WriteFrame(video(j, j == 0))
			}
		})
		run(func() { addErr = f.Add("late", late, 0) })
		run(func() { _ = f.Remove(context.Background(), "first") })
		run(func() { _ = f.Stats(); _ = f.Len() })
		run(func() { _ = f.Close(context.Background()) })
		run(func() { _ = f.Close(context.Background()) })
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctxT(t).Done():
			t.Fatalf("iteration %d: a call blocked", i)
		}
		require.NoError(t, f.Close(context.Background()))
		assert.Equal(t, 1, first.CloseCount(), "iteration %d", i)
		if addErr == nil {
			assert.Equal(t, 1, late.CloseCount(), "iteration %d: an added sink is closed by Close", i)
		} else {
			require.ErrorIs(t, addErr, sink.ErrClosed)
			assert.Zero(t, late.CloseCount(), "iteration %d: a refused sink stays the caller's", i)
		}
		require.ErrorIs(t, f.WriteFrame(audio(0)), sink.ErrClosed)
	}
}
