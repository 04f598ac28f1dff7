package sinktest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecorder(t *testing.T) {
	r := sinktest.New()
	buf := []byte{1, 2}
	require.NoError(t, r.WriteFrame(&media.Frame{Codec: media.CodecPCMA, Payload: buf}))
	buf[0] = 9
	require.NoError(t, r.WriteFrame(&media.Frame{Codec: media.CodecH264, Keyframe: true, Payload: buf}))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs, err := r.WaitN(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2}, fs[0].Payload, "payload copied")
	assert.Len(t, r.FramesOf(media.KindVideo), 1)
	vs, err := r.WaitKind(ctx, media.KindAudio, 1)
	require.NoError(t, err)
	assert.Equal(t, media.CodecPCMA, vs[0].Codec)

	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	fs, err = r.WaitN(short, 3)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, fs, 2)

	boom := errors.New("boom")
	r.FailAfter(2, boom)
	require.ErrorIs(t, r.WriteFrame(&media.Frame{}), boom)
	r.FailAfter(0, nil)
	require.NoError(t, r.WriteFrame(&media.Frame{}))

	release := r.Hold()
	done := make(chan struct{})
	go func() { _ = r.WriteFrame(&media.Frame{}); close(done) }()
	select {
	case <-done:
		t.Fatal("held recorder did not block")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	release()
	<-done
	assert.Equal(t, 4, r.Len())

	go func() { _ = r.Close(context.Background()) }()
	require.NoError(t, r.WaitClosed(ctx))
	assert.True(t, r.Closed())
	require.NoError(t, r.Close(context.Background()))
	assert.Equal(t, 2, r.CloseCount())
}
