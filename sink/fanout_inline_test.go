package sink_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
)

// inlineSink implements sink.Inline: it records the frames it gets and
// its Close calls, panics on a WriteFrame after Close, and can fail.
type inlineSink struct {
	mu     sync.Mutex
	frames []media.Frame
	fail   error // returned by WriteFrame when set
	closes int
}

func (s *inlineSink) Inline() bool { return true }

func (s *inlineSink) WriteFrame(f *media.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closes > 0 {
		panic("WriteFrame after Close")
	}
	if s.fail != nil {
		return s.fail
	}
	s.frames = append(s.frames, *f)
	return nil
}

func (s *inlineSink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closes++
	return nil
}

func (s *inlineSink) snapshot() (n, closes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames), s.closes
}

// TestFanoutInlineSink: an Inline sink gets each frame before
// Fanout.WriteFrame returns (no queue, no goroutine), skips video up to the
// first keyframe like a queued sink, is counted, and is closed once by
// Remove. A Fanout with only Inline sinks runs no goroutine.
func TestFanoutInlineSink(t *testing.T) {
	before := goleak.IgnoreCurrent()
	f := sink.NewFanout(sink.FanoutConfig{})
	s := &inlineSink{}
	require.NoError(t, f.Add("webrtc", s, 0))
	require.NoError(t, f.WriteFrame(video(0, false))) // skipped: no keyframe yet
	require.NoError(t, f.WriteFrame(audio(0)))
	n, _ := s.snapshot()
	require.Equal(t, 1, n, "delivered synchronously")
	goleak.VerifyNone(t, before)
	require.NoError(t, f.WriteFrame(video(1, true)))
	require.NoError(t, f.WriteFrame(video(2, false)))
	n, _ = s.snapshot()
	require.Equal(t, 3, n)
	st := f.Stats()
	require.Len(t, st, 1)
	assert.Equal(t, uint64(3), st[0].FramesWritten)
	assert.Equal(t, uint64(1), st[0].FramesSkipped)
	assert.Equal(t, 0, st[0].QueueCap)
	s.mu.Lock()
	assert.Equal(t, byte(1), s.frames[1].Payload[5])
	s.mu.Unlock()

	require.NoError(t, f.Remove(context.Background(), "webrtc"))
	_, closes := s.snapshot()
	require.Equal(t, 1, closes)
	require.NoError(t, f.WriteFrame(audio(1)))
	require.NoError(t, f.Close(context.Background()))
	_, closes = s.snapshot()
	require.Equal(t, 1, closes)
}

// TestFanoutInlineSinkFails: an Inline sink whose WriteFrame fails is
// detached at once, closed off the writing goroutine and reported once;
// Close closes the inline sinks still attached.
func TestFanoutInlineSinkFails(t *testing.T) {
	detached := make(chan error, 4)
	f := sink.NewFanout(sink.FanoutConfig{OnDetach: func(name string, err error) { detached <- err }})
	bad := &inlineSink{fail: errors.New("boom")}
	good := &inlineSink{}
	require.NoError(t, f.Add("bad", bad, 0))
	require.NoError(t, f.Add("good", good, 0))
	require.NoError(t, f.WriteFrame(audio(0)))
	require.Equal(t, 1, f.Len())
	select {
	case err := <-detached:
		require.ErrorContains(t, err, "boom")
	case <-ctxT(t).Done():
		t.Fatal("no OnDetach")
	}
	_, closes := bad.snapshot()
	require.Equal(t, 1, closes)
	require.NoError(t, f.WriteFrame(audio(1)))
	require.NoError(t, f.Close(context.Background()))
	n, closes := good.snapshot()
	require.Equal(t, 2, n)
	require.Equal(t, 1, closes)
	_, closes = bad.snapshot()
	require.Equal(t, 1, closes)
	require.Empty(t, detached)
}

// batchSink implements sink.BatchWriter; its first call blocks until
// released, so that frames pile up in its queue.
type batchSink struct {
	mu      sync.Mutex
	batches [][]int64 // PTS of each batch, in ms
	entered chan struct{}
	release chan struct{}
	failAt  int // fail the call with this many batches recorded; 0: never
}

func (s *batchSink) WriteFrame(*media.Frame) error { panic("WriteFrame on a BatchWriter") }
func (s *batchSink) Close(context.Context) error   { return nil }

func (s *batchSink) WriteFrames(fs []*media.Frame) (int, error) {
	s.mu.Lock()
	first := len(s.batches) == 0
	if s.failAt > 0 && len(s.batches) == s.failAt {
		s.mu.Unlock()
		return 1, errors.New("batch failed")
	}
	var b []int64
	for _, f := range fs {
		b = append(b, f.PTS.Milliseconds())
	}
	s.batches = append(s.batches, b)
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return len(fs), nil
}

// TestFanoutBatchWriter: a BatchWriter gets what piled up in its queue in
// one call (up to MaxBatch), in order, and never waits for more frames.
func TestFanoutBatchWriter(t *testing.T) {
	f := sink.NewFanout(sink.FanoutConfig{})
	s := &batchSink{entered: make(chan struct{}), release: make(chan struct{})}
	require.NoError(t, f.Add("rtmp", s, 64))
	require.NoError(t, f.WriteFrame(audio(0)))
	<-s.entered // the goroutine is inside WriteFrames with frame 0
	for i := 1; i <= sink.MaxBatch+3; i++ {
		require.NoError(t, f.WriteFrame(audio(i)))
	}
	close(s.release)
	require.NoError(t, f.Close(context.Background()))
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Len(t, s.batches, 3)
	require.Equal(t, []int64{0}, s.batches[0])
	require.Len(t, s.batches[1], sink.MaxBatch)
	require.Len(t, s.batches[2], 3)
	want := int64(0)
	for _, b := range s.batches {
		for _, pts := range b {
			require.Equal(t, want, pts)
			want += 20
		}
	}
}

// TestFanoutBatchWriterFails: an error from WriteFrames detaches the sink;
// the frames it took before the error count as written.
func TestFanoutBatchWriterFails(t *testing.T) {
	detached := make(chan string, 1)
	f := sink.NewFanout(sink.FanoutConfig{OnDetach: func(name string, err error) { detached <- name }})
	s := &batchSink{entered: make(chan struct{}), release: make(chan struct{}), failAt: 1}
	require.NoError(t, f.Add("rtmp", s, 64))
	require.NoError(t, f.WriteFrame(audio(0)))
	<-s.entered
	require.NoError(t, f.WriteFrame(audio(1)))
	require.NoError(t, f.WriteFrame(audio(2)))
	close(s.release)
	select {
	case name := <-detached:
		require.Equal(t, "rtmp", name)
	case <-ctxT(t).Done():
		t.Fatal("no OnDetach")
	}
	require.Equal(t, 0, f.Len())
	require.NoError(t, f.Close(context.Background()))
}
